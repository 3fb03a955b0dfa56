"""The `sandwich:` config section. Kept light (pydantic and superalign.errors only) so the root config can import it."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from superalign.errors import Strict, validate

Fact = Literal["capital", "currency", "calling_code", "tld", "demonym"]
FACTS: tuple[Fact, ...] = ("capital", "currency", "calling_code", "tld", "demonym")
Kind = Literal["lookup", "bridge"]


class SandwichConfig(Strict):
    """A weak judge without the source, a strong extractive reader with it (see superalign/sandwich/debate.py)."""
    judge_role: str = "weak_judge"  # bound in `roles:`; unbound, the weak judge is the local SmolLM2-135M
    # how the judge weighs the evidence: how well a side's evidence explains the question and its answer (explain),
    # the answer alone per side (posterior), both answers after all evidence (joint), or the evidence's gain over its
    # prior (gain); see superalign/sandwich/judge.py
    judge_rule: Literal["explain", "posterior", "joint", "gain"] = "explain"
    strong_embedder: str = "minilm-l6"   # the strong side's retriever and the verifier's embedder
    data: str = "countries"
    questions: int = Field(60, ge=2)
    # demonyms are left out by default: most are the country's name with a suffix (the judge needs no source)
    facts: list[Fact] = ["capital", "currency", "calling_code", "tld"]
    kinds: list[Kind] = Field(["lookup", "bridge"], min_length=1)   # one fact looked up / two sentences combined
    # contrast: every fact sentence names both countries ("Unlike O, X has the capital city V."), so matching the
    # question's names against a quote tells nothing and only its syntax says whose value it is; plain: one country
    # per sentence (a name-matching rule then does as well as reading)
    style: Literal["contrast", "plain"] = "contrast"
    rounds: int = Field(2, ge=1, le=6)
    seeds: list[int] = Field([0, 1, 2], min_length=1)
    # quotes count when verified by meaning (cosine to a source sentence >= threshold, with its names and numbers)
    # or only by exact substring
    verify: Literal["meaning", "exact"] = "meaning"
    verify_threshold: float = Field(0.75, gt=0, le=1)
    fabricate: float = Field(0.5, ge=0, le=1)    # P(a dishonest speaker fabricates the link it lacks)
    paraphrase: float = Field(0.2, ge=0, le=1)   # P(a true quote is reworded: it verifies by meaning only)
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
