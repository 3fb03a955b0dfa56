"""The on-goal check of the attacker's LM rewrites (issue 23): how far the embedded attacker's rewrites drift from
the seed's goal, and what `loop.rewrite_min_sim` (with the inversion check) keeps and rejects.

    python bench/attack_rewrites.py [--seed 0] [--per-category 2] [--tokens 40] [--device cpu]
    python bench/attack_rewrites.py --seed 0 --rescore   # score rewrites_s0.jsonl again instead of generating

The default attacker (SmolLM2-135M-Instruct, the loop's sampling: temperature 0.9, `loop.attack_tokens` 40)
rewrites `--per-category` train seeds of every harm category (drawn with `--seed`) in every LM style. Per rewrite:
its MiniLM cosine to its own goal (what the screen reads) and, as an off-goal control, to the goal of a seed of
another category. The rewrites go to bench/results/attack_rewrites/rewrites_s<seed>.jsonl (harmful text: a labelled
file, never the console). `labels_s<seed>.jsonl` beside it, if present, holds hand labels ({"id", "on_goal"}: does
the rewrite still ask for the seed's harmful goal?), and the script prints the screen's precision (kept rewrites
that are on goal) and recall (on-goal rewrites kept) per threshold, with and without the inversion check.
Seed 0 was labelled before the inversion check and the default threshold were chosen (the development set); seed 1
was generated and labelled after, without looking at its cosines (the held-out check). Writes
bench/results/attack_rewrites.json (one entry per seed).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one
from superalign import data  # noqa: E402
from superalign.data import taxonomy  # noqa: E402
from superalign.loop.config import LoopConfig  # noqa: E402
from superalign.models.classifier import refusal_phrase  # noqa: E402
from superalign.models.embedder import Embedder  # noqa: E402
from superalign.roles import attacker as A  # noqa: E402

RESULTS = Path(__file__).parent / "results"
DIR = RESULTS / "attack_rewrites"
THRESHOLDS = (0.4, 0.5, 0.6, 0.7)


def pick_seeds(per_cat: int, rng: random.Random) -> list[dict]:
    seeds = taxonomy.categorise([s for n in taxonomy.SOURCES for s in data.load(n, "train", seed=0)])
    out = []
    for c in taxonomy.CATEGORIES:
        mine = sorted((s for s in seeds if s["category"] == c), key=lambda s: s["id"])
        out += rng.sample(mine, min(per_cat, len(mine)))
    return out


def generate(seeds: list[dict], a) -> tuple[list[dict], float]:
    """The loop's attacker stage function on the embedded attacker, every seed in every LM style."""
    from superalign.models.local import LocalLM
    recs = [{"id": f"{s['id']}/{st}", "style": st, "text": s["prompt"], "seed_text": s["prompt"],
             "category": s["category"]} for s in seeds for st in A.LM_STYLES]
    lm = LocalLM("smollm2-135m-instruct", device=a.device, batch_size=16)
    t0 = time.perf_counter()
    done = [x for i in range(0, len(recs), 16) for x in A.rewrite_stage(lm, recs[i:i + 16],
                                                                         {"seed": a.seed, "max_new_tokens": a.tokens})]
    return done, time.perf_counter() - t0


def agreement(rows: list[dict], labels: dict, t: float, inversion: bool) -> dict:
    kept = {r["id"] for r in rows if A.screen(r["rewrite"], r["sim"], t, r["refused"], r["goal"], inversion) is None}
    out = {"kept": len(kept), "kept_share": round(len(kept) / len(rows), 3)}
    lab = [(r["id"] in kept, labels[r["id"]]) for r in rows if r["id"] in labels]
    if lab:
        tp = sum(k and g for k, g in lab)
        out.update(labelled=len(lab), on_goal=sum(g for _, g in lab), off_goal_kept=sum(k and not g for k, g in lab),
                   precision=round(tp / max(1, sum(k for k, _ in lab)), 3),
                   recall=round(tp / max(1, sum(g for _, g in lab)), 3))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-category", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=40)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rescore", action="store_true", help="score the rewrites already in rewrites_s<seed>.jsonl")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    path, out_path = DIR / f"rewrites_s{a.seed}.jsonl", RESULTS / "attack_rewrites.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    prev = results.get("runs", {}).get(str(a.seed)) or results  # (the first version kept one run at the top)
    results = {"runs": results.get("runs", {})}
    if a.rescore:
        old = [json.loads(ln) for ln in path.read_text().splitlines() if ln]
        done = [{"id": r["id"], "style": r["style"], "seed_text": r["goal"], "category": r["category"],
                 "rewrite": r["raw"]} for r in old]
        gen_s = prev["generation_s"]
    else:
        done, gen_s = generate(pick_seeds(a.per_category, rng), a)
    emb = Embedder("minilm-l6")
    cands = [A.clean_rewrite(d["rewrite"]) for d in done]
    ce, ge = emb.encode(cands), emb.encode([d["seed_text"] for d in done])
    own = (ce * ge).sum(1)
    ctl = random.Random(a.seed + 1000)  # the control's draws do not depend on whether seeds were drawn
    other_goal = [ctl.choice([j for j, e in enumerate(done) if e["category"] != d["category"]]) for d in done]
    cross = np.array([float(ce[i] @ ge[j]) for i, j in enumerate(other_goal)])
    rows = [{"id": d["id"], "style": d["style"], "category": d["category"], "goal": d["seed_text"], "rewrite": c,
             "raw": d["rewrite"], "sim": round(float(s), 4), "sim_other_goal": round(float(x), 4),
             "refused": bool(c) and bool(refusal_phrase(c))} for d, c, s, x in zip(done, cands, own, cross)]
    DIR.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lp = DIR / f"labels_s{a.seed}.jsonl"
    labels = {r["id"]: r["on_goal"] for r in map(json.loads, lp.read_text().splitlines()) if r} if lp.exists() else {}
    default = LoopConfig().rewrite_min_sim
    run = {"attacker": "smollm2-135m-instruct", "tokens": a.tokens, "goals": len({r["goal"] for r in rows}),
           "rewrites": len(rows), "generation_s": round(gen_s, 1), "styles": list(A.LM_STYLES),
           "sim_own_goal": A.quantiles(own.tolist()), "sim_other_goal": A.quantiles(cross.tolist()),
           "other_goal_share_at_or_above": {str(t): round(float(np.mean(cross >= t)), 3) for t in THRESHOLDS},
           "empty": sum(not r["rewrite"] for r in rows), "refused": sum(r["refused"] for r in rows),
           "cosine_only": {str(t): agreement(rows, labels, t, False) for t in THRESHOLDS},
           "with_inversion_check": {str(t): agreement(rows, labels, t, True) for t in THRESHOLDS},
           "default_min_sim": default,
           "kept_per_style_at_default": {st: round(float(np.mean([A.screen(r["rewrite"], r["sim"], default,
                                                                           r["refused"], r["goal"]) is None
                                                                  for r in rows if r["style"] == st])), 3)
                                         for st in A.LM_STYLES}}
    results["runs"][str(a.seed)] = run
    print(f"seed {a.seed}: {len(rows)} rewrites of {run['goals']} goals x {len(A.LM_STYLES)} styles "
          f"({gen_s:.0f} s to generate); empty {run['empty']}, refused {run['refused']}")
    print(f"  cosine to own goal   min/q1/med/q3/max: {run['sim_own_goal']}")
    print(f"  cosine to other goal min/q1/med/q3/max: {run['sim_other_goal']}")
    for name in ("cosine_only", "with_inversion_check"):
        for t, row in run[name].items():
            print(f"  {name:<21} min_sim {t}: " + ", ".join(f"{k}={v}" for k, v in row.items()))
    print(f"  kept per style at min_sim {default}: "
          + ", ".join(f"{k} {v}" for k, v in run["kept_per_style_at_default"].items()))
    out_path.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
