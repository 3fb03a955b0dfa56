"""The one thread that owns the model: micro-batches, per-request isolation, cancellation, health.

Requests wait in a bounded queue; the worker takes the first, collects whatever else arrives within
`window_ms` (up to `max_batch`) and runs one batched `generate_full` (each row with its own
temperature, top-p, budget and seed; rows do not depend on their batch mates) and one batched
scoring pass for the jobs that asked for log-probs. Why these rules:

- All tokenizer use happens here. A fast tokenizer's padding/truncation settings are shared mutable
  state; handler threads tokenizing while the batcher pads raced (3-7% of completions failed).
- A failed batch is retried one job at a time, so one bad request fails alone, not its batch mates.
- A job whose client has gone is not started, and a running row is stopped at the next token
  (`generate_full(watch=...)`); every job also has a wall-clock deadline. The model thread is never
  left generating for nobody.
- `health()` is not ok when the thread died or has made no progress for `stall_s` while busy.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from superalign.models.base import GenParams
from superalign.serve.schema import BadRequest


class Cancelled(Exception):
    """The client went away (or the job ran past its deadline) before it was answered."""


@dataclass(eq=False)
class Job:
    prompt: str | list[dict]                 # raw text (completions) or chat messages
    params: GenParams
    budget_is_default: bool = False          # max_tokens not given: shrink it to what the context leaves
    top: int | None = None                   # per-token log-probs wanted, with this many alternatives
    echo: bool = False                       # ... of the prompt tokens too
    emit: Callable[[str], object] | None = None  # streaming: receives text deltas as tokens are made
    deadline: float = float("inf")           # time.monotonic() after which the job is cut
    param: str = "prompt"                    # the request field named in a too-long-prompt error
    cancelled: bool = False                  # set by the request handler when the client disconnects
    on_done: Callable[[], object] | None = None
    on_ready: Callable[[], object] | None = None  # streaming: the prompt fits, the response can start
    done: threading.Event = field(default_factory=threading.Event)
    result: dict | None = None
    error: BaseException | None = None
    # filled on the batcher thread
    p_ids: list = field(default_factory=list)
    p_off: list = field(default_factory=list)
    g_ids: list = field(default_factory=list)
    finish: str = "length"
    cut: bool = False
    scored: tuple | None = None
    _sent: tuple = (0, 0)                    # streaming decode offsets (prefix, read)

    @property
    def output(self) -> dict:
        """The result of a job that finished without an error."""
        assert self.result is not None, "the job has no result: it has not finished, or it failed"
        return self.result

    def finish_with(self, error: BaseException | None = None):
        if self.done.is_set():
            return
        self.error = error
        self.done.set()
        if self.on_done is not None:
            try:
                self.on_done()
            except RuntimeError:  # the handler's event loop is gone (server shutting down)
                pass


class Batcher:
    def __init__(self, lm, context: int, window_ms: float = 5.0, max_batch: int | None = None,
                 max_queue: int = 1024, stall_s: float = 120.0):
        self.lm, self.context, self.window = lm, context, window_ms / 1000
        self.max_batch = max_batch or max(1, lm.batch_size)
        self.stall_s = stall_s
        self.q: queue.Queue = queue.Queue(maxsize=max_queue)
        self.stats: dict[str, Any] = {"requests": 0, "batches": 0, "max_batch": 0, "batch_sizes": Counter(), "failed": 0,
                      "cancelled": 0, "isolated_retries": 0}
        self.busy_since: float | None = None
        self.beat = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="superalign-batcher", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ API for handlers
    def submit(self, job: Job) -> Job:
        if not self._thread.is_alive():
            raise BadRequest("the model thread is not running; restart the server", 503, code="model_unavailable")
        try:
            self.q.put_nowait(job)
        except queue.Full:
            raise BadRequest("the server's queue is full; retry later", 503, code="overloaded") from None
        return job

    def health(self) -> tuple[bool, str]:
        if not self._thread.is_alive():
            return False, "model thread is dead"
        if self.busy_since is not None and time.monotonic() - self.beat > self.stall_s:
            return False, f"model thread made no progress for {time.monotonic() - self.beat:.0f}s"
        return True, "ok"

    def close(self):
        try:
            self.q.put(None, timeout=5)
        except queue.Full:
            pass
        self._thread.join(timeout=10)

    # ------------------------------------------------------------------ the worker
    def _collect(self, first: Job) -> tuple[list[Job], bool]:
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
            self.busy_since = self.beat = time.monotonic()
            try:
                self._run(jobs)
            except BaseException as e:  # a bug here must not kill the thread: fail this batch, keep serving
                for j in jobs:
                    j.finish_with(e)
            finally:
                self.busy_since = None
            if stop:
                return

    def _run(self, jobs: list[Job]):
        live = []
        for j in jobs:
            if j.cancelled or time.monotonic() > j.deadline:
                self.stats["cancelled"] += 1
                j.finish_with(Cancelled("client disconnected or deadline passed before the job started"))
                continue
            try:
                self._prepare(j)
                live.append(j)
                if j.on_ready is not None:
                    j.on_ready()
            except Exception as e:
                j.finish_with(e)
        if not live:
            return
        self.stats["requests"] += len(live)
        self.stats["batches"] += 1
        self.stats["max_batch"] = max(self.stats["max_batch"], len(live))
        self.stats["batch_sizes"][len(live)] += 1
        self._isolated(self._generate, [j for j in live if j.params.max_new_tokens > 0])
        self._isolated(self._score, [j for j in live if j.error is None and j.top is not None and not j.cancelled])
        for j in live:
            if j.cancelled:
                self.stats["cancelled"] += 1
                j.finish_with(Cancelled("client disconnected during generation"))
            elif j.error is None:
                try:
                    j.result = self._result(j, len(live))
                    j.finish_with()
                except Exception as e:
                    j.finish_with(e)
            else:
                self.stats["failed"] += 1
                err, j.error = j.error, None
                j.finish_with(err)

    def _isolated(self, step, jobs: list[Job]):
        """Run `step` on the batch; if it fails, on each job alone, so only the failing ones get an error."""
        if not jobs:
            return
        try:
            step(jobs)
            return
        except Exception as e:
            if len(jobs) == 1:
                jobs[0].error = e
                return
        self.stats["isolated_retries"] += 1
        for j in jobs:
            if j._sent != (0, 0):  # part of its stream is out: a rerun would send it twice
                j.error = RuntimeError("generation failed mid-stream")
                continue
            try:
                step([j])
            except Exception as e:
                j.error = e

    # ------------------------------------------------------------------ model steps (this thread only)
    def _prepare(self, j: Job):
        tok = self.lm.tokenizer
        text = self.lm.render(j.prompt)
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        j.p_ids, j.p_off = list(enc["input_ids"]), [a for a, _ in enc["offset_mapping"]]
        n, m = len(j.p_ids), j.params.max_new_tokens
        if n == 0:
            raise BadRequest("the prompt has no tokens", param=j.param)
        if n + m > self.context:
            if j.budget_is_default and n < self.context:
                j.params = GenParams(self.context - n, j.params.temperature, j.params.top_p, j.params.seed)
            else:
                raise BadRequest(f"the prompt is {n} tokens and max_tokens is {m}: together more than the model's "
                                 f"context of {self.context} tokens; shorten the prompt or lower max_tokens",
                                 param=j.param, code="context_length_exceeded")

    def _generate(self, jobs: list[Job]):
        tok, stop_ids = self.lm.tokenizer, self.lm.stop_ids
        for j in jobs:
            j.g_ids, j.cut, j.finish, j._sent = [], False, "length", (0, 0)

        def watch(i: int, t: int) -> bool:
            j = jobs[i]
            if j.finish == "stop" or len(j.g_ids) >= j.params.max_new_tokens or j.cut:
                return True  # finished earlier; the batch pads this row
            now = time.monotonic()
            self.beat = now
            if j.cancelled or now > j.deadline:
                j.cut = True
                return True
            j.g_ids.append(int(t))
            if t in stop_ids:
                j.finish = "stop"
            if j.emit is not None:
                self._stream(j, tok)
            return j.finish == "stop" or len(j.g_ids) >= j.params.max_new_tokens

        outs = self.lm.generate_full([j.prompt for j in jobs], [j.params for j in jobs], watch=watch)
        for j, c in zip(jobs, outs):
            if not j.cut:
                j.g_ids, j.finish = list(c.ids), c.finish_reason
            if j.emit is not None:
                self._stream(j, tok, final=True)

    @staticmethod
    def _stream(j: Job, tok, final: bool = False):
        """Emit the text the new tokens add, holding back an incomplete UTF-8 character."""
        pre, read = j._sent
        before = tok.decode(j.g_ids[pre:read], skip_special_tokens=True)
        now = tok.decode(j.g_ids[pre:], skip_special_tokens=True)
        if j.emit is not None and len(now) > len(before) and (final or not now.endswith("\ufffd")):
            j.emit(now[len(before):])
            j._sent = (read, len(j.g_ids))

    def _score(self, jobs: list[Job]):
        top = max(j.top or 0 for j in jobs)  # every job here asked for log-probs (top is set)
        res = self.lm.sequence_logprobs([j.p_ids + j.g_ids for j in jobs], top=top)
        for j, r in zip(jobs, res):
            j.scored = r

    def _result(self, j: Job, batch: int) -> dict:
        """Everything the response needs, decoded here (the tokenizer stays on this thread)."""
        tok = self.lm.tokenizer
        raw = tok.decode(j.g_ids, skip_special_tokens=True)
        out = {"text": raw.strip(), "raw": raw, "finish_reason": j.finish, "prompt_tokens": len(j.p_ids),
               "completion_tokens": len(j.g_ids), "batch": batch, "logprobs": None}
        if j.top is not None:
            assert j.scored is not None  # `_score` ran for every job that asked for log-probs
            lps, tops = j.scored
            sel = slice(0 if j.echo else len(j.p_ids), None)
            ids = (j.p_ids if j.echo else []) + j.g_ids
            g_off = [len(tok.decode(j.g_ids[:k], skip_special_tokens=True)) for k in range(len(j.g_ids))]
            out["logprobs"] = {
                "tokens": [tok.decode([t]) for t in ids], "token_logprobs": lps[sel],
                "top": None if not j.top else
                [None if t is None else [(tok.decode([i]), v) for i, v in t[:j.top]] for t in tops[sel]],
                "prompt_offsets": j.p_off if j.echo else [], "completion_offsets": g_off}
        return out
