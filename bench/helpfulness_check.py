"""The judge-free helpfulness score on the base learner: its value per seed at the CPU preset's size, its cost, and
whether it reads the instruction at all (issue 22).

    nice -n 15 python bench/helpfulness_check.py [--seeds 0 1 2] [--items 30]

Helpfulness = mean per-token log-likelihood of a reference answer to a held-out benign instruction (`eval.helpfulness`,
test split; `evaluation.likelihood.reference_stage`). Printed per seed with its bootstrap interval and seconds per
item. The validity check: the same instructions scored with a *mismatched* reference (the next item's reference
from the same source task, so style and length stay alike). If the score reads the instruction, the true
reference scores higher, item by item: the paired difference with its bootstrap interval and the Wilcoxon test.
Writes bench/results/helpfulness_check.json.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from scipy.stats import wilcoxon

from superalign import config, data, stats
from superalign.evaluation import likelihood


def mismatched(rows: list[dict]) -> list[dict]:
    """Each instruction paired with the next same-source item's reference (a derangement within each source)."""
    out = [dict(r) for r in rows]
    for src in {r["source"] for r in rows}:
        idx = [i for i, r in enumerate(rows) if r["source"] == src]
        for a, b in zip(idx, idx[1:] + idx[:1]):
            out[a]["reference"] = rows[b]["reference"] if len(idx) > 1 else rows[a]["reference"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--items", type=int, default=None, help="default: the CPU preset's eval.helpfulness_items")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "helpfulness_check.json"))
    a = ap.parse_args()
    from superalign.models.local import LocalLM
    lm = LocalLM(a.model, device="cpu")
    e = config.load(preset="default").eval
    n = a.items or e.helpfulness_items
    out = {"model": a.model, "dtype": str(lm.model.dtype), "set": e.helpfulness, "items": n, "seeds": {}}
    pooled_true, pooled_wrong = [], []
    for seed in a.seeds:
        rows = data.load(e.helpfulness, "test", seed=seed)[:n]
        t0 = time.perf_counter()
        true = [x["loglik"] for x in likelihood.reference_stage(lm, rows, {})]
        spi = (time.perf_counter() - t0) / len(rows)
        wrong = [x["loglik"] for x in likelihood.reference_stage(lm, mismatched(rows), {})]
        v, lo, hi = stats.bootstrap_ci(true)
        d, dlo, dhi = stats.paired_bootstrap_diff(wrong, true)
        p = float(wilcoxon(true, wrong).pvalue)
        out["seeds"][seed] = {"n": len(rows), "helpfulness": v, "lo": lo, "hi": hi, "seconds_per_item": spi,
                              "load_avg_1min": os.getloadavg()[0],
                              "by_source": {s: float(np.mean([t for t, r in zip(true, rows) if r["source"] == s]))
                                            for s in sorted({r["source"] for r in rows})},
                              "mismatched_reference": float(np.mean(wrong)), "true_minus_mismatched": d,
                              "diff_lo": dlo, "diff_hi": dhi, "wilcoxon_p": p,
                              "true_higher_share": float(np.mean(np.array(true) > np.array(wrong)))}
        s = out["seeds"][seed]
        print(f"seed {seed}: helpfulness {v:.3f} [{lo:.3f}, {hi:.3f}] nats/token (n={len(rows)}, "
              f"{spi:.2f} s/item, load {s['load_avg_1min']:.1f}); true - mismatched reference {d:+.3f} "
              f"[{dlo:+.3f}, {dhi:+.3f}], Wilcoxon p={p:.2g}, true higher on {s['true_higher_share']:.0%} of items")
        pooled_true += true
        pooled_wrong += wrong
    d, dlo, dhi = stats.paired_bootstrap_diff(pooled_wrong, pooled_true)
    out["pooled"] = {"n": len(pooled_true), "true_minus_mismatched": d, "lo": dlo, "hi": dhi,
                     "wilcoxon_p": float(wilcoxon(pooled_true, pooled_wrong).pvalue)}
    print(f"pooled ({len(pooled_true)} items): true - mismatched {d:+.3f} [{dlo:+.3f}, {dhi:+.3f}], "
          f"Wilcoxon p={out['pooled']['wilcoxon_p']:.2g}")
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
