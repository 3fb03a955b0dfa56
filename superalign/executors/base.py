"""What an executor is: it runs a stage's batch function over records, in this process or on Ray.

A stage function is a module-level `fn(backend, records, kw) -> records` (picklable, so a Ray worker can run it).
The executor cuts the records into fixed chunks of `chunk` and passes each chunk's index in `kw["chunk_index"]`;
stage functions derive their seeds from that and the records, never from global state, so the same seed gives the
same records on any executor. `on_chunk(n)` is called as chunks finish (progress). Only the driver writes to the
run store.
"""
from __future__ import annotations

from typing import Callable, Optional, Protocol

StageFn = Callable[[object, list[dict], dict], list[dict]]
# records per call of a generating stage: a local backend batches them itself (by rows and prompt tokens,
# models/local.py), and on a CPU it decodes 64 rows for about the price of 16, so chunks are wide
GEN_CHUNK = 64
OnChunk = Optional[Callable[[int], None]]


class Executor(Protocol):
    def map(self, fn: StageFn, role: str, records: list[dict], chunk: int = 64, on_chunk: OnChunk = None,
            **kw) -> list[dict]: ...

    def backend(self, role: str): ...

    def sync(self, role: str, checkpoint: str | None) -> None:
        """Tell the executor that `role`'s weights changed (a LoRA adapter saved at `checkpoint`)."""
        ...

    def close(self) -> None: ...


def shares_weights(role: str) -> bool:
    """The learner is trained in place: its weights are never shared with another role (the one rule, here)."""
    return role != "learner"


def chunks(records: list[dict], chunk: int) -> list[list[dict]]:
    return [records[i:i + chunk] for i in range(0, len(records), chunk)]
