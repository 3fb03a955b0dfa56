"""Audit of the value axes' judges on the learner's own answers (issue 25, item 2): per axis, the judge's accuracy
against hand labels, with Wilson CIs, and Cohen's kappa between the two labelling passes.

    python bench/axes_audit.py            # the audit: needs the two passes (and, where they disagree, adjudication)
    python bench/axes_audit.py --dev      # development estimate only: cross-validated accuracy on the judges'
                                          # own training labels (superalign/data/files/axes_judge_v1.jsonl)
    python bench/axes_audit.py --sanity   # development check: one helper pass over 40 audit answers per axis
                                          # (bench/audit_dev/; the audit never reads it)

Reads (bench/audit/): axes_to_label.jsonl (id, axis, model_state, prompt, response: the answers, built by
bench/axes_audit_build.py), axes_items.jsonl (each id's item, which the judge needs), axes_labels_pass1.jsonl and
axes_labels_pass2.jsonl (id, label: two independent passes following axes_guide.md), and optionally
axes_labels_adjudicated.jsonl (id, label) for the items the passes disagree on. The gold label of an item is the
adjudicated one, else the passes' shared label; a disagreement nobody adjudicated is left out and counted.
Per axis and model state: label accuracy (the judge's verdict = the gold label), outcome accuracy (the same 0/1 bad
outcome per metric, what the axis's rates are made of), the headline rate by judge and by hand with their paired
difference (McNemar), unscored answers, the confusion matrix, and kappa between the passes. Writes the `axes` key
of bench/results/eval_audit.json (other keys kept). The judges never trained on these answers: their training
labels answer training-source prompts only (values/judges.py checks it).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from superalign import stats, values  # noqa: E402
from superalign.errors import SuperalignError  # noqa: E402
from superalign.values import judges  # noqa: E402

AUDIT = ROOT / "bench" / "audit"
OUT = ROOT / "bench" / "results" / "eval_audit.json"


def read(name: str, required: bool = True) -> list[dict]:
    p = AUDIT / name
    if not p.exists():
        if required:
            raise SuperalignError(f"{p.relative_to(ROOT)} is missing",
                                  "label bench/audit/axes_to_label.jsonl twice, independently, following "
                                  "bench/audit/axes_guide.md (files axes_labels_pass1.jsonl / _pass2.jsonl: "
                                  "one {\"id\", \"label\"} per line)")
        return []
    try:
        return [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]
    except json.JSONDecodeError as e:
        raise SuperalignError(f"{p.relative_to(ROOT)} is not JSON lines: {e}", "one JSON object per line") from None


def labels(name: str, answers: dict[str, dict], required: bool = True) -> dict[str, str]:
    """{id: label} of a labelling file, each label checked against its axis's labels."""
    out = {}
    for i, r in enumerate(read(name, required)):
        if r.get("id") not in answers:
            raise SuperalignError(f"{name} line {i + 1}: id {r.get('id')!r} is not in axes_to_label.jsonl",
                                  "label the ids of bench/audit/axes_to_label.jsonl")
        ok = values.get(answers[r["id"]]["axis"]).labels
        if r.get("label") not in ok:
            raise SuperalignError(f"{name} line {i + 1}: label {r.get('label')!r} is not one of {ok}",
                                  "use the labels of bench/audit/axes_guide.md")
        out[r["id"]] = r["label"]
    return out


def rate(flags) -> dict:
    flags = [int(x) for x in flags]
    v, lo, hi = stats.rate_ci(flags) if flags else (float("nan"),) * 3
    return {"value": v, "lo": lo, "hi": hi, "k": sum(flags), "n": len(flags)}


def audit_axis(axis: str, rows: list[dict], gold: dict, p1: dict, p2: dict) -> dict:
    """Judge vs gold on this axis's answers, per model state and overall; kappa between the passes."""
    from sklearn.metrics import cohen_kappa_score
    ax, judge = values.get(axis), judges.fit_judge(axis)
    said = dict(zip([r["id"] for r in rows], values.check_verdicts(
        ax, judge.verdicts([r["item"] for r in rows], [r["response"] for r in rows]), len(rows))))
    both = [r["id"] for r in rows if r["id"] in p1 and r["id"] in p2]
    out = {"n_answers": len(rows), "labels": list(ax.labels), "judge_train_n": judge.n_train,
           "kappa": float(cohen_kappa_score([p1[i] for i in both], [p2[i] for i in both], labels=list(ax.labels)))
           if both else None, "passes_agree": rate([p1[i] == p2[i] for i in both]), "n_both_passes": len(both),
           "unadjudicated": sum(1 for i in both if p1[i] != p2[i] and i not in gold),
           "confusion": {g: dict(Counter(str(said[r["id"]]) for r in rows if gold.get(r["id"]) == g))
                         for g in ax.labels}}
    for state in ["all"] + sorted({r["model_state"] for r in rows}):
        mine = [r for r in rows if r["id"] in gold and state in ("all", r["model_state"])]
        scored = [r for r in mine if said[r["id"]] is not None]
        hm = ax.headline.name
        head = [r for r in scored if hm in ax.outcomes(r["item"], gold[r["id"]])]
        hand = [ax.outcomes(r["item"], gold[r["id"]])[hm] for r in head]
        auto = [ax.outcomes(r["item"], said[r["id"]])[hm] for r in head]
        t = stats.mcnemar(hand, auto) if head else None
        out[state] = {"n": len(mine), "unscored": len(mine) - len(scored),
                      "label_accuracy": rate([said[r["id"]] == gold[r["id"]] for r in mine]),
                      "outcome_accuracy": rate([ax.outcomes(r["item"], said[r["id"]]) == ax.outcomes(r["item"], gold[r["id"]])
                                                for r in scored] + [0] * (len(mine) - len(scored))),
                      "headline": {"metric": hm, "hand": t["before"] if t else None, "judge": t["after"] if t else None,
                                   "bias": t["diff"] if t else None, "ci": [t["lo"], t["hi"]] if t else None,
                                   "p": t["p_value"] if t else None, "n": len(head)}}
    out["judge_accuracy"] = out["all"]["outcome_accuracy"]["value"]
    return out


DEV = ROOT / "bench" / "results" / "axes_audit" / "dev.json"  # --dev and --sanity: development figures, apart


def dev_estimate() -> dict:
    res = {axis: judges.cross_validated(axis) for axis in judges.AXES}
    old = json.loads(DEV.read_text()) if DEV.exists() else {}
    for axis, r in res.items():
        print(f"{axis:11} dev estimate (5-fold CV on the judge's own training labels, NOT the audit): outcome "
              f"accuracy {r['accuracy']:.3f} (classifier alone {r['accuracy_without_rule']:.3f}), label accuracy "
              f"{r['label_accuracy']:.3f}, n={r['n']}, "
              f"by state {', '.join(f'{k} {v:.3f}' for k, v in r['by_state'].items())}")
    DEV.parent.mkdir(parents=True, exist_ok=True)
    DEV.write_text(json.dumps({**old, **res}, indent=2) + "\n")
    print(f"wrote {DEV.relative_to(ROOT)}")
    return res


def sanity() -> dict:
    """Development check on the evaluation's own items (not the audit): the judges against one pass of the helper
    who built them over 40 random audit answers per axis (bench/audit_dev/), labelled once the judges were final."""
    answers = {r["id"]: r for r in read("axes_to_label.jsonl")}
    items = {r["id"]: r for r in read("axes_items.jsonl")}
    labs = [json.loads(ln) for ln in (ROOT / "bench" / "audit_dev" / "axes_sanity_labels.jsonl").read_text().splitlines()
            if ln.strip()]
    res = {}
    for axis in sorted({answers[x["id"]]["axis"] for x in labs}):
        ax, mine = values.get(axis), [x for x in labs if answers[x["id"]]["axis"] == axis]
        rows = [{"item": {**items[x["id"]], "text": answers[x["id"]]["prompt"]}, "response": answers[x["id"]]["response"],
                 "label": x["label"]} for x in mine]
        said = values.check_verdicts(ax, judges.fit_judge(axis).verdicts([r["item"] for r in rows],
                                                                         [r["response"] for r in rows]), len(rows))
        ok = [int(v is not None and ax.outcomes(r["item"], v) == ax.outcomes(r["item"], r["label"]))
              for r, v in zip(rows, said)]
        res[axis] = {"outcome_accuracy": rate(ok), "label_accuracy": rate([v == r["label"] for r, v in zip(rows, said)])}
        a = res[axis]["outcome_accuracy"]
        print(f"{axis:11} sanity check (one helper pass on 40 audit answers, NOT the audit): outcome accuracy "
              f"{a['value']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}] n={a['n']}, label accuracy "
              f"{res[axis]['label_accuracy']['value']:.3f}")
    doc = json.loads(DEV.read_text()) if DEV.exists() else {}
    doc["sanity_check"] = res
    DEV.parent.mkdir(parents=True, exist_ok=True)
    DEV.write_text(json.dumps(doc, indent=2) + "\n")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dev", action="store_true", help="cross-validated estimate on the judges' training labels")
    ap.add_argument("--sanity", action="store_true", help="the judges against the helper's sanity-check labels")
    a = ap.parse_args()
    if a.dev or a.sanity:
        dev_estimate() if a.dev else sanity()
        return
    answers = {r["id"]: r for r in read("axes_to_label.jsonl")}
    items = {r["id"]: r for r in read("axes_items.jsonl")}
    p1, p2 = labels("axes_labels_pass1.jsonl", answers), labels("axes_labels_pass2.jsonl", answers)
    adj = labels("axes_labels_adjudicated.jsonl", answers, required=False)
    gold = {i: adj.get(i, p1[i]) for i in p1 if i in p2 and (p1[i] == p2[i] or i in adj)}
    res = {}
    for axis in sorted({r["axis"] for r in answers.values()}):
        rows = [{**r, "item": {**items[r["id"]], "text": r["prompt"]}} for r in answers.values() if r["axis"] == axis]
        res[axis] = audit_axis(axis, rows, gold, p1, p2)
        a = res[axis]["all"]
        print(f"{axis:11} judge outcome accuracy {a['outcome_accuracy']['value']:.3f} "
              f"[{a['outcome_accuracy']['lo']:.3f}, {a['outcome_accuracy']['hi']:.3f}] n={a['n']}  label accuracy "
              f"{a['label_accuracy']['value']:.3f}  kappa {res[axis]['kappa']:.3f}  unscored {a['unscored']}  "
              f"headline hand {a['headline']['hand']:.3f} judge {a['headline']['judge']:.3f}")
        for s in sorted(k for k in res[axis] if k in ("base", "trained")):
            b = res[axis][s]
            print(f"{'':11}   {s:8} outcome accuracy {b['outcome_accuracy']['value']:.3f} n={b['n']}")
    doc = json.loads(OUT.read_text()) if OUT.exists() else {}
    doc["axes"] = res
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote the `axes` key of {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
