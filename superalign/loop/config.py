"""The `loop:` section of the config, validated strictly, and the presets `superalign run --preset` names."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from superalign.errors import SuperalignError


class S(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Phase(S):
    """One learning phase's optimiser settings; several in `candidates` = a search over updates."""
    learning_rate: float = Field(2e-4, gt=0)
    beta: float = Field(0.1, gt=0)
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(4, ge=1)
    max_steps: int = -1
    max_length: int = Field(256, ge=32)  # tokens per sequence; long prompts lose their middle (training.fit_prompt)
    loss_type: str | list[str] = "sigmoid"  # DPO phases: any TRL DPO loss (sigmoid, ipo, hinge, apo_zero, ...)
    extra: dict[str, Any] = {}  # any other trl DPOConfig / SFTConfig key (warmup_ratio, weight_decay, ...)


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
    # weights of attack strategies: the loop's own four, or any plugin (garak:dan.Dan_11_0, pyrit:caesar, ...)
    strategies: dict[str, float] = {"direct": 0.2, "template": 0.3, "rewrite": 0.3, "mutate": 0.2}
    max_template_chars: int = Field(1500, ge=50)
    attack_tokens: int = Field(40, ge=1)
    response_tokens: int = Field(32, ge=1)
    eval_tokens: int = Field(16, ge=1)
    critic: Literal["critic", "self"] = "critic"   # `self`: the learner judges itself (self-enhancement)
    rubric: str = "default"                        # an LLM critic's rubric (plugins: `superalign plugins list`)
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
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    guard: Guard = Guard()
    attacker_update: bool = True                   # archive elites seed the next round's mutations
    attacker_finetune: bool = False                # also SFT the attacker LM on its successful rewrites
    sizes: Sizes = Sizes()

    @field_validator("rubric")
    @classmethod
    def _known_rubric(cls, v: str) -> str:
        from superalign.plugins import rubric
        rubric(v)  # fails now, naming the choices, rather than at the first critique stage
        return v

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, v: dict[str, float]) -> dict[str, float]:
        from superalign.plugins import LOOP_STRATEGIES, strategy
        for name, w in v.items():
            if w > 0 and name not in LOOP_STRATEGIES:
                strategy(name)
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


def parse(section: dict | None, preset: str | None = None, rounds: int | None = None) -> LoopConfig:
    if preset is not None and preset not in PRESETS:
        raise SuperalignError(f"unknown preset {preset!r}", f"use one of: {', '.join(PRESETS)}")
    data = _merge(PRESETS.get(preset or "default", {}), section or {})
    if rounds is not None:
        data["rounds"] = rounds
    try:
        return LoopConfig.model_validate(data)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            path = "loop." + ".".join(str(p) for p in err["loc"])
            msgs.append(f"{path}: {'unknown key' if err['type'] == 'extra_forbidden' else err['msg']}")
        raise SuperalignError("invalid config: " + "; ".join(msgs),
                              "fix the key(s) named above; see superalign/loop/config.py for the fields") from None


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
