"""One error type whose message always names the problem and the fix, and the one strict base for typed config.

The strict base lives here, at the bottom of the import graph, so that every experiment's config section can use it
and the root config can compose those sections without an import cycle.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class SuperalignError(Exception):
    """A user-facing error: `problem` says what went wrong, `fix` what to do about it."""

    def __init__(self, problem: str, fix: str = ""):
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}" + (f"\n  fix: {fix}" if fix else ""))


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors, so a misspelt key fails at load, not at run."""
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


_UNION_TAGS = ("local", "openai", "classifier", "eval_judge")


def describe(e: ValidationError, prefix: str = "") -> str:
    """One `dotted.path: message` per problem, joined by '; ' (union tags dropped from the path)."""
    lines = []
    for err in e.errors():
        parts = [str(p) for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)]
        path = ".".join(([prefix] if prefix else []) + parts) or prefix or "config"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{path}: {msg}")
    return "; ".join(lines)


def validate(model: type[BaseModel], data, where: str, prefix: str = "",
             fix: str = "fix the key(s) named above; `superalign config show` prints every key with its default"):
    """`model.model_validate(data)`, with a validation failure turned into one SuperalignError naming each key."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as e:
        raise SuperalignError(f"invalid {where}: {describe(e, prefix)}", fix) from None
