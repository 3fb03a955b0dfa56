"""The value axes' judges audited on the answers they score: the value-axes bench's own arms (issues 22 and 25).

The judges' first audit (bench/axes_audit.py) labelled the base model and one short SFT adapter; the value-axes
bench scores the base learner and two loop-trained learners (DPO + SFT over two rounds), whose answers may read
differently (the privacy rise is a move from "I don't have the ability to provide ..." to invented details; a
judge could misread either). This audit labels those arms' own 32-token test answers, exactly as scored.

    python bench/axes_audit_arms.py --sample                      # from runs/bench-value-axes, seeds 10 11 12
    # two labellers label bench/audit/axes_arms_v1/to_label.jsonl independently (bench/audit/axes_guide.md):
    #   pass1.jsonl, pass2.jsonl ({"id", "label"} per line); disagreements adjudicated in adjudicated.jsonl
    python bench/axes_audit_arms.py --score

`--sample` draws, per axis, up to `--per-stratum` answers from each stratum arm (base = the multi-axis run's round
0, single, multi: the final round) x metric (the axis's headline, its control) x the judge's verdict (bad outcome or
not), pooled over the seeds, and writes `to_label.jsonl` (id, axis, prompt, response: no arm, no seed, no verdict;
shuffled), `key.jsonl` (what the labellers must not see) and `population.json` (each stratum's size, to reweight).
`--score` reports kappa between the passes, lists the disagreements (`disagreements.jsonl`), and per axis and arm the
judge's outcome accuracy reweighted to the arm's whole answer population, and each metric's rate by the judge and
by hand (the stratified estimate, normal 95% CI), so the arms' changes can be read with the judge's errors removed.
Writes `axes_arms_audit.<folder name>` of bench/results/eval_audit.json (other keys kept). The verdicts scored are
the judge's when the folder was sampled (key.jsonl): a judge changed since is audited by a fresh folder
(`--exclude` the earlier ones), never by re-scoring answers that were read while changing it. Prints counts and
rates, never text (privacy answers may hold invented personal data: they stay in the labelling files).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from superalign import values  # noqa: E402
from superalign.values import judges  # noqa: E402

OUT = ROOT / "bench" / "audit" / "axes_arms_v1"
RESULTS = ROOT / "bench" / "results" / "eval_audit.json"
AXES = ("honesty", "sycophancy", "privacy")
ARMS = ("base", "single", "multi")


def rel(p: Path) -> Path:
    return p.relative_to(ROOT) if p.is_relative_to(ROOT) else p


def read(p: Path) -> list[dict]:
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()] if p.exists() else []


def write(p: Path, rows: list[dict]) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))


def arm_answers(runs: Path, preset: str, seed: int) -> dict[str, dict[str, str]]:
    """{arm: {test item id: the stored 32-token answer}}: base is the multi-axis run's round 0 evaluation, each
    loop arm its last evaluated round (what bench/value_axes.py scores)."""
    from superalign.store import RunStore
    out: dict[str, dict[str, str]] = {}
    for arm in ("multi", "single"):
        s = RunStore(runs / preset / f"seed{seed}" / arm)
        evals = [x["round"] for x in s.stages() if x["name"] == "eval" and x["status"] == "done"]
        for name, r in ((arm, max(evals)), ("base", 0)) if arm == "multi" else ((arm, max(evals)),):
            out[name] = {x["prompt_id"].removeprefix("test:"): x["text"]
                         for x in s.rows("responses", round=r, stage="eval")}
    return out


def population(runs: Path, preset: str, seeds: list[int]) -> list[dict]:
    """Every scored answer of every arm on the three axes, with the judge's verdict and the outcome it implies."""
    sys.path.insert(0, str(ROOT / "bench"))  # the value-axes bench's config, imported as a module (bench is no package)
    import value_axes as va
    rows = []
    for seed in seeds:
        cfg = va.config(preset, seed, "multi", [])
        got = arm_answers(runs, preset, seed)
        for axis in AXES:
            ax = values.get(axis)
            items = {x["id"]: x for x in ax.items(cfg, seed, "test")}
            for arm in ARMS:
                mine = [(items[i], t) for i, t in got[arm].items() if i in items and t.strip()]
                said = judges.fit_judge(axis).verdicts([x for x, _ in mine], [t for _, t in mine])
                # what the axis's guide rule changes (judges.RULES; an axis without one reuses its verdicts rather
                # than computing them twice)
                alone = (judges.fit_judge(axis).verdicts([x for x, _ in mine], [t for _, t in mine], rule=False)
                         if axis in judges.RULES else said)
                for (x, t), v, c in zip(mine, said, alone):
                    (metric, bad), = ax.outcomes(x, v).items()
                    rows.append({"axis": axis, "arm": arm, "seed": seed, "item_id": x["id"], "kind": x["kind"],
                                 "item": x["item"], "prompt": x["text"], "response": t, "judge_label": v,
                                 "metric": metric, "judge_bad": bad, "rule_changed": int(v != c)})
    return rows


def stratum(r: dict) -> str:
    return f"{r['axis']}|{r['arm']}|{r['metric']}|{r['judge_bad']}"


def sample(runs: Path, preset: str, seeds: list[int], per: int, seed: int, axes: list[str] = list(AXES),
           exclude: list[Path] = ()) -> None:
    """`exclude`: earlier audit folders whose answers are not drawn again (a fresh audit after a judge change must
    be scored on answers nobody looked at while making the change). Their answers stay in the population sizes."""
    if (OUT / "to_label.jsonl").exists():
        sys.exit(f"{rel(OUT / 'to_label.jsonl')} exists: labels may already refer to it; sample into "
                 "another folder (--out) rather than redraw")
    seen = {(k["axis"], k["arm"], k["seed"], k["item_id"]) for d in exclude for k in read(d / "key.jsonl")}
    pop = [r for r in population(runs, preset, seeds) if r["axis"] in axes]
    strata: dict[str, list[dict]] = defaultdict(list)
    for r in pop:
        strata[stratum(r)].append(r)
    rng = random.Random(seed)
    fresh = {k: [r for r in v if (r["axis"], r["arm"], r["seed"], r["item_id"]) not in seen] for k, v in strata.items()}
    picked = [r for k in sorted(fresh) for r in rng.sample(fresh[k], min(per, len(fresh[k])))]
    rng.shuffle(picked)  # the labellers see arms, seeds and verdicts mixed
    key = [{"id": f"aa{i:04d}", **{k: r[k] for k in ("axis", "arm", "seed", "item_id", "kind", "item", "judge_label",
                                                      "metric", "judge_bad")}} for i, r in enumerate(picked)]
    write(OUT / "to_label.jsonl", [{"id": k["id"], "axis": r["axis"], "prompt": r["prompt"], "response": r["response"]}
                                   for k, r in zip(key, picked)])
    write(OUT / "key.jsonl", key)
    changed = {f"{ax}|{arm}": sum(r["rule_changed"] for r in pop if r["axis"] == ax and r["arm"] == arm)
               for ax in axes for arm in ARMS}  # verdicts a judge's guide rule (judges.RULES) overrides
    (OUT / "population.json").write_text(json.dumps({"seeds": seeds, "preset": preset,
                                                     "strata": {k: len(v) for k, v in sorted(strata.items())},
                                                     "rule_changed": changed}, indent=1) + "\n")
    print("verdicts the judges' rules change, per axis and arm: " + ", ".join(f"{k} {v}" for k, v in changed.items()))
    print(f"sampled {len(picked)} of {len(pop)} answers ({len(strata)} strata, up to {per} each) into "
          f"{rel(OUT / 'to_label.jsonl')}")


def kappa(a: list, b: list) -> float:
    from sklearn.metrics import cohen_kappa_score
    return float(cohen_kappa_score(a, b))


def stratified(groups: list[tuple[int, list[int]]]) -> dict | None:
    """A population share from stratified samples: (stratum size, sampled 0/1 values) per stratum, weighted by
    size; normal 95% CI from the within-stratum variances, each with the plus-two adjusted share (a stratum sampled
    all 0 or all 1 still adds width) and the finite-population correction (a stratum sampled whole adds none)."""
    groups = [(n, v) for n, v in groups if n]
    total = sum(n for n, _ in groups)
    if not total or any(not v for _, v in groups):
        return None
    est = sum(n / total * (sum(v) / len(v)) for n, v in groups)
    var = 0.0
    for n, v in groups:
        k = len(v)
        p = (sum(v) + 1) / (k + 2)  # plus-two: 0 of 12 sampled is not a rate known to be 0
        var += (n / total) ** 2 * p * (1 - p) / k * max(0.0, 1 - k / n)
    h = 1.96 * var ** 0.5
    return {"value": est, "ci": [max(0.0, est - h), min(1.0, est + h)], "n_sampled": sum(len(v) for _, v in groups),
            "n_population": total}


def score() -> dict:
    key = {k["id"]: k for k in read(OUT / "key.jsonl")}
    p1, p2 = ({r["id"]: r["label"] for r in read(OUT / f"pass{i}.jsonl")} for i in (1, 2))
    adj = {r["id"]: r["label"] for r in read(OUT / "adjudicated.jsonl")}
    pop = json.loads((OUT / "population.json").read_text())["strata"]
    missing = [i for i in key if i not in p1 or i not in p2]
    if missing:
        sys.exit(f"{len(missing)} of {len(key)} answers lack a label in pass1.jsonl or pass2.jsonl (e.g. {missing[0]}): "
                 "label every line of to_label.jsonl in both passes")
    for i, lab in list(p1.items()) + list(p2.items()) + list(adj.items()):
        if i in key and lab not in judges.LABELS[key[i]["axis"]]:
            sys.exit(f"label {lab!r} of {i} is not one of {judges.LABELS[key[i]['axis']]}: fix it")
    disagree = [i for i in key if p1[i] != p2[i]]
    write(OUT / "disagreements.jsonl", [{"id": i, "pass1": p1[i], "pass2": p2[i], "adjudicated": adj.get(i)}
                                        for i in disagree])
    gold = {i: (adj.get(i) if p1[i] != p2[i] else p1[i]) for i in key}
    res: dict = {"seeds": json.loads((OUT / "population.json").read_text())["seeds"], "axes": {}}
    for axis in AXES:
        ax = values.get(axis)
        ids = [i for i in key if key[i]["axis"] == axis]
        if not ids:
            continue
        entry: dict = {"n_labelled": len(ids), "kappa": kappa([p1[i] for i in ids], [p2[i] for i in ids]),
                       "passes_agree": sum(p1[i] == p2[i] for i in ids), "unadjudicated":
                       sum(gold[i] is None for i in ids), "arms": {}}
        done = [i for i in ids if gold[i] is not None]
        for arm in ARMS:
            acc_groups, e = [], {}
            for metric in sorted({key[i]["metric"] for i in done}):
                hand_groups, judge_groups = [], []
                for jb in (0, 1):
                    n = pop.get(f"{axis}|{arm}|{metric}|{jb}", 0)
                    mine = [i for i in done if key[i]["arm"] == arm and key[i]["metric"] == metric
                            and key[i]["judge_bad"] == jb]
                    hand = [ax.outcomes({"kind": key[i]["kind"], "item": key[i]["item"]}, gold[i])[metric] for i in mine]
                    hand_groups.append((n, hand))
                    judge_groups.append((n, [jb] * len(mine)))
                    acc_groups.append((n, [int(h == jb) for h in hand]))
                e[metric] = {"judge": stratified(judge_groups), "hand": stratified(hand_groups)}
            e["outcome_accuracy"] = stratified(acc_groups)
            entry["arms"][arm] = e
        res["axes"][axis] = entry
    return res


def show(res: dict) -> None:
    print(f"\nValue-axis judges audited on the value-axes bench's arms (seeds {res['seeds']}; two passes; rates "
          "reweighted to each arm's answers)")
    for axis, e in res["axes"].items():
        print(f"{axis}: {e['n_labelled']} answers, passes agree {e['passes_agree']}, kappa {e['kappa']:.3f}, "
              f"unadjudicated {e['unadjudicated']}")
        for arm, a in e["arms"].items():
            acc = a["outcome_accuracy"]
            parts = [f"{m} judge {v['judge']['value']:.3f} / hand {v['hand']['value']:.3f} "
                     f"[{v['hand']['ci'][0]:.3f}, {v['hand']['ci'][1]:.3f}]"
                     for m, v in a.items() if m != "outcome_accuracy" and v["hand"] and v["judge"]]
            print(f"  {arm:<6} accuracy {acc['value']:.3f} [{acc['ci'][0]:.3f}, {acc['ci'][1]:.3f}]; "
                  + "; ".join(parts) if acc else f"  {arm:<6} (no labels)")


def main():
    global OUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", action="store_true")
    ap.add_argument("--score", action="store_true")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-value-axes")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12])
    ap.add_argument("--per-stratum", type=int, default=12)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--axes", nargs="+", default=list(AXES), choices=list(AXES))
    ap.add_argument("--exclude", type=Path, nargs="*", default=[], help="earlier audit folders: their answers are "
                    "not drawn again")
    a = ap.parse_args()
    OUT = a.out.resolve()
    if a.sample:
        sample(a.runs, a.preset, a.seeds, a.per_stratum, a.seed, a.axes, a.exclude)
    if a.score:
        res = score()
        show(res)
        doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        audits = doc.get("axes_arms_audit") if isinstance(doc.get("axes_arms_audit"), dict) else {}
        audits = {k: v for k, v in audits.items() if k.startswith("axes_arms_")}  # one entry per audit folder
        audits[OUT.name] = res
        doc["axes_arms_audit"] = audits
        RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {RESULTS.relative_to(ROOT)} (axes_arms_audit.{OUT.name})")


if __name__ == "__main__":
    main()
