"""The run store's records as types: the rows of each table, the info each loop stage commits with its done-mark,
a run's identity, and the one builder and parser of every record id.

The store keeps rows as SQLite columns and infos as JSON (so old runs stay readable); these types are how code reads
them back: `RunStore.records(Metric, ...)`, `RunStore.last_info(LearnInfo, before=r)`, `RunStore.stage_records()`.
Unknown info keys are kept in `extra`, so a run written by another version reads without loss.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

# ---------------------------------------------------------------------- record ids
# Prompt ids: r{round}:a{i} (attack), r{round}:b{i} (benign slice), r{round}:c{i} (contrast look-alike),
# {split}:{item id} (a held-out item fixed by `setup`). Response ids: {prompt id}:s{sample}, a self-revision
# {response id}:rev, an eval answer r{round}:{item id}. Labels r{round}:label:{target}; checkpoints r{round}:{phase}.
REVISION = ":rev"


def prompt_id(r: int, kind: str, i: int) -> str:
    """A loop prompt's id: kind is `a` (attack), `b` (benign) or `c` (contrast)."""
    return f"r{r}:{kind}{i}"


def sample_id(prompt: str, sample: int) -> str:
    return f"{prompt}:s{sample}"


def revision_id(response: str) -> str:
    return response + REVISION


def is_revision(response: str) -> bool:
    return response.endswith(REVISION)


def revised(revision: str) -> str:
    """The response a self-revision rewrote."""
    return revision[:-len(REVISION)] if is_revision(revision) else revision


def prompt_of(response: str) -> str:
    """The prompt a sampled (or revised) response answers."""
    return revised(response).rsplit(":s", 1)[0]


def eval_prompt_id(split: str, item: str) -> str:
    return f"{split}:{item}"


def eval_response_id(r: int, item: str) -> str:
    return f"r{r}:{item}"


def eval_item(response: str, r: int) -> str | None:
    """The held-out item an eval answer of round r answers (None for another round's or kind's id)."""
    pre = f"r{r}:"
    return response[len(pre):] if response.startswith(pre) else None


def label_id(r: int, target: str) -> str:
    return f"r{r}:label:{target}"


def checkpoint_id(r: int, phase: str) -> str:
    return f"r{r}:{phase}"


def undone(meta: dict) -> list[str]:
    """Why a phase was rolled back, as one list: the guard's typed regressions, then any other reason the phase
    stored (`why`: every candidate regressed on the selection split). Reads a checkpoint's meta or a
    `loop.efficacy.phase_decisions` record (same keys); records stored before `why` existed read as before."""
    return [*(meta.get("regressions") or []), *([meta["why"]] if meta.get("why") else [])]


# ---------------------------------------------------------------------- rows
R = TypeVar("R", bound="Row")


@dataclass(frozen=True)
class Row:
    """Lineage every row carries: which run, round, stage, role, model and seed produced it."""
    TABLE: ClassVar[str] = ""
    id: str
    run_id: str | None = None
    round: int | None = None
    stage: str | None = None
    role: str | None = None
    model: str | None = None
    seed: int | None = None
    created_at: float | None = None

    @classmethod
    def from_row(cls: type[R], row: dict[str, Any]) -> R:
        values: dict[str, Any] = {f.name: row.get(f.name) for f in fields(cls)}
        return cls(**values)

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class Prompt(Row):
    TABLE: ClassVar[str] = "prompts"
    kind: str | None = None
    text: str | None = None
    source: str | None = None
    category: str | None = None
    parent_id: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Response(Row):
    TABLE: ClassVar[str] = "responses"
    prompt_id: str | None = None
    sample: int | None = None
    text: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Critique(Row):
    TABLE: ClassVar[str] = "critiques"
    response_id: str | None = None
    text: str | None = None
    better_response: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Score(Row):
    TABLE: ClassVar[str] = "scores"
    target_id: str | None = None
    name: str | None = None
    value: float | None = None
    confidence: float | None = None
    error: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Label(Row):
    TABLE: ClassVar[str] = "labels"
    target_id: str | None = None
    status: str | None = None
    label: float | None = None
    labeler: str | None = None
    comment: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoint(Row):
    TABLE: ClassVar[str] = "checkpoints"
    path: str | None = None
    parent_id: str | None = None
    phase: str | None = None
    accepted: int | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Metric(Row):
    """A figure with its interval: `value` may be NULL (no estimate, e.g. KL over empty answers: `meta.null` says
    why), and so may `lo`/`hi` (a figure without an interval)."""
    TABLE: ClassVar[str] = "metrics"
    name: str = ""
    value: float | None = None
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    meta: dict = field(default_factory=dict)


ROWS: tuple[type[Row], ...] = (Prompt, Response, Critique, Score, Label, Checkpoint, Metric)


# ---------------------------------------------------------------------- stage infos
I = TypeVar("I", bound="StageInfo")  # noqa: E741


@dataclass(frozen=True)
class StageInfo:
    """What every stage commits with its done-mark: its round and wall time; keys a type does not name are kept in
    `extra` (a stage of another experiment, or a run written by another version)."""
    STAGE: ClassVar[str] = ""
    round: int = 0
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls: type[I], r: int, text: str | None) -> I:
        data = json.loads(text) if text else {}
        known = {f.name for f in fields(cls)} - {"round", "extra"}
        return cls(round=r, **{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})


@dataclass(frozen=True)
class SetupInfo(StageInfo):
    STAGE: ClassVar[str] = "setup"
    sizes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalInfo(StageInfo):
    """Per held-out item 0/1 outcomes by axis (what paired tests read), KL to the base model, and the round's rates
    (the suite's summary, in `extra`: the axes are the suite's to name)."""
    STAGE: ClassVar[str] = "eval"
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    kl_to_base: float | None = None
    kl_tokens: int = 0
    cached: bool = False                                     # answers read back from the evaluation cache
    usage: dict[str, Any] = field(default_factory=dict)     # tokens the evaluation generated and scored

    @property
    def rates(self) -> dict[str, Any]:
        return self.extra


@dataclass(frozen=True)
class CalibrateInfo(StageInfo):
    STAGE: ClassVar[str] = "calibrate"
    labels: int = 0
    calibrated: bool = False
    label_ids: list[str] | None = None


@dataclass(frozen=True)
class AttackInfo(StageInfo):
    STAGE: ClassVar[str] = "attack"
    attacks: int = 0
    rewrites: int = 0
    rewrite_failed: int = 0
    archive_cells: int = 0


@dataclass(frozen=True)
class RespondInfo(StageInfo):
    STAGE: ClassVar[str] = "respond"


@dataclass(frozen=True)
class CritiqueInfo(StageInfo):
    STAGE: ClassVar[str] = "critique"
    pairs: int = 0
    critic_errors: int = 0
    revisions: int = 0


@dataclass(frozen=True)
class EscalateInfo(StageInfo):
    STAGE: ClassVar[str] = "escalate"
    queued: int = 0
    candidates: int = 0


PHASE_START = "start"  # the candidate name of a phase's start (no update) in a learn stage's search log


@dataclass(frozen=True)
class LearnInfo(StageInfo):
    """The phases' log (every candidate, its settings, selection score, verdict), the guard split's state after the
    round (`guard`: summary and outcomes, what the next round's guard compares against) and the phases rolled back."""
    STAGE: ClassVar[str] = "learn"
    val: dict[str, float] = field(default_factory=dict)
    guard: dict[str, Any] | None = None
    phases: list[dict[str, Any]] = field(default_factory=list)
    n_conformity: int = 0
    n_competence: int = 0
    rolled_back: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AttackerUpdateInfo(StageInfo):
    STAGE: ClassVar[str] = "attacker_update"
    archive: dict[str, dict[str, Any]] = field(default_factory=dict)
    updated_cells: int = 0
    coverage: dict[str, int] | None = None
    vs_base: dict[str, float | None] = field(default_factory=dict)
    finetune: dict[str, Any] | None = None
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)  # per category|style: the learner's compliance


INFOS: dict[str, type[StageInfo]] = {c.STAGE: c for c in (SetupInfo, EvalInfo, CalibrateInfo, AttackInfo, RespondInfo,
                                                          CritiqueInfo, EscalateInfo, LearnInfo, AttackerUpdateInfo)}


@dataclass(frozen=True)
class Stage:
    """One row of the `stages` table, its info decoded by the stage's type."""
    round: int
    name: str
    status: str
    started_at: float | None
    finished_at: float | None
    info: StageInfo

    @property
    def done(self) -> bool:
        return self.status == "done"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Stage":
        kind = INFOS.get(row["name"], StageInfo)
        return cls(round=row["round"], name=row["name"], status=row["status"], started_at=row["started_at"],
                   finished_at=row["finished_at"], info=kind.parse(row["round"], row["info"]))


# ---------------------------------------------------------------------- identity
# Keys that may change when a run resumes without making it another run: how far it goes and where its work runs.
RESUMABLE = ("loop.rounds", "loop.wait_for_labels", "run.executor", "run.ray_address", "run.report_to", "run.out_dir",
             "run.name")


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: the dotted keys `--set` names."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _fixed(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flatten(config).items() if not k.startswith(RESUMABLE)}


@dataclass(frozen=True)
class RunIdentity:
    """What makes a run one run, fixed when its directory is created: the seed, a hash of every config key that
    shapes its results (all but `RESUMABLE`), and the code version that started it."""
    seed: int
    config_hash: str
    code_version: str

    @classmethod
    def of(cls, config: dict[str, Any], code_version: str) -> "RunIdentity":
        blob = json.dumps(_fixed(config), sort_keys=True, default=str).encode()
        return cls(seed=int((config.get("run") or {}).get("seed", 0)),
                   config_hash=hashlib.sha256(blob).hexdigest()[:16], code_version=code_version)

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "config_hash": self.config_hash, "code_version": self.code_version}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "RunIdentity":
        return cls(seed=int(d["seed"]), config_hash=str(d["config_hash"]), code_version=str(d["code_version"]))


def differing_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The dotted config keys (outside `RESUMABLE`) whose values differ between two configs."""
    fa, fb = _fixed(a), _fixed(b)
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k, "<unset>") != fb.get(k, "<unset>"))
