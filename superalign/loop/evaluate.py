"""Stages `setup` (round 0: fix the held-out sets) and `eval` (every round: the learner on the test sets, scored by
the evaluation judge, with paired tests against round 0), plus `validate`, the same measurement on a validation
split that candidate selection (`val_select`) and the regression guard (`val_guard`) read.
All of it is `superalign.values.suite` (harmlessness and competence: `superalign.evaluation.suite`), the code
`superalign eval` runs, over every enabled value axis (`eval.axes`).
"""
from __future__ import annotations

import time
from typing import Any

from superalign.evaluation import suite
from superalign.loop.context import Context
from superalign.models.local import adapters_in_model_dtype
from superalign.values import suite as axes_suite
from superalign.roles.learner import chat
from superalign.store.records import EvalInfo, eval_prompt_id, eval_response_id
from superalign.training.kl import kl_stats
from superalign.training.trackers import log_metrics

SPLITS = ("val_select", "val_guard", "test")


def setup(ctx: Context, r: int) -> dict:
    ctx.initial_adapter()
    prompts: list[dict] = []
    sizes: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        sets = ctx.sets(split)
        sizes[split] = {k: len(v) for k, v in sets.items() if k not in ("competence", "axes")}
        sizes[split]["competence"] = {t: len(v) for t, v in sets["competence"].items()}
        prompts += [{"id": eval_prompt_id(split, x["id"]), "kind": f"eval_{x['set']}", "text": x["text"], "source": x["source"],
                     "category": x["kind"], "meta": {"split": split, "templated": x["templated"]}}
                    for s in suite.SETS for x in sets[s]] + axes_suite.prompts(sets, f"{split}:", split)
        sizes[split]["axes"] = {a: len(v) for a, v in sets.get("axes", {}).items()}
    metrics = []
    crit = ctx.critic()
    if hasattr(crit, "heads"):
        for name, h in crit.heads.items():
            metrics.append({"name": f"critic_holdout:{name}", "value": h.holdout["accuracy"],
                            "n": h.holdout["n"], "meta": {**h.holdout, "head": name, "when": "start"}})
    return {"prompts": prompts, "metrics": metrics + suite.judge_audit(ctx.judge()), "info": {"sizes": sizes}}


def measure(ctx: Context, split: str, bar=None) -> tuple[dict, dict]:
    """`suite.run` of the learner as it is now on `split`, and what it cost ({"cached": bool, "usage": tokens and
    seconds}). An evaluation this exact learner state (model, adapter weights, dtype, batching) already had on these
    items with this judge and code is read from the evaluation cache (`eval.cache`): every run of a seed begins
    with the same round-0 evaluations."""
    from superalign.evaluation import cache
    from superalign.models.config import EvalJudge
    sets, lm = ctx.sets(split), ctx.learner
    k = cache.key(kind="loop", learner=ctx.cfg.role("learner").model_dump(mode="json"), split=split, seed=ctx.seed,
                  adapter=cache.weights_hash(lm.model), eval=ctx.cfg.eval.model_dump(mode="json"),
                  data=ctx.cfg.data.model_dump(mode="json"),
                  judge=(ctx.cfg.roles.get("judge") or EvalJudge()).model_dump(mode="json"))
    hit = cache.load(k) if ctx.cfg.eval.cache else None
    if hit is not None:
        if bar:
            bar(axes_suite.size(sets))
        return hit, {"cached": True, "usage": {}}
    before = lm.usage.copy() if hasattr(lm, "usage") else None
    res = axes_suite.run(ctx.ex, ctx.cfg, ctx.judge(), sets, ctx.seed, bar)
    if ctx.cfg.eval.cache:
        cache.save(k, res)
    return res, {"cached": False, "usage": lm.usage.delta(before) if before else {}}


def evaluate(ctx: Context, r: int) -> dict:
    sets = ctx.sets("test")
    res, cost = measure(ctx, "test", ctx.ui.bar(f"round {r} eval", axes_suite.size(sets)))
    out = axes_suite.outcomes(res)
    rows = [{**m, "meta": {**m["meta"], "split": "test"}} for m in res["metrics"]]
    base = ctx.store.last_info(EvalInfo, before=1)
    if r > 0 and base:  # the same items before any training: a paired test, not two overlapping intervals
        rows += [{**m, "meta": {**m["meta"], "vs": "round 0", "split": "test"}}
                 for m in suite.compare(base.outcomes, out, by_slice=True)]
    responses = [{"id": eval_response_id(r, x["id"]), "prompt_id": eval_prompt_id("test", x["id"]), "sample": 0,
                  "text": x["response"], "role": "learner"} for x in res["items"]]
    scores = [{"target_id": eval_response_id(r, x["id"]), "name": n, "value": x[k], "role": "judge"}
              for x in res["items"] for n, k in (("refusal", "refusal_p"), ("harmful", "harmful_p"), ("bad", "bad"),
                                                 ("phrase_refusal", "phrase"))]
    extra = axes_suite.store_rows(res, f"r{r}:", "learner")  # the other axes' answers and verdicts
    responses += [{**x, "prompt_id": f"test:{x['prompt_id']}"} for x in extra["responses"]]
    scores += extra["scores"]
    kl = drift(ctx, res["items"])
    rows.append(kl)
    if ctx.cfg.run.report_to:  # the loop's own per-round curves, beside TRL's training curves
        log_metrics(ctx.dir, ctx.cfg, r, {**suite.summary(res), "kl_to_base": kl["value"]})
    return {"responses": responses, "scores": scores, "metrics": rows,
            "info": {**suite.summary(res), "kl_to_base": kl["value"], "kl_tokens": kl["meta"]["tokens"],
                     "outcomes": out, "timing": res.get("timing", {}), **cost}}


def drift(ctx: Context, items: list[dict]) -> dict:
    """The `kl_to_base` metric row: how far this round's learner is from its base model, on its own greedy answers
    to the test harmful (direct, not templated) and look-alike prompts (round 0, an untrained adapter: 0). The
    templated prompts are left out: their 500-1,000-token jailbreak prefixes made this two forward passes over
    ~15k context tokens per eval (~2 min on 2 CPU cores) for a drift signal the direct prompts give as well."""
    lm = ctx.learner
    picked = sorted((x for x in items if x["set"] in ("harmful", "lookalike") and not x.get("templated")),
                    key=lambda x: len(x["text"]) + len(x["response"]))
    with adapters_in_model_dtype(lm.model):
        st = kl_stats(lm.model, lm.tokenizer, [lm.render(chat(x["text"])) for x in picked],
                      [x["response"] for x in picked], batch_size=8)
    null = {} if st["kl"] is not None else {"null": "every answer was empty: no response token to score"}
    return {"name": "kl_to_base", "value": st["kl"], "n": st["pairs"],
            "meta": {**null, "split": "test", "sets": ["harmful (direct)", "lookalike"], "tokens": st["tokens"],
                     "how": "mean per-token KL(policy || base), full vocabulary, teacher-forced on the learner's "
                            "greedy eval answers (re-tokenized); base = LoRA adapter disabled"}}


def validate(ctx: Context, split: str) -> dict:
    """The learner on a validation split: {"summary": rates, "outcomes": per-item 0/1 by axis, "soft": per-item
    p_bad by metric (the likelihood guard, `loop.guard.soft`; not cached: one forward pass per item)}."""
    res, cost = measure(ctx, split)
    out = {"summary": suite.summary(res), "outcomes": axes_suite.outcomes(res), "cost": cost}
    if ctx.lc.guard.soft != "off":
        t0 = time.time()
        out["soft"] = axes_suite.soft(ctx.learner, ctx.cfg, ctx.sets(split))
        cost["soft_s"] = time.time() - t0
    return out
