"""Executors run a stage's batch function over records: in this process, or on Ray.

A stage function is a module-level `fn(backend, records, kw) -> records` (picklable, so a Ray
worker can run it). The executor cuts the records into fixed chunks of `chunk` and passes each
chunk's index in `kw["chunk_index"]`; stage functions derive their seeds from that and the
records, never from global state, so the same seed gives the same records on any executor.
Only the driver writes to the run store.
"""
from __future__ import annotations

from typing import Callable, Protocol

StageFn = Callable[[object, list[dict], dict], list[dict]]


class Executor(Protocol):
    def map(self, fn: StageFn, role: str, records: list[dict], chunk: int = 64, **kw) -> list[dict]: ...

    def backend(self, role: str): ...

    def sync(self, role: str, checkpoint: str | None) -> None:
        """Tell the executor that `role`'s weights changed (a LoRA adapter saved at `checkpoint`)."""
        ...


class LocalExecutor:
    """Everything in-process; backends are built once per role and shared with the trainer,
    so a learner trained in place is what the next stage generates with."""

    def __init__(self, cfg, backends: dict | None = None):
        self.cfg = cfg
        self._backends: dict[str, object] = dict(backends or {})

    def backend(self, role: str):
        if role not in self._backends:
            from superalign.models import build
            # the learner is trained in place: never share its weights with another role
            self._backends[role] = build(self.cfg.role(role), seed=self.cfg.run.seed, shared=role != "learner")
        return self._backends[role]

    def set_backend(self, role: str, backend) -> None:
        self._backends[role] = backend

    def map(self, fn: StageFn, role: str, records: list[dict], chunk: int = 64, **kw) -> list[dict]:
        out: list[dict] = []
        b = self.backend(role)
        for i in range(0, len(records), chunk):
            out += fn(b, records[i:i + chunk], dict(kw, chunk_index=i // chunk))
        return out

    def sync(self, role: str, checkpoint: str | None) -> None:
        pass  # the in-process backend is the trained object itself


def make_executor(cfg, backends: dict | None = None) -> Executor:
    if cfg.run.executor == "ray":
        from superalign.extras import need
        need("ray", "run.executor: ray")
        from superalign.loop.ray_executor import RayExecutor  # issue 6
        return RayExecutor(cfg, backends)
    return LocalExecutor(cfg, backends)
