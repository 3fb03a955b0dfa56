"""One run's summary, read from its store one way for every reader: the loop's report, `superalign run`'s closing
lines, `runs show`, `runs list`, `runs compare` and `export` (summary.json).

Held-out metrics per evaluated round, the time each stage took, the learner's checkpoints, the run's identity and
its status (`RunStore.status`: a run whose process died is `killed`, wherever it is read).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from superalign.errors import SuperalignError
from superalign.store import RunStore
from superalign.store.records import Checkpoint, Metric, RunIdentity, Stage


@dataclass(frozen=True)
class RunSummary:
    dir: str
    run_id: str
    name: str
    kind: str                                   # loop | eval | w2s | sandwich (what wrote the store)
    status: str
    seed: int | None
    rounds: int | None                          # rounds the run was asked for (a loop)
    identity: RunIdentity | None
    error: str | None
    stages: list[Stage] = field(default_factory=list)
    evals: dict[int, dict[str, Metric]] = field(default_factory=dict)   # round -> name -> held-out metric
    checkpoints: list[Checkpoint] = field(default_factory=list)

    @classmethod
    def read(cls, store: RunStore, upto: int | None = None) -> "RunSummary":
        """The summary of `store`'s run; with `upto`, only rounds <= upto (a run resumed with fewer rounds than it
        started with may hold stages of a later, unfinished round)."""
        def keep(r: int | None) -> bool:
            return upto is None or (r or 0) <= upto
        evals: dict[int, dict[str, Metric]] = {}
        for m in store.records(Metric, stage="eval"):
            if keep(m.round):
                evals.setdefault(m.round or 0, {})[m.name] = m
        ident = store.get("identity")
        return cls(dir=str(store.dir), run_id=store.run_id, name=store.get("name") or store.dir.name,
                   kind=kind_of(store), status=store.status(), seed=store.get("seed"), rounds=store.get("rounds"),
                   identity=RunIdentity.from_json(ident) if ident else None, error=store.get("error"),
                   stages=[s for s in store.stage_records() if keep(s.round)], evals=evals,
                   checkpoints=[c for c in store.records(Checkpoint) if keep(c.round)])

    @classmethod
    def of(cls, run_dir: str | Path, upto: int | None = None) -> "RunSummary":
        store = RunStore(run_dir)
        try:
            return cls.read(store, upto)
        finally:
            store.close()

    # ------------------------------------------------------------------ derived
    @property
    def stages_done(self) -> int:
        return sum(s.done for s in self.stages)

    @property
    def walls(self) -> dict[str, float]:
        """Seconds per stage name, summed over rounds (finished stages)."""
        out: dict[str, float] = {}
        for s in self.stages:
            if s.done:
                out[s.name] = out.get(s.name, 0.0) + s.info.wall_s
        return out

    @property
    def baseline(self) -> int | None:
        return min(self.evals) if self.evals else None

    @property
    def final(self) -> int | None:
        return max(self.evals) if self.evals else None

    def metric(self, name: str, r: int | None = None) -> Metric | None:
        """Held-out metric `name` of round r (the last evaluated round when None)."""
        r = self.final if r is None else r
        return self.evals.get(r, {}).get(name) if r is not None else None

    def series(self, name: str) -> dict[int, Metric]:
        """{round: metric} of one held-out metric, in round order."""
        return {r: ms[name] for r, ms in sorted(self.evals.items()) if name in ms}

    def why_not_comparable(self) -> str | None:
        """Why `runs compare` leaves this run out, or None when it has held-out metrics to compare."""
        if self.evals:
            return None
        return f"no finished eval stage (status {self.status})"

    def to_json(self) -> dict[str, Any]:
        return {"dir": self.dir, "run_id": self.run_id, "name": self.name, "kind": self.kind, "status": self.status,
                "seed": self.seed, "rounds": self.rounds, "error": self.error,
                "identity": self.identity.to_json() if self.identity else None,
                "stages_done": self.stages_done, "stages": len(self.stages), "stage_wall_s": self.walls,
                "metrics": {str(r): {n: {"value": m.value, "lo": m.lo, "hi": m.hi, "n": m.n} for n, m in ms.items()}
                            for r, ms in sorted(self.evals.items())},
                "checkpoints": [{"id": c.id, "phase": c.phase, "accepted": bool(c.accepted), "path": c.path}
                                for c in self.checkpoints]}


def kind_of(store: RunStore) -> str:
    """What wrote this store: `superalign eval` marks its own; a loop stores its `loop` settings; the others
    their section."""
    if store.get("kind"):
        return str(store.get("kind"))
    if store.get("loop") is not None:
        return "loop"
    if store.get("sandwich") is not None:
        return "sandwich"
    return "w2s" if (store.get("config") or {}).get("w2s") and store.get("seeds") else "run"


# the command that writes each kind of run, and how that kind is continued (`other_kind` names them)
COMMAND = {"loop": "superalign run", "w2s": "superalign w2s", "sandwich": "superalign sandwich",
           "eval": "superalign eval"}
CONTINUE = {"loop": "continue it with `superalign run --resume {dir}`",
            "w2s": "continue it with `superalign w2s --resume {dir}`",
            "sandwich": "continue it with `superalign sandwich --run-dir {dir}`",
            "eval": "an evaluation is not continued: run `superalign eval` again with a new --run-dir"}


def other_kind(store: RunStore, kind: str) -> None:
    """Refuse to continue, as a `kind` run, a store another command wrote: that would write this command's stages
    and config into the other run. A store that names no kind (killed before it wrote one) is let through."""
    theirs = kind_of(store)
    if theirs != kind and theirs in COMMAND:
        raise SuperalignError(f"{store.dir} holds a run of `{COMMAND[theirs]}`, not of `{COMMAND[kind]}`",
                              CONTINUE[theirs].format(dir=store.dir) + f"; or resume a directory `{COMMAND[kind]}` "
                              "wrote (`superalign runs show DIR` names a run's kind)")
