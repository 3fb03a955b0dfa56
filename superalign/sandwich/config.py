"""The `sandwich:` config section. Kept light (pydantic and superalign.errors only) so the root config can import it."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from superalign.errors import Strict, validate

Fact = Literal["capital", "currency", "calling_code", "tld", "subregion", "demonym"]
FACTS: tuple[Fact, ...] = ("capital", "currency", "calling_code", "tld", "subregion", "demonym")


class SandwichConfig(Strict):
    """A weak judge without the source, a strong extractive reader with it (see superalign/sandwich/debate.py)."""
    judge_role: str = "weak_judge"  # bound in `roles:`; unbound, the weak judge is the local SmolLM2-135M
    # how the judge weighs a side's verified quotes: log p(answer | evidence) ("posterior", keeps its own
    # knowledge) or its gain over log p(answer) ("gain"); see superalign/sandwich/judge.py
    judge_rule: Literal["posterior", "gain"] = "posterior"
    strong_embedder: str = "minilm-l6"   # the strong side's retriever (an alias or sentence-transformers name)
    data: str = "countries"
    questions: int = Field(60, ge=2)
    facts: list[Fact] = list(FACTS)
    rounds: int = Field(2, ge=1, le=6)
    seeds: list[int] = Field([0, 1, 2], min_length=1)
    # the consultant argues for a random option (wrong half the time, Khan et al. 2024) or the expert's answer
    consultant_side: Literal["random", "own"] = "random"
    fabricate: float = Field(0.5, ge=0, le=1)    # P(a speaker without support invents a quote) vs quoting off-topic
    paraphrase: float = Field(0.2, ge=0, le=1)   # P(a true quote is reworded, so it no longer verifies)
    human_items: int = Field(0, ge=0)   # debate transcripts queued for a human judge (review page)


def parse(section) -> SandwichConfig:
    """Validate a `sandwich:` mapping; errors name the dotted key (`sandwich.questions: ...`)."""
    if isinstance(section, SandwichConfig):
        return section
    return validate(SandwichConfig, section, "config", prefix="sandwich",
                    fix="fix the key(s) named above; see superalign/sandwich/config.py for the schema")


def from_config(config) -> SandwichConfig:
    """The root config's `sandwich` section (defaults when the root config has none)."""
    return parse(getattr(config, "sandwich", None))
