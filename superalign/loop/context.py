"""What every stage of a round works with: the config, the run store, the executor, and the roles' state.

The context holds the only in-memory state of a run — the learner's LoRA adapter, the critic's calibration,
the fixed evaluation sets — and how to reach each role. `run.sync` makes that state match the store before
a stage runs, which is what makes a killed run resume exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from superalign.models import config as C
from superalign.errors import SuperalignError
from superalign.evaluation import suite
from superalign.values import suite as axes_suite
from superalign.evaluation.judge_data import fit_judge
from superalign.executors import Executor
from superalign.store import RunStore
from superalign.training import attach, snapshot


class UI(Protocol):
    """What a run reports progress to (`loop.ui.RichUI` on the console, `NullUI` in tests and benches)."""
    def start(self, r: int, name: str) -> None: ...
    def done(self, r: int, name: str, secs: float) -> None: ...
    def skip(self, r: int, name: str) -> None: ...
    def note(self, text: str) -> None: ...
    def bar(self, desc: str, total: int) -> Callable[[int], None]: ...
    def steps(self, desc: str) -> Callable[[int, int], None]: ...


class NullUI:
    def start(self, r: int, name: str) -> None: pass
    def done(self, r: int, name: str, secs: float) -> None: pass
    def skip(self, r: int, name: str) -> None: pass
    def note(self, text: str) -> None: pass
    def bar(self, desc: str, total: int) -> Callable[[int], None]: return lambda n: None
    def steps(self, desc: str) -> Callable[[int, int], None]: return lambda done, total: None


@dataclass
class Context:
    cfg: Any                     # superalign.config.Config (the root config sits above this package: not importable)
    store: RunStore
    dir: Path
    ex: Executor
    ui: UI = field(default_factory=NullUI)
    adapter_round: int = 0        # the round whose accepted adapter the learner holds
    calibrated_round: int = 0     # the round whose calibration the critic holds (0: as built)
    _critic: Any = None
    _judge: Any = None
    _sets: dict | None = None
    _init_snap: dict | None = None
    lock: Any = None              # the run directory's lock (`run.lock`), held from `open_run` until the run ends

    def close(self) -> None:
        """Release what the context holds: its executor's workers and the run directory's lock."""
        self.ex.close()
        if self.lock is not None:
            self.lock.release()

    @property
    def lc(self):
        return self.cfg.loop

    @property
    def seed(self) -> int:
        return self.cfg.run.seed

    # ------------------------------------------------------------------ roles
    @property
    def learner(self):
        """The learner's backend with its LoRA adapter attached (identity until trained)."""
        b = self.ex.backend("learner")
        if not hasattr(b, "model"):
            raise SuperalignError("the learner must be a trainable local model",
                                  "bind `roles.learner` to `backend: local` (endpoints cannot be fine-tuned here)")
        if not getattr(b, "_lora", False):
            b.model = attach(b.model, self.lc.lora, seed=self.seed)
            b.model.eval()
            b._lora = True
        return b

    def initial_adapter(self) -> dict:
        """The untrained adapter's weights, taken once before any checkpoint is loaded."""
        if self._init_snap is None:
            self._init_snap = snapshot(self.learner.model)
        return self._init_snap

    @property
    def critic_role(self) -> str:
        return "learner" if self.lc.critic == "self" else "critic"

    def critic(self):
        if self._critic is None:
            self._critic = self.ex.backend(self.critic_role)
        return self._critic

    def judge(self):
        """The evaluation judge: independent of the critic (never trained on its rows, never calibrated with the
        run's labels), so every round — and every resume — is measured with the same ruler."""
        if self._judge is None:
            jc = self.cfg.roles.get("judge") or C.EvalJudge()
            if not isinstance(jc, C.EvalJudge):
                raise SuperalignError("roles.judge must be the evaluation judge (`backend: eval_judge`) in the loop",
                                      "bind `roles.judge: {backend: eval_judge}` or remove it to use the default")
            self._judge = fit_judge(jc)
        return self._judge

    # ------------------------------------------------------------------ data and batch work
    def sets(self, split: str) -> dict:
        """The held-out sets of this seed: `val_select` ranks candidate updates, `val_guard` decides rollbacks,
        `test` is read only by the eval stage. None shares a source or a near-duplicate with training. Every
        enabled value axis's items are under `axes` (values/suite.py)."""
        if self._sets is None:
            self._sets = {}
        if split not in self._sets:
            jc = self.cfg.roles.get("judge") or C.EvalJudge()
            self._sets[split] = axes_suite.build_sets(self.cfg, self.seed, split, suite.excluded_prompts(jc),
                                                      trained=self.cfg.data.competence)
        return self._sets[split]

    def benign_pool(self) -> list[dict]:
        """The benign prompts the loop trains on (`data.benign`). The built-in `benign_easy` is also an evaluation
        set, dealt per seed by `eval_sets`: its training part is that deal's `benign_easy_train`, never the registry's
        own train split, which shared about half its prompts with the seed's benign test and validation items."""
        from superalign import data
        from superalign.data.evalsets import eval_sets
        from superalign.data.registry import ALIASES
        out = []
        for name in self.cfg.data.benign:
            if ALIASES.get(name, name) == "benign_easy":
                jc = self.cfg.roles.get("judge") or C.EvalJudge()
                out += eval_sets(self.seed, suite.excluded_prompts(jc))["benign_easy_train"]
            else:
                out += data.load(name, "train", seed=self.cfg.data.split_seed)
        return out

    def map(self, fn, role: str, records: list[dict], chunk: int, desc: str | None = None, **kw) -> list[dict]:
        """The executor's map, with a progress bar when `desc` is given."""
        bar = self.ui.bar(desc, len(records)) if desc and records else None
        return self.ex.map(fn, role, records, chunk=chunk, on_chunk=bar, **kw)
