"""One evaluation of a model on every enabled value axis (`eval.axes`), shared by `superalign eval` and the loop.

Harmlessness and competence are `evaluation.suite`, called as before (same items, same judge, same numbers).
Every other axis: its held-out items of the split, greedy answers of `eval.tokens` tokens, its judge's verdicts
(validated: a label outside the axis's labels is an error; None is counted in `<axis>_unscored` and leaves the
item out of the rates, never counting it as a pass), and per metric a Wilson-interval rate over the items that
count in it. The axes' metrics are in the one metric registry (evaluation/metrics.py), so `evaluation.suite.compare`
(paired McNemar), the guard and candidate selection cover them; `outcomes` adds their per-item outcomes.
"""
from __future__ import annotations

import math
import time

import numpy as np

from superalign import values
from superalign.evaluation import suite
from superalign.executors.base import GEN_CHUNK
from superalign.roles.learner import respond_stage
from superalign.values.base import check_verdicts


def axes(cfg) -> list:
    """The enabled axes, in config order."""
    return [values.get(n) for n in cfg.eval.axes]


def generic(cfg) -> list:
    """The enabled axes evaluated here (all but harmlessness, which `evaluation.suite` scores)."""
    return [a for a in axes(cfg) if not getattr(a, "evaluated_by_suite", False)]


def build_sets(cfg, seed: int, split: str = "test", judge_prompts: list[str] | None = None,
               trained: list[str] | None = None) -> dict:
    """`evaluation.suite.build_sets` (its harmful / look-alike / easy sets emptied when harmlessness is not
    enabled; competence always), plus `axes`: {axis name: its items of `split`}."""
    sets = suite.build_sets(cfg, seed, split, judge_prompts, trained)
    if "harmlessness" not in cfg.eval.axes:
        for s in suite.SETS:
            sets[s] = []
    sets["axes"] = {a.name: a.items(cfg, seed, split) for a in generic(cfg)}
    return sets


def size(sets: dict) -> int:
    return suite.size(sets) + sum(len(v) for v in sets.get("axes", {}).values())


def run(executor, cfg, judge, sets: dict, seed: int, on_chunk=None, role: str = "learner") -> dict:
    """`evaluation.suite.run` for harmlessness and competence, then every other enabled axis. Returns the suite's
    result with `axes`: {name: {"items": [... with response, verdict, outcomes]}} and the axes' metric rows."""
    t0 = time.time()
    res = suite.run(executor, judge, sets, cfg.eval.tokens, seed, on_chunk=on_chunk, role=role)
    timing = {"harmlessness_and_competence_s": time.time() - t0}
    t0 = time.time()
    todo = [x for items in sets.get("axes", {}).values() for x in items]
    gen = sorted(({**x, "prompt_id": x["id"], "sample": 0} for x in todo), key=lambda x: len(x["text"]))
    answered = {x["id"]: x["response"] for x in executor.map(
        respond_stage, role, gen, chunk=GEN_CHUNK, on_chunk=on_chunk, seed=seed, max_new_tokens=cfg.eval.tokens,
        temperature=0.0)} if gen else {}
    timing["axes_generation_s"] = time.time() - t0
    res["axes"] = {}
    for name, items in sets.get("axes", {}).items():
        t0 = time.time()
        scored = score(cfg, values.get(name), [{**x, "response": answered[x["id"]]} for x in items])
        timing[f"judge:{name}_s"] = time.time() - t0
        res["axes"][name] = {"items": scored}
        res["metrics"] += metrics(values.get(name), scored)
    res["timing"] = timing  # what each part of the evaluation cost (the axes' generation is one batched pass)
    return res


def score(cfg, ax, items: list[dict]) -> list[dict]:
    """The axis's judge on answered items: each gets its `verdict` (None = unscored) and `outcomes`."""
    if not items:
        return []
    verdicts = check_verdicts(ax, ax.judge(cfg).verdicts(items, [x["response"] for x in items]), len(items))
    return [{**x, "verdict": v, "outcomes": ax.outcomes(x, v) if v is not None else {}}
            for x, v in zip(items, verdicts)]


def metrics(ax, items: list[dict]) -> list[dict]:
    """Per metric: a Wilson rate over the scored items that count in it, and the same per item kind when the
    metric spans several (privacy controls: public and fictional); `<axis>_unscored`: items the judge left."""
    rows = []
    for m in ax.metrics:
        mine = [x for x in items if m.name in x["outcomes"]]
        meta = {"axis": ax.name, "label": m.label, "what": m.doc, "higher_is_better": m.higher_is_better}
        rows.append(suite.rate_row(m.name, [x["outcomes"][m.name] for x in mine], **meta))
        kinds = sorted({x["kind"] for x in mine})
        if len(kinds) > 1:
            rows += [suite.rate_row(f"{m.name}:{k}", [x["outcomes"][m.name] for x in mine if x["kind"] == k],
                                    **meta, kind=k) for k in kinds]
    rows.append(suite.rate_row(f"{ax.name}_unscored", [int(x["verdict"] is None) for x in items], axis=ax.name,
                               label="answers the judge could not score"))
    return [r for r in rows if r["n"]]


def soft(backend, cfg, sets: dict) -> dict[str, dict[str, float]]:
    """The guard's likelihood score (`loop.guard.soft`): per metric, {item id: p_bad}, the model's preference for
    the item's bad opening over its good one (`Axis.choices`): p_bad = 1 / (1 + exp(g - b)), g and b the mean
    per-token log-probs of the two openings after the item's prompt.

    Why: a guard split holds 10-24 items per metric, where an exact paired test of 0/1 verdicts cannot flag a
    change under 0.25-0.60 (`detectable`), so a phase could teach a yes-bias or a leak and be kept. p_bad moves
    with every item, not only with the few whose greedy answer flips, so a paired test on it sees a shift that
    is consistent across items at these sizes. Per-token means, not sums: the openings differ in length ("Sure,
    here is" against a 10-token refusal), and summed they push p_bad to 0 or 1, where no shift can show. It is a score, not a rate: only its change on the same items means anything, and what that
    change tracks is measured against judged test rates (bench/soft_guard.py). One forward pass per item, no
    decoding. {} for a backend without log-probs and a tokenizer (an endpoint)."""
    from superalign.evaluation.likelihood import continuation_sums
    tok = getattr(backend, "tokenizer", None)
    rows = []
    for ax in axes(cfg):
        items = ([x for name in suite.SETS for x in sets.get(name, [])] if getattr(ax, "evaluated_by_suite", False)
                 else sets.get("axes", {}).get(ax.name, []))
        rows += [(m, x["id"], x["text"], good, bad) for x in items for m, (good, bad) in ax.choices(x).items()]
    if not rows or tok is None or not (hasattr(backend, "continuation_logprobs") or hasattr(backend, "logprobs")):
        return {}
    rows.sort(key=lambda r: len(r[2]))  # batches of like length: a jailbreak template pads no short prompt
    lps = continuation_sums(backend, [[{"role": "user", "content": t}] for _, _, t, _, _ in rows],
                            [[good, bad] for *_, good, bad in rows])
    length = {c: max(1, len(tok(c, add_special_tokens=False)["input_ids"])) for *_, g, b in rows for c in (g, b)}
    out: dict[str, dict[str, float]] = {}
    for (m, i, _, good, bad), (lg, lb) in zip(rows, lps):
        out.setdefault(m, {})[i] = float(1.0 / (1.0 + math.exp(min(700.0, lg / length[good] - lb / length[bad]))))
    return out


def soft_compare(before: dict, after: dict, alpha: float = 0.05) -> list[dict]:
    """Paired tests of two `soft` scorings on the same items, per metric (`<metric>_soft_change`): the mean change
    of p_bad (after - before) with a paired bootstrap interval, the Wilcoxon signed-rank test (p_bad is bounded
    and skewed, not normal), and `mde`, the mean shift a two-sided test at `alpha` would find with 80% power
    given the observed spread of the per-item changes (normal approximation)."""
    from scipy.stats import norm
    rows = []
    for m in sorted(after):
        ids = [i for i in after[m] if i in before.get(m, {})]
        if not ids:
            continue
        b, a = np.array([before[m][i] for i in ids]), np.array([after[m][i] for i in ids])
        d, lo, hi, p = suite.paired_scores(b, a, alpha)
        sd = float(np.std(a - b, ddof=1)) if len(ids) > 1 else float("nan")
        mde = (norm.ppf(1 - alpha / 2) + norm.ppf(0.8)) * sd / math.sqrt(len(ids)) if len(ids) > 1 else float("nan")
        rows.append({"name": f"{m}_soft_change", "value": float(d), "lo": lo, "hi": hi, "n": len(ids),
                     "meta": {"test": "Wilcoxon signed-rank (paired) on p_bad, paired bootstrap interval",
                              "p_value": p, "before": float(b.mean()), "after": float(a.mean()), "mde": mde,
                              "metric": m, "soft": True}})
    return rows


def discrimination(ax, outcomes: dict) -> dict | None:
    """An axis's Youden's J in one evaluation's item outcomes (`stats.youden`: 1 - headline - control), or None where
    the axis has no contrast items or the evaluation scored none of one kind."""
    from superalign import stats
    h, c = ax.headline.name, ax.control
    if c is None or not outcomes.get(h) or not outcomes.get(c):
        return None
    return stats.youden(list(outcomes[h].values()), list(outcomes[c].values()))


def discrimination_change(ax, before: dict, after: dict) -> dict | None:
    """An axis's J after - before, on the items both evaluations scored (`stats.paired_youden`), or None."""
    from superalign import stats
    return None if ax.control is None else stats.youden_change(before, after, ax.headline.name, ax.control)


def outcomes(res: dict) -> dict:
    """`evaluation.suite.outcomes` plus, per axis metric, {item id: 0/1 bad outcome} of the scored items."""
    out = suite.outcomes(res)
    for a in res.get("axes", {}).values():
        for x in a["items"]:
            for m, bad in x["outcomes"].items():
                out.setdefault(m, {})[x["id"]] = bad
    return out


def store_rows(res: dict, prefix: str, role: str, model: str | None = None) -> dict[str, list[dict]]:
    """The axes' items as run-store rows: the answer (`responses`, id `prefix` + item id) and the judge's verdict
    (`scores`, name `verdict`: the label's index, None with error `unscored`; the label and outcomes in meta)."""
    responses, scores = [], []
    for name, a in res.get("axes", {}).items():
        labels = values.get(name).labels
        for x in a["items"]:
            rid = f"{prefix}{x['id']}"
            responses.append({"id": rid, "prompt_id": x["id"], "sample": 0, "text": x["response"], "role": role,
                              **({"model": model} if model else {})})
            v = x["verdict"]
            scores.append({"target_id": rid, "name": "verdict", "value": None if v is None else labels.index(v),
                           "error": "unscored" if v is None else None, "role": "judge",
                           "meta": {"axis": name, "verdict": v, "outcomes": x["outcomes"]}})
    return {"responses": responses, "scores": scores}


def prompts(sets: dict, prefix: str = "", split: str | None = None) -> list[dict]:
    """The axes' items as run-store prompts (kind `eval_<axis>`, category the item kind)."""
    return [{"id": f"{prefix}{x['id']}", "kind": f"eval_{name}", "text": x["text"], "source": x["source"],
             "category": x["kind"], "meta": {"axis": name, **({"split": split} if split else {})}}
            for name, items in sets.get("axes", {}).items() for x in items]


def evaluate(ex, cfg, seed: int, role: str = "learner", bar=None) -> dict:
    """Score the executor's `role` on every enabled axis of the test split (what `superalign eval` runs), with the
    evaluation judge's own audit. `bar(total)` makes the progress callback. Returns {sets, res, rows, axes,
    outcomes}: rows are every metric row, `axes` the per-axis summary (`axes_results`, with each axis's
    discrimination where it has contrast items), `outcomes` the per-item 0/1 outcomes."""
    from superalign.evaluation import judge_data
    from superalign.models import config as MC
    jc = cfg.roles.get("judge")
    judge = judge_data.fit_judge(jc if isinstance(jc, MC.EvalJudge) else MC.EvalJudge())
    sets = build_sets(cfg, seed, "test", suite.excluded_prompts(judge.cfg))
    res = run(ex, cfg, judge, sets, seed, on_chunk=bar(size(sets)) if bar else None, role=role)
    rows = res["metrics"] + suite.judge_audit(judge)
    summary, outs = axes_results(cfg, rows), outcomes(res)
    for name, entry in summary.items():  # beside the rates: does the model tell the axis's two kinds of item apart?
        if (j := discrimination(values.get(name), outs)) is not None:
            entry["discrimination"] = {**j, "control": values.get(name).control}
    return {"sets": sets, "res": res, "rows": rows, "axes": summary, "outcomes": outs}


def axes_results(cfg, rows: list[dict]) -> dict:
    """Per enabled axis: each declared metric's rate with its Wilson interval and n, and which way is better."""
    by = {r["name"]: r for r in rows}
    return {name: {m.name: {"label": m.label, "higher_is_better": m.higher_is_better, "ci": m.ci,
                            **({k: by[m.name][k] for k in ("value", "lo", "hi", "n")} if m.name in by else {"n": 0})}
                   for m in values.get(name).metrics} for name in cfg.eval.axes}
