"""Evaluation-set sizes, what dedup and judge-objective removal took out, and the leak checks.

    python bench/eval_sets.py [--seeds 0 1 2] [--embedder minilm-l6]

Prints counts only (never a prompt) and writes bench/results/eval_sets.json. The "old scheme" rows
measure the leaks issue 13 reported (AdvBench and the PyRIT templates split 60/20/20 by seed) with the
same embedder, so before and after are comparable.
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from superalign import data
from superalign.data import dedup, evalsets, sources
from superalign import stats


def old_scheme(seed: int, embed) -> dict:
    """The leaks of the pre-issue-13 sets: advbench/templates test vs train split, and benign test vs judge rows."""
    tr, te = data.load("advbench", "train", seed=seed), data.load("advbench", "test", seed=seed)
    cos = dedup.max_cosine(embed([r["prompt"] for r in te]), embed([r["prompt"] for r in tr]))
    strip = lambda t: t["prompt"].replace(evalsets.SLOT, " ")  # noqa: E731
    jac = dedup.max_jaccard([strip(t) for t in data.load("jailbreak_templates", "test", seed=seed)],
                            [strip(t) for t in data.load("jailbreak_templates", "train", seed=seed)])
    judge = {dedup.normalise(p) for p in evalsets.judge_training_prompts()}
    ben = data.load("benign_easy", "test", seed=seed)
    return {"advbench_test_share_cos_ge_0.9": float((cos >= 0.9).mean()),
            "advbench_test_share_cos_ge_0.85": float((cos >= 0.85).mean()),
            "template_test_share_jaccard_ge_0.5": float((jac >= 0.5).mean()),
            "advbench_test_share_in_judge_rows": float(np.mean([dedup.normalise(r["prompt"]) in judge for r in te])),
            "benign_test_share_in_judge_rows": float(np.mean([dedup.normalise(r["prompt"]) in judge for r in ben]))}


def benign_screen() -> dict:
    objectives = {r["prompt"].strip() for n in ("objective_labels", "harm_labels") for r in data.load_all(n)}
    cands = {r.get("objective", "").strip() for m, r in sources._scorer_csvs("refusal_scorer") + sources._scorer_csvs("sample")
             if r.get("human_score") == "0" and r.get("objective", "").strip() and len(r["objective"].strip()) < 300}
    cands -= {r["prompt"].strip() for r in data.load_all("advbench")}
    dropped = [p for p in cands if sources.harmful_request(p, objectives)]
    return {"pyrit_requests": len(cands), "dropped_harmful": len(dropped),
            "dropped_also_pyrit_objective": sum(p in objectives for p in dropped),
            "benign_easy_size": len(data.load_all("benign_easy"))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--embedder", default="minilm-l6")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "eval_sets.json"))
    a = ap.parse_args()
    embed = dedup.minilm(a.embedder)
    out = {"embedder": a.embedder, "threshold": 0.85, "template_jaccard": 0.5, "seeds": {},
           "benign_easy_screen": benign_screen(),
           "lookalike_kinds": dict(Counter(r["kind"] for r in data.load_all("lookalike"))),
           "lookalike_split": dict(Counter(r["split"] for r in data.load_all("lookalike")))}
    print(f"benign_easy screen: {out['benign_easy_screen']}")
    print(f"lookalike: {out['lookalike_split']} kinds={out['lookalike_kinds']}")
    for seed in a.seeds:
        t0 = time.perf_counter()
        e = evalsets.build(seed, embed=embed)
        sec = time.perf_counter() - t0
        by_source = {n: dict(Counter(r.get("set", r["source"]) + (" (templated)" if r.get("templated") else "")
                                     for r in rs)) for n, rs in e.sets.items() if n.startswith("harmful")}
        by_kind = {n: dict(Counter(r["kind"] for r in rs)) for n, rs in e.sets.items() if n.startswith("lookalike")}
        sizes = {n: len(rs) for n, rs in e.sets.items()}
        n_test = sizes["harmful_test"]
        mde = {f"discordance_{d}": stats.mde_paired(n_test, d, exact=True) for d in (0.1, 0.2, 0.3)}
        old = old_scheme(seed, embed)
        out["seeds"][seed] = {"sizes": sizes, "harmful_by_source": by_source, "lookalike_by_kind": by_kind,
                              "removed": e.removed, "checks": e.checks, "old_scheme": old,
                              "mde_paired_harmful_test": mde, "build_seconds": sec}
        print(f"\nseed {seed} ({sec:.1f} s)")
        print("  sizes:   " + ", ".join(f"{n}={v}" for n, v in sizes.items()))
        for n, c in by_source.items():
            print(f"  {n}: " + ", ".join(f"{k}={v}" for k, v in sorted(c.items())))
        print("  removed: " + ", ".join(f"{k}={v}" for k, v in e.removed.items()))
        print("  checks:  " + ", ".join(f"{k}={v:.3f}" for k, v in e.checks.items()))
        print("  old scheme: " + ", ".join(f"{k}={v:.3f}" for k, v in old.items()))
        print(f"  MDE (exact McNemar, n={n_test}, alpha .05, power .8): "
              + ", ".join(f"{k}={v:.3f}" for k, v in mde.items()))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    main()
