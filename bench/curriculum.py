"""Does gap annealing change what the learner learns, or only where the attacker looks? (issue 23)

`bench/attack_aim.py` showed the curriculum moves round 2's attacks (which harm categories and styles are sampled).
This bench asks the next question: per seed, two loops identical but for `loop.curriculum.kind` (`anneal`, the
default, and `flat`), run side by side at one thread each, compared item by item on the same held-out test items
after every round: compliance (all, direct, templated, per harm category), look-alike and easy over-refusal,
competence, meaningful help and the value axes; exact McNemar tests (flat - anneal), pooled over seeds' items and
paired within each seed, and per seed. Round 1 admits every cell under both schedules, so
its outcomes must agree: the bench counts the items where they do not (the noise floor of running the same loop
twice). Each loop is `bench/loop_efficacy.py` with no static arm; its item-level outcomes are kept beside the results
(`curriculum/{anneal,flat}_seedS/seedS.outcomes.json`), so the analysis re-runs without the loops.

    python bench/curriculum.py                  # development seeds 1 and 2 pooled, 2 rounds (two loops a seed)
    python bench/curriculum.py --seeds 1 --results bench/results/curriculum/seed1.json     # one seed alone

A development-seed measurement (a design question, not a headline claim): no headline seed is used. Prints rates
and counts, never a prompt or an answer; writes bench/results/curriculum.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from superalign import stats  # noqa: E402
from superalign.loop import efficacy as E  # noqa: E402

KINDS = ("anneal", "flat")
METRICS = ("compliance", "over_refusal", "over_refusal_easy", "harmful_help", "competence")
AXES = ("honesty", "honesty_control", "sycophancy", "sycophancy_control", "privacy", "privacy_control")
OUT = ROOT / "bench" / "results"


def kept(a, kind: str) -> Path:
    """The results file `bench/loop_efficacy.py` writes for one schedule; its outcomes folder sits beside it."""
    return OUT / "curriculum" / f"{kind}_seed{a.seed}.json"


def outcomes_file(a, kind: str) -> Path:
    return kept(a, kind).with_suffix("") / f"seed{a.seed}.outcomes.json"


def command(a, kind: str) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / "loop_efficacy.py"), "--dev", "--seeds", str(a.seed),
            "--grid", "small", "--only-arms", "--rounds-curve", "--curve-rounds", str(a.rounds),
            "--round", str(a.rounds), "--no-curve-static", "--set", f"loop.curriculum.kind={kind}",
            "--out", str(Path(a.out) / kind), "--results", str(kept(a, kind))]


def run_loops(a) -> None:
    """Each seed's two loops at once, one thread each (2 cores; docs/scale.md), each logging beside the run folders;
    a seed whose outcomes are kept is not run again."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for seed in a.seeds:
        b = argparse.Namespace(**{**vars(a), "seed": seed})
        procs = []
        for kind in KINDS:
            if outcomes_file(b, kind).exists():
                continue
            Path(a.out).mkdir(parents=True, exist_ok=True)
            log = open(Path(a.out) / f"{kind}_seed{seed}.log", "a")
            print(f"running the {kind} loop (seed {seed}, {a.rounds} rounds; log {log.name})", file=sys.stderr)
            procs.append((kind, subprocess.Popen(command(b, kind), env=env, stdout=log, stderr=subprocess.STDOUT)))
        failed = [k for k, p in procs if p.wait() != 0 or not outcomes_file(b, k).exists()]
        if failed:
            sys.exit(f"seed {seed}'s {', '.join(failed)} loop did not finish: see {a.out}/<kind>_seed{seed}.log, then "
                     f"run this again (finished rounds are kept in {a.out})")


def by_round(arms: dict, rounds: int) -> dict[int, dict]:
    """{round: outcomes}: 0 the untrained learner, then each round's adapter (the curve's records)."""
    out, curve = {0: arms["base"]["outcomes"]}, arms.get("curve", {})
    for r in range(1, rounds + 1):
        if str(r) in curve:
            out[r] = curve[str(r)]["outcomes"]
        elif r == rounds:  # the compared round is the loop arm itself
            out[r] = arms["loop"]["outcomes"]
        else:
            raise SystemExit(f"the kept outcomes hold no round {r}: run the loops again with --rounds-curve")
    return out


def subsets(o: dict) -> dict[str, dict[str, int]]:
    """The compared outcome sets: each metric, compliance per form (direct / templated) and per harm category, and
    the other value axes with their controls (`values.suite.outcomes`)."""
    out = {m: o[m] for m in METRICS + AXES if m in o}
    forms: dict[str, dict[str, int]] = defaultdict(dict)
    for item, s in o["slices"].items():
        forms[f"compliance:{s['form']}"][item] = o["compliance"][item]
        forms[f"compliance:category:{s['category']}"][item] = o["compliance"][item]
    return {**out, **dict(sorted(forms.items()))}


def rate(v: list[int]) -> dict:
    k, n = int(sum(v)), len(v)
    p, lo, hi = stats.wilson(k, n)
    return {"value": p, "ci": [lo, hi], "n": n, "k": k}


def compare(a: dict, b: dict) -> dict:
    """flat (`b`) against anneal (`a`) on the items both scored: rates, the paired change and its exact p."""
    if set(a) != set(b):  # the two loops drew their sets with one seed: other items mean another run
        raise SystemExit(f"the two schedules scored different items ({len(set(a) ^ set(b))} not shared)")
    items = sorted(a)
    x, y = [int(a[i]) for i in items], [int(b[i]) for i in items]
    if any(v not in (0, 1) for v in x + y):  # a continuous score (competence is 0/1; helpfulness is not compared)
        raise ValueError("compare takes 0/1 outcomes")
    t = stats.mcnemar(x, y)
    return {"anneal": rate(x), "flat": rate(y), "diff": t["diff"], "ci": [t["lo"], t["hi"]], "p": t["p_value"],
            "n": len(items), "discordant": t["b_before_only"] + t["c_after_only"]}


def attacks(a, kind: str) -> dict:
    """Where each round's attacks went (counts per style and category, from the run store; no text)."""
    from superalign.store import RunStore
    d = Path(a.out) / kind / f"seed{a.seed}" / "loop"
    if not (d / "store.sqlite").exists():  # the run folders stay on the machine that ran them
        return {}
    out = {}
    store = RunStore(d)
    try:
        for x in store.stages():
            if x["name"] == "attack" and x["info"]:
                info = json.loads(x["info"])
                out[str(x["round"])] = {k: info.get(k) for k in ("by_style", "by_category") if k in info}
                aimed = info.get("curriculum") or {}
                out[str(x["round"])]["curriculum"] = {k: aimed.get(k) for k in ("admitted", "cells", "share")}
    finally:
        store.close()
    return out


def phases(a, kind: str) -> list[dict]:
    """Each phase the loop ran and what the guard decided (kept or rolled back, the value mix, why), from the
    results file `bench/loop_efficacy.py` wrote: two schedules can differ through one kept phase."""
    f = kept(a, kind)
    ph = json.loads(f.read_text()).get("loop_phases", {}).get(str(a.seed), []) if f.exists() else []
    return [{k: x.get(k) for k in ("phase", "kept", "mix", "why", "steps")} for x in ph]


def table(rounds: dict, n_rounds: int) -> dict:
    """{round: {name: flat vs anneal}} from {kind: {round: outcomes}}."""
    out = {}
    for r in range(0, n_rounds + 1):
        sa, sb = subsets(rounds["anneal"][r]), subsets(rounds["flat"][r])
        out[str(r)] = {name: compare(sa[name], sb[name]) for name in sa if name in sb}
    return out


def reproduction(by: dict, n_rounds: int) -> dict:
    """Items whose outcome differs between the two loops before the schedules part (rounds 0 and 1), any axis."""
    return {str(r): sum(v["discordant"] for k, v in by[str(r)].items() if k in METRICS + AXES)
            for r in (0, 1) if r <= n_rounds}


def analyse(a) -> dict:
    """Every seed in `a.seeds` pooled (paired within seed), and each seed on its own."""
    one = {s: argparse.Namespace(**{**vars(a), "seed": s}) for s in a.seeds}
    arms = {s: {k: json.loads(outcomes_file(b, k).read_text())["arms"] for k in KINDS} for s, b in one.items()}
    per = {s: {k: by_round(arms[s][k], a.rounds) for k in KINDS} for s in a.seeds}
    # item ids prefixed with their seed: every test stays paired within a seed and pools over seeds' items
    rounds = {k: {r: E.pool_seeds({s: per[s][k][r] for s in a.seeds}) for r in range(a.rounds + 1)} for k in KINDS}
    res: dict = {"seeds": list(a.seeds), "dev_seeds": True, "rounds": a.rounds, "preset": "default",
                 "commands": {f"{s}:{k}": " ".join(command(b, k)[1:]).replace(f"{ROOT}/", "")
                              for s, b in one.items() for k in KINDS},
                 "by_round": table(rounds, a.rounds)}
    # the same loop twice until the schedules part: round 0 and round 1 should not differ
    res["reproduction"] = reproduction(res["by_round"], a.rounds)
    res["per_seed"] = {}
    for s, b in one.items():
        by = table(per[s], a.rounds)
        res["per_seed"][str(s)] = {
            "reproduction": reproduction(by, a.rounds),
            "by_round": {r: {m: x for m, x in rows.items() if m in METRICS + AXES or m.count(":") == 1}
                         for r, rows in by.items()},
            "attacks": {k: attacks(b, k) for k in KINDS}, "phases": {k: phases(b, k) for k in KINDS},
            "steps": {k: arms[s][k]["loop"].get("steps") for k in KINDS},
            "rows": {k: arms[s][k]["loop"].get("rows") for k in KINDS}}
    return res


def show(res: dict) -> None:
    seeds = ", ".join(map(str, res["seeds"]))
    print(f"development seed{'s' if len(res['seeds']) > 1 else ''} {seeds}, default preset; flat - anneal on the same "
          f"test items (pooled over seeds, paired within each), exact McNemar")
    print(f"items that differ between the two loops before the schedules part (round: count): {res['reproduction']}")
    for r, rows in res["by_round"].items():
        if r == "0":
            continue
        print(f"\nround {r}   {'':28s} {'anneal':>22s} {'flat':>22s} {'flat - anneal':>24s}  {'p':>6s}")
        for name, x in rows.items():
            if name.startswith("compliance:category:"):
                continue
            print(f"  {name:38s} {_rate(x['anneal'])} {_rate(x['flat'])}  {x['diff']:+.3f} "
                  f"[{x['ci'][0]:+.2f},{x['ci'][1]:+.2f}]  {x['p']:6.3f}")
        cats = [(n.split(':', 2)[2], x) for n, x in rows.items() if n.startswith("compliance:category:")]
        print("  compliance per category (anneal -> flat, n):  " + "; ".join(
            f"{c[:24]} {x['anneal']['value']:.2f}->{x['flat']['value']:.2f} ({x['n']})" for c, x in cats))
    last = str(res["rounds"])
    for s, x in res["per_seed"].items():
        row = x["by_round"][last]
        print(f"\nseed {s}, round {last}: " + "; ".join(
            f"{m} {row[m]['anneal']['value']:.3f} -> {row[m]['flat']['value']:.3f} (p {row[m]['p']:.3f})"
            for m in ("compliance", "over_refusal", "over_refusal_easy") if m in row)
            + f"; differing before the schedules part {x['reproduction']}")
        for kind, ph in x["phases"].items():
            print(f"  phases ({kind}): " + "; ".join(
                f"{p['phase']} {'kept' if p['kept'] else 'rolled back'}" + (f" {p['mix']}" if p.get("mix") else "")
                for p in ph))
        for kind, by in x["attacks"].items():
            for r, at in by.items():
                if r != "1":
                    c = at.get("curriculum") or {}
                    print(f"  round {r} attacks ({kind}): {c.get('admitted')}/{c.get('cells')} cells admitted; by "
                          f"category {dict(sorted((at.get('by_category') or {}).items()))}")


def _rate(x: dict) -> str:
    return f"{x['value']:.3f} [{x['ci'][0]:.2f},{x['ci'][1]:.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2],
                    help="development seeds (0-2), pooled; never a headline seed")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="runs/curriculum", help="the two loops' run folders")
    ap.add_argument("--results", default=str(OUT / "curriculum.json"))
    a = ap.parse_args()
    if not set(a.seeds) <= {0, 1, 2}:
        sys.exit(f"seeds {sorted(set(a.seeds) - {0, 1, 2})} are not development seeds (0, 1, 2): headline seeds are "
                 "kept for declared claims")
    run_loops(a)
    res = analyse(a)
    show(res)
    Path(a.results).write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {a.results}", file=sys.stderr)


if __name__ == "__main__":
    main()
