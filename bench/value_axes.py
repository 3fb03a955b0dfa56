"""Does optimising several values at once cost or help each of them? Base, a single-axis loop (harmlessness only)
and the multi-axis loop, scored on every value axis with the same items and the same audited judges.

    python bench/value_axes.py                          # headline: seeds 10 11 12, default preset
    python bench/value_axes.py --preset quick --seeds 0 # development (seeds 0-2 are development seeds)
    python bench/value_axes.py --seeds 10 --multi-from runs/bench-efficacy
                                # the multi arm read from the efficacy bench's loop of the same seed and preset

Arms per seed: `base` (the untrained learner: the multi-axis run's round-0 evaluation), `single` (the preset's loop
with `loop.axes: {harmlessness: 1}` and no value mixes: the loop before issue 25) and `multi` (the preset's loop
over every axis, with its value mixes). All three are evaluated on every axis of the preset (`eval.axes`), and the
guard of both loops covers every evaluated axis. Per axis metric: the rate of each arm (pooled over seeds, Wilson
95% CI) and the paired changes multi - base, single - base and multi - single on the same items (exact McNemar,
Newcombe CI, pooled over seeds); per axis with contrast items (`Axis.control`), `discrimination`: Youden's J = 1 -
headline - control per arm (Newcombe CI) and its paired changes (MOVER CI, exact sign-flip p), which tells a value
learned from a prior moved (both rates moving together); `judge_accuracy`: the axis judge's outcome accuracy from
the human audit
(bench/results/eval_audit.json `axes`, bench/axes_audit.py), or null until the audit has been run (the development
estimate, cross-validated on the judge's own training labels, is printed beside it and marked as such).
Also the evaluation's cost per axis (seconds of the batched generation per item and of each judge). The axes' test
answers are read back from the run stores and judged by the current judges (`rescore`), so a judge refit after
the runs re-scores them without generating again.
Resumable: a finished arm is read back from its run directory under --out (runs/bench-value-axes). Each seed's
item-level outcomes are also kept in bench/results/value_axes/seed{S}.json (item ids and 0/1 verdicts, no text), and
a seed whose run folders are gone (another session, another machine) is read back from that file, so seeds run at
different times pool into one paired analysis. `--seed-only` writes that file and no pooled result: two seeds can run
side by side (OMP_NUM_THREADS=1 each) and a last call without it pools them. Writes bench/results/value_axes.json
(a development run: value_axes_dev.json).

    OMP_NUM_THREADS=1 python bench/value_axes.py --seeds 11 --seed-only &
    OMP_NUM_THREADS=1 python bench/value_axes.py --seeds 12 --seed-only; wait
    python bench/value_axes.py --seeds 11 12          # reads both files: no loop is run again
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from superalign import config as C  # noqa: E402
from superalign import values  # noqa: E402
from superalign.loop import efficacy as E  # noqa: E402
from superalign.store.records import undone  # noqa: E402

SEEDS = (10, 11, 12)      # headline seeds, declared before the run; no design decision has read them
DEV_SEEDS = (0, 1, 2)     # development seeds: a run on any of them is written apart (value_axes_dev.json)
ARMS = ("base", "single", "multi")
RESULTS = ROOT / "bench" / "results"


def rel(p: Path) -> Path:
    return p.relative_to(ROOT) if p.is_relative_to(ROOT) else p


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def config(preset: str, seed: int, arm: str, sets: list[str]):
    over = {**C.parse_sets(sets), "run.seed": seed, "run.name": f"value-axes-{arm}-s{seed}"}
    if arm == "single":
        over.update({"loop.axes": {"harmlessness": 1.0}, "loop.axis_mixes": []})
    return C.load(preset=preset, overrides=over)


def same_run(cfg, d: Path, flag: str = "--multi-from") -> None:
    """`--multi-from` / `--single-from`: the stored run must be the loop this arm would run (same preset and seed;
    its name and its number of rounds may differ: the rounds compared are `cfg.loop.rounds`)."""
    from superalign.store import RunStore
    if not (d / "store.sqlite").exists() or RunStore(d).get("status") != "done":
        sys.exit(f"{flag}: {d} holds no finished run; run that arm for this seed first, or drop {flag}")
    stored, want = RunStore(d).get("config"), cfg.model_dump(mode="json")
    rounds = stored["loop"]["rounds"]
    for c in (stored, want):
        c["run"] = {k: v for k, v in c["run"].items() if k in ("seed",)}
        c["loop"] = {k: v for k, v in c["loop"].items() if k != "rounds"}
    diff = sorted(k for k in set(stored) | set(want) if stored.get(k) != want.get(k))
    if diff:
        sys.exit(f"{flag}: {d} was run with another configuration (sections {diff} differ); drop {flag}")
    if rounds < cfg.loop.rounds:
        sys.exit(f"{flag}: {d} has fewer rounds than {cfg.loop.rounds}")


def seed_file(seed: int, folder: Path | None = None) -> Path:
    """A seed's kept outcomes: bench/results/value_axes/seedS.json, or beside a `--results` file of another name
    (bench/results/value_axes/NAME.json keeps its seeds in bench/results/value_axes/NAME/)."""
    return (folder or RESULTS / "value_axes") / f"seed{seed}.json"


def save_seed(seed: int, got: dict, preset: str, test_axis_items: dict, ran: bool, sets: list[str] = (),
              folder: Path | None = None) -> dict:
    """The seed's arms as the analysis reads them (outcomes keyed by item id, stage wall times, evaluation timings,
    the loop's phase decisions), with the `--set` overrides they ran under and the conditions the times were taken
    under (threads and load differ between sessions): this process's when it ran a loop, else those the file
    already records. Returns those conditions."""
    path = seed_file(seed, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    before = json.loads(path.read_text()) if path.exists() else {}
    keys = ("omp_num_threads", "load_at_end")
    cond = ({"omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "load_at_end": os.getloadavg()[0]} if ran
            else {k: before.get(k) for k in keys})
    doc = {"seed": seed, "preset": preset, "sets": sorted(sets), "test_axis_items": test_axis_items, "arms": got,
           **cond}
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return cond


def load_seed(seed: int, preset: str, sets: list[str] = (), folder: Path | None = None) -> tuple[dict, dict, dict] | None:
    """A seed's kept arms, refused when they were made with another preset or other `--set` overrides (pooling
    them with this call's seeds would mix two designs)."""
    path = seed_file(seed, folder)
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    if doc.get("preset") != preset:
        sys.exit(f"{path} holds seed {seed} of preset {doc.get('preset')!r}, not {preset!r}: run that seed again "
                 "with --out pointing at a fresh folder, or move the file away")
    if doc.get("sets", []) != sorted(sets):
        sys.exit(f"{path} holds seed {seed} run with --set {doc.get('sets', [])}, not {sorted(sets)}: pass the same "
                 "overrides, or run that seed again with --out pointing at a fresh folder")
    return doc["arms"], doc["test_axis_items"], {k: doc.get(k) for k in ("omp_num_threads", "load_at_end")}


def run_arm(cfg, d: Path) -> dict:
    """One loop run (resumed if its directory holds an unfinished one): per round, its evaluation's outcomes,
    summary and timing; the stage wall times."""
    from superalign.cli.experiments import build_report
    from superalign.loop import run as R
    from superalign.store import RunStore
    store_path = d / "store.sqlite"
    ran = not (store_path.exists() and RunStore(d).get("status") == "done")
    if ran:
        t0 = time.time()
        R.run(R.open_run(cfg, d))
        build_report(d)
        log(f"  {d.name}: {time.time() - t0:.0f}s")
    s = RunStore(d)
    stages = [x for x in s.stages() if x["round"] <= cfg.loop.rounds]
    evals = {x["round"]: json.loads(x["info"]) for x in stages if x["name"] == "eval" and x["status"] == "done"}
    wall = {}
    for x in stages:
        wall.setdefault(str(x["round"]), {})[x["name"]] = json.loads(x["info"] or "{}").get("wall_s")
    for r, e in evals.items():  # the axes' test answers as stored, judged by the current judges
        e["outcomes"].update(rescore(cfg, s, r))
    setup = next((json.loads(x["info"]) for x in stages if x["name"] == "setup" and x["status"] == "done"), {})
    return {"phases": E.phase_decisions(d, cfg.loop.rounds),
            "evals": {r: {"outcomes": e["outcomes"], "timing": e.get("timing", {}), "cached": e.get("cached"),
                          "summary": {k: v for k, v in e.items() if isinstance(v, float)}} for r, e in evals.items()},
            "wall_s": wall, "rounds": cfg.loop.rounds, "ran": ran,
            "test_axis_items": setup.get("sizes", {}).get("test", {}).get("axes", {})}


def rescore(cfg, store, r: int) -> dict[str, dict[str, int]]:
    """Per axis metric, {item id: 0/1} for round r's stored test answers, judged now: a judge refit after the run
    (e.g. on more hand labels) re-scores the answers without generating them again. (The run's own selection and
    guard decisions were made with the judges of their time.)"""
    from superalign.values import suite as VS
    out: dict[str, dict[str, int]] = {}
    for ax in VS.generic(cfg):
        items = {x["id"]: x for x in ax.items(cfg, cfg.run.seed, "test")}
        got = {x["prompt_id"].removeprefix("test:"): x["text"] for x in store.rows("responses", round=r, stage="eval")
               if x["prompt_id"].removeprefix("test:") in items}
        scored = VS.score(cfg, ax, [{**items[i], "response": t} for i, t in got.items()])
        for m in ax.metrics:
            out[m.name] = {x["id"]: x["outcomes"][m.name] for x in scored if m.name in x["outcomes"]}
    return out


def guard_power(phases: dict, metrics: list[str], guard) -> dict:
    """Per axis headline: the guard split's size (the largest a phase tested), the smallest change the guard's
    exact paired test can flag there at all, and the metric's tolerance. Issue 25's "no axis regresses by more
    than 2 points" is a promise the guard can keep only where the first is under 0.02; a regression smaller than
    it passes every phase unseen."""
    from superalign import stats
    from superalign.evaluation import metrics as M
    out = {}
    for m in metrics:
        ns = [p["guard"][m]["n"] for arms in phases.values() for ph in arms.values() for p in ph or []
              if m in p.get("guard", {})]
        if ns:
            tol = M.REGISTRY[m].limit(guard) if M.REGISTRY[m].tolerance is not None else None
            out[m] = {"n": max(ns), "detectable": stats.min_detectable_paired(max(ns), guard.alpha),
                      "tolerance": tol}
    return out


def judge_accuracy() -> dict:
    """Per axis: the audited judge accuracy (None before the human audit), the development estimate, and the
    accuracy per arm on this bench's own answers (`on_arms`, None before that audit)."""
    audit = json.loads((RESULTS / "eval_audit.json").read_text()) if (RESULTS / "eval_audit.json").exists() else {}
    dev_path = RESULTS / "axes_audit" / "dev.json"  # bench/axes_audit.py --dev
    dev = json.loads(dev_path.read_text()) if dev_path.exists() else {}
    out = {}
    for name in values.names():
        a = (audit.get("axes") or {}).get(name, {}).get("judge_accuracy")
        if name == "harmlessness" and "judge" in audit:  # compliance is read by the refusal head: its accuracy
            ks = [audit["judge"][s]["refusal_accuracy"] for s in ("base", "trained") if s in audit["judge"]]
            a = sum(k["k"] for k in ks) / sum(k["n"] for k in ks) if ks else None
        out[name] = {"audited": a, "dev_estimate": (dev.get(name) or {}).get("accuracy"), "on_arms": on_arms(audit, name)}
    return out


def on_arms(audit: dict, axis: str) -> dict | None:
    """The axis judge's outcome accuracy per arm on this bench's own answers (bench/axes_audit_arms.py), from the
    newest audit folder that labelled the axis (a judge changed after an audit is audited by a fresh folder)."""
    folders = sorted(k for k, v in (audit.get("axes_arms_audit") or {}).items() if axis in v.get("axes", {}))
    if not folders:
        return None
    arms = audit["axes_arms_audit"][folders[-1]]["axes"][axis]["arms"]
    return {"audit": folders[-1], **{arm: (a.get("outcome_accuracy") or {}).get("value") for arm, a in arms.items()}}


def analyse(per_seed: dict, axes: list[str], preset: str) -> dict:
    acc = judge_accuracy()
    out = {"preset": preset, "seeds": sorted(per_seed), "headline_seeds": list(SEEDS), "dev_seeds": list(DEV_SEEDS),
           "axes": {}}
    for name in axes:
        ax = values.get(name)
        entry = {"metric": ax.headline.name, "label": ax.headline.label,
                 "judge_accuracy": acc[name]["audited"], "judge_accuracy_dev_estimate": acc[name]["dev_estimate"],
                 "judge_accuracy_on_arms": acc[name]["on_arms"],
                 "metrics": {}}
        for m in ax.metrics:
            row = {arm: E.rate(per_seed, arm, m.name) for arm in ARMS}
            row.update({f"{b}_vs_{a}": E.paired(per_seed, a, b, m.name)
                        for a, b in (("base", "multi"), ("base", "single"), ("single", "multi"))})
            row["higher_is_better"] = m.higher_is_better
            entry["metrics"][m.name] = row
        if ax.control:  # does the arm tell the axis's two kinds of item apart, or has a prior moved?
            d = {arm: E.youden(per_seed, arm, ax.headline.name, ax.control) for arm in ARMS}
            d.update({f"{b}_vs_{a}": E.paired_youden(per_seed, a, b, ax.headline.name, ax.control)
                      for a, b in (("base", "multi"), ("base", "single"), ("single", "multi"))})
            entry["discrimination"] = {"control": ax.control, **d}
        h = entry["metrics"][ax.headline.name]
        for arm in ARMS:
            entry[arm] = h[arm]["value"] if h[arm] else None
        entry["ci"] = h["multi_vs_base"]["ci"] if h["multi_vs_base"] else None
        entry["p"] = h["multi_vs_base"]["p"] if h["multi_vs_base"] else None
        out["axes"][name] = entry
    out["competence"] = {arm: E.rate(per_seed, arm, "competence") for arm in ARMS}
    return out


def cost(per_seed: dict, sets_size: dict) -> dict:
    """Seconds per evaluation part, averaged over the loop arms' evaluations, and per axis item."""
    times: dict[str, list[float]] = {}
    for s in per_seed.values():
        for arm in ("single", "multi"):
            for t in s[arm].get("timings", []):
                for k, v in t.items():
                    times.setdefault(k, []).append(v)
    mean = {k: sum(v) / len(v) for k, v in times.items()}
    n_axis_items = sum(sets_size.values())
    per_item = mean.get("axes_generation_s", 0.0) / n_axis_items if n_axis_items else None
    return {"mean_s": mean, "axis_items": sets_size,
            "per_axis_s": {a: n * (per_item or 0) + mean.get(f"judge:{a}_s", 0.0) for a, n in sets_size.items()}}


def reproduction(per_seed: dict, preset: str) -> dict:
    """The multi arm is the preset's loop: on a seed the efficacy bench also ran (bench/results/loop_efficacy.json,
    run at another time, in another process, often by an earlier version of the code), the two runs should agree.
    Per such seed: both runs' harmful-request compliance and look-alike over-refusal."""
    f = RESULTS / "loop_efficacy.json"
    eff = json.loads(f.read_text()) if f.exists() else {}
    if eff.get("preset") != preset:
        return {}
    loop = eff["arms"]["loop"]
    out = {}
    for seed in per_seed:
        if seed in eff["seeds"]:
            i = eff["seeds"].index(seed)
            mine = per_seed[seed]["multi"]["outcomes"]
            out[seed] = {m: {"value_axes_multi": sum(mine[m].values()) / len(mine[m]),
                             "loop_efficacy_loop": loop[f"{m}_per_seed"][i]} for m in ("compliance", "over_refusal")}
    return out


def against_kept(per_seed: dict, folder: Path | None, preset: str) -> dict:
    """A re-run (`--results` of another name) against the headline's kept seed files of the same seeds: per seed and
    arm, how many scored items' outcomes differ (every metric), of how many. 0 differing means the re-run reproduced
    the kept run item for item (both judged by the current judges)."""
    if folder is None:
        return {}
    out: dict = {}
    for seed, arms in per_seed.items():
        kept = load_seed(seed, preset) if seed_file(seed).exists() else None
        if kept is None:
            continue
        for arm, got in arms.items():
            old = kept[0].get(arm, {}).get("outcomes", {})
            pairs = [(v, old[m][i]) for m, xs in got["outcomes"].items() if m in old
                     for i, v in xs.items() if i in old[m]]
            out.setdefault(str(seed), {})[arm] = {"differ": sum(a != b for a, b in pairs), "of": len(pairs)}
    return out


def show(res: dict) -> None:
    print(f"\nValue axes, preset {res['preset']}, seeds {res['seeds']} (rates pooled over seeds, 95% Wilson CI; "
          f"changes paired, exact McNemar)")
    print(f"{'axis':13} {'metric':42} {'base':>7} {'single':>7} {'multi':>7}  {'multi-base [95% CI]':>26} {'p':>7}"
          f"  {'multi-single':>12} {'judge acc':>10}")
    for name, e in res["axes"].items():
        for mname, row in e["metrics"].items():
            vs, ms = row["multi_vs_base"], row["multi_vs_single"]
            acc = e["judge_accuracy"] if e["judge_accuracy"] is not None else e["judge_accuracy_dev_estimate"]
            tag = "" if e["judge_accuracy"] is not None else " (dev)"
            print(f"{name:13} {values.get(name).metric(mname).label[:42]:42} "
                  + " ".join(f"{row[a]['value']:7.3f}" if row[a] else f"{'–':>7}" for a in ARMS)
                  + (f"  {vs['diff']:+.3f} [{vs['ci'][0]:+.3f},{vs['ci'][1]:+.3f}] {vs['p']:7.3g}" if vs else f"{'–':>36}")
                  + (f"  {ms['diff']:+12.3f}" if ms else f"{'–':>14}")
                  + (f" {acc:9.3f}{tag}" if acc is not None and mname == e["metric"] else ""))
    print("discrimination, Youden's J = 1 - headline - control (1: tells the axis's two kinds of item apart; 0: does "
          "the same on both, so a headline that moves with its control has moved a prior), 95% Newcombe CI; changes "
          "paired (MOVER CI, exact sign-flip p):")
    for name, e in res["axes"].items():
        d = e.get("discrimination")
        if not d:
            continue
        print(f"  {name:13} 1 - {e['metric']} - {d['control']}: "
              + ", ".join(f"{a} {d[a]['value']:+.3f} [{d[a]['ci'][0]:+.3f}, {d[a]['ci'][1]:+.3f}]"
                          for a in ARMS if d[a])
              + "; " + ", ".join(f"{k.replace('_vs_', ' - ')} {d[k]['diff']:+.3f} [{d[k]['ci'][0]:+.3f}, "
                                 f"{d[k]['ci'][1]:+.3f}] p={d[k]['p']:.3g}"
                                 for k in ("multi_vs_base", "single_vs_base", "multi_vs_single") if d[k]))
    for name, e in res["axes"].items():
        oa = e.get("judge_accuracy_on_arms")
        if oa:
            print(f"{name} judge, outcome accuracy on this bench's own answers ({oa['audit']}, "
                  "bench/axes_audit_arms.py): " + ", ".join(f"{a} {oa[a]:.3f}" for a in ARMS if oa.get(a) is not None))
    c = res["competence"]
    print(f"{'competence':13} {'untrained tasks (higher is better)':42} "
          + " ".join(f"{c[a]['value']:7.3f}" if c[a] else f"{'–':>7}" for a in ARMS))
    if res.get("cost"):
        print("evaluation cost per axis (s per test evaluation, batched generation share + judge): "
              + ", ".join(f"{a} {v:.1f}" for a, v in res["cost"]["per_axis_s"].items())
              + f"; timed under (per seed) {res.get('timed_under')}")
    seeds = res["seeds"]
    for name, e in res["axes"].items():  # the seeds apart: a pooled rate can hide arms that swap order by seed
        row = e["metrics"][e["metric"]]
        print(f"{name} {e['metric']} per seed {seeds}: " + "; ".join(
            f"{a} " + "/".join(f"{v:.3f}" for v in row[a]["per_seed"]) for a in ARMS if row[a]))
    heads = [e["metric"] for e in res["axes"].values()]

    def moves(p: dict) -> str:
        """Each axis's headline on the guard split, before -> after the phase (files kept before: none)."""
        g = [f"{m} {p['guard'][m]['before']:.2f}->{p['guard'][m]['after']:.2f}" for m in heads
             if m in p.get("guard", {})]
        return f" [{', '.join(g)}]" if g else ""

    if res.get("phases"):
        print("phase decisions (guard split moves as judged during the run, by the judges of that time):")
    for seed, arms in res.get("phases", {}).items():
        for arm, ph in arms.items():
            if ph is None:  # kept by an earlier version of this script
                continue
            name = lambda p: f"r{p['round']}:{p['phase'].split(':')[-1]}"  # noqa: E731  (files kept before: "conformity")
            say = lambda p: "kept" if p["kept"] else f"rolled back ({', '.join(undone(p))})"  # noqa: E731
            print(f"seed {seed} {arm:6} phases: " + "; ".join(f"{name(p)} {say(p)}{moves(p)}" for p in ph))
    for m, g in res.get("guard_power", {}).items():
        tol = "none" if g["tolerance"] is None else f"{g['tolerance']:.2f}"
        print(f"guard split, {m}: n={g['n']}, the smallest change it can flag {g['detectable']:.2f} (tolerance {tol})")
    for seed, arms in res.get("against_kept", {}).items():
        print(f"seed {seed} against the kept run of bench/results/value_axes/seed{seed}.json (item outcomes that differ, "
              "every metric): " + "; ".join(f"{a} {v['differ']} of {v['of']}" for a, v in arms.items()))
    for seed, r in res.get("reproduction", {}).items():
        print(f"seed {seed}, the multi arm against the efficacy bench's loop on the same seed (another run): "
              + "; ".join(f"{m} {v['value_axes_multi']:.3f} vs {v['loop_efficacy_loop']:.3f}" for m, v in r.items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--out", type=Path, default=Path("runs/bench-value-axes"),
                    help="where the loop arms' run folders go (git-ignored, like every run)")
    ap.add_argument("--set", dest="sets", nargs="*", default=[], help="KEY=VALUE overrides for both loop arms")
    ap.add_argument("--multi-from", type=Path, default=None,
                    help="read the multi arm from this efficacy bench folder (SEED's loop: seedSEED/loop)")
    ap.add_argument("--single-from", type=Path, default=None,
                    help="read the single arm from this value-axes bench folder (its PRESET/seedS/single, a finished "
                         "run of the same configuration) and run the multi arm alone under --out: to re-run one arm "
                         "(e.g. after a judge fix) without re-running the other; pair it with --results")
    ap.add_argument("--results", type=Path, default=None,
                    help="the pooled results file (default bench/results/value_axes.json, development seeds "
                         "value_axes_dev.json); another name keeps its seeds' files in a folder of that name beside it")
    ap.add_argument("--seed-only", action="store_true",
                    help="write each seed's outcomes file only (bench/results/value_axes/seedS.json), not the pooled "
                         "result: for seeds run side by side in separate processes")
    args = ap.parse_args()
    dev = any(s not in SEEDS for s in args.seeds)
    path = args.results or RESULTS / ("value_axes_dev.json" if dev else "value_axes.json")
    folder = None if args.results is None else args.results.with_suffix("")

    def arm_dir(seed: int, arm: str) -> Path:
        if arm == "multi" and args.multi_from:
            return args.multi_from / f"seed{seed}" / "loop"
        if arm == "single" and args.single_from:
            return args.single_from / args.preset / f"seed{seed}" / "single"
        return args.out / args.preset / f"seed{seed}" / arm

    per_seed, sets_size, timed_under = {}, {}, {}
    for seed in args.seeds:
        runs_done = all((arm_dir(seed, arm) / "store.sqlite").exists() for arm in ("multi", "single"))
        stored = None if runs_done or args.multi_from else load_seed(seed, args.preset, args.sets, folder)
        if stored is not None:  # run folders gone (an earlier session): the seed's kept outcomes
            log(f"seed {seed}: read from {rel(seed_file(seed, folder))}")
            per_seed[seed], sets_size, timed_under[seed] = stored
            continue
        per_seed[seed], ran = {}, False
        for arm in ("multi", "single"):
            cfg = config(args.preset, seed, arm, args.sets)
            d = arm_dir(seed, arm)
            if arm == "multi" and args.multi_from:
                same_run(cfg, d, "--multi-from")
            if arm == "single" and args.single_from:
                same_run(cfg, d, "--single-from")
            log(f"seed {seed} {arm}: {d}")
            got = run_arm(cfg, d)
            ran = ran or got["ran"]
            last = max(got["evals"])
            per_seed[seed][arm] = {"outcomes": got["evals"][last]["outcomes"], "wall_s": got["wall_s"],
                                   "timings": [e["timing"] for e in got["evals"].values()
                                               if e["timing"] and not e["cached"]], "phases": got["phases"]}
            if arm == "multi":  # round 0 of the multi-axis run is the untrained learner on the same items
                per_seed[seed]["base"] = {"outcomes": got["evals"][0]["outcomes"]}
                sets_size = got["test_axis_items"]
        timed_under[seed] = save_seed(seed, per_seed[seed], args.preset, sets_size, ran, args.sets, folder)
        log(f"seed {seed}: wrote {rel(seed_file(seed, folder))}")
    if args.seed_only:
        return
    multi = config(args.preset, args.seeds[0], "multi", args.sets)  # also when every seed was kept
    axes = list(multi.eval.axes)
    res = analyse(per_seed, axes, args.preset)
    res["cost"] = cost(per_seed, sets_size)
    res["reproduction"] = reproduction(per_seed, args.preset)
    res["timed_under"] = timed_under  # per seed: OMP_NUM_THREADS and load (None: the run dirs' own session)
    res["wall_s"] = {s: {arm: per_seed[s][arm]["wall_s"] for arm in ("single", "multi")} for s in per_seed}
    res["phases"] = {s: {arm: per_seed[s][arm].get("phases") for arm in ("single", "multi")} for s in per_seed}
    res["guard_power"] = guard_power(res["phases"], [e["metric"] for e in res["axes"].values()], multi.loop.guard)
    res["arms_from"] = {"multi": str(args.multi_from or args.out), "single": str(args.single_from or args.out)}
    res["against_kept"] = against_kept(per_seed, folder, args.preset)
    show(res)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(f"wrote {rel(path)}")


if __name__ == "__main__":
    main()
