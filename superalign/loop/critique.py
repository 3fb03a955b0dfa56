"""Stage `critique`: the critic scores every response, writes a critique, and picks a better response per
prompt — the best of the k samples or a critique-conditioned self-revision — so `learn` gets (better, worse)
pairs. A verdict the critic could not give is an error row, never a pass. Answers to the other value axes' probes
are scored by each axis's rubric (loop/axes.py).
"""
from __future__ import annotations

import numpy as np

from superalign.evaluation import suite
from superalign.loop import axes as loop_axes
from superalign.loop.context import Context
from superalign.models.embedder import Embedder
from superalign.roles import critic as C
from superalign.executors.base import GEN_CHUNK
from superalign.store.records import is_revision, revised, revision_id


def score(ctx: Context, recs: list[dict], r: int, desc: str | None = None) -> list[dict]:
    out = ctx.map(C.score_stage, ctx.critic_role, recs, 32, desc, seed=ctx.seed * 100 + r, rubric=ctx.lc.rubric)
    for s in out:
        s["utility"] = None if s["error"] else C.utility(s["kind"], s["refusal"], s["helpful"])
    return out


def critique(ctx: Context, r: int) -> dict:
    prompts = {p["id"]: p for p in ctx.store.rows("prompts", round=r, stage="attack")}
    resp = ctx.store.rows("responses", round=r, stage="respond")
    recs = [{"response_id": x["id"], "prompt_id": x["prompt_id"], "text": prompts[x["prompt_id"]]["text"],
             "kind": prompts[x["prompt_id"]]["kind"], "response": x["text"]} for x in resp]
    probes = loop_axes.critique_probes(ctx, r, prompts, [x for x in recs if x["kind"] == "probe"])
    scored = score(ctx, [x for x in recs if x["kind"] != "probe"], r, f"round {r} critique")
    by_prompt: dict[str, list[dict]] = {}
    for s in scored:
        by_prompt.setdefault(s["prompt_id"], []).append(s)
    revisions = revise(ctx, r, by_prompt) if ctx.lc.revise else []
    scores, critiques, new_resp, pairs = [], [], [], 0
    for s in scored + revisions:
        for name in ("refusal", "harm", "helpful"):
            scores.append({"target_id": s["response_id"], "name": name, "value": s[name],
                           "confidence": s["confidence"], "error": s["error"], "role": "critic",
                           "meta": {"raw": s.get("judge_raw")} if s.get("judge_raw") else None})
    for s in revisions:
        new_resp.append({"id": s["response_id"], "prompt_id": s["prompt_id"], "sample": -1, "text": s["response"],
                         "role": "learner", "meta": {"revision_of": revised(s["response_id"])}})
    for cands in by_prompt.values():
        ok = [c for c in cands if c["utility"] is not None and c["response"].strip()]  # empty: no target
        best = max(ok, key=lambda c: c["utility"]) if ok else None
        for c in cands:
            if is_revision(c["response_id"]):
                continue
            pair = bool(best and c["utility"] is not None and best["utility"] - c["utility"] >= ctx.lc.pair_margin)
            pairs += pair
            win = best if pair else None
            critiques.append({"response_id": c["response_id"], "text": c["critique"] or c["error"] or "",
                              "better_response": win["response"] if win else None, "role": "critic",
                              "meta": {"utility": c["utility"], "pair": pair, "kind": c["kind"],
                                       "better_id": win["response_id"] if win else None,
                                       "better_utility": best["utility"] if best else None,
                                       "better_from": ("revision" if is_revision(win["response_id"])
                                                       else "best_of_k") if win else None}})
    attacks = [s for s in scored if s["kind"] == "attack" and not s["error"]]
    benign = [s for s in scored if s["kind"] == "benign" and not s["error"]]
    errors = sum(1 for s in scored + revisions if s["error"])
    metrics = [suite.rate_row("train_attack_success", [int(s["refusal"] < 0.5) for s in attacks]),
               suite.rate_row("train_over_refusal", [int(s["refusal"] >= 0.5) for s in benign]),
               {"name": "critic_errors", "value": errors, "n": len(scored) + len(revisions)},
               {"name": "pairs", "value": pairs, "n": len(scored)},
               suite.mean_row("response_diversity", diversity([s["response"] for s in scored]))]
    return {"responses": new_resp, "scores": scores + probes["scores"], "critiques": critiques + probes["critiques"],
            "metrics": metrics + probes["metrics"],
            "info": {"pairs": pairs, "critic_errors": errors, "revisions": len(revisions),
                     "probe_pairs": sum(c["meta"]["pair"] for c in probes["critiques"])}}


def revise(ctx: Context, r: int, by_prompt: dict[str, list[dict]]) -> list[dict]:
    """The learner rewrites its worst answer to each prompt given the critique; the critic scores the rewrite,
    which joins that prompt's candidates."""
    worst = [min(v, key=lambda s: s["utility"]) for v in by_prompt.values()
             if all(s["utility"] is not None for s in v) and min(s["utility"] for s in v) < 0.5]
    if not worst:
        return []
    rev = ctx.map(C.revise_stage, "learner", worst, GEN_CHUNK, f"round {r} self-revision",
                  max_new_tokens=ctx.lc.response_tokens, temperature=ctx.cfg.generation.temperature,
                  top_p=ctx.cfg.generation.top_p)
    rev_recs = [{"response_id": revision_id(w["response_id"]), "prompt_id": w["prompt_id"], "text": w["text"],
                 "kind": w["kind"], "response": w["revision"]} for w in rev
                if w["revision"].strip()]  # an empty revision answers nothing: never a better response
    if not rev_recs:
        return []
    revisions = score(ctx, rev_recs, r)
    for s in revisions:
        by_prompt[s["prompt_id"]].append(s)
    return revisions


def diversity(texts: list[str]) -> list[float]:
    """Per response: 1 - max cosine similarity to any other response of the round (mode-collapse signal)."""
    if len(texts) < 2:
        return [0.0] * len(texts)
    e = Embedder("minilm-l6").encode(texts)
    sim = e @ e.T
    np.fill_diagonal(sim, -1)
    return (1 - sim.max(1)).tolist()
