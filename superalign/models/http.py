"""An OpenAI-compatible HTTP endpoint (vLLM, TGI, llama.cpp server, hosted APIs).

Standard library only: a thread pool bounded by `concurrency`, timeouts, and retries with
exponential backoff on connection errors, 429 and 5xx. Each call's latency and token usage
is kept in `calls`, and handed to `on_call(record)` when the caller gives one:
`OpenAIChat(..., on_call=record_to(store, round=r, stage="attack", role="attacker"))` writes one
`metrics` row per request (name `endpoint_call`, value = latency in seconds, tokens in `meta`).
"""
from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

from superalign.errors import SuperalignError
from superalign.models.base import GenParams, Prompt, per_prompt


class OpenAIChat:
    def __init__(self, model: str, base_url: str = "http://127.0.0.1:8000/v1", api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 60.0, max_retries: int = 3, concurrency: int = 4,
                 price_per_1k_tokens: float = 0.0, on_call: Callable[[dict], None] | None = None):
        self.name, self.base_url = model, base_url.rstrip("/")
        self.key = os.environ.get(api_key_env, "")
        self.timeout_s, self.max_retries, self.concurrency = timeout_s, max_retries, concurrency
        self.price_per_1k_tokens = price_per_1k_tokens
        self.calls: list[dict] = []
        self.on_call = on_call
        self._lock = threading.Lock()

    def _record(self, rec: dict):
        with self._lock:  # calls come from pool threads; the callback may write to SQLite
            self.calls.append(rec)
            if self.on_call is not None:
                self.on_call(rec)

    def _post(self, path: str, body: dict) -> dict:
        url = self.base_url + path
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        last, t_first = "", time.perf_counter()
        for attempt in range(self.max_retries + 1):
            t0 = time.perf_counter()
            try:
                req = urllib.request.Request(url, json.dumps(body).encode(), headers)
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    data = json.loads(r.read())
                usage = data.get("usage") or {}
                self._record({"path": path, "model": self.name, "latency_s": time.perf_counter() - t0,
                              "total_s": time.perf_counter() - t_first, "usage": usage,
                              "cost": int(usage.get("total_tokens") or 0) / 1000 * self.price_per_1k_tokens,
                              "attempts": attempt + 1, "ok": True})
                return data
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}: {e.read()[:200]!r}"
                if e.code not in (408, 429) and e.code < 500:
                    break  # a client error will not get better by retrying
                retry_after = e.headers.get("Retry-After") if e.headers else None
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as e:
                last, retry_after = str(e), None
            if attempt < self.max_retries:
                wait = min(0.25 * 2 ** attempt, 8.0) * (0.5 + random.random())  # jitter: no thundering herd
                if retry_after and retry_after.isdigit():
                    wait = max(wait, min(float(retry_after), 60.0))  # a 429/503 may say when to come back
                time.sleep(wait)
        self._record({"path": path, "model": self.name, "latency_s": None, "total_s": time.perf_counter() - t_first,
                      "usage": {}, "cost": 0.0, "attempts": attempt + 1, "ok": False, "error": last[:300]})
        raise SuperalignError(f"endpoint {url} failed for model {self.name!r}: {last}",
                              "check base_url, that the server is running, and the API key env var")

    def _chat(self, args) -> str:
        p, params, i = args
        msgs = p if isinstance(p, list) else [{"role": "user", "content": p}]
        data = self._post("/chat/completions", {
            "model": self.name, "messages": msgs, "max_tokens": params.max_new_tokens,
            "temperature": params.temperature, "top_p": params.top_p, "seed": params.seed + i})
        try:
            return data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise SuperalignError(f"endpoint returned no choices: {str(data)[:200]}",
                                  "is this an OpenAI-compatible chat endpoint?") from None

    def generate(self, chats: list[Prompt], params: GenParams | Sequence[GenParams] = GenParams()) -> list[str]:
        """One GenParams for all (prompt i is sent with seed + i) or one per prompt (sent as given),
        as `LocalLM.generate` takes them."""
        rows = per_prompt(params, len(chats))
        jobs = ([(c, params, i) for i, c in enumerate(chats)] if rows is None
                else [(c, p, 0) for c, p in zip(chats, rows)])
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(self._chat, jobs))

    def _score(self, args) -> float:
        prompt, completion = args
        text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
        data = self._post("/completions", {"model": self.name, "prompt": text + completion, "max_tokens": 0,
                                           "echo": True, "logprobs": 1})
        try:
            lp = data["choices"][0]["logprobs"]
            offsets, toks = lp["text_offset"], lp["token_logprobs"]
        except (KeyError, IndexError, TypeError):
            raise SuperalignError("endpoint does not return echoed prompt log-probs",
                                  "use a server with /v1/completions echo+logprobs (vLLM) or a local backend") from None
        return float(sum(t for o, t in zip(offsets, toks) if o >= len(text) and t is not None))

    def logprobs(self, prompts: list[Prompt], completions: list[str]) -> list[float]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(self._score, zip(prompts, completions)))


def record_to(store, **lineage) -> Callable[[dict], None]:
    """An `on_call` callback writing one `metrics` row per endpoint request to a `RunStore`:
    name `endpoint_call`, value = latency in seconds (None for a request that failed after its
    retries), `n` = total tokens, `meta` = path, usage, attempts, ok, error and cost (from the
    endpoint's `price_per_1k_tokens`). Lineage (round, stage, role, ...) is attached.

    Rows are written by the driver process (the client's pool threads, one at a time under its
    lock) while the caller waits in `generate`; a stage that is redone after a crash first
    deletes its (round, stage) rows, so a crashed attempt's calls do not count twice."""
    def on_call(rec: dict):
        tokens = int((rec.get("usage") or {}).get("total_tokens") or 0)
        meta = {k: rec[k] for k in ("path", "usage", "attempts", "ok", "total_s", "cost", "error") if k in rec}
        store.insert("metrics", [{"name": "endpoint_call", "value": rec.get("latency_s"), "n": tokens,
                                  "meta": meta}], **{"model": rec.get("model"), **lineage})
    return on_call
