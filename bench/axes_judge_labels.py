"""More training labels for a value axis's judge: two independent labelling passes over answers to training-source
prompts, their agreement, and the agreed (or adjudicated) labels appended to the judges' training file.

    python bench/axes_audit_build.py --more-dev 4 --axes sycophancy --eval-wording --states \
        --adapters runs/bench-axes-ablation/default/seed0/multi ...      # answers (development-seed learners)
    # bench/audit/axes_dev_4_to_label.jsonl (neutral ids) and axes_dev_4_key.jsonl are made from them; two
    # labellers write axes_dev_4_pass1.jsonl / _pass2.jsonl; disagreements are adjudicated in _adjudicated.jsonl
    python bench/axes_judge_labels.py --k 4                 # kappa, disagreements; checks, writes nothing
    python bench/axes_judge_labels.py --k 4 --write         # appends the rows to superalign/data/files/axes_judge_v1.jsonl

Why two passes here, where the first training labels had one: the judges these labels train are audited against
two-pass labels, and a labelling slip in training data is an error the audit then measures as the judge's.
Prints counts and kappa, never answer text. Refuses: a pass missing an id, a label outside the axis's labels, a
disagreement left unadjudicated, and ids already in the training file (bench/axes_audit_build.py refuses a
headline-seed run's adapter, so loop-trained states come from development seeds only).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from superalign.values import judges  # noqa: E402

AUDIT = ROOT / "bench" / "audit"
DATA = ROOT / "superalign" / "data" / "files" / judges.FILE


def read(p: Path) -> list[dict]:
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()] if p.exists() else []


def merged(k: int) -> tuple[list[dict], dict]:
    """The answers of round set `k` with their agreed labels, and the agreement statistics."""
    answers = {r["id"]: r for r in read(AUDIT / f"axes_dev_answers_{k}.jsonl")}
    key = {r["id"]: r["dev_id"] for r in read(AUDIT / f"axes_dev_{k}_key.jsonl")}
    p1, p2 = ({r["id"]: r["label"] for r in read(AUDIT / f"axes_dev_{k}_pass{i}.jsonl")} for i in (1, 2))
    adj = {r["id"]: r["label"] for r in read(AUDIT / f"axes_dev_{k}_adjudicated.jsonl")}
    if not key or set(key.values()) - set(answers):
        sys.exit(f"axes_dev_{k}_key.jsonl is missing or names answers axes_dev_answers_{k}.jsonl lacks")
    for name, p in (("pass1", p1), ("pass2", p2)):
        if set(p) != set(key):
            sys.exit(f"axes_dev_{k}_{name}.jsonl labels {len(p)} of {len(key)} ids: every id once, please")
    ids = sorted(key)
    axis = {answers[key[i]]["axis"] for i in ids}
    if len(axis) != 1:
        sys.exit(f"one axis per labelling set, got {sorted(axis)}")
    (ax,) = axis
    bad = [i for i in ids for p in (p1, p2, adj) if i in p and p[i] not in judges.LABELS[ax]]
    if bad:
        sys.exit(f"{bad[0]}: a label outside {judges.LABELS[ax]}")
    split = [i for i in ids if p1[i] != p2[i]]
    open_ = [i for i in split if i not in adj]
    rows = []
    for i in ids:
        a = answers[key[i]]
        label = adj.get(i) if i in split else p1[i]
        rows.append({**a, "label": label, "labeller": "helper-sessions-2-passes" + ("+adjudicated" if i in split else "")})
    from sklearn.metrics import cohen_kappa_score
    stats = {"axis": ax, "n": len(ids), "kappa": float(cohen_kappa_score([p1[i] for i in ids], [p2[i] for i in ids])),
             "agree": len(ids) - len(split), "disagreements": len(split), "unadjudicated": open_,
             "labels": dict(Counter(r["label"] for r in rows)),
             "by_state": {s: dict(Counter(r["label"] for r in rows if r["model_state"] == s))
                          for s in sorted({r["model_state"] for r in rows})}}
    return rows, stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, required=True, help="the round set of bench/audit/axes_dev_answers_K.jsonl")
    ap.add_argument("--write", action="store_true", help="append the labelled rows to the judges' training file")
    a = ap.parse_args()
    rows, st = merged(a.k)
    print(f"{st['axis']}: {st['n']} answers, two passes agree on {st['agree']} (kappa {st['kappa']:.3f}), "
          f"{st['disagreements']} disagreements, {len(st['unadjudicated'])} not yet adjudicated")
    print(f"labels {st['labels']}; per model state {st['by_state']}")
    if st["unadjudicated"]:
        (AUDIT / f"axes_dev_{a.k}_disagreements.jsonl").write_text(
            "".join(json.dumps({"id": i}) + "\n" for i in st["unadjudicated"]))
        sys.exit(f"adjudicate bench/audit/axes_dev_{a.k}_disagreements.jsonl into axes_dev_{a.k}_adjudicated.jsonl")
    if not a.write:
        return
    have = {r["id"] for r in read(DATA)}
    dup = [r["id"] for r in rows if r["id"] in have]
    if dup:
        sys.exit(f"{len(dup)} rows are already in {DATA.name} (e.g. {dup[0]}): nothing written")
    with DATA.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    print(f"appended {len(rows)} rows to {DATA.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
