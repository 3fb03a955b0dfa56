"""The attacker's harm taxonomy over its training seeds (issue 23): per-category counts, how many the keyword rule
and how many the cosine rule decided, and the seeds excluded as near copies of an evaluation prompt.

    python bench/attack_taxonomy.py           # checks superalign/data/files/attack_seeds_v1.jsonl against the rule
    python bench/attack_taxonomy.py --write   # (re)writes that file from the rule

Prints counts only (never a prompt) and writes bench/results/attack_taxonomy.json. The check fails (exit 1) when
the file and the rule disagree on any seed, so the file is always this script's output.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one
from superalign import data  # noqa: E402
from superalign.data import evalsets, taxonomy  # noqa: E402

OUT = Path(__file__).parent / "results" / "attack_taxonomy.json"


def seeds() -> list[dict]:
    """Every seed of the training sources the file covers, every split, tagged with its data set name."""
    return [dict(r, set=n) for n in taxonomy.SOURCES for r in data.load_all(n)]


def eval_prompts() -> list[str]:
    """Every prompt of every held-out evaluation source, whole pools (not one seed's test split)."""
    return sorted({r["prompt"] for n in evalsets.HELDOUT for r in data.load_all(n)})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="rewrite the data file from the rule")
    ap.add_argument("--split-seed", type=int, default=0, help="data.split_seed whose train split is counted")
    a = ap.parse_args()
    recs = seeds()
    rows = taxonomy.build_rows(recs, eval_prompts())
    path = resources.files("superalign.data").joinpath("files", taxonomy.FILE)
    if a.write:
        Path(str(path)).write_text("".join(json.dumps(r) + "\n" for r in rows))
        taxonomy.mapping.cache_clear()
        print(f"wrote {len(rows)} rows to superalign/data/files/{taxonomy.FILE}")
    filed = taxonomy.mapping()
    mismatch = sum(filed.get(r["id"], {}).get("category") != r["category"]
                   or filed.get(r["id"], {}).get("excluded") != r["excluded"] for r in rows)
    train = {r["id"] for n in taxonomy.SOURCES for r in data.load(n, "train", seed=a.split_seed)}
    kept = [r for r in rows if not r["excluded"]]
    cats = list(taxonomy.CATEGORIES)
    count = lambda rs: {c: sum(r["category"] == c for r in rs) for c in cats}  # noqa: E731
    out = {"file": f"superalign/data/files/{taxonomy.FILE}", "rows": len(rows), "file_rule_mismatches": mismatch,
           "near": taxonomy.NEAR, "excluded": {s: sum(r["excluded"] for r in rows if r["source"] == s)
                                               for s in taxonomy.SOURCES},
           "by_category": count(kept),
           "by_category_train_split": count([r for r in kept if r["id"] in train]),
           "train_split_seed": a.split_seed,
           "by_source": {s: count([r for r in kept if r["source"] == s]) for s in taxonomy.SOURCES},
           "by_rule": dict(Counter(r["rule"] for r in kept)),
           "cosine_rule_cos_quartiles": _quartiles([r["cos"] for r in kept if r["rule"] == "cosine"]),
           "max_near_eval_kept": {s: max((r["near_eval"] for r in kept if r["source"] == s), default=None)
                                  for s in taxonomy.SOURCES},
           "advbench_label_to_category": {f"{k[0]} -> {k[1]}": v for k, v in sorted(Counter(
               (s.get("category"), r["category"]) for s, r in zip(recs, rows) if s["set"] == "advbench").items())}}
    print(f"{len(rows)} seeds from {', '.join(taxonomy.SOURCES)}; excluded as near an evaluation prompt "
          f"(cos >= {taxonomy.NEAR}): {out['excluded']}; rule: {out['by_rule']}")
    print(f"{'category':<18}{'all':>6}{'train':>7}  " + "  ".join(f"{s:>11}" for s in taxonomy.SOURCES))
    for c in cats:
        print(f"{c:<18}{out['by_category'][c]:>6}{out['by_category_train_split'][c]:>7}  "
              + "  ".join(f"{out['by_source'][s][c]:>11}" for s in taxonomy.SOURCES))
    print(f"file vs rule mismatches: {mismatch}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    return 1 if mismatch else 0


def _quartiles(xs: list[float]) -> list[float] | None:
    import numpy as np
    return [round(float(q), 3) for q in np.quantile(xs, [0, .25, .5, .75, 1])] if xs else None


if __name__ == "__main__":
    sys.exit(main())
