"""Human feedback where the critic is unsure: stage `escalate` queues the critic's least confident verdicts
(and its errors) for review within a budget; stage `calibrate`, at the start of the next round, refits the
critic's heads with the labels that arrived.
"""
from __future__ import annotations

import time

from superalign.loop.context import Context
from superalign.review import queue_row
from superalign.roles import critic as C
from superalign.store.records import is_revision, label_id
from superalign.training.heads import refit


def escalate(ctx: Context, r: int) -> dict:
    sc = ctx.store.rows("scores", round=r, stage="critique", name="refusal")
    sc = [s for s in sc if not is_revision(s["target_id"])]
    sc.sort(key=lambda s: (s["error"] is None, s["confidence"] if s["confidence"] is not None else 0))
    unsure = [s for s in sc if s["error"] is not None or (s["confidence"] or 0) < ctx.lc.escalate_below]
    rows = [queue_row(s["target_id"], "refusal", C.QUESTIONS["refusal"], s["confidence"],
                      "critic error" if s["error"] else "low critic confidence", id=label_id(r, s["target_id"]))
            for s in unsure[:ctx.lc.label_budget]]
    n_low = len([s for s in sc if (s["confidence"] or 0) < ctx.lc.escalate_below])
    return {"labels": rows, "info": {"queued": len(rows), "candidates": n_low}}


def wait_for_labels(ctx: Context, r: int) -> None:
    """With `loop.wait_for_labels` > 0, give reviewers that many seconds to empty round r's queue."""
    if ctx.lc.wait_for_labels <= 0:
        return
    t_end = time.time() + ctx.lc.wait_for_labels
    bar = ctx.ui.bar(f"round {r} waiting for human labels", 1)
    while time.time() < t_end:
        if not ctx.store.rows("labels", where="status IN ('queued','claimed') AND round=?", params=(r,)):
            break
        time.sleep(2)
    bar(1)


def calibrate(ctx: Context, r: int) -> dict:
    """Refit the critic's heads with the human labels that arrived for earlier rounds. The ids used are kept
    in the stage's info, so a resumed run replays exactly this calibration (`apply_labels`)."""
    labels = ctx.store.rows("labels", where="status='done' AND round<?", params=(r,))
    crit = ctx.critic()
    if not labels or not hasattr(crit, "heads"):
        return {"info": {"labels": len(labels), "calibrated": False}}
    metrics: list[dict] = []
    used = apply_labels(ctx, [lab["id"] for lab in labels], metrics)
    ctx.calibrated_round = r
    return {"metrics": metrics, "info": {"labels": len(labels), "calibrated": bool(used), "label_ids": used}}


def apply_labels(ctx: Context, label_ids: list[str], metrics: list | None = None) -> list[str]:
    """Refit each critic head on its shipped data plus these human labels; returns the ids that were used."""
    crit = ctx.critic()
    extra: dict[str, list] = {}
    used = []
    for lid in label_ids:
        lab = ctx.store.rows("labels", id=lid)
        resp = ctx.store.rows("responses", id=lab[0]["target_id"]) if lab else []
        if not resp:
            continue
        prompt = ctx.store.rows("prompts", id=resp[0]["prompt_id"])
        head = C.HEADS.get((lab[0]["meta"] or {}).get("head", "refusal"))
        if head is not None and head in crit.heads and prompt:
            extra.setdefault(head, []).append({"prompt": prompt[0]["text"], "response": resp[0]["text"],
                                               "label": float(lab[0]["label"])})
            used.append(lid)
    for head, rows in extra.items():
        before = dict(crit.heads[head].holdout)
        after = refit(crit, head, extra=rows).holdout
        if metrics is not None:
            for when, h in (("before", before), ("after", after)):
                metrics.append({"name": f"critic_holdout:{head}", "value": h["accuracy"], "n": h["n"],
                                "meta": {**h, "head": head, "when": when, "labels_used": len(rows)}})
    return used
