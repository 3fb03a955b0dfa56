"""An OpenAI-compatible HTTP endpoint (vLLM, TGI, llama.cpp server, hosted APIs).

Standard library only: a thread pool bounded by `concurrency`, timeouts, and retries with
exponential backoff on connection errors, 429 and 5xx. Each call's latency and token usage
is kept in `calls` so the caller can write it to the run store.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from superalign.errors import SuperalignError
from superalign.models.base import GenParams, Prompt


class OpenAIChat:
    def __init__(self, model: str, base_url: str = "http://127.0.0.1:8000/v1", api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 60.0, max_retries: int = 3, concurrency: int = 4, **_):
        self.name, self.base_url = model, base_url.rstrip("/")
        self.key = os.environ.get(api_key_env, "")
        self.timeout_s, self.max_retries, self.concurrency = timeout_s, max_retries, concurrency
        self.calls: list[dict] = []

    def _post(self, path: str, body: dict) -> dict:
        url = self.base_url + path
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            t0 = time.perf_counter()
            try:
                req = urllib.request.Request(url, json.dumps(body).encode(), headers)
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    data = json.loads(r.read())
                self.calls.append({"path": path, "latency_s": time.perf_counter() - t0,
                                   "usage": data.get("usage", {}), "attempts": attempt + 1})
                return data
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}: {e.read()[:200]!r}"
                if e.code not in (408, 429) and e.code < 500:
                    break  # a client error will not get better by retrying
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as e:
                last = str(e)
            time.sleep(min(0.25 * 2 ** attempt, 8.0))
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

    def generate(self, chats: list[Prompt], params: GenParams = GenParams()) -> list[str]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(self._chat, [(c, params, i) for i, c in enumerate(chats)]))

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
