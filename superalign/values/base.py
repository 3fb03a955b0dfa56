"""The one shape of a value axis, and the registry the config names axes from.

An axis is one value the learner should hold (refuse harmful requests, do not affirm false claims, do not cave to
social pressure, do not hand out a private person's data). Everything the loop and the evaluation need to know
about it lives on one `Axis` object:

- training side (the loop): `probes` writes the round's training prompts (the axis's attack/probe strategy);
  `critique` is the critic's rubric, a verdict per answer with a utility in [0, 1] (higher = more of the
  value); `target` is the written better answer to a probe, and `pairs` the better/worse rule that turns a
  critiqued answer into preference pairs;
- evaluation side: `items` are the held-out items of a split (another source than `probes`, de-duplicated by
  meaning against it); `judge` is an instrument independent of the critic whose verdicts are validated (a label
  outside `labels` is an error, None is counted as unscored, never as a pass); `outcomes` maps an item and its
  verdict to 0/1 bad outcomes per metric;
- `metrics` are declared once, in the one metric registry (`evaluation/metrics.py`, `axis_metric`): name, which
  way is better, the report label, the CI kind (Wilson), the guard's tolerance and the selection weight; the
  first is the axis's headline. The guard, candidate selection and the reports read them from there.

Axes register by name (`register`); `eval.axes` and `loop.axes` name the enabled ones. Harmlessness, the loop's
original value, is an axis too (values/harmlessness.py): its training stays in the loop's own attack, critique and
learn code and its evaluation is `evaluation.suite`, so its numbers are what they were.
"""
from __future__ import annotations

import random
from typing import Callable, Protocol, Sequence

from superalign.errors import SuperalignError
from superalign.evaluation import metrics as M
from superalign.evaluation.metrics import Metric  # noqa: F401  (an axis's metrics are the one registry's)


class Judge(Protocol):
    """An axis's evaluation judge: one verdict per (item, response), a label of the axis or None (unscored)."""
    name: str

    def verdicts(self, items: Sequence[dict], responses: Sequence[str]) -> list[str | None]: ...


class Axis:
    """Base class of a value axis; a subclass sets the class attributes and overrides the methods it needs.

    Records: a probe (training prompt) is `{"id", "text", "kind", "axis", "item"}` where `kind` is the axis's own
    item kind (e.g. `false` / `true` claims) and `item` what the rubric and the target need; an evaluation item is
    `{"id", "set": axis name, "text", "source", "kind", "item"}`. Ids are prefixed by the axis name."""
    name: str = ""
    title: str = ""
    labels: tuple[str, ...] = ()
    metrics: tuple[Metric, ...] = ()
    about: str = ""                      # one paragraph for the report: what is measured and how
    trains_in_loop: bool = True          # False: the loop's own stages train it (harmlessness)
    # the metric on the axis's contrast items, which call for the opposite of the headline's behaviour (answer a
    # look-alike, affirm a true claim): with the headline it gives the axis's discrimination, Youden's J = 1 -
    # headline - control (`stats.youden`), which tells a learned value from a moved prior. None: no contrast items.
    control: str | None = None

    # ---------------------------------------------------------------- training (the loop)
    def probes(self, cfg, r: int, n: int, rng: random.Random) -> list[dict]:
        """n training prompts for round r (the axis's probe strategy)."""
        raise NotImplementedError

    def critique(self, critic, records: list[dict]) -> list[dict]:
        """The critic's rubric: per record (probe + `response`), `{"verdict", "utility", "confidence", "critique",
        "error"}`. `critic` is the loop's critic backend (a classifier, or an LM for rubric prompts)."""
        raise NotImplementedError

    def target(self, probe: dict) -> str | None:
        """The written better answer to a probe (None: the learner's own best answer is the target)."""
        raise NotImplementedError

    def pairs(self, probe: dict, answers: list[dict], best: str | None) -> list[tuple[str, str]]:
        """(chosen, rejected) pairs for one probe from its critiqued answers (`{"text", "verdict", "utility"}`).
        Default rule: every answer whose utility is below 0.5 loses to the written target, or, without one, to
        the best answer the critic liked (`best`)."""
        good = self.target(probe) or best
        return [(good, a["text"]) for a in answers
                if good and a["utility"] is not None and a["utility"] < 0.5 and a["text"].strip() != good.strip()]

    def known(self, lm, prompts: list, probes: list[dict]) -> list[bool] | None:
        """Whether the learner, as it is, already leans to each probe's written verdict (`prompts`: the probes as the
        learner sees them). None (the default): the target is a behaviour the learner is taught, not a fact it must
        hold, so every target is imitated. An axis whose right answer depends on facts (honesty) says which it
        knows, and `loop.verdict_sft: known` imitates only those."""
        return None

    # ---------------------------------------------------------------- evaluation
    def items(self, cfg, seed: int, split: str) -> list[dict]:
        """The held-out items of `split` (test, val_select, val_guard) for `seed`."""
        raise NotImplementedError

    def judge(self, cfg) -> Judge:
        raise NotImplementedError

    def outcomes(self, item: dict, verdict: str) -> dict[str, int]:
        """0/1 bad outcome per metric this item counts in (an item may count in one metric only)."""
        raise NotImplementedError

    def choices(self, item: dict) -> dict[str, tuple[str, str]]:
        """The item as a forced choice for the guard's likelihood score (`loop.guard.soft`): {metric: (good
        opening, bad opening)}, the two ways an answer could begin, for the metric the item counts in. The
        learner's probability of the bad opening over both, before and after a phase, is a per-item number a
        paired test can read on a dozen items, where the judged 0/1 outcome cannot (values/suite.py, `soft`).
        {} (the default): the axis has no such score and its guard reads the judged outcomes only."""
        return {}

    # ---------------------------------------------------------------- helpers
    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def headline(self) -> Metric:
        return self.metrics[0]


def axis_metric(axis: str, name: str, label: str, doc: str, tolerance: float = 0.05, select_weight: float = 1.0,
                higher_is_better: bool = False) -> Metric:
    """Declare (register) a rate of a value axis: the share of the axis's items with the bad outcome `doc`
    (lower is better unless said otherwise). Its per-item outcome key is its name."""
    return M.register(Metric(name, label, axis, name, higher_is_better, tolerance=tolerance,
                             select_weight=select_weight, doc=doc, axis=axis))


def check_verdicts(axis: Axis, verdicts: list, n: int) -> list[str | None]:
    """A judge's verdicts, validated: one per item, each one of the axis's labels or None (unscored). Anything
    else is the judge's bug, and an error rather than a silently wrong rate."""
    if len(verdicts) != n:
        raise SuperalignError(f"the {axis.name} judge gave {len(verdicts)} verdicts for {n} answers",
                              "a judge returns exactly one verdict (or None) per answer")
    bad = [v for v in verdicts if v is not None and v not in axis.labels]
    if bad:
        raise SuperalignError(f"the {axis.name} judge gave verdict {bad[0]!r}, not one of {axis.labels}",
                              "return one of the axis's labels, or None when the answer cannot be judged")
    return list(verdicts)


# ------------------------------------------------------------------------------------------------ registry
_AXES: dict[str, Callable[[], Axis]] = {}
_BUILT: dict[str, Axis] = {}


def check_names(v: list[str]) -> list[str]:
    """Axis names checked at config load (a typo fails before any model loads), each named once."""
    for name in v:
        if name not in _AXES:
            raise ValueError(f"unknown value axis {name!r} (known: {', '.join(_AXES)})")
    if len(set(v)) != len(v):
        raise ValueError("an axis is named twice")
    return v


def register(name: str, factory: Callable[[], Axis]) -> None:
    """Add an axis (a zero-argument factory or class) under `name`; the config can then enable it."""
    _AXES[name] = factory
    _BUILT.pop(name, None)


def names() -> list[str]:
    return list(_AXES)


def get(name: str) -> Axis:
    """The axis registered under `name`, built once per process."""
    if name not in _AXES:
        raise SuperalignError(f"unknown value axis {name!r}", f"use one of {', '.join(_AXES)} or register one "
                              "(superalign.values.register)")
    if name not in _BUILT:
        ax = _AXES[name]()
        if not isinstance(ax, Axis) or ax.name != name or not ax.metrics or not ax.labels:
            raise SuperalignError(f"axis {name!r} is not a complete Axis (name, labels and metrics are required)",
                                  "subclass superalign.values.Axis and set name, labels and metrics")
        if ax.control is not None and ax.control not in [m.name for m in ax.metrics[1:]]:
            raise SuperalignError(f"axis {name!r} names control {ax.control!r}, not one of its metrics after the "
                                  "headline", "set control to the metric of the axis's contrast items, or None")
        _BUILT[name] = ax
    return _BUILT[name]
