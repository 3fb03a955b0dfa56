"""An OpenAI-compatible HTTP server for one local model, so a critic (or any role) is loaded
once and shared by many workers.

    superalign serve --role critic --port 8000 [--config FILE] [--host 127.0.0.1]

Endpoints (the subset `superalign.models.http.OpenAIChat`, vLLM clients and the openai SDK use):

- `POST /v1/chat/completions`: model, messages, max_tokens (or max_completion_tokens),
  temperature, top_p, seed, n=1. Replies with `choices[0].message.content`, `finish_reason`
  and `usage` {prompt_tokens, completion_tokens, total_tokens}.
- `POST /v1/completions`: prompt (a string or a list of strings), max_tokens (0 allowed),
  echo, logprobs (0-5), temperature, top_p, seed. With `echo` and `logprobs`,
  `choices[i].logprobs` holds `tokens`, `token_logprobs` (None for the first token),
  `top_logprobs` and `text_offset` of the prompt (and of the completion, if any) - the way
  `OpenAIChat.logprobs` asks for prompt log-probs.
- `GET /v1/models`; `GET /health`; `GET /stats` (requests, batches, largest batch).

Micro-batching: one worker thread owns the model. Requests wait in a queue; the worker takes
the first, collects whatever else arrives within `window_ms` (up to `max_batch`), and runs
one batched `generate` (each row with its own temperature, top-p, budget and seed - see
`LocalLM.generate_full`, whose rows do not depend on their batch mates) and one batched
scoring pass. Standard library only (`http.server.ThreadingHTTPServer`); binds 127.0.0.1
unless told otherwise, and requires `Authorization: Bearer $KEY` when `api_key_env` names a
set environment variable.
"""
from __future__ import annotations

import hmac
import json
import os
import queue
import secrets
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from superalign.errors import SuperalignError
from superalign.models.base import GenParams

MAX_TOP_LOGPROBS = 5


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.status, self.param = status, param


@dataclass
class _Job:
    kind: str                          # "generate" | "score"
    payload: object                    # (prompt, GenParams) | (token ids, top)
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: BaseException | None = None
    batch: int = 0


class Batcher:
    """Collects concurrent requests for `window_ms` and runs them as one batch on the model."""

    def __init__(self, lm, window_ms: float = 5.0, max_batch: int | None = None):
        self.lm, self.window = lm, window_ms / 1000
        self.max_batch = max_batch or max(1, lm.batch_size)
        self.q: queue.Queue = queue.Queue()
        self.stats = {"requests": 0, "batches": 0, "max_batch": 0, "batch_sizes": Counter()}
        self._thread = threading.Thread(target=self._loop, name="superalign-batcher", daemon=True)
        self._thread.start()

    def submit(self, kind: str, payload) -> tuple[object, int]:
        job = _Job(kind, payload)
        self.q.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result, job.batch

    def close(self):
        self.q.put(None)
        self._thread.join(timeout=10)

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, deadline = [first], time.monotonic() + self.window
        while len(jobs) < self.max_batch:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                j = self.q.get(timeout=left)
            except queue.Empty:
                break
            if j is None:
                return jobs, True
            jobs.append(j)
        return jobs, False

    def _loop(self):
        while True:
            first = self.q.get()
            if first is None:
                return
            jobs, stop = self._collect(first)
            for kind, run in (("generate", self._generate), ("score", self._score)):
                group = [j for j in jobs if j.kind == kind]
                if not group:
                    continue
                try:
                    results = run([j.payload for j in group])
                    for j, r in zip(group, results):
                        j.result = r
                except BaseException as e:  # every waiting request gets the error, the server lives on
                    for j in group:
                        j.error = e
                for j in group:
                    j.batch = len(group)
                self.stats["requests"] += len(group)
                self.stats["batches"] += 1
                self.stats["max_batch"] = max(self.stats["max_batch"], len(group))
                self.stats["batch_sizes"][len(group)] += 1
                for j in group:
                    j.done.set()
            if stop:
                return

    def _generate(self, payloads):
        return self.lm.generate_full([p for p, _ in payloads], [g for _, g in payloads])

    def _score(self, payloads):
        top = max(t for _, t in payloads)
        return self.lm.sequence_logprobs([ids for ids, _ in payloads], top=top)


# ---------------------------------------------------------------------- request parsing
def _num(body: dict, key: str, default, kind=float, lo=None, hi=None):
    v = body.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
        raise BadRequest(f"`{key}` must be a{'n integer' if kind is int else ' number'}", param=key)
    v = kind(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise BadRequest(f"`{key}` must be in [{lo}, {hi if hi is not None else 'inf'}]", param=key)
    return v


def _gen_params(body: dict, default_max: int, allow_zero: bool) -> GenParams:
    if _num(body, "n", 1, int) != 1:
        raise BadRequest("only n=1 is supported; send several requests (they are batched together)", param="n")
    if body.get("stop") not in (None, [], ""):
        raise BadRequest("`stop` is not supported by superalign serve", param="stop")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    max_tokens = _num({"max_tokens": max_tokens}, "max_tokens", default_max, int, 0 if allow_zero else 1)
    seed = _num(body, "seed", None, int)
    return GenParams(max_new_tokens=max_tokens, temperature=_num(body, "temperature", 1.0, float, 0.0, 2.0),
                     top_p=_num(body, "top_p", 1.0, float, 1e-6, 1.0),
                     seed=secrets.randbits(31) if seed is None else seed)


def _messages(body: dict) -> list[dict]:
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("`messages` must be a non-empty list", param="messages")
    out = []
    for m in msgs:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise BadRequest("each message needs a `role` and a `content`", param="messages")
        c = m.get("content")
        if isinstance(c, list):  # content parts: keep the text ones
            c = "".join(p.get("text", "") for p in c if isinstance(p, dict) and p.get("type") == "text")
        if not isinstance(c, str):
            raise BadRequest("message `content` must be a string or a list of text parts", param="messages")
        out.append({"role": m["role"], "content": c})
    return out


# ---------------------------------------------------------------------- the service
class Service:
    """The model behind the endpoints: request dicts in, OpenAI-shaped response dicts out."""

    def __init__(self, lm, served_names: list[str], default_max_tokens: int = 256, window_ms: float = 5.0,
                 max_batch: int | None = None):
        self.lm, self.names = lm, served_names
        self.default_max_tokens = default_max_tokens
        self.batcher = Batcher(lm, window_ms, max_batch)
        self.created = int(time.time())

    def _check_model(self, body: dict) -> str:
        name = body.get("model")
        if name is None:
            return self.names[0]
        if name not in self.names:
            raise BadRequest(f"model {name!r} is not served here (served: {', '.join(self.names)})", 404, "model")
        return name

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": n, "object": "model", "created": self.created,
                                            "owned_by": "superalign"} for n in self.names]}

    def chat(self, body: dict) -> dict:
        name = self._check_model(body)
        msgs = _messages(body)
        params = _gen_params(body, self.default_max_tokens, allow_zero=False)
        c, batch = self.batcher.submit("generate", (msgs, params))
        return {"id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
                "model": name, "choices": [{"index": 0, "message": {"role": "assistant", "content": c.text},
                                            "logprobs": None, "finish_reason": c.finish_reason}],
                "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                          "total_tokens": c.prompt_tokens + c.completion_tokens},
                "superalign": {"batch": batch}}

    def completions(self, body: dict) -> dict:
        name = self._check_model(body)
        prompts = body.get("prompt")
        if isinstance(prompts, str):
            prompts = [prompts]
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise BadRequest("`prompt` must be a string or a non-empty list of strings", param="prompt")
        params = _gen_params(body, 16, allow_zero=True)
        echo = bool(body.get("echo", False))
        top = body.get("logprobs")
        top = None if top is None else _num(body, "logprobs", 0, int, 0, MAX_TOP_LOGPROBS)
        # every prompt is its own queued job, so the batcher sees them (and other clients') together
        results: list = [None] * len(prompts)
        errors: list = []

        def one(i: int):
            try:
                results[i] = self._one_completion(prompts[i], params, echo, top)
            except BaseException as e:
                errors.append(e)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(1, len(prompts))]
        for t in threads:
            t.start()
        one(0)
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        choices = [dict(r[0], index=i) for i, r in enumerate(results)]
        pt, ct = sum(r[1] for r in results), sum(r[2] for r in results)
        return {"id": "cmpl-" + uuid.uuid4().hex, "object": "text_completion", "created": int(time.time()),
                "model": name, "choices": choices,
                "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}}

    def _one_completion(self, prompt: str, params: GenParams, echo: bool, top: int | None):
        tok = self.lm.tokenizer
        enc = tok(prompt, add_special_tokens=False, return_offsets_mapping=True)
        p_ids, p_off = list(enc["input_ids"]), [a for a, _ in enc["offset_mapping"]]
        g_ids: list[int] = []
        finish = "length"
        if params.max_new_tokens > 0:
            c, _ = self.batcher.submit("generate", (prompt, params))
            g_ids, finish = c.ids, c.finish_reason
        g_text = tok.decode(g_ids, skip_special_tokens=True)
        text = (prompt + g_text) if echo else g_text
        logprobs = None
        if top is not None:
            (lps, tops), _ = self.batcher.submit("score", (p_ids + g_ids, top))
            # offsets of generated tokens: where each token's text starts in the decoded completion
            g_off = [len(tok.decode(g_ids[:k], skip_special_tokens=True)) for k in range(len(g_ids))]
            base = len(prompt) if echo else 0
            ids = (p_ids if echo else []) + g_ids
            offs = (p_off if echo else []) + [base + o for o in g_off]
            sel = slice(0 if echo else len(p_ids), None)
            logprobs = {"tokens": [tok.decode([t]) for t in ids], "token_logprobs": lps[sel],
                        "top_logprobs": None if not top else
                        [None if t is None else {tok.decode([i]): v for i, v in t[:top]} for t in tops[sel]],
                        "text_offset": offs}
        return ({"text": text, "logprobs": logprobs, "finish_reason": finish},
                len(p_ids), len(g_ids))

    def stats(self) -> dict:
        s = dict(self.batcher.stats)
        s["batch_sizes"] = {str(k): v for k, v in sorted(s["batch_sizes"].items())}
        return s


def _handler(service: Service, api_key: str | None, log: bool):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, obj: dict):
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, param: str | None = None):
            kind = "invalid_request_error" if status < 500 else "server_error"
            self._send(status, {"error": {"message": message, "type": kind, "param": param, "code": status}})

        def _authorised(self) -> bool:
            if api_key is None:
                return True
            given = self.headers.get("Authorization", "")
            if hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return True
            self._error(401, "missing or wrong API key (Authorization: Bearer ...)")
            return False

        def do_GET(self):
            if not self._authorised():
                return
            path = self.path.split("?")[0].rstrip("/")
            if path == "/v1/models":
                self._send(200, service.models())
            elif path in ("/health", "/v1/health"):
                self._send(200, {"status": "ok"})
            elif path in ("/stats", "/v1/stats"):
                self._send(200, service.stats())
            else:
                self._error(404, f"no route GET {path}")

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            if not self._authorised():
                return
            path = self.path.split("?")[0].rstrip("/")
            route = {"/v1/chat/completions": service.chat, "/v1/completions": service.completions}.get(path)
            if route is None:
                return self._error(404, f"no route POST {path}")
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise BadRequest("the request body must be a JSON object")
                self._send(200, route(body))
            except json.JSONDecodeError as e:
                self._error(400, f"the request body is not JSON: {e}")
            except BadRequest as e:
                self._error(e.status, str(e), e.param)
            except SuperalignError as e:
                self._error(400, str(e))
            except Exception as e:  # the model failed: report it, keep serving
                self._error(500, f"{type(e).__name__}: {e}")

        def log_message(self, fmt, *args):
            if log:
                sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    return Handler


class Server:
    """`Server(lm, names).start()` serves in a background thread (tests); `.serve_forever()` blocks."""

    def __init__(self, lm, served_names: list[str], host: str = "127.0.0.1", port: int = 8000,
                 default_max_tokens: int = 256, window_ms: float = 5.0, max_batch: int | None = None,
                 api_key_env: str | None = None, log_requests: bool = False):
        api_key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not api_key:
            raise SuperalignError(f"--api-key-env names {api_key_env!r} but that environment variable is empty",
                                  f"export {api_key_env}=<key> before starting, or leave --api-key-env out")
        self.service = Service(lm, served_names, default_max_tokens, window_ms, max_batch)
        try:
            self.httpd = ThreadingHTTPServer((host, port), _handler(self.service, api_key, log_requests))
        except OSError as e:
            self.service.batcher.close()
            raise SuperalignError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                                  "pass another --port (or stop the process that holds this one)") from None
        self.httpd.daemon_threads = True
        self.host, self.port = host, self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> "Server":
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        try:
            self.httpd.serve_forever()
        finally:
            self.close()

    def close(self):
        if self._thread is not None:
            self.httpd.shutdown()
        self.httpd.server_close()
        self.service.batcher.close()


def from_config(cfg, role: str, **kw) -> Server:
    """A server for the local model bound to `role` in a validated `Config`."""
    from superalign import config as C
    from superalign.models.local import LocalLM
    rc = cfg.role(role)
    if not isinstance(rc, C.LocalModel):
        raise SuperalignError(f"role {role!r} is bound to backend {rc.backend!r}; `serve` hosts local models only",
                              f"bind roles.{role} to `backend: local` in the config, or serve another role")
    lm = LocalLM(rc.model, rc.device, rc.dtype, rc.batch_size, rc.static_cache, seed=cfg.run.seed, compile=rc.compile)
    names = list(dict.fromkeys([kw.pop("served_name", None) or rc.model, role]))
    kw.setdefault("default_max_tokens", cfg.generation.max_new_tokens)
    return Server(lm, names, **kw)
