"""Stages `setup` (round 0: fix the evaluation sets, record the critic's held-out accuracy) and `eval` (every
round: the learner on the held-out test sets, scored by the evaluation judge), plus `validate`, the same
measurement on the validation sets that the regression guard reads.
"""
from __future__ import annotations

from superalign.evaluation import loop_eval
from superalign.loop.context import Context


def setup(ctx: Context, r: int) -> dict:
    ctx.initial_adapter()
    sets = {s: ctx.sets(s) for s in ("val", "test")}
    prompts = [{"id": x["id"], "kind": f"eval_{x['kind']}", "text": x["text"], "source": x["source"],
                "category": x["category"], "meta": {"split": split, "style": x["style"]}}
               for split in ("val", "test") for x in sets[split]["harmful"] + sets[split]["benign"]]
    metrics = []
    crit = ctx.critic()
    if hasattr(crit, "heads"):
        for name, h in crit.heads.items():
            metrics.append({"name": f"critic_holdout:{name}", "value": h.holdout["accuracy"],
                            "n": h.holdout["n"], "meta": {**h.holdout, "head": name, "when": "start"}})
    return {"prompts": prompts, "metrics": metrics,
            "info": {"n_val": {k: len(v) for k, v in sets["val"].items()},
                     "n_test": {k: len(v) for k, v in sets["test"].items()}}}


def evaluate(ctx: Context, r: int) -> dict:
    sets = ctx.sets("test")
    bar = ctx.ui.bar(f"round {r} eval", _size(sets))
    items, rows = loop_eval.evaluate(ctx.ex, ctx.judge(), sets, ctx.lc, ctx.seed, bar)
    responses = [{"id": f"r{r}:{x['id']}", "prompt_id": x["id"], "sample": 0, "text": x["response"],
                  "role": "learner"} for x in items]
    scores = [{"target_id": f"r{r}:{x['id']}", "name": "refusal", "value": x["refusal"], "role": "judge",
               "meta": {"phrase_refusal": x["phrase_refusal"], "harm": x["harm"]}} for x in items]
    return {"responses": responses, "scores": scores,
            "metrics": [{**m, "meta": {**m["meta"], "split": "test"}} for m in rows],
            "info": loop_eval.summary(rows)}


def validate(ctx: Context) -> dict[str, float]:
    """ASR, over-refusal and competence on the validation sets (what the guard and candidate search read)."""
    _, rows = loop_eval.evaluate(ctx.ex, ctx.judge(), ctx.sets("val"), ctx.lc, ctx.seed)
    return loop_eval.summary(rows)


def _size(sets: dict) -> int:
    return len(sets["harmful"]) + len(sets["benign"]) + sum(len(v) for v in sets["competence"].values())
