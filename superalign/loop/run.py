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
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Callable

import superalign
from superalign.errors import Interrupted, SuperalignError, raise_interrupted
from superalign.executors import make_executor
from superalign.loop import attack, critique, escalate, evaluate, learn, respond
from superalign.loop import axes as loop_axes
from superalign.loop.context import Context, NullUI
from superalign.store import TABLES, RunStore, writable
from superalign.store.records import CalibrateInfo, RunIdentity, differing_keys, flatten
from superalign.training import load_adapter, restore

SETUP = [("setup", evaluate.setup), ("eval", evaluate.evaluate)]
STAGES = [("calibrate", escalate.calibrate), ("attack", attack.attack), ("respond", respond.respond),
          ("critique", critique.critique), ("escalate", escalate.escalate), ("learn", learn.learn),
          ("attacker_update", attack.update), ("eval", evaluate.evaluate)]
ORDER = [name for name, _ in STAGES]


def open_run(cfg, run_dir: str | Path, ui=None, executor=None, *, resume: bool = True,
             fork_of: str | Path | None = None) -> Context:
    """The context of a new run in `run_dir`, or of the run already there. The directory's lock is taken before
    anything is written and is held by the context (`run` releases it when the run ends, `Context.close` too).

    A run directory holds one run: a start there with another seed or config (keys outside `RESUMABLE`) is refused,
    naming the keys, and so is any start when `resume` is False. `fork_of` starts a new run in `run_dir` that records
    the run it came from and copies its round-0 stages when they cannot differ (`fork`)."""
    run_dir = Path(run_dir)
    unguarded = [a for a in loop_axes.trained(cfg.loop) if a not in cfg.eval.axes]
    if unguarded:  # the guard covers the evaluated axes: a trained axis nothing evaluates would go unguarded
        raise SuperalignError(f"loop.axes trains {', '.join(unguarded)} but eval.axes does not score it, so no guard "
                              "would cover it", "add it to eval.axes, or give it weight 0 in loop.axes and the mixes")
    fresh = not run_dir.exists()
    writable(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    held = lock(run_dir).acquire()
    store, ex = None, executor
    try:
        store = _existing(cfg, run_dir, resume, fork_of)  # a start that differs is refused here, before any write
        ex = ex or make_executor(cfg)
        ex.backend("learner")  # a model that cannot load fails here, before a new store exists
        if store is None:
            store = _create(cfg, run_dir, fork_of)
        else:
            with store.tx():  # only RESUMABLE keys (rounds, executor, ...) can differ from what is stored
                store.put("config", cfg.model_dump(mode="json"))
                store.put("loop", cfg.loop.model_dump(mode="json"))
    except BaseException:
        if store is not None:
            store.close()
        if ex is not None and executor is None:
            ex.close()
        held.release()
        if fresh:  # a start that never began leaves nothing behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return Context(cfg=cfg, store=store, dir=run_dir, ex=ex, ui=ui or NullUI(), lock=held)


def _existing(cfg, run_dir: Path, resume: bool, fork_of: str | Path | None) -> RunStore | None:
    """The store of the run already in `run_dir` when this start may continue it (None: there is none)."""
    if not (run_dir / "store.sqlite").exists():
        return None
    store = RunStore(run_dir)
    try:
        if fork_of is not None or not resume:
            status = store.get("status", "unknown")
            status = "killed" if status == "running" else status  # this process holds its lock: nothing runs it
            raise SuperalignError(
                f"{run_dir} already holds run {store.run_id} (seed {store.get('seed')}, {status})",
                f"continue it with `superalign run --resume {run_dir}`, or start elsewhere with a new --run-dir")
        same_run(store, cfg.model_dump(mode="json"))
    except BaseException:
        store.close()
        raise
    return store


def _create(cfg, run_dir: Path, fork_of: str | Path | None) -> RunStore:
    """A new run's store with its identity (and its lineage, when it is forked from another run)."""
    config = cfg.model_dump(mode="json")
    store = RunStore(run_dir, create=True)
    with store.tx():
        store.put("identity", RunIdentity.of(config, code_version()).to_json())
        store.put("config", config)
        store.put("name", cfg.run.name)
        store.put("seed", cfg.run.seed)
        store.put("loop", config["loop"])
    if fork_of is not None:
        fork(Path(fork_of), store)
    return store


def saved_config(store: RunStore) -> dict:
    """The config a run was started with (runs from before the identity key kept `loop` apart)."""
    saved = dict(store.get("config") or {})
    saved["loop"] = store.get("loop") or saved.get("loop") or {}
    return saved


def same_run(store: RunStore, config: dict) -> None:
    """Refuse, naming the keys, a start whose seed or config differs from the run stored in `store`."""
    saved = saved_config(store)
    ident = store.get("identity")
    theirs = RunIdentity.from_json(ident) if ident else None
    mine = RunIdentity.of(config, code_version())
    if theirs is not None and (theirs.seed, theirs.config_hash) == (mine.seed, mine.config_hash):
        return
    keys = differing_keys(saved, config)
    if theirs is None or theirs.code_version != mine.code_version:
        # another version may name keys this one does not (or the reverse): only keys both know can differ
        known = flatten(saved).keys() & flatten(config).keys()
        keys = [k for k in keys if k in known]
    if keys:
        shown = ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
        raise SuperalignError(f"{store.dir} is run {store.run_id} (seed {saved.get('run', {}).get('seed')}); this "
                              f"start differs in {shown}",
                              f"resume it as it was (`superalign run --resume {store.dir}` without --seed, --config "
                              f"or --set of those keys), or fork it: add `--fork NEWDIR` to start a new run from it")


# Round 0 (the held-out sets and the untrained learner's evaluation) reads no `loop.*` key but these two.
ROUND0_LOOP_KEYS = ("loop.lora", "loop.critic")


def fork(source: Path, store: RunStore) -> list[str]:
    """Record in `store` (a new run) the run it is forked from, and copy that run's finished round-0 stages
    (`setup`, `eval`: the held-out sets and the untrained learner's evaluation) when no key they read differs.
    Returns the stages copied."""
    if not (source / "store.sqlite").exists():
        raise SuperalignError(f"{source} is not a run directory (no store.sqlite)",
                              "fork a directory printed by `superalign runs list`")
    src = RunStore(source)
    try:
        keys = differing_keys(saved_config(src), store.get("config"))
        share = all(k.startswith("loop.") and not k.startswith(ROUND0_LOOP_KEYS) for k in keys)
        copied = [s for s in src.stages() if s["round"] == 0 and s["status"] == "done"
                  and s["name"] in ("setup", "eval")] if share else []
        with store.tx():
            for s in copied:
                for t in TABLES:
                    store._insert(t, src.rows(t, round=0, stage=s["name"]), {})
                store.db.execute("INSERT INTO stages VALUES (?, ?, ?, ?, ?, ?)",
                                 (s["round"], s["name"], s["status"], s["started_at"], s["finished_at"], s["info"]))
            store.put("forked_from", {"dir": str(source), "run_id": src.run_id, "identity": src.get("identity"),
                                      "differs": keys, "copied": [f"0:{s['name']}" for s in copied]})
        return [s["name"] for s in copied]
    finally:
        src.close()


def git_commit(where: Path, dirty: tuple[str, ...] = (), timeout: float = 5) -> str:
    """The short commit of the git checkout holding `where`, with "+dirty" when any of the paths `dirty` (relative
    to `where`) has uncommitted changes; "" outside a checkout, without git or after `timeout` seconds. One reader
    for every record of the code a result came from (the run identity here, a bench's `code`)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=timeout,
                              check=True).stdout.strip()
    try:
        sha = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--", *dirty) if dirty else ""
    except (OSError, subprocess.SubprocessError):
        return ""
    return sha + ("+dirty" if changed else "")


def code_version() -> str:
    """The package version, and the source checkout's commit when there is one (`0.1.0+g1f2c4a9`)."""
    sha = git_commit(Path(__file__).parent)
    return superalign.__version__ + (f"+g{sha}" if sha else "")


def run(ctx: Context, finish: Callable[[], object] | None = None) -> None:
    """Run (or finish) every round under the run directory's lock; marks the run `done`, `failed` (with the error)
    or `interrupted`. `finish` (the report) is called at the end, still under the lock, whatever happened."""
    held = ctx.lock if ctx.lock is not None and ctx.lock.held else lock(ctx.dir).acquire()
    old = signal.signal(signal.SIGTERM, raise_interrupted) if _main_thread() else None
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
        try:
            if finish is not None:
                finish()
        finally:
            held.release()


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
    after_cal = name in ORDER and ORDER.index(name) > ORDER.index("calibrate")
    cal = ctx.store.last_info(CalibrateInfo, before=r + 1 if after_cal else r)
    if cal is not None and cal.calibrated and ctx.calibrated_round != cal.round:
        ids = cal.label_ids or [x["id"] for x in ctx.store.rows(
            "labels", where="status='done' AND round<?", params=(cal.round,))]
        escalate.apply_labels(ctx, ids)
        ctx.calibrated_round = cal.round


def checkpoint_path(run_dir: Path, path: str) -> Path:
    """Checkpoint paths are stored relative to the run directory (older runs: as they were written)."""
    p = Path(path)
    return p if p.is_absolute() else run_dir / p


class lock:
    """An exclusive `flock` on run_dir/.lock: a second process on the same run directory stops at once with the
    holder's pid instead of writing every stage twice. `acquire`/`release`, or a `with` block."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self.f: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self.f is not None

    def acquire(self) -> "lock":
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            f.close()
            raise SuperalignError(f"run {self.path.parent} is in use by pid {pid}",
                                  "wait for that process to finish (or stop it), then resume") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self.f = f
        return self

    def release(self) -> None:
        if self.f is not None:
            fcntl.flock(self.f, fcntl.LOCK_UN)
            self.f.close()
            self.f = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()
