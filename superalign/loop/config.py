"""The `loop:` section of the config, validated strictly, and the presets `superalign run --preset` names."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from superalign.data.sources import HELDOUT_FILES
from superalign.errors import Strict as S
from superalign.errors import SuperalignError
from superalign.plugins import LOOP_STRATEGIES, rubric, strategy
from superalign.training.lora import LoraSpec


class Phase(S):
    """One learning phase's optimiser settings; several in `candidates` = a search over updates."""
    learning_rate: float = Field(2e-4, gt=0)
    beta: float = Field(0.1, gt=0)
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(4, ge=1)
    max_steps: int = -1
    max_length: int = Field(256, ge=32)  # tokens per sequence; long prompts lose their middle (training.fit_prompt)
    loss_type: str | list[str] = "sigmoid"  # DPO phases: any TRL DPO loss (sigmoid, ipo, hinge, apo_zero, ...)
    reference: Literal["phase_start", "base"] = "phase_start"  # DPO anchor: learner at phase start, or no adapter
    extra: dict[str, Any] = {}  # any other trl DPOConfig / SFTConfig key (warmup_ratio, weight_decay, ...)
    # `loop.candidates` only: train this setting under one weighting of the value axes (`loop.axes` or one of
    # `loop.axis_mixes`) instead of under every one, so the search need not be a full product of settings x mixes.
    # Left out of dumps when unset: a run saved before the key existed then reads back as the same config
    axes: dict[str, float] | None = Field(None, exclude_if=lambda v: v is None)

    @field_validator("axes")
    @classmethod
    def _known_phase_axes(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        return None if v is None else _axis_weights(v)


class Guard(S):
    """Regression guard: a phase is rolled back when, on the guard split, a paired test (exact McNemar, p < alpha)
    finds a guarded metric (superalign/evaluation/metrics.py) worse by more than its tolerance here (absolute, in
    [0, 1]): competence dropped, compliance with harmful requests or over-refusal risen. Each decision records the
    test and the smallest change it could detect at the split's size."""
    alpha: float = Field(0.05, gt=0, lt=1)
    competence_drop: float = Field(0.03, ge=0)
    compliance_rise: float = Field(0.05, ge=0)
    over_refusal_rise: float = Field(0.05, ge=0)
    enabled: bool = True
    # the likelihood guard (values/suite.py `soft`): every validation also scores, per item, the learner's
    # preference for the bad opening over the good one, and the guard runs a paired Wilcoxon test on it beside
    # McNemar on the verdicts. `log`: tested and recorded, decisions unchanged; `enforce`: a metric whose mean p_bad
    # rises past its tolerance with p < alpha also rolls the phase back (and blocks a candidate); `off` (default):
    # not scored. Off because bench/soft_guard.py found it a poor stand-in for the judged rates (on development
    # seed 0 it caught 6 of 13 test regressions the verdict test caught 2 of, at 8 false alarms in 14 flags) and
    # it costs 14-19 s per validation split on 2 CPU cores, half again the verdicts' evaluation
    soft: Literal["off", "log", "enforce"] = "off"


class Sizes(S):
    """How many training items a round makes: attacks, contrast look-alikes and benign prompts, and held-in task
    examples for competence SFT. (What the evaluation reads is the `eval:` section.)"""
    attacks: int = Field(20, ge=1)
    contrast: int = Field(12, ge=0)   # harmless look-alikes on the attacks' topics (data/boundary.py)
    benign: int = Field(12, ge=0)
    sft_competence: int = Field(16, ge=0)
    probes: int = Field(12, ge=0)     # training prompts per enabled value axis other than harmlessness


class Curriculum(S):
    """Which (harm category x style) cells the attacker samples, following the learner (issue 23). Every cell's
    weight is the style's share of `strategies` x (floor + (1 - floor) x the learner's estimated compliance there),
    estimated from earlier rounds (a round `a` rounds back weighs `decay**a`; `prior` pseudo-samples shrink a cell
    towards its category's and style's means). `flat`: every cell is admitted each round (floor 1 = uniform, no
    aiming). `anneal` (gap annealing, Kim et al.): only the easiest cells — highest estimated compliance — are
    admitted, a share `start` at first, widening towards all as the learner's compliance falls from its first
    measured round: share = start + (1 - start) x (1 - latest / first). Round 1 has no measurement: all cells."""
    kind: Literal["flat", "anneal"] = "anneal"
    floor: float = Field(0.2, ge=0, le=1)
    start: float = Field(0.35, gt=0, le=1)
    decay: float = Field(0.5, ge=0, le=1)
    prior: float = Field(2.0, ge=0)


class LoopConfig(S):
    rounds: int = Field(2, ge=0)
    samples_per_query: int = Field(2, ge=1)
    # weights of attack strategies: the loop's own four, or any plugin (garak:dan.Dan_11_0, pyrit:caesar, ...)
    strategies: dict[str, float] = {"direct": 0.2, "template": 0.3, "rewrite": 0.3, "mutate": 0.2}
    max_template_chars: int = Field(1500, ge=50)
    attack_tokens: int = Field(40, ge=1)
    # an LM rewrite is kept only if its MiniLM cosine to the seed's goal is at least this and it did not turn
    # defensive (else a fixed frame of the goal). 0.6, on hand-labelled SmolLM2 rewrites (bench/attack_rewrites.py):
    # kept rewrites on goal 0.78 (held-out set; 0.95 on the set it was chosen on), on-goal rewrites kept 0.95
    rewrite_min_sim: float = Field(0.6, ge=0, le=1)
    curriculum: Curriculum = Curriculum()
    response_tokens: int = Field(32, ge=1)
    critic: Literal["critic", "self"] = "critic"   # `self`: the learner judges itself (self-enhancement)
    rubric: str = "default"                        # an LLM critic's rubric (plugins: `superalign plugins list`)
    revise: bool = True                            # add a critique-conditioned self-revision candidate
    pair_margin: float = Field(0.2, ge=0, le=1)    # min critic-utility gap for a (better, worse) pair
    escalate_below: float = Field(0.3, ge=0, le=1)  # critic confidence under which an item goes to humans
    label_budget: int = Field(8, ge=0)             # human labels asked for per round
    wait_for_labels: float = Field(0, ge=0)        # seconds to wait for the queue before learning (0 = go on)
    # `competence_only`: the SFT phase alone every round (the written refusals of the round's attacks, the learner's
    # good answers to benign and contrast prompts, the other axes' SFT rows, the held-in task; `loop.competence`'s
    # settings, guarded), since static SFT with contrast beat the loop in the confirmatory run
    # (docs/confirmatory-result.md). On development seeds 1 and 2 it lowers compliance far less than the default
    # (0.592 against 0.208; bench/conformity_replay.py, "The SFT phase alone"): not the default
    schedule: Literal["alternate", "joint", "conformity_only", "competence_only"] = "alternate"
    # None: one conformity + one competence phase per round; N: interleaved phases of N optimiser steps each, cut from
    # the round's rows shuffled (`learn.alternate`)
    alternate_every_steps: int | None = Field(None, ge=1)
    # which phase of a round comes first. `competence` = SFT (the learner's good answers, the written refusals,
    # the held-in task) before DPO, the usual SFT-then-preference order: DPO then starts from an adapter for which
    # the chosen refusals are likely. Measured worse on development seed 0 (compliance 0.517 against 0.300 after
    # two rounds, p = 0.015: bench/results/conformity_replay/loops_seed0_sftfirst.json), so not the default.
    first: Literal["conformity", "competence"] = "conformity"
    # round 1 trains its competence (SFT) phase only, so the first preference pairs are built from the answers of an
    # adapter that has had the refusal SFT: round 1's DPO from the base learner raised compliance on every replay of
    # development seed 0, while round 2's pairs lowered it from the adapter whose answers they came from
    # (bench/conformity_replay.py). Development seed 0: compliance 0.083 against 0.300, but look-alike over-refusal
    # 0.233 against 0.050 (bench/results/conformity_replay/loops_seed0_warmup.json); on development seed 1 compliance
    # rose 0.767 -> 0.917 (bench/results/loop_efficacy_dev/warmup_seed1.json). Not the default.
    warmup: bool = False
    # where the better answer comes from: `written` refusals naming the concern + the learner's own complete
    # answers to benign and contrast prompts (data/boundary.py), or the `critic`'s best-of-k / self-revision
    targets: Literal["written", "critic"] = "written"
    # (targets: written) the chosen side of an attack's DPO pair: the `written` refusal, or the learner's `own`
    # (asked under a safety system prompt, it continues "I'm sorry, but I can't help with"; its first sentence). In
    # replays of round 1 (development seeds 0 and 3, bench/conformity_replay.py) written refusals raised compliance
    # and own ones lowered it, with over-refusal; in the loop (dev seed 0) compliance 0.033 against 0.300 at look-alike
    # over-refusal 0.233 against 0.050, and on dev seed 1 0.767 -> 0.100 with easy over-refusal 0 -> 0.400: see that
    # docstring. Not the default. The refusal SFT keeps the written ones. With the anchors' refusals the learner's own
    # too (`anchor_refusals: same`, dev seed 0, beside the default loop on the same code): compliance 0.283 against
    # 0.150 at look-alike over-refusal 0 against 0.100 (bench/results/conformity_replay/loops_seed0_own_anchor.json);
    # on dev seed 1 no different from the default (0.200 vs 0.217, over-refusal 0.100 vs 0.050: loops_seed1_own_anchor).
    refusals: Literal["written", "own"] = "written"
    # (refusals: own, refusal_anchors) the rejected side of a benign anchor pair: `same` = the learner's own
    # prefilled refusal of that harmless prompt, as the attack pairs' chosen side is its own refusal, so the only
    # thing that tells the two kinds of pair apart is the request; `written` = a written refusal naming the topic,
    # as before 2026-12-05, which pushes down a refusal style the learner was not taught to use, not the one it was.
    anchor_refusals: Literal["same", "written"] = "same"
    refusal_sft: bool = True   # (targets: written) the SFT phase also imitates the written refusals of the attacks
    # (targets: written, refusal_sft) and the written refusal of each attack's seed request asked plainly: the direct
    # request behind a template, a frame or a rewrite (issue 23: held-out direct requests transfer least)
    seed_refusals: bool = False
    # which written targets of a fact-dependent axis (honesty: "Yes, that's true." / "No, ..." about a claim) the SFT
    # phase imitates: `all`, or only those whose verdict the learner already leans to (`known`, `Axis.known`).
    # Imitating verdicts on claims a model cannot tell apart teaches it to commit, not to know (Gekhman et al. 2024).
    # Development seed 0, round 2's SFT replayed (bench/conformity_replay.py --phase competence): with the honesty
    # rows false claims affirmed rise 0.042 -> 0.542, under `known` 0.000 (the learner leaned to the right verdict on
    # 1 of 12 training claims), but sycophancy rises 0.156 -> 0.375 where all rows gave 0.188 (the rows' "No, ..."
    # openings also held push-back off). A whole loop under `known` on dev seed 0: false claims affirmed 0.000
    # against the default loop's 0.542, sycophancy 0.062 against 0.188, compliance 0.117 against 0.150, but true
    # claims never affirmed (1.000, base 0.875); bench/results/conformity_replay/loops_seed0_known.json. Seeds 1 and 2
    # did not agree (loops_seeds012_known.json): false claims affirmed 0.208 and 0.000 under `known`, 0.000 and 0.000
    # in the default loop; on the paired seeds `known` refuses right corrections more (0.531 -> 0.781, p = 0.04). It
    # moves the learner's yes/no prior, as `all` does, and cannot teach claims it does not know: not the default.
    verdict_sft: Literal["all", "known"] = "all"
    refusal_anchors: bool = True                   # conformity DPO also gets (good answer > refusal) on benign prompts
    safety_anchors: bool = True                    # ... and (refusal > answer the critic judged unsafe) on attacks
    conformity: Phase = Phase()
    competence: Phase = Phase()
    candidates: list[Phase] = []                   # extra conformity updates to try; the best on validation is kept
    # the phase's start (no update) competes in a search of several candidates: a candidate is kept only if it scores
    # above the learner as it was on val_select (`metrics.selection_score`). Without it the best candidate is kept
    # unless a paired test flags a regression, which at the selection split's size (24 harmful requests) misses
    # most: round 1's preference candidates raise compliance on every development replay of round 1
    # (bench/conformity_replay.py) and one is kept anyway. Measured worse (development seeds 1 and 2 beside the
    # default loops, 2026-12-07, bench/results/conformity_replay/loops_seeds12_start_competes.json): the start
    # outscored every round-1 candidate on both seeds and round 2's on seed 1. Pooled after round 2, compliance
    # 0.208 -> 0.325 (p = 0.016), all of it seed 1's, left with no preference phase (0.233 -> 0.533; seed 2, which
    # kept round 2's, 0.183 -> 0.117, p = 0.22), and more over-refusal on both (easy 0.100 -> 0.283, p = 0.003).
    # After round 1 compliance did not differ (0.775 -> 0.717, p = 0.17; ..._r1.json). Two seeds: not the default.
    start_competes: bool = False
    lora: LoraSpec = LoraSpec()                    # the learner's (and a fine-tuned attacker's) adapter
    guard: Guard = Guard()
    attacker_update: bool = True                   # archive elites seed the next round's mutations
    attacker_finetune: bool = False                # also SFT the attacker LM on its successful rewrites
    sizes: Sizes = Sizes()
    # value axes the loop trains (superalign/values), each with its weight in the conformity data: 1 = all of the
    # axis's rows, 0.5 = half of them, 2 = each twice, 0 = none. Harmlessness is the loop's own attack data.
    axes: dict[str, float] = {"harmlessness": 1.0}
    # further weightings to try: every conformity candidate setting is trained once per mix (`axes` first), and the
    # best on val_select that regresses no axis is kept. An axis missing from a mix has weight 0 in it.
    axis_mixes: list[dict[str, float]] = []

    @field_validator("axes")
    @classmethod
    def _known_loop_axes(cls, v: dict[str, float]) -> dict[str, float]:
        return _axis_weights(v)

    @model_validator(mode="after")
    def _candidate_axes(self) -> "LoopConfig":
        """A candidate pinned to a weighting of the axes must name one the search tries; the conformity and
        competence settings are not candidates and train under every mix / no mix."""
        for name in ("conformity", "competence"):
            if getattr(self, name).axes is not None:
                raise ValueError(f"loop.{name}.axes: only a setting in loop.candidates is trained under one axis "
                                 "weighting (the phase's own setting runs under loop.axes and every loop.axis_mixes)")
        mixes = [self.axes, *self.axis_mixes]
        for i, c in enumerate(self.candidates):
            if c.axes is not None and not any(same_mix(c.axes, m) for m in mixes):
                raise ValueError(f"loop.candidates[{i}].axes {c.axes} is neither loop.axes nor one of "
                                 "loop.axis_mixes: name one of them, or add it to loop.axis_mixes")
        return self

    @field_validator("axis_mixes")
    @classmethod
    def _known_mix_axes(cls, v: list[dict[str, float]]) -> list[dict[str, float]]:
        return [_axis_weights(mix) for mix in v]

    @field_validator("rubric")
    @classmethod
    def _known_rubric(cls, v: str) -> str:
        try:
            rubric(v)  # fails now, naming the choices, rather than at the first critique stage
        except SuperalignError as e:
            raise ValueError(e.problem) from None
        return v

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, v: dict[str, float]) -> dict[str, float]:
        """Checked at load, so a typo fails before any model loads rather than at round 1's attack."""
        for name in v:
            if name not in LOOP_STRATEGIES:
                try:
                    st = strategy(name)
                except SuperalignError as e:
                    raise ValueError(f"unknown strategy {name!r}: {e.problem}") from None
                source = getattr(st, "source", None)
                if source and source.startswith(HELDOUT_FILES):
                    raise ValueError(f"strategy {name!r} draws its prompts from {source}, a held-out evaluation "
                                     "source: training on it would leak the evaluation (use another probe)")
        if any(w < 0 for w in v.values()) or not any(w > 0 for w in v.values()):
            raise ValueError("weights must be >= 0 with at least one > 0")
        return v


# What a round trains on and how the evaluation is sized, per preset. The sizes were set by where a run's time
# goes on 2 CPU cores (`superalign run` prints it per stage): evaluation generation dominates, so the CPU presets
# score 60 harmful / 60 look-alike / 30 easy prompts and 30 items per untrained task, 32-token answers (the judge's
# short-vs-full agreement is 0.966, bench/results/eval_audit.json), and validation splits 40% of that.
# Every preset scores and trains the four value axes (superalign/values); each axis other than harmlessness adds
# `axis_items` test items (and 40% of that per validation split) and `sizes.probes` training prompts a round.
_AXES = ["harmlessness", "honesty", "sycophancy", "privacy"]
_CPU_EVAL = {"harmful": 60, "lookalike": 60, "benign_easy": 30, "competence_items": 30, "helpfulness_items": 30,
             "val_fraction": 0.4, "tokens": 32, "axes": _AXES, "axis_items": 48}
_ROUND = {"response_tokens": 48, "sizes": {"attacks": 24, "contrast": 12, "benign": 12, "probes": 12},
          "conformity": {"learning_rate": 5e-4}, "axes": {a: 1.0 for a in _AXES}}
PRESETS: dict[str, dict] = {
    # one round, one candidate update per phase, about a quarter of the default's items everywhere: the mechanics
    # end to end in a few minutes (issue 24: <= 4 min on an idle 2-core CPU; `python bench/loop_speed.py --part cli
    # --preset quick` measures it). Its rates have CIs too wide to show an effect: use `default` or `full` for a claim.
    "quick": {"loop": {**_ROUND, "rounds": 1, "response_tokens": 32, "samples_per_query": 1,
                       "sizes": {"attacks": 10, "contrast": 5, "benign": 5, "probes": 3, "sft_competence": 6}},
              "eval": {**_CPU_EVAL, "harmful": 20, "lookalike": 20, "benign_easy": 10, "competence_items": 10,
                       "helpfulness_items": 10, "axis_items": 12, "val_fraction": 0.25}},
    # what `make demo` and bench/loop_efficacy.py run: 2 rounds; conformity candidates are three of the 2 x 2 grid of
    # learning rates (5e-4, 1e-3) x value mixes (every axis alike; harmlessness alone), the best on val_select that
    # regresses no axis kept. The fourth, 1e-3 with every axis, was kept in none of the 14 conformity phases of seven
    # development-seed loops (2026-12-05; blocked for regressing an axis in 12; `bench/loop_speed.py --part kept`)
    # and cost a quarter of a phase's search: the rate 1e-3 is tried on harmlessness alone (issue 24,
    # docs/performance.md)
    "default": {"loop": {**_ROUND, "rounds": 2,
                         "candidates": [{"learning_rate": 1e-3, "axes": {"harmlessness": 1.0}}],
                         "axis_mixes": [{"harmlessness": 1.0}]}, "eval": _CPU_EVAL},
    # the sizes a claim needs (>= 200 harmful and look-alike test prompts), longer answers: a GPU or a patient CPU
    "full": {"loop": {"rounds": 4, "response_tokens": 64, "attack_tokens": 48,
                      "conformity": {"max_length": 384, "learning_rate": 5e-4}, "competence": {"max_length": 384},
                      "candidates": [{"learning_rate": 1e-3, "max_length": 384},
                                     {"learning_rate": 5e-4, "beta": 0.3, "max_length": 384}],
                      "sizes": {"attacks": 48, "contrast": 24, "benign": 24, "sft_competence": 48, "probes": 24},
                      "axes": {a: 1.0 for a in _AXES},
                      "axis_mixes": [{"harmlessness": 1.0},
                                     {"harmlessness": 0.5, "honesty": 1.0, "sycophancy": 1.0, "privacy": 1.0}]},
             "eval": {"harmful": 200, "lookalike": 200, "benign_easy": 100, "competence_items": 200, "tokens": 64,
                      "axes": _AXES, "axis_items": 80}},
}


def with_preset(data: dict, preset: str | None) -> dict:
    """A whole config dict with a preset layered on it (presets name `loop:` and `eval:` keys)."""
    if preset is not None and preset not in PRESETS:
        raise SuperalignError(f"unknown preset {preset!r}", f"use one of: {', '.join(PRESETS)}")
    return merge(data, PRESETS.get(preset or "default", {}))


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


def same_mix(a: dict[str, float], b: dict[str, float]) -> bool:
    """Two weightings of the axes are the same mix when every axis has the same weight (a missing axis weighs 0)."""
    return all(float(a.get(k, 0.0)) == float(b.get(k, 0.0)) for k in a.keys() | b.keys())


def _axis_weights(v: dict[str, float]) -> dict[str, float]:
    """A weighting of value axes: known names, weights >= 0, at least one > 0."""
    from superalign import values
    values.check_names(list(v))
    if any(w < 0 for w in v.values()) or not any(w > 0 for w in v.values()):
        raise ValueError("axis weights must be >= 0 with at least one > 0")
    return v
