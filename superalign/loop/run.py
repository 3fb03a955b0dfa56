"""The round driver: the order of the stages, the run directory's lock and status, and resume.

    round 0:  setup -> eval
    round r:  calibrate -> attack -> respond -> critique -> escalate -> learn -> attacker_update -> eval

Each stage is a function `stage(ctx, round) -> {table: rows, "info": {...}}` in its own module; its rows and
its done-mark are committed together (`RunStore.run_stage`), so a run killed anywhere resumes at the first
unfinished stage. Before a stage runs, `sync` rebuilds the in-memory state that stage depends on from the
store: the learner's accepted adapter and the critic's calibration (the evaluation judge is never calibrated,
and every stage derives its random seeds from the run seed, the round and record ids).
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from pathlib import Path

from superalign.errors import SuperalignError
from superalign.executors import make_executor
from superalign.loop import attack, critique, escalate, evaluate, learn, respond
from superalign.loop import axes as loop_axes
from superalign.loop.context import Context, NullUI
from superalign.store import RunStore
from superalign.training import load_adapter, restore

SETUP = [("setup", evaluate.setup), ("eval", evaluate.evaluate)]
STAGES = [("calibrate", escalate.calibrate), ("attack", attack.attack), ("respond", respond.respond),
          ("critique", critique.critique), ("escalate", escalate.escalate), ("learn", learn.learn),
          ("attacker_update", attack.update), ("eval", evaluate.evaluate)]
ORDER = [name for name, _ in STAGES]


class Interrupted(Exception):
    """SIGTERM, turned into an exception so the run is marked `interrupted` and its lock released."""


def open_run(cfg, run_dir: str | Path, ui=None, executor=None) -> Context:
    """The context of a new or resumed run in `run_dir` (created if needed)."""
    run_dir = Path(run_dir)
    unguarded = [a for a in loop_axes.trained(cfg.loop) if a not in cfg.eval.axes]
    if unguarded:  # the guard covers the evaluated axes: a trained axis nothing evaluates would go unguarded
        raise SuperalignError(f"loop.axes trains {', '.join(unguarded)} but eval.axes does not score it, so no guard "
                              "would cover it", "add it to eval.axes, or give it weight 0 in loop.axes and the mixes")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise SuperalignError(f"cannot write the run directory {run_dir}: {e.strerror or e}",
                              "pass a writable --run-dir, or set run.out_dir to a writable folder") from None
    store = RunStore(run_dir, create=True)
    if store.get("config") is None:
        store.put("config", cfg.model_dump(mode="json"))
        store.put("name", cfg.run.name)
        store.put("seed", cfg.run.seed)
    store.put("loop", cfg.loop.model_dump(mode="json"))
    return Context(cfg=cfg, store=store, dir=run_dir, ex=executor or make_executor(cfg), ui=ui or NullUI())


def run(ctx: Context) -> None:
    """Run (or finish) every round. Holds the run directory's lock throughout; marks the run `done`, `failed`
    (with the error) or `interrupted`."""
    with lock(ctx.dir):
        old = signal.signal(signal.SIGTERM, _raise_interrupted) if _main_thread() else None
        try:
            ctx.initial_adapter()  # the untrained adapter, before any checkpoint is loaded
            ctx.store.put("status", "running")
            ctx.store.put("rounds", ctx.lc.rounds)
            for name, fn in SETUP:
                run_stage(ctx, 0, name, fn)
            for r in range(1, ctx.lc.rounds + 1):
                for name, fn in STAGES:
                    run_stage(ctx, r, name, fn)
            ctx.store.put("status", "done")
        except (KeyboardInterrupt, Interrupted):
            ctx.store.put("status", "interrupted")
            raise
        except BaseException as e:
            ctx.store.put("status", "failed")
            ctx.store.put("error", f"{type(e).__name__}: {e}"[:2000])
            raise
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)


def run_stage(ctx: Context, r: int, name: str, fn) -> None:
    if ctx.store.stage_status(r, name) == "done":
        ctx.ui.skip(r, name)
        return
    sync(ctx, r, name)
    ctx.ui.start(r, name)
    t0 = time.time()
    ctx.store.run_stage(r, name, lambda: fn(ctx, r), seed=ctx.seed)
    ctx.ui.done(r, name, time.time() - t0)


def sync(ctx: Context, r: int, name: str) -> None:
    """Make the in-memory state match the store for stage `name` of round `r` (this matters on resume)."""
    done = [x for x in ctx.store.stages() if x["status"] == "done"]

    def before_stage(x, stage: str) -> bool:  # finished earlier than (r, name) in run order
        return x["name"] == stage and (x["round"] < r or (x["round"] == r and name in ORDER
                                                          and ORDER.index(name) > ORDER.index(stage)))
    learned = [x["round"] for x in done if before_stage(x, "learn")]
    target = max(learned, default=0)
    if target != ctx.adapter_round:
        ck = ctx.store.rows("checkpoints", where="round<=? AND accepted=1 AND path IS NOT NULL", params=(target,))
        if ck:
            load_adapter(ctx.learner.model, checkpoint_path(ctx.dir, ck[-1]["path"]))
        else:
            restore(ctx.learner.model, ctx.initial_adapter())
        ctx.adapter_round = target
    cal = [x for x in done if before_stage(x, "calibrate")]
    last = max(cal, key=lambda x: x["round"], default=None)
    info = json.loads(last["info"] or "{}") if last else {}
    if last and info.get("calibrated") and ctx.calibrated_round != last["round"]:
        ids = info.get("label_ids") or [x["id"] for x in ctx.store.rows(
            "labels", where="status='done' AND round<?", params=(last["round"],))]
        escalate.apply_labels(ctx, ids)
        ctx.calibrated_round = last["round"]


def checkpoint_path(run_dir: Path, path: str) -> Path:
    """Checkpoint paths are stored relative to the run directory (older runs: as they were written)."""
    p = Path(path)
    return p if p.is_absolute() else run_dir / p


class lock:
    """An exclusive `flock` on run_dir/.lock for the whole run: a second process on the same run directory
    stops at once with the holder's pid instead of writing every stage twice."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"

    def __enter__(self):
        self.f = open(self.path, "a+")
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.f.seek(0)
            pid = self.f.read().strip() or "?"
            self.f.close()
            raise SuperalignError(f"run {self.path.parent} is in use by pid {pid}",
                                  "wait for that process to finish (or stop it), then resume") from None
        self.f.seek(0)
        self.f.truncate()
        self.f.write(str(os.getpid()))
        self.f.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def _raise_interrupted(signum, frame):
    raise Interrupted("terminated by SIGTERM")


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()
