"""Executors: the same stage functions in this process (`local`) or on Ray actors (`ray`)."""
from __future__ import annotations

from superalign.executors.base import Executor, StageFn, shares_weights  # noqa: F401
from superalign.executors.local import LocalExecutor
from superalign.extras import need


def make_executor(cfg, backends: dict | None = None) -> Executor:
    if cfg.run.executor == "ray":
        need("ray", "run.executor: ray")
        from superalign.executors.ray import RayExecutor  # ray is heavy and optional: imported only when asked for
        return RayExecutor(cfg, backends)
    return LocalExecutor(cfg, backends)
