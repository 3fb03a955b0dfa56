"""Static baselines: what a one-off safety fine-tune of the same learner does with the loop's training budget.

A reviewer asks whether the loop beats a *tuned* static fine-tune, not one static point, so the baselines are a
grid (a frontier): static SFT over learning rate x epochs x refusal share, with and without contrast look-alikes
and the competence-task rows the loop also trains on; static DPO over beta x learning rate, whose benign pairs
never teach "never refuse" (on a look-alike prompt the learner's own real answer beats a written refusal of it;
plain benign prompts get no pair), with harmful pairs as the loop's (a written refusal beats the learner's own
compliant answer). Every arm trains for exactly the loop's optimizer steps, at the loop's batch size, on the loop's
number of distinct rows divided by its epochs (`Budget`, read from the loop's run: its kept phases' rows and
steps), and is chosen on validation items only (superalign/loop/efficacy.py).

No attacker updates, no critic, no rounds, no guard: a static fine-tune has none of them. Harmful prompts are the
attacker's AdvBench seeds, direct or in a PyRIT template or in one of the attacker's fixed frames, in the loop's
strategy proportions; benign answers are the untrained learner's own (sampled as the loop's respond stage does).
"""
from __future__ import annotations

import random
import time
from typing import Literal

from pydantic import Field

from superalign import data
from superalign.data import boundary
from superalign.errors import Strict
from superalign.executors.base import GEN_CHUNK
from superalign.loop.attack import seeds_and_templates
from superalign.loop.context import Context
from superalign.loop.learn import ANCHOR_REFUSAL, train
from superalign.models.classifier import refusal_phrase
from superalign.roles import attacker as A
from superalign.roles.learner import respond_stage
from superalign.training import restore

TASK_SHARE = 0.25  # share of rows from the competence tasks when `tasks` is on (the loop's rounds: ~22%)


class Budget(Strict):
    """What the loop trained on (kept phases only, every round up to the one compared): distinct training rows
    and optimizer steps. A static arm gets the same."""
    rows: int = Field(ge=1)
    steps: int = Field(ge=1)
    batch_size: int = Field(4, ge=1)


class StaticArm(Strict):
    """One static fine-tune: a point of the frontier."""
    method: Literal["sft", "dpo"] = "sft"
    learning_rate: float = Field(2e-4, gt=0)
    epochs: int = Field(1, ge=1)                    # passes over its rows (rows = budget rows / epochs)
    refusal_share: float = Field(0.5, ge=0, le=1)  # of the safety rows, the share that are harmful prompts
    contrast: bool = False                         # benign rows include contrast look-alikes (DPO: always)
    tasks: bool = False                            # plus the competence-task rows the loop's SFT trains on
    beta: float = Field(0.1, gt=0)                 # DPO

    @property
    def name(self) -> str:
        if self.method == "dpo":
            return f"dpo-lr{self.learning_rate:g}-b{self.beta:g}"
        return (f"sft-lr{self.learning_rate:g}-e{self.epochs}-h{self.refusal_share:g}"
                + ("-contrast" if self.contrast else "") + ("-tasks" if self.tasks else ""))


def grid(kind: Literal["full", "small"] = "full") -> list[StaticArm]:
    """The static frontier's configurations. `full`: SFT lr {1e-4, 3e-4} x epochs {1, 2} x refusal share
    {0.3, 0.5} x {plain, + contrast, + contrast + tasks} (24) and DPO lr {2e-4, 5e-4, 1e-3} x beta {0.1, 0.3}
    (6). `small`: 4 SFT and 2 DPO points for development and tests."""
    if kind == "small":
        sft = [StaticArm(learning_rate=lr, refusal_share=h, contrast=c)
               for lr, h, c in ((1e-4, 0.5, False), (3e-4, 0.3, True), (3e-4, 0.5, True), (1e-4, 0.3, False))]
        return sft + [StaticArm(method="dpo", learning_rate=lr) for lr in (5e-4, 1e-3)]
    sft = [StaticArm(learning_rate=lr, epochs=e, refusal_share=h, contrast=c, tasks=t)
           for lr in (1e-4, 3e-4) for e in (1, 2) for h in (0.3, 0.5)
           for c, t in ((False, False), (True, False), (True, True))]
    return sft + [StaticArm(method="dpo", learning_rate=lr, beta=b) for lr in (2e-4, 5e-4, 1e-3) for b in (0.1, 0.3)]


def loop_budget(checkpoints: list[dict], upto_round: int, batch_size: int = 4) -> Budget:
    """The loop's budget through `upto_round`, from its `checkpoints` rows: kept phases' rows and steps."""
    kept = [c for c in checkpoints if c["accepted"] and c["round"] <= upto_round and c.get("role", "learner") == "learner"]
    rows = sum(int((c["meta"] or {}).get("n") or 0) for c in kept)
    steps = sum(int(((c["meta"] or {}).get("train") or {}).get("steps") or 0) for c in kept)
    return Budget(rows=max(rows, 1), steps=max(steps, 1), batch_size=batch_size)


def _harmful(ctx: Context, n: int, rng: random.Random) -> list[dict]:
    """n harmful training prompts drawn with the attacker's plan (fixed frames in place of LM rewrites)."""
    seeds, templates = seeds_and_templates(ctx)
    w = ctx.lc.strategies
    mix = {"direct": w.get("direct", 0), "template": w.get("template", 0),
           "rewrite": sum(v for k, v in w.items() if k not in ("direct", "template"))}
    out = []
    for p in A.plan(seeds, templates, A.Archive(), n, mix, rng):
        if p["strategy"] == "rewrite":
            p["text"] = A.frame(p["style"], p["text"])
        out.append(p)
    for p, t in zip(out, boundary.TopicMatcher()([p["seed_text"] for p in out])):
        p["topic"] = t
    return out


def answers(ctx: Context, texts: list[str], whole: bool = True) -> list[str | None]:
    """The untrained learner's own answers (sampled like the respond stage), cut after the last full sentence;
    None where no sentence ends, unless `whole` is False (a losing answer may stop mid-sentence). Memoised per
    run context: every arm of a seed draws from the same prompts and the same untrained learner."""
    memo: dict = ctx.__dict__.setdefault("_static_answers", {})
    todo = [t for t in dict.fromkeys(texts) if t not in memo]
    if todo:
        g = ctx.cfg.generation
        recs = sorted(({"prompt_id": f"static:{i}", "text": t, "sample": 0} for i, t in enumerate(todo)),
                      key=lambda x: len(x["text"]))
        with _untrained(ctx):
            out = ctx.ex.map(respond_stage, "learner", recs, chunk=GEN_CHUNK, seed=ctx.seed,
                             max_new_tokens=ctx.lc.response_tokens, temperature=g.temperature, top_p=g.top_p)
        memo.update({x["text"]: x["response"] for x in out})
    return [boundary.complete(memo[t]) or (None if whole else memo[t].strip() or None) for t in texts]


class _untrained:
    """The learner with its initial adapter for the duration (then the adapter it held)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def __enter__(self):
        from superalign.training import snapshot
        self.held = snapshot(self.ctx.learner.model)
        restore(self.ctx.learner.model, self.ctx.initial_adapter())

    def __exit__(self, *exc):
        restore(self.ctx.learner.model, self.held)


def training_rows(ctx: Context, arm: StaticArm, budget: Budget) -> list[dict]:
    """The arm's distinct rows (budget rows / epochs), drawn with the run's seed."""
    lm, split_seed = ctx.learner, ctx.cfg.data.split_seed
    rng = random.Random(ctx.seed * 1009 + 17)
    n = max(2, budget.rows // arm.epochs)
    render = lambda t: lm.render([{"role": "user", "content": t}])  # noqa: E731
    n_task = round(n * TASK_SHARE) if arm.tasks and arm.method == "sft" else 0
    n_harm = round((n - n_task) * arm.refusal_share)
    n_benign = n - n_task - n_harm
    harmful = _harmful(ctx, n_harm, rng)
    look = [{"text": x["prompt"], "topic": x["topic"]} for x in rng.sample(list(boundary.contrast_prompts()),
                                                                           len(boundary.contrast_prompts()))]
    pool = [{"text": b["prompt"], "topic": None} for name in ctx.cfg.data.benign
            for b in data.load(name, "train", seed=split_seed)]
    if arm.method == "dpo" or arm.contrast:  # half the benign rows are look-alikes (DPO: all of its benign pairs)
        k = n_benign if arm.method == "dpo" else n_benign // 2
        benign = (look * (1 + k // max(1, len(look))))[:k] + (pool * 2)[:n_benign - k]
    else:
        benign = (pool * (1 + n_benign // max(1, len(pool))))[:n_benign]
    refusals = [boundary.refusal(p["seed_text"], p["topic"]) for p in harmful]
    if arm.method == "sft":
        own = answers(ctx, [b["text"] for b in benign])
        rows = [{"prompt": render(p["text"]), "completion": t, "kind": "harmful"} for p, t in zip(harmful, refusals)]
        rows += [{"prompt": render(b["text"]), "completion": a, "kind": "benign"}
                 for b, a in zip(benign, own) if a and not refusal_phrase(a)]
        if n_task:
            tasks = [t for name in ctx.cfg.data.competence for t in data.load(name, "train", seed=split_seed)]
            rows += [{"prompt": t["prompt"], "completion": t["choices"][int(t["label"])], "kind": "task"}
                     for t in rng.sample(tasks, min(n_task, len(tasks)))]
        return rows
    own_h = answers(ctx, [p["text"] for p in harmful], whole=False)
    rows = [{"prompt": render(p["text"]), "chosen": t, "rejected": a, "kind": "harmful"}
            for p, t, a in zip(harmful, refusals, own_h) if a and not refusal_phrase(a)]
    own_b = answers(ctx, [b["text"] for b in benign])
    rows += [{"prompt": render(b["text"]), "chosen": a, "kind": "lookalike",
              "rejected": boundary.refusal(b["text"], b["topic"]) if b["topic"] else ANCHOR_REFUSAL}
             for b, a in zip(benign, own_b) if b["topic"] and a and not refusal_phrase(a)]
    return rows


def fit(ctx: Context, arm: StaticArm, budget: Budget) -> dict:
    """Train one static arm from the untrained adapter for exactly `budget.steps` optimizer steps; the learner is
    left holding it. Returns what was trained (method, rows, steps, tokens) and the wall time."""
    from superalign.loop.config import Phase
    t0 = time.time()
    restore(ctx.learner.model, ctx.initial_adapter())
    rows = training_rows(ctx, arm, budget)
    pc = Phase(learning_rate=arm.learning_rate, beta=arm.beta, batch_size=budget.batch_size,
               max_steps=budget.steps, max_length=ctx.lc.conformity.max_length)
    info = train(ctx, arm.method, [{k: v for k, v in r.items() if k != "kind"} for r in rows], pc, ctx.seed,
                 f"static-{arm.name}")
    return {"arm": arm.model_dump(), "name": arm.name, "method": arm.method, "rows": len(rows),
            "rows_by_kind": {k: sum(r["kind"] == k for r in rows) for k in sorted({r["kind"] for r in rows})},
            "steps": info["steps"], "tokens": info.get("tokens"), "loss_first": info.get("loss_first"),
            "loss_last": info.get("loss_last"), "wall_s": round(time.time() - t0, 1), "training_rows": rows}
