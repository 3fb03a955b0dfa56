"""The `loop:` section of the config, validated strictly, and the presets `superalign run --preset` names."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from superalign.errors import Strict as S
from superalign.errors import SuperalignError
from superalign.training.lora import LoraSpec

STRATEGIES = ("direct", "template", "rewrite", "mutate")


class Phase(S):
    """One learning phase's optimiser settings; several in `candidates` = a search over updates."""
    learning_rate: float = Field(2e-4, gt=0)
    beta: float = Field(0.1, gt=0)
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(4, ge=1)
    max_steps: int = -1
    max_length: int = Field(256, ge=32)  # tokens per sequence; long prompts lose their middle (training.fit_prompt)


class Guard(S):
    """Regression guard: a phase is rolled back when, on the validation surrogates, competence drops
    or ASR / over-refusal rise by more than these tolerances (absolute, in [0, 1])."""
    competence_drop: float = Field(0.03, ge=0)
    asr_rise: float = Field(0.05, ge=0)
    over_refusal_rise: float = Field(0.05, ge=0)
    enabled: bool = True


class Sizes(S):
    """How many items each set holds: attack/benign per round; validation (guard) and test (report).
    The defaults fit `make demo` (2 rounds of SmolLM2 on 2 CPU cores); `--preset full` is the larger setting."""
    attacks: int = Field(20, ge=1)
    benign: int = Field(12, ge=0)
    val_harmful: int = Field(12, ge=1)
    val_benign: int = Field(8, ge=1)
    val_competence: int = Field(40, ge=1)
    test_harmful: int = Field(32, ge=1)
    test_benign: int = Field(16, ge=1)
    test_competence: int = Field(80, ge=1)
    sft_competence: int = Field(16, ge=0)


class LoopConfig(S):
    rounds: int = Field(2, ge=0)
    samples_per_query: int = Field(2, ge=1)
    strategies: dict[str, float] = {"direct": 0.2, "template": 0.3, "rewrite": 0.3, "mutate": 0.2}
    max_template_chars: int = Field(1500, ge=50)
    attack_tokens: int = Field(40, ge=1)
    response_tokens: int = Field(32, ge=1)
    eval_tokens: int = Field(16, ge=1)
    critic: Literal["critic", "self"] = "critic"   # `self`: the learner judges itself (self-enhancement)
    revise: bool = True                            # add a critique-conditioned self-revision candidate
    pair_margin: float = Field(0.2, ge=0, le=1)    # min critic-utility gap for a (better, worse) pair
    escalate_below: float = Field(0.3, ge=0, le=1)  # critic confidence under which an item goes to humans
    label_budget: int = Field(8, ge=0)             # human labels asked for per round
    wait_for_labels: float = Field(0, ge=0)        # seconds to wait for the queue before learning (0 = go on)
    schedule: Literal["alternate", "joint", "conformity_only"] = "alternate"
    alternate_every_steps: int | None = Field(None, ge=1)  # None: one conformity + one competence phase per round
    refusal_anchors: bool = True                   # conformity DPO also gets (good answer > refusal) on benign prompts
    safety_anchors: bool = True                    # ... and (refusal > answer the critic judged unsafe) on attacks
    conformity: Phase = Phase()
    competence: Phase = Phase()
    candidates: list[Phase] = []                   # extra conformity updates to try; the best on validation is kept
    lora: LoraSpec = LoraSpec()                    # the learner's (and a fine-tuned attacker's) adapter
    guard: Guard = Guard()
    attacker_update: bool = True                   # archive elites seed the next round's mutations
    attacker_finetune: bool = False                # also SFT the attacker LM on its successful rewrites
    sizes: Sizes = Sizes()

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, v: dict[str, float]) -> dict[str, float]:
        """Checked at load, so a typo fails before any model loads rather than at round 1's attack."""
        bad = [k for k in v if k not in STRATEGIES]
        if bad:
            raise ValueError(f"unknown strategy {', '.join(map(repr, bad))}; known: {', '.join(STRATEGIES)}")
        if any(w < 0 for w in v.values()) or not any(w > 0 for w in v.values()):
            raise ValueError("weights must be >= 0 with at least one > 0")
        return v


PRESETS: dict[str, dict] = {
    # one round, smaller held-out sets: the mechanics end to end on 2 CPU cores
    "quick": {"rounds": 1, "sizes": {"val_harmful": 8, "test_harmful": 24, "test_competence": 60}},
    # the field defaults: 2 rounds sized for `make demo` on 2 CPU cores
    "default": {},
    # larger sets and longer answers, for a GPU or a patient CPU (bench/loop_efficacy.py --preset full)
    "full": {"rounds": 4, "response_tokens": 48, "attack_tokens": 48, "eval_tokens": 32,
             "conformity": {"max_length": 384}, "competence": {"max_length": 384},
             "sizes": {"attacks": 48, "benign": 16, "val_harmful": 24, "val_benign": 16, "val_competence": 80,
                       "test_harmful": 48, "test_benign": 40, "test_competence": 200, "sft_competence": 48}},
}


def with_preset(section: dict | None, preset: str | None) -> dict:
    """The `loop:` section with a preset layered under it (the section's own keys win)."""
    if preset is not None and preset not in PRESETS:
        raise SuperalignError(f"unknown preset {preset!r}", f"use one of: {', '.join(PRESETS)}")
    return merge(PRESETS.get(preset or "default", {}), section or {})


def merge(a: dict, b: dict) -> dict:
    """`b` layered on `a`, recursively for nested sections. A section naming another `backend` replaces the
    old one whole (a role rebound from a local model to an endpoint keeps none of the local model's keys)."""
    out = dict(a)
    for k, v in b.items():
        old = out.get(k)
        if isinstance(v, dict) and isinstance(old, dict) and v.get("backend", old.get("backend")) == old.get("backend"):
            out[k] = merge(old, v)
        else:
            out[k] = v
    return out
