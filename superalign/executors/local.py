"""Everything in-process: backends are built once per role and shared with the trainer, so a learner trained
in place is what the next stage generates with."""
from __future__ import annotations

from superalign.executors.base import OnChunk, StageFn, chunks, shares_weights
from superalign.roles import build


class LocalExecutor:
    def __init__(self, cfg, backends: dict | None = None):
        self.cfg = cfg
        self._backends: dict[str, object] = dict(backends or {})

    def backend(self, role: str):
        if role not in self._backends:
            self._backends[role] = build(self.cfg.role(role), seed=self.cfg.run.seed, shared=shares_weights(role))
        return self._backends[role]

    def set_backend(self, role: str, backend) -> None:
        self._backends[role] = backend

    def map(self, fn: StageFn, role: str, records: list[dict], chunk: int = 64, on_chunk: OnChunk = None,
            **kw) -> list[dict]:
        out: list[dict] = []
        b = self.backend(role)
        for i, part in enumerate(chunks(records, chunk)):
            out += fn(b, part, dict(kw, chunk_index=i))
            if on_chunk:
                on_chunk(len(part))
        return out

    def sync(self, role: str, checkpoint: str | None) -> None:
        pass  # the in-process backend is the trained object itself

    def close(self) -> None:
        pass  # nothing outside this process to release; the models go with the executor object
