"""Static baselines at the loop's budget (issue 14): what a one-off safety fine-tune does with the same learner,
the same number of prompts, the same candidate grid ranked on the same selection split, and the same evaluation.

- `static_sft`: harmful prompts (AdvBench seeds, direct, in a PyRIT template, or in one of the attacker's fixed
  frames, drawn in the loop's proportions) answered with the written refusals the loop uses, mixed with benign
  prompts answered by the learner itself.
- `static_dpo`: the same prompts; the written refusal preferred over the learner's own answer where that answer
  does not refuse, and the learner's own answer to a benign prompt preferred over a refusal.
- `static_sft_contrast`: `static_sft` whose benign half is the loop's contrast look-alikes, in the loop's mix:
  the loop's data without its rounds, critic or guard (what the loop's machinery adds beyond its data).

No attacker updates, no critic, no rounds, no guard: a static fine-tune has none of them. The prompt budget is the
loop's: rounds × attacks harmful prompts and rounds × (benign + contrast) benign ones.
"""
from __future__ import annotations

import random
import time
from typing import Any

from superalign import data
from superalign.data import boundary
from superalign.loop.attack import seeds_and_templates
from superalign.loop.context import Context
from superalign.loop.learn import ANCHOR_REFUSAL, select
from superalign.models.classifier import refusal_phrase
from superalign.roles import attacker as A
from superalign.roles.learner import respond_stage
from superalign.training import restore

ARMS = ("static_sft", "static_dpo", "static_sft_contrast")


def budget(cfg) -> dict[str, int]:
    """The loop's prompt budget over all its rounds."""
    s, n = cfg.loop.sizes, cfg.loop.rounds
    return {"harmful": n * s.attacks, "benign": n * (s.benign + s.contrast), "contrast": n * s.contrast}


def prompts(ctx: Context, arm: str) -> tuple[list[dict], list[dict]]:
    """(harmful, benign) prompts of a static arm, drawn with the run's seed."""
    cfg, lc, split_seed = ctx.cfg, ctx.lc, ctx.cfg.data.split_seed
    n = budget(cfg)
    rng = random.Random(ctx.seed * 1009)
    seeds, templates = seeds_and_templates(ctx)
    w = lc.strategies
    mix = {"direct": w.get("direct", 0), "template": w.get("template", 0),
           "rewrite": sum(v for k, v in w.items() if k not in ("direct", "template"))}
    harmful = []
    for p in A.plan(seeds, templates, A.Archive(), n["harmful"], mix, rng):
        if p["strategy"] == "rewrite":  # no attacker LM: the fixed frame the loop falls back to
            p["text"] = A.frame(p["style"], p["text"])
        harmful.append(p)
    for p, t in zip(harmful, boundary.TopicMatcher()([p["seed_text"] for p in harmful])):
        p["topic"] = t
    pool = [b for name in cfg.data.benign for b in data.load(name, "train", seed=split_seed)]
    k = n["benign"] - (n["contrast"] if arm == "static_sft_contrast" else 0)
    benign = [{"text": b["prompt"], "topic": None} for b in (pool * 2)[:k]]
    if arm == "static_sft_contrast":
        look = list(boundary.contrast_prompts())
        benign += [{"text": x["prompt"], "topic": x["topic"]} for x in rng.sample(look, min(n["contrast"], len(look)))]
    return harmful, benign


def answers(ctx: Context, texts: list[str], whole: bool = True) -> list[str | None]:
    """The learner's own answers (sampled like the loop's respond stage), cut after the last full sentence;
    None where no sentence ends, unless `whole` is False (a losing answer may stop mid-sentence)."""
    g = ctx.cfg.generation
    recs: list[dict[str, Any]] = [{"prompt_id": f"static:{i}", "text": t, "sample": 0} for i, t in enumerate(texts)]
    recs.sort(key=lambda x: len(x["text"]))
    out = ctx.ex.map(respond_stage, "learner", recs, chunk=16, seed=ctx.seed, max_new_tokens=ctx.lc.response_tokens,
                     temperature=g.temperature, top_p=g.top_p)
    by = {x["prompt_id"]: x["response"] for x in out}
    return [boundary.complete(by[f"static:{i}"]) or (None if whole else by[f"static:{i}"].strip() or None)
            for i in range(len(texts))]


def training_rows(ctx: Context, arm: str) -> tuple[str, list[dict]]:
    """(method, rows) of a static arm."""
    lm = ctx.learner
    harmful, benign = prompts(ctx, arm)
    render = lambda t: lm.render([{"role": "user", "content": t}])
    refusals = [boundary.refusal(p["seed_text"], p["topic"]) for p in harmful]
    own_b = answers(ctx, [b["text"] for b in benign])
    good_b = [(b, a) for b, a in zip(benign, own_b) if a and not refusal_phrase(a)]
    if arm in ("static_sft", "static_sft_contrast"):
        rows = [{"prompt": render(p["text"]), "completion": t} for p, t in zip(harmful, refusals)]
        rows += [{"prompt": render(b["text"]), "completion": a} for b, a in good_b]
        return "sft", rows
    own_h = answers(ctx, [p["text"] for p in harmful], whole=False)
    rows = [{"prompt": render(p["text"]), "chosen": t, "rejected": a}
            for p, t, a in zip(harmful, refusals, own_h) if a and not refusal_phrase(a)]
    rows += [{"prompt": render(b["text"]), "chosen": a, "rejected": ANCHOR_REFUSAL} for b, a in good_b]
    return "dpo", rows


def train_arm(ctx: Context, arm: str) -> dict:
    """Fit one static arm from the untrained adapter with the loop's candidate grid; the learner is left holding
    the candidate that scored best on `val_select`. Returns what was trained, the candidates and the wall time."""
    if arm not in ARMS:
        raise ValueError(f"unknown static arm {arm!r}: one of {ARMS}")
    t0 = time.time()
    restore(ctx.learner.model, ctx.initial_adapter())
    method, rows = training_rows(ctx, arm)
    cands = [ctx.lc.conformity] + list(ctx.lc.candidates)
    log: list[dict] = []
    best = select(ctx, 0, arm, method, rows, cands, log, reject_regressions=False)
    assert best is not None  # without the regression check every candidate is eligible
    return {"arm": arm, "method": method, "n_rows": len(rows), "candidates": log, "chosen": best["candidate"],
            "train": best["train"], "wall_s": time.time() - t0, "rows": rows}
