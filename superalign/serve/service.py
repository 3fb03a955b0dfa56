"""Request models in, jobs to the batcher, OpenAI-shaped responses (whole or as SSE chunks) out.

The handlers are async: a request waits for its jobs without holding a thread, polls whether its
client is still there (and marks the jobs cancelled if not, so the model thread drops them), and
has a wall-clock deadline. Streaming responses only start once every prompt has been tokenized and
found to fit the context, so a too-long prompt is still a plain 400, not a 200 with an error inside.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid

from superalign.errors import SuperalignError
from superalign.models.base import GenParams
from superalign.serve.batcher import Batcher, Cancelled, Job
from superalign.serve.schema import BadRequest, ChatRequest, CompletionRequest, finite, parse


def model_context(lm, fallback: int = 2048) -> int:
    """The model's context window: `max_position_embeddings` of its config (tokenizers often say 1e30)."""
    n = getattr(getattr(getattr(lm, "model", None), "config", None), "max_position_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else fallback


def error_of(e: BaseException) -> BadRequest:
    """Any job failure as an OpenAI error: client errors keep their status, a model failure is a 500."""
    if isinstance(e, BadRequest):
        return e
    if isinstance(e, Cancelled):
        return BadRequest(str(e), 499, code="client_closed")
    if isinstance(e, SuperalignError):
        return BadRequest(e.problem, 400)
    return BadRequest(f"the model failed on this request: {type(e).__name__}: {str(e)[:300]}", 500,
                      code="server_error")


class Service:
    """The model behind the endpoints."""

    def __init__(self, lm, served_names: list[str], default_max_tokens: int = 256, window_ms: float = 5.0,
                 max_batch: int | None = None, context: int | None = None, request_timeout_s: float = 600.0,
                 stall_s: float = 120.0, max_queue: int = 1024):
        self.lm, self.names = lm, served_names
        self.context = context or model_context(lm)
        self.default_max_tokens = min(default_max_tokens, self.context)
        self.request_timeout_s = request_timeout_s
        # a token never covers more characters than its longest vocabulary string: a prompt longer than
        # context * that (x2 for normalisers) cannot fit, and is refused without a tokenizer pass
        self.max_chars = 2 * self.context * max(16, max(map(len, lm.tokenizer.get_vocab())))
        self.batcher = Batcher(lm, self.context, window_ms, max_batch, max_queue=max_queue, stall_s=stall_s)
        self.created = int(time.time())

    # ------------------------------------------------------------------ small endpoints
    def models(self) -> dict:
        return {"object": "list", "data": [{"id": n, "object": "model", "created": self.created,
                                            "owned_by": "superalign", "max_model_len": self.context}
                                           for n in self.names]}

    def stats(self) -> dict:
        s = dict(self.batcher.stats)
        s["batch_sizes"] = {str(k): v for k, v in sorted(s["batch_sizes"].items())}
        s["queued"] = self.batcher.q.qsize()
        return s

    def _model(self, name: str | None) -> str:
        if name is None:
            return self.names[0]
        if name not in self.names:
            raise BadRequest(f"model {name[:100]!r} is not served here (served: {', '.join(self.names)})", 404,
                             "model", "model_not_found")
        return name

    # ------------------------------------------------------------------ requests -> jobs
    def _params(self, req, max_tokens: int) -> GenParams:
        return GenParams(max_new_tokens=max_tokens, temperature=float(req.temperature), top_p=float(req.top_p),
                         seed=secrets.randbits(31) if req.seed is None else req.seed)

    def jobs(self, kind: str, body: dict):
        """(request, served name, jobs) for a chat or completions body; nothing is queued yet."""
        if kind == "chat":
            req, mt, default = parse(ChatRequest, body, self.context, self.default_max_tokens)
            msgs = [{"role": m.role, "content": m.content} for m in req.messages]
            top = (req.top_logprobs or 0) if req.logprobs else None
            jobs = [Job(msgs, self._params(req, mt), default, top, param="messages")]
        else:
            req, mt, default = parse(CompletionRequest, body, self.context, 16)
            prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
            jobs = [Job(p, self._params(req, mt), default, req.logprobs, req.echo) for p in prompts]
        for j in jobs:
            n = len(j.prompt) if isinstance(j.prompt, str) else sum(len(m["content"]) for m in j.prompt)
            if n > self.max_chars:
                raise BadRequest(f"the prompt ({n} characters) cannot fit the model's context of {self.context} "
                                 "tokens; shorten it", param=j.param, code="context_length_exceeded")
        name = self._model(req.model)
        deadline = time.monotonic() + self.request_timeout_s
        for j in jobs:
            j.deadline = deadline
        return req, name, jobs

    async def run(self, jobs: list[Job], gone) -> None:
        """Queue `jobs` and wait for all of them; `gone()` (async) says the client disconnected."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        for j in jobs:
            j.on_done = lambda: loop.call_soon_threadsafe(wake.set)
        try:
            for j in jobs:
                self.batcher.submit(j)
            while not all(j.done.is_set() for j in jobs):
                try:
                    await asyncio.wait_for(wake.wait(), 0.25)
                except asyncio.TimeoutError:
                    pass
                wake.clear()
                if await gone():
                    raise Cancelled("client disconnected")
                if time.monotonic() > jobs[0].deadline + 5:
                    raise BadRequest(f"no answer within {self.request_timeout_s:.0f}s", 504, code="timeout")
        finally:
            for j in jobs:
                if not j.done.is_set():
                    j.cancelled = True
        for j in jobs:
            if j.error is not None:
                raise error_of(j.error)

    # ------------------------------------------------------------------ whole responses
    def chat_response(self, name: str, req: ChatRequest, job: Job) -> dict:
        r = job.output
        lp = None
        if r["logprobs"] is not None:
            L = r["logprobs"]
            lp = {"content": [{"token": t, "logprob": finite(v), "bytes": list(t.encode()),
                               "top_logprobs": [{"token": a, "logprob": finite(b), "bytes": list(a.encode())}
                                                for a, b in (L["top"][k] if L["top"] else [])]}
                              for k, (t, v) in enumerate(zip(L["tokens"], L["token_logprobs"]))]}
        return {"id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
                "model": name, "choices": [{"index": 0, "message": {"role": "assistant", "content": r["text"]},
                                            "logprobs": lp, "finish_reason": r["finish_reason"]}],
                "usage": _usage([r]), "superalign": {"batch": r["batch"]}}

    def completion_response(self, name: str, req: CompletionRequest, jobs: list[Job]) -> dict:
        choices = []
        for i, j in enumerate(jobs):
            r, lp = j.output, None
            if r["logprobs"] is not None:
                L = r["logprobs"]
                base = len(j.prompt) if req.echo else 0
                lp = {"tokens": L["tokens"], "token_logprobs": [finite(v) for v in L["token_logprobs"]],
                      "top_logprobs": None if L["top"] is None else
                      [None if t is None else {a: finite(b) for a, b in t} for t in L["top"]],
                      "text_offset": L["prompt_offsets"] + [base + o for o in L["completion_offsets"]]}
            text = (j.prompt + r["raw"]) if req.echo else r["raw"]
            choices.append({"text": text, "index": i, "logprobs": lp, "finish_reason": r["finish_reason"]})
        return {"id": "cmpl-" + uuid.uuid4().hex, "object": "text_completion", "created": int(time.time()),
                "model": name, "choices": choices, "usage": _usage([j.output for j in jobs])}

    # ------------------------------------------------------------------ streaming
    async def stream(self, kind: str, name: str, req, jobs: list[Job], gone):
        """Queue `jobs` for streaming. Returns an async iterator of SSE lines once all prompts are accepted;
        raises the first job's error (as a plain error response) if one is refused before that."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        for i, j in enumerate(jobs):
            j.emit = lambda d, i=i: loop.call_soon_threadsafe(events.put_nowait, ("delta", i, d))
            j.on_ready = lambda i=i: loop.call_soon_threadsafe(events.put_nowait, ("ready", i, None))
            j.on_done = lambda i=i: loop.call_soon_threadsafe(events.put_nowait, ("done", i, None))
        held: list = []
        ready: set[int] = set()
        finished: set[int] = set()
        try:
            for j in jobs:
                self.batcher.submit(j)
            while len(ready | finished) < len(jobs):
                try:
                    ev = await asyncio.wait_for(events.get(), 0.25)
                except asyncio.TimeoutError:
                    if await gone():
                        raise Cancelled("client disconnected") from None
                    continue
                held.append(ev)
                (ready if ev[0] == "ready" else finished if ev[0] == "done" else set()).add(ev[1])
                if ev[0] == "done" and jobs[ev[1]].error is not None:
                    raise error_of(jobs[ev[1]].error)
        except BaseException:
            for j in jobs:
                j.cancelled = True
            raise
        return self._sse(kind, name, req, jobs, events, held)

    async def _sse(self, kind, name, req, jobs, events, held):
        cid, created = ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex, int(time.time())
        obj = "chat.completion.chunk" if kind == "chat" else "text_completion"
        finished: set[int] = set()

        def chunk(i, text=None, finish=None, first=False, usage=None):
            if kind == "chat":
                delta = {} if finish else {"role": "assistant", "content": ""} if first else {"content": text}
                choices = [{"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}]
            else:
                choices = [{"text": text or "", "index": i, "logprobs": None, "finish_reason": finish}]
            c = {"id": cid, "object": obj, "created": created, "model": name,
                 "choices": [] if usage else choices}
            if usage:
                c["usage"] = usage
            return f"data: {json.dumps(c)}\n\n"

        try:
            for i, j in enumerate(jobs):
                if kind == "chat":
                    yield chunk(i, first=True)
                elif req.echo:
                    yield chunk(i, j.prompt)
            pending = list(held)
            while True:
                while pending:
                    ev, i, d = pending.pop(0)
                    if ev == "delta":
                        yield chunk(i, d)
                    elif ev == "done":
                        finished.add(i)
                        j = jobs[i]
                        if j.error is not None:
                            e = error_of(j.error)
                            yield f"data: {json.dumps(e.body())}\n\n"
                        else:
                            yield chunk(i, finish=j.result["finish_reason"])
                if len(finished) == len(jobs):
                    break
                pending.append(await events.get())
            done_ok = [j.result for j in jobs if j.result is not None]
            if req.stream_options and req.stream_options.get("include_usage") and done_ok:
                yield chunk(0, usage=_usage(done_ok))
            yield "data: [DONE]\n\n"
        finally:  # the client left mid-stream (or we are done): stop any row still generating
            for j in jobs:
                if not j.done.is_set():
                    j.cancelled = True


def _usage(results: list[dict]) -> dict:
    pt, ct = sum(r["prompt_tokens"] for r in results), sum(r["completion_tokens"] for r in results)
    return {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
