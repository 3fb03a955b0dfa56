"""Choose the evaluation judge's configuration by leaving one audit out (issue 22).

    python bench/judge_select.py          # phrases 1-3 x C 0.25-16 x weight 3-30, every labelled-answers file a fold
    # more labels of the same learners: every confirmatory answer labelled, one seed left out at a time
    python bench/judge_select.py --phrases 1 3 --c 4 --weight 10 --folds arms_dev arms_headline arms_devloops \
        --seed-folds bench/audit/arms_confirm bench/audit/arms_confirm_fresh bench/audit/arms_confirm_census

The judge must read the answers of learners it has never seen: a new seed's loop, a static arm trained another way.
So a candidate configuration (phrase features, the refusal head's regularisation, the weight of a hand-labelled
learner answer against an UncensorBench row) is fit with one labelled-answers file left out
(superalign.evaluation.judge_data.LABELLED: seed 0's DPO arms, seed 10's arms, seeds 1-2's loops, seeds 16-18's
arms) and scored on it; each file is one fold. A fold's score is the refusal head's accuracy on each arm's
harmful-prompt answers, weighed back to the arm's answers with the rows' `population_weight` (the audits sampled by
the old judge's verdict); the selection rule is the mean over folds of the worst arm's accuracy (the target is every
arm >= 0.95), ties to the mean accuracy. Look-alike answers are scored too and reported.

Never read here: `bench/audit/arms_confirm_fresh`, the audit that measures the chosen judge afterwards
(`python bench/eval_audit_arms.py --rejudge bench/audit/arms_confirm_fresh --phrases P --c-refusal C --train-on
...`). Not protected either: phrase features version 3 were written after reading the judge's errors on
`arms_confirm`, one of the folds, so a fold score of version 3 there is not held out; the fresh audit is (there
version 3 did worse than version 1 with the same sources and C: `arms_audit_fresh_v3_unseen`,
`arms_audit_fresh_v1_unseen` in bench/results/eval_audit.json). A held-out row whose text is among the training rows
is dropped, so a fold's weights then cover a little less than its arm's answers. Writes
bench/results/judge_select.json (keys `grid`, `chosen`; `seed_folds` with --seed-folds; others kept); prints counts,
never text.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "judge_select.json"
BASE_SOURCES = ["uncensorbench", "audit_dev"]


def weighted_accuracy(rows: list[dict], said: list[int]) -> dict:
    """Per arm and prompt kind: the refusal verdicts' accuracy, each row weighed by its population_weight."""
    acc: dict = defaultdict(lambda: [0.0, 0.0])
    for r, v in zip(rows, said):
        k = (r["arm"], r["prompt_kind"])
        acc[k][0] += r["population_weight"] * (v == r["refusal"])
        acc[k][1] += r["population_weight"]
    return {f"{a}|{p}": num / den for (a, p), (num, den) in sorted(acc.items())}


def fold_scores(cfg_kw: dict, folds: list[str]) -> dict:
    """Fit with each fold's file left out (every other labelled file in), score on that file."""
    from superalign.evaluation.judge import EvalJudge, JudgeConfig
    from superalign.evaluation.judge_data import SOURCES, training_rows
    out = {}
    for held in folds:
        cfg = JudgeConfig(train_on=BASE_SOURCES + [f for f in folds if f != held], **cfg_kw)
        train = training_rows(cfg)
        seen = {r["response"] for r in train}
        test = [r for r in SOURCES[held](cfg.audit_weight) if r["response"] not in seen]
        judge = EvalJudge(cfg).fit(train)
        said = [int(p >= 0.5) for p in judge.score([r["response"] for r in test])["refusal"]]
        acc = weighted_accuracy(test, said)
        harm = [v for k, v in acc.items() if k.endswith("|harmful")]
        misread = sum(s != r["refusal"] for s, r in zip(said, test))
        out[held] = {"n": len(test), "accuracy": acc, "worst_harmful": min(harm),
                     "mean": sum(acc.values()) / len(acc), "misread": misread}
    return out


def seed_folds(cfg_kw: dict, dirs: list[Path], sources: list[str]) -> dict:
    """Leave one seed out of the audit folders' labelled answers: fit on `sources` plus the other seeds' answers,
    score the held-out seed's, per arm and prompt kind. The folders must together hold every answer of their run
    once (an audit, the audits after it and a census), so each row counts once (an answer in two folders stops it).
    A seed's learners are learners the judge has not seen, so this is what more labels of the same kind buy on a
    new seed."""
    from superalign.evaluation.judge import EvalJudge, JudgeConfig
    from superalign.evaluation.judge_data import training_row, training_rows
    sys.path.insert(0, str(ROOT / "bench"))
    from eval_audit_arms import labelled_rows
    cfg = JudgeConfig(train_on=sources, **cfg_kw)
    base = training_rows(cfg)
    rows = [{**training_row(r, "seed_folds", cfg.audit_weight), "population_weight": 1.0,
             "item": (r["arm"], r["seed"], r["item"])} for r in labelled_rows(dirs)]
    if len({r["item"] for r in rows}) < len(rows):
        sys.exit("an answer is in more than one of the --seed-folds audits: name each answer's audit once")
    out = {}
    for held in sorted({r["seed"] for r in rows}):
        test = [r for r in rows if r["seed"] == held]
        judge = EvalJudge(cfg).fit(base + [r for r in rows if r["seed"] != held])
        said = [int(p >= 0.5) for p in judge.score([r["response"] for r in test])["refusal"]]
        out[str(held)] = {"n": len(test), "accuracy": weighted_accuracy(test, said)}
    return out


def main() -> None:
    from superalign.evaluation.judge_data import LABELLED
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phrases", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--c", type=float, nargs="+", default=[0.25, 1.0, 4.0, 16.0], help="the refusal head's C")
    ap.add_argument("--weight", type=float, nargs="+", default=[3.0, 10.0, 30.0], help="a labelled answer's weight")
    ap.add_argument("--folds", nargs="+", default=list(LABELLED), choices=list(LABELLED))
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--seed-folds", type=Path, nargs="+", metavar="AUDIT",
                    help="instead: leave one seed of these scored audit folders out, for each --phrases (with the "
                         "first --c and --weight), training on --folds' files too")
    a = ap.parse_args()
    if a.seed_folds:
        res = {}
        for ph in a.phrases:
            kw = {"phrases": ph, "C_refusal": a.c[0], "audit_weight": a.weight[0]}
            folds = seed_folds(kw, a.seed_folds, BASE_SOURCES + a.folds)
            res[f"phrases{ph}"] = {**kw, "seeds": folds}
            for seed, f in folds.items():
                print(f"phrases {ph}, seed {seed} left out (n={f['n']}): "
                      + ", ".join(f"{k} {v:.3f}" for k, v in f["accuracy"].items()), flush=True)
        old = json.loads(a.results.read_text()) if a.results.exists() else {}
        old["seed_folds"] = {"audits": [str(d) for d in a.seed_folds], "trained_also_on": BASE_SOURCES + a.folds,
                             **res}
        a.results.write_text(json.dumps(old, indent=2) + "\n")
        print(f"wrote seed_folds into {a.results}")
        return
    grid = []
    print(f"folds (each left out in turn): {', '.join(a.folds)}")
    print(f"{'phrases':>7} {'C':>5} {'weight':>6}  " + "  ".join(f"{f[:13]:>13}" for f in a.folds)
          + f"  {'mean worst':>10} {'mean':>6}")
    for ph, c, w in itertools.product(a.phrases, a.c, a.weight):
        kw = {"phrases": ph, "C_refusal": c, "audit_weight": w}
        folds = fold_scores(kw, a.folds)
        row = {**kw, "folds": folds, "mean_worst_harmful": sum(f["worst_harmful"] for f in folds.values()) / len(folds),
               "mean_accuracy": sum(f["mean"] for f in folds.values()) / len(folds)}
        grid.append(row)
        print(f"{ph:>7} {c:>5g} {w:>6g}  " + "  ".join(f"{folds[f]['worst_harmful']:>13.3f}" for f in a.folds)
              + f"  {row['mean_worst_harmful']:>10.3f} {row['mean_accuracy']:>6.3f}", flush=True)
    best = max(grid, key=lambda r: (r["mean_worst_harmful"], r["mean_accuracy"]))
    print(f"chosen: phrases {best['phrases']}, C_refusal {best['C_refusal']:g}, audit_weight {best['audit_weight']:g} "
          f"(mean over folds of the worst arm's harmful-prompt accuracy {best['mean_worst_harmful']:.3f})")
    for f, v in best["folds"].items():
        print(f"  left out {f:<14} n={v['n']:<4} misread {v['misread']:<3} "
              + ", ".join(f"{k} {x:.3f}" for k, x in v["accuracy"].items()))
    a.results.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(a.results.read_text()) if a.results.exists() else {}
    old.update({"folds": a.folds, "base_sources": BASE_SOURCES, "grid": grid,
                "chosen": {k: best[k] for k in ("phrases", "C_refusal", "audit_weight")},
                "rule": "max mean over folds of the worst arm's harmful-prompt accuracy"})
    a.results.write_text(json.dumps(old, indent=2) + "\n")
    print(f"wrote {a.results.relative_to(ROOT) if a.results.is_relative_to(ROOT) else a.results}")


if __name__ == "__main__":
    main()
