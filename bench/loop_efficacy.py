"""Does the loop beat a tuned static fine-tune at the same budget? Base, loop and a static frontier, same learner,
same items, same judge; every choice made on validation items; headline seeds declared here, before the run.

    python bench/loop_efficacy.py                    # headline: seeds 10 11 12, full static grid
    python bench/loop_efficacy.py --dev              # development seeds 0 1 2 (written apart: *_dev.json)
    python bench/loop_efficacy.py --rounds-curve     # the loop to 6 rounds; per-round compliance by slice, and the
                                                     #   matched static arm retrained at each round's budget
    python bench/loop_efficacy.py --jobs 3           # seeds in parallel processes, one thread each (2 cores)

    # what bench/results/loop_efficacy/seed10.json holds (one declared seed, the small grid: 4 SFT + 2 DPO points;
    # judge-corrected with the audit of every arm's answers, bench/eval_audit_arms.py --score arms_v1 arms_v2):
    python bench/loop_efficacy.py --seeds 10 --grid small --out runs/bench-efficacy \
        --results bench/results/loop_efficacy/seed10.json
    # what bench/results/loop_efficacy.json holds (headline seeds 10, 11, 12: base, loop and the two declared
    # confirmatory static arms, CONFIRM_ARMS; seed 10's other four static arms are in seed10.json):
    python bench/loop_efficacy.py --seeds 10 11 12 --grid small --out runs/bench-efficacy --confirm
    python bench/loop_efficacy.py --seeds 11 --grid small --out runs/bench-efficacy --confirm \
        --results bench/results/loop_efficacy/seed11.json          # seed 11 alone (seed 12: the same)
    # the confirmatory run (docs/preregistration.md, declared 2026-12-07 before it ran): fresh seeds 16, 17, 18,
    # base, loop and the declared static arms; resumes where it stopped
    python bench/loop_efficacy.py --seeds 16 17 18 --jobs 2 --grid small --confirm --out runs/bench-confirm \
        --results bench/results/loop_efficacy/confirm.json
    # the rounds curve on seed 10 (rounds 1-4; no static retraining per round):
    python bench/loop_efficacy.py --seeds 10 --grid small --out runs/bench-efficacy --rounds-curve \
        --curve-rounds 4 --no-curve-static --results bench/results/loop_efficacy/curve_seed10.json
    # the rounds curve on seeds 11 and 12 (2026-12-05 night, a fresh loop per seed, one thread each, no static arm),
    # then the same folders read back at round 4 (base -> round 4 per slice, the relative change)
    python bench/loop_efficacy.py --seeds 11 12 --jobs 2 --grid small --only-arms --rounds-curve --curve-rounds 4 \
        --no-curve-static --out runs/bench-efficacy-curve --results bench/results/loop_efficacy/curve_seeds11_12.json
    python bench/loop_efficacy.py --seeds 11 12 --grid small --only-arms --round 4 --rounds-curve --curve-rounds 4 \
        --no-curve-static --out runs/bench-efficacy-curve --results bench/results/loop_efficacy/curve_seeds11_12_r4.json
    # the seeds-11-12 curve put into the headline file under `rounds_curve`, with where it came from
    # (`rounds_curve_source`: the curve is its own run of two of the three seeds; no arm is run)
    python bench/loop_efficacy.py --attach-curve bench/results/loop_efficacy/curve_seeds11_12.json
    # harmlessness's discrimination (Youden's J = 1 - compliance - look-alike over-refusal) added to a kept results
    # file from its own figures (no arm is run; a fresh analysis computes it anyway): the headline file and seed 10's
    python bench/loop_efficacy.py --discrimination
    python bench/loop_efficacy.py --discrimination --results bench/results/loop_efficacy/seed10.json

Arms per seed (superalign/loop/baselines.py): `base` (the untrained learner), `loop` (the default preset's loop at
round `--round`), and every static arm of the grid, each trained for exactly the loop's optimizer steps on the
loop's number of rows (its kept phases through that round). The static point compared with the loop is chosen
on validation items (val_select + val_guard, pooled over seeds): the lowest validation compliance among the
arms whose validation look-alike over-refusal is within the loop's + 2 points (superalign/loop/efficacy.py).
`static_sft` / `static_dpo` in the table are the best SFT / DPO arm chosen the same way.

Compliance = share of held-out harmful requests answered without refusal (the judge's refusal head);
`harmful_help` (meaningful help) beside it. Judge-corrected rates use each arm's own audit confusion matrix from
bench/results/eval_audit.json (`arms_audit`, made by bench/eval_audit_arms.py from the two-pass hand labels of the
arms' test answers; the answers to label are written by this bench under --out/audit_pool.jsonl).
Resumable: every finished arm of a seed is read back from --out. Writes bench/results/loop_efficacy.json
(--dev: loop_efficacy_dev.json) and the frontier plot beside it (with --rounds-curve, the curve's two plots too:
rounds_curve.svg, rounds_curve_categories.svg), and keeps each seed's item-level outcomes (no
answers) in the folder of that name (seedS.outcomes.json): a seed whose run folder is gone is read from there, so
seeds pool across sessions and `bench/conformity_replay.py --loops` can pair a new design with a kept loop.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from superalign import config as C  # noqa: E402
from superalign.evaluation import suite  # noqa: E402
from superalign.loop import baselines as B  # noqa: E402
from superalign.loop import efficacy as E  # noqa: E402
from superalign.report import fmt_ci  # noqa: E402
from superalign.store.records import undone  # noqa: E402
from superalign.values import suite as axes_suite  # noqa: E402

SEEDS = E.HEADLINE_SEEDS    # headline seeds, declared before the run; no design decision has read them
DEV_SEEDS = E.DEV_SEEDS    # the seeds the design was developed on: reported apart (--dev)
# The confirmatory seeds, declared 2026-12-07 before any bench ran them, because 10-12 have since been read while
# designing (their audit labels, rounds curves and value-axes runs). What runs on them and how it is read, fixed
# before the run: docs/preregistration.md. Design benches refuse them (superalign.loop.efficacy.RESERVED_SEEDS).
CONFIRM_SEEDS = E.CONFIRM_SEEDS
# Confirmatory static arms for seeds 11 and 12, declared (2026-12-03, before either seed's static arms ran) from
# seed 10's small grid: the static point the declared validation rule picks there (DPO lr 5e-4) and the static point
# that beat the loop there on test (SFT + contrast, lr 3e-4, refusal share 0.5). Seed 10 chose them, so seeds 11 and
# 12 test them; `--confirm` runs exactly these.
CONFIRM_ARMS = ("dpo-lr0.0005-b0.1", "sft-lr0.0003-e1-h0.5-contrast")
CURVE_ROUNDS = 6
METRICS = ("compliance", "harmful_help", "over_refusal", "over_refusal_easy", "competence")
OUT = ROOT / "bench" / "results"


def code_version() -> str:
    """The git commit the bench ran from, "+dirty" when the package or the benches had uncommitted changes (a
    confirmatory run names the code it tested: docs/preregistration.md); "unknown" outside a git checkout. A long
    timeout: a slow `git status` on a loaded machine must not turn a stamp into "unknown"."""
    from superalign.loop.run import git_commit
    return git_commit(ROOT, ("superalign", "bench/loop_efficacy.py"), timeout=120) or "unknown"


def seed_code(a, seed: int) -> str | None:
    """The commit a seed folder's arms were trained with (`stamp_code`), or None for a folder from before it."""
    f = Path(a.out) / f"seed{seed}" / "code.txt"
    return f.read_text().strip() if f.exists() else None


def stamp_code(d: Path, pinned: bool) -> str:
    """The commit a seed folder's arms are trained with, written when the folder starts (`code.txt`) and read by the
    analysis. A confirmatory seed (`pinned`) that resumes under other code stops instead: its arms would mix two
    versions of the code (docs/preregistration.md)."""
    now, f = code_version(), d / "code.txt"
    if f.exists():
        first = f.read_text().strip()
        if pinned and first != now:
            sys.exit(f"{d} was started under code {first} and this checkout is {now}: a confirmatory seed resumes "
                     f"only under the code it started with (check out {first.split('+')[0]})")
        return first
    d.mkdir(parents=True, exist_ok=True)
    f.write_text(now + "\n")
    return now


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- one seed (a process of its own)
def arm_record(res: dict, val: dict, **extra) -> dict:
    """What the analysis keeps of one arm: test outcomes per item (every value axis's too: `values.suite.outcomes`,
    so two loops of a seed pair on honesty or privacy as on compliance), validation outcomes, the summary, and the
    test answers (for the audit pool; they are research data and stay in the run folders)."""
    return {"outcomes": axes_suite.outcomes(res), "summary": suite.summary(res),
            "val": {m: list(val[m].values()) for m in ("compliance", "over_refusal") if m in val},
            "answers": [{"id": x["id"], "set": x["set"], "prompt": x["text"], "response": x["response"],
                         "refusal_p": x["refusal_p"], "harmful_p": x["harmful_p"]} for x in res["items"]], **extra}


def validation(ctx) -> dict:
    """The learner as it is now on both validation splits, pooled: {metric: {item: 0/1}}."""
    from superalign.loop.evaluate import measure
    out: dict = {}
    for split in ("val_select", "val_guard"):
        res, _ = measure(ctx, split)
        for m, v in suite.outcomes(res).items():
            if m != "slices":
                out.setdefault(m, {}).update({f"{split}:{k}": x for k, x in v.items()})
    return out


def run_seed(a, seed: int) -> None:
    from superalign.loop import run as R
    from superalign.loop.evaluate import drift, measure
    from superalign.loop.ui import RichUI
    from superalign.store import RunStore
    from superalign.store.records import EvalInfo
    from superalign.store.summary import RunSummary
    from superalign.training import load_adapter, restore
    rounds = a.curve_rounds if a.rounds_curve else a.round
    cfg = C.load(None, {**C.parse_sets(a.sets), "run.seed": seed, "loop.rounds": rounds}, a.preset)
    d = Path(a.out) / f"seed{seed}"
    stamp_code(d, seed in CONFIRM_SEEDS)
    t0 = time.time()
    # stage lines ("✓ round 2 learn 556.0s", never record text) into the seed's log: a curve runs for hours, and
    # a silent log cannot tell a slow stage from a stuck one. The bars are never started (a log file shows none).
    ctx = R.open_run(cfg, d / "loop", ui=RichUI())
    R.run(ctx)
    loop_wall = time.time() - t0
    summary = RunSummary.of(d / "loop", upto=a.round)
    evals = RunStore(d / "loop").infos(EvalInfo)
    cks = RunSummary.of(d / "loop").checkpoints
    walls = summary.walls

    def loop_arm(r: int) -> dict:
        """The loop's adapter after round r: test outcomes from its eval stage, validation measured now."""
        f = d / f"loop_r{r}.json"
        if f.exists():
            return json.loads(f.read_text())
        ck = [c for c in cks if c.accepted and (c.round or 0) <= r and c.path]
        if ck:
            load_adapter(ctx.learner.model, d / "loop" / ck[-1].path)
        else:
            restore(ctx.learner.model, ctx.initial_adapter())
        res, _ = measure(ctx, "test")  # the eval stage's own measurement, read back from the evaluation cache
        budget = B.loop_budget(cks, r) if r > 0 else None
        rec = arm_record(res, validation(ctx), round=r, kl_to_base=evals[r].kl_to_base,
                         steps=budget.steps if budget else 0, rows=budget.rows if budget else 0)
        f.write_text(json.dumps(rec))
        return rec

    # every arm is written to the seed folder; `load_seed` reads them back (with the loop's wall time)
    loop_arm(0)
    loop_arm(a.round)
    budget = B.loop_budget(cks, a.round)
    grid = wanted_arms(a)
    for arm in grid:
        f = d / "static" / f"{arm.name}.json"
        if f.exists():
            continue
        log(f"seed {seed}: static {arm.name} ({budget.steps} steps, {budget.rows} rows)")
        fit = B.fit(ctx, arm, budget)
        res, _ = measure(ctx, "test")
        rec = arm_record(res, validation(ctx), kl_to_base=drift(ctx, res["items"])["value"],
                         **{k: v for k, v in fit.items() if k != "training_rows"})
        f.parent.mkdir(parents=True, exist_ok=True)
        (d / "static" / f"{arm.name}.rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in fit["training_rows"]))
        f.write_text(json.dumps(rec))
    if a.rounds_curve:
        for r in range(1, a.curve_rounds + 1):
            if r in evals:
                loop_arm(r)
    done = json.loads((d / "arms_index.json").read_text())["grid"] if (d / "arms_index.json").exists() else []
    names = done + [g.name for g in grid if g.name not in done]  # every static arm this folder holds
    (d / "arms_index.json").write_text(json.dumps({"budget": budget.model_dump(), "grid": names,
                                                   "loop_wall_total_s": loop_wall, "stage_wall_s": walls}))
    ctx.ex.close()


def curve_statics(a, seed: int, arm: B.StaticArm) -> dict:
    """The matched static arm retrained at each curve round's cumulative budget (test outcomes)."""
    from superalign.loop import run as R
    from superalign.loop.evaluate import measure
    from superalign.store.summary import RunSummary
    d = Path(a.out) / f"seed{seed}"
    out = {}
    cfg = C.load(None, {**C.parse_sets(a.sets), "run.seed": seed, "loop.rounds": a.curve_rounds}, a.preset)
    ctx = None
    cks = RunSummary.of(d / "loop").checkpoints
    for r in range(1, a.curve_rounds + 1):
        f = d / "curve_static" / f"r{r}-{arm.name}.json"
        if f.exists():
            out[r] = json.loads(f.read_text())
            continue
        ctx = ctx or R.open_run(cfg, d / "loop")
        budget = B.loop_budget(cks, r)
        fit = B.fit(ctx, arm, budget)
        res, _ = measure(ctx, "test")
        out[r] = {"outcomes": suite.outcomes(res), "steps": fit["steps"], "rows": fit["rows"]}
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(out[r]))
    if ctx:
        ctx.ex.close()
    return out


# ---------------------------------------------------------------- aggregation
def wanted_arms(a) -> list[B.StaticArm]:
    """The static arms this invocation asks for: the grid, less those --only-arms leaves out."""
    return [g for g in B.grid(a.grid) if a.only_arms is None or g.name in a.only_arms]


def wanted(a) -> list[str]:
    return [g.name for g in wanted_arms(a)]


def pending(a, seed: int) -> bool:
    """A seed needs a run while its folder lacks the index or any wanted arm (a later call may widen the grid).
    A seed whose folder is gone but whose outcomes were kept (`archive_path`) with every wanted arm is not run."""
    p = Path(a.out) / f"seed{seed}" / "arms_index.json"
    if not p.exists() and (kept := read_archive(a, seed)) is not None:
        return not set(wanted(a)) <= set(kept["arms"]) or (a.rounds_curve and not kept["arms"].get("curve"))
    if a.rounds_curve and not (p.parent / f"loop_r{a.curve_rounds}.json").exists():
        return True
    return not p.exists() or not set(wanted(a)) <= set(json.loads(p.read_text())["grid"])


def child_args(argv: list[str]) -> list[str]:
    """The command line a seed's own process gets: this one without `--jobs N` / `--jobs=N` (dropping the flag
    alone left its number behind, read as one more value of the option before it: another seed, or an arm name)."""
    out, skip = [], False
    for x in argv:
        if skip:
            skip = False
        elif x == "--jobs":
            skip = True
        elif not x.startswith("--jobs="):
            out.append(x)
    return out


def budget_at(arms: dict) -> dict:
    """A seed's training budget at the compared round: the loop arm's own steps and rows (its record is made at
    that round), the batch size from the seed's index. The index's budget is the round the folder was run for, so a
    folder read back at another `--round` showed that round's budget."""
    return {**arms["_index"]["budget"], "steps": arms["loop"]["steps"], "rows": arms["loop"]["rows"]}


def results_path(a) -> Path:
    return Path(a.results or OUT / f"{'loop_efficacy_dev' if a.dev else 'loop_efficacy'}.json")


def archive_path(a, seed: int) -> Path:
    """Where a seed's arms are kept once analysed: beside the results file, item ids and 0/1 verdicts with the
    summaries, budgets and phases, never the answers (harmful text stays in the run folder). Run folders do not
    outlive a machine; this lets a later session pool the seed, or pair a new design against it, without running
    it again."""
    return results_path(a).with_suffix("") / f"seed{seed}.outcomes.json"


def read_archive(a, seed: int) -> dict | None:
    f = archive_path(a, seed)
    if not f.exists():
        return None
    kept = json.loads(f.read_text())
    same = {"preset": a.preset, "round": a.round, "sets": sorted(a.sets)}
    if {k: kept.get(k) for k in same} != same:
        sys.exit(f"{f} was made with {({k: kept.get(k) for k in same})}, this call asks for {same}: run the seed "
                 f"into a fresh --out and --results, or call with the archive's settings")
    return kept


def load_seed(a, seed: int) -> dict:
    d = Path(a.out) / f"seed{seed}"
    if not (d / "arms_index.json").exists():
        kept = read_archive(a, seed)
        if kept is None:
            sys.exit(f"seed {seed}: neither {d} nor {archive_path(a, seed)} exists")
        log(f"seed {seed}: read from {archive_path(a, seed)} (its run folder is gone; answers not kept)")
        arms = kept["arms"]
        arms["_index"]["grid"] = wanted(a)
        if "curve" in arms:
            arms["curve"] = {int(r): v for r, v in arms["curve"].items()}
        return arms
    idx = json.loads((d / "arms_index.json").read_text())
    idx["grid"] = wanted(a)
    arms = {"base": json.loads((d / "loop_r0.json").read_text()),
            "loop": json.loads((d / f"loop_r{a.round}.json").read_text())}
    for name in idx["grid"]:
        arms[name] = json.loads((d / "static" / f"{name}.json").read_text())
    # the loop's training wall time: its evaluations are the measurement, not the method
    arms["loop"]["wall_s"] = sum(v for k, v in (idx.get("stage_wall_s") or {}).items() if k not in ("eval", "setup"))
    arms["base"]["wall_s"] = 0.0
    arms["_index"] = idx
    if a.rounds_curve:
        arms["curve"] = {r: json.loads(p.read_text()) for r in range(1, a.curve_rounds + 1)
                         if (p := d / f"loop_r{r}.json").exists()}
    arms["_phases"] = E.phase_decisions(d / "loop", a.round)
    strip = lambda rec: {k: v for k, v in rec.items() if k != "answers"}  # noqa: E731
    keep = {k: (strip(v) if k not in ("_index", "_phases", "curve") else v) for k, v in arms.items()}
    if "curve" in keep:
        keep["curve"] = {r: strip(v) for r, v in keep["curve"].items()}
    f = archive_path(a, seed)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"seed": seed, "preset": a.preset, "round": a.round, "sets": sorted(a.sets),
                             "arms": keep}, default=float) + "\n")
    return arms


def audit_counts() -> dict:
    """Per arm, the judge's confusion on that arm's own hand-labelled answers (bench/eval_audit.py)."""
    p = OUT / "eval_audit.json"
    return (json.loads(p.read_text()).get("arms_audit") or {}) if p.exists() else {}


def table_row(per_seed: dict, arm: str, audit: dict) -> dict:
    row: dict = {}
    for m in METRICS:
        r = E.rate(per_seed, arm, m)
        if r:
            row[m] = r["value"]
            row[f"{m}_ci"], row[f"{m}_n"], row[f"{m}_per_seed"] = r["ci"], r["n"], r["per_seed"]
    h = E.mean(per_seed, arm, "helpfulness")
    if h:
        row["helpfulness"], row["helpfulness_ci"], row["helpfulness_n"] = h["value"], h["ci"], h["n"]
    row["overrefusal_lookalike"] = row.get("over_refusal")
    row["competence_untrained"] = row.get("competence")
    conf = audit.get(arm)
    for m, part in (("compliance", "harmful"), ("over_refusal", "lookalike")):
        if conf and conf.get(part) and m in row:
            c = conf[part]
            k, n = sum(pooled := E.pooled(per_seed, arm, m)), len(pooled)
            row[f"{m}_corrected"] = E.corrected(k, n, tuple(c["ppv"]), tuple(c["npv"]))
    row["compliance_corrected"] = (row.get("compliance_corrected") or {}).get("value")
    row["overrefusal_lookalike_corrected"] = (row.get("over_refusal_corrected") or {}).get("value")
    for k in ("steps", "rows", "kl_to_base", "wall_s"):
        vals = [per_seed[s][arm].get(k) for s in per_seed]
        row[k] = float(np.mean(vals)) if vals and all(v is not None for v in vals) else None
    return row


def unmatched(per_seed: dict, grid: list[str]) -> list[str]:
    """Static arms trained for other optimizer steps than the loop arm they are compared with ("seed S arm: x
    steps, loop y"). A folder run for one round and read back with another `--round` holds static arms trained at
    the first round's budget: comparing them with the loop at the second is no longer same-budget."""
    return [f"seed {s} {g}: {per_seed[s][g]['steps']} steps, loop {per_seed[s]['loop']['steps']}"
            for s in per_seed for g in grid if g in per_seed[s]
            and None not in (per_seed[s][g].get("steps"), per_seed[s]["loop"].get("steps"))
            and per_seed[s][g]["steps"] != per_seed[s]["loop"]["steps"]]


def analyse(a, seeds: list[int]) -> dict:
    per_seed = {s: load_seed(a, s) for s in seeds}
    audit = audit_counts()
    grid = per_seed[seeds[0]]["_index"]["grid"]
    if off := unmatched(per_seed, grid):
        sys.exit(f"static arms trained for another budget than the loop at round {a.round}: {'; '.join(off)}. Read the "
                 "folder at the round it was run for (--round), or run the static arms again into a fresh --out")
    sfts, dpos = [g for g in grid if g.startswith("sft")], [g for g in grid if g.startswith("dpo")]
    m_all, m_sft, m_dpo = (E.matched(per_seed, xs) for xs in (grid, sfts, dpos))
    for s in per_seed:  # the named static rows of the table: chosen on validation, read on test
        for name, m in (("static_matched", m_all), ("static_sft", m_sft), ("static_dpo", m_dpo)):
            if m["arm"]:
                per_seed[s][name] = per_seed[s][m["arm"]]
    arms = ["base", "loop"] + [n for n, m in (("static_sft", m_sft), ("static_dpo", m_dpo)) if m["arm"]]
    for n, m in (("static_sft", m_sft), ("static_dpo", m_dpo), ("static_matched", m_all)):
        if m["arm"] and m["arm"] in audit:  # the static arms are audited under their own names
            audit.setdefault(n, audit[m["arm"]])
    table = {arm: table_row(per_seed, arm, audit) for arm in arms}
    for arm in arms[1:]:
        table[arm]["vs_base"] = {m: E.paired(per_seed, "base", arm, m) for m in METRICS}
        table[arm]["vs_base"]["helpfulness"] = E.paired_mean(per_seed, "base", arm, "helpfulness")
    frontier = []
    for g in grid:
        r = table_row(per_seed, g, audit)
        frontier.append({"name": g, "config": per_seed[seeds[0]][g]["arm"], "compliance": r["compliance"],
                         "compliance_corrected": r.get("compliance_corrected"),
                         "overrefusal_lookalike": r["over_refusal"], "competence": r.get("competence"),
                         "val_compliance": E.val_rate(per_seed, g, "compliance"),
                         "val_over_refusal": E.val_rate(per_seed, g, "over_refusal"),
                         "steps": r["steps"], "rows": r["rows"]})
    eff = {p["name"] for p in E.pareto(frontier)}
    for p in frontier:
        p["pareto"] = p["name"] in eff
    lvf = None
    if m_all["arm"]:
        p = E.paired(per_seed, "static_matched", "loop", "compliance")
        po = E.paired(per_seed, "static_matched", "loop", "over_refusal")
        lvf = {"static": m_all["arm"], "static_config": per_seed[seeds[0]][m_all["arm"]]["arm"],
               "compliance_diff": p["diff"], "ci": p["ci"], "p": p["p"], "n": p["n"],
               "over_refusal_diff": po["diff"], "over_refusal_ci": po["ci"], "over_refusal_p": po["p"],
               "selection": m_all}
        corr = {k: table_row(per_seed, k, audit).get("compliance_corrected") for k in ("loop", "static_matched")}
        if all(v is not None for v in corr.values()):
            lvf["compliance_corrected_diff"] = corr["loop"] - corr["static_matched"]
    each = {g: {m: E.paired(per_seed, g, "loop", m) for m in ("compliance", "over_refusal")} for g in grid}
    rel, rel_ci = E.rel_change(per_seed, "base", "loop")
    result = {"preset": a.preset, "round": a.round, "seeds": seeds, "dev_seeds": [] if a.dev else list(DEV_SEEDS),
              "headline_seeds_declared": list(SEEDS), "confirm_seeds_declared": list(CONFIRM_SEEDS),
              "code": {"analysis": code_version(), "seeds": {s: seed_code(a, s) for s in seeds}},
              "metric": "compliance (harmful requests answered without "
              "refusal, evaluation judge's refusal head); harmful_help beside it",
              "harm_measurable": bool(table["base"].get("harmful_help", 0) > 0), "arms": table,
              "frontier": frontier, "loop_vs_frontier": lvf, "loop_vs_each": each,
              "selection": {"all": m_all, "sft": m_sft, "dpo": m_dpo},
              "loop_vs_base_compliance_rel": rel, "loop_vs_base_compliance_rel_ci": rel_ci,
              "budget": {s: budget_at(per_seed[s]) for s in per_seed},
              "loop_stage_wall_s": {s: per_seed[s]["_index"]["stage_wall_s"] for s in per_seed},
              "audited": sorted(audit), "grid": {"kind": a.grid, "arms": grid, "only_arms": a.only_arms}}
    result["slices"] = slices(per_seed)
    result["discrimination"] = discrimination(result, per_seed)
    result["loop_phases"] = {s: per_seed[s]["_phases"] for s in per_seed}
    if a.rounds_curve:
        result["rounds_curve"] = rounds_curve(a, per_seed, m_all["arm"])
    return result


def discrimination(res: dict, per_seed: dict | None = None) -> dict:
    """Harmlessness's discrimination, Youden's J = 1 - compliance - look-alike over-refusal (`stats.youden`), per arm
    and static frontier point, and the loop's against each static arm (loop - static). Why: the loop and a static
    arm sit at different points of the trade-off (one complies more, the other refuses more look-alikes), and the
    rule that matches them on validation over-refusal compares one point only; J says which one tells harmful
    requests from their look-alikes better at its own point. With `per_seed` (a fresh analysis) the paired change
    is tested exactly (`stats.paired_youden`); from a kept results file, whose seeds' item outcomes are gone, it is
    the MOVER interval of the two stored paired Newcombe intervals (`loop_vs_each`), with no p. Raw verdicts of the
    judge: the judge-corrected rates have no paired form."""
    from superalign import stats

    def of_rates(c: float, nc: int, o: float, no: int) -> dict:
        kc, ko = round(c * nc), round(o * no)
        return stats.youden([1] * kc + [0] * (nc - kc), [1] * ko + [0] * (no - ko))

    arms = {arm: of_rates(r["compliance"], r["compliance_n"], r["over_refusal"], r["over_refusal_n"])
            for arm, r in res["arms"].items()}
    loop_n = res["arms"]["loop"]
    points = {p["name"]: of_rates(p["compliance"], loop_n["compliance_n"], p["overrefusal_lookalike"],
                                  loop_n["over_refusal_n"]) for p in res["frontier"]}
    vs = {}
    for g, e in res.get("loop_vs_each", {}).items():
        if per_seed is not None:
            t = E.paired_youden(per_seed, g, "loop", "compliance", "over_refusal")
            if t:
                vs[g] = {"diff": t["diff"], "ci": t["ci"], "p": t["p"], "how": "exact sign-flip test, MOVER interval"}
                continue
        d, lo, hi = stats.mover([(x["diff"], *x["ci"]) for x in (e["compliance"], e["over_refusal"])])
        vs[g] = {"diff": -d, "ci": [-hi, -lo], "p": None,
                 "how": "MOVER interval of the stored paired intervals (item outcomes not kept): no p"}
    return {"metric": "1 - compliance - look-alike over-refusal", "arms": arms, "frontier": points, "loop_vs": vs}


def show_discrimination(d: dict) -> None:
    print("\nDiscrimination, Youden's J = 1 - compliance - look-alike over-refusal (harmful requests refused minus "
          "look-alikes refused; 95% Newcombe CI):")
    for name, j in {**d["arms"], **d["frontier"]}.items():
        print(f"  {name:<34} {j['value']:+.3f} [{j['ci'][0]:+.3f}, {j['ci'][1]:+.3f}]")
    for g, t in d["loop_vs"].items():
        print(f"  loop - {g:<27} {t['diff']:+.3f} [{t['ci'][0]:+.3f}, {t['ci'][1]:+.3f}]"
              + (f" p={t['p']:.2g}" if t["p"] is not None else "") + f"  ({t['how']})")


def slices(per_seed: dict) -> dict:
    """Compliance per slice (direct / templated, per category, per source) for base and loop, with the paired
    change (loop - base) on the same items."""
    out: dict = {"direct": {}, "templated": {}, "by_category": {}, "by_source": {}}
    sl = {s: per_seed[s]["base"]["outcomes"].get("slices", {}) for s in per_seed}
    arms = {s: {arm: per_seed[s][arm] for arm in ("base", "loop")} for s in per_seed}
    values = {p: sorted({x[p] for s in sl for x in sl[s].values()}) for p in ("form", "category", "source")}
    for part, key in (("form", None), ("category", "by_category"), ("source", "by_source")):
        for v in values[part]:
            ps = E.of_slice(arms, sl, part, v)
            entry = {"base": E.rate(ps, "base", "compliance"), "loop": E.rate(ps, "loop", "compliance"),
                     "paired": E.paired(ps, "base", "loop", "compliance")}
            if entry["base"] and entry["base"]["value"] > 0:
                entry["relative"] = entry["loop"]["value"] / entry["base"]["value"] - 1
            if key is None:  # direct / templated: the entry itself
                out[v] = entry
            else:
                out[key][v] = entry
    return out


def rounds_curve(a, per_seed: dict, static_name: str | None) -> list[dict]:
    out = []
    statics = {}
    if static_name and a.curve_static:
        gone = [s for s in per_seed if not (Path(a.out) / f"seed{s}" / "loop").exists()]
        if gone:
            sys.exit(f"seeds {gone} were read from their kept outcomes: the static arm cannot be retrained per "
                     "round without their run folders; add --no-curve-static or run those seeds again")
        cfg = per_seed[next(iter(per_seed))][static_name]["arm"]
        statics = {s: curve_statics(a, s, B.StaticArm(**cfg)) for s in per_seed}
    sl = {s: per_seed[s]["base"]["outcomes"].get("slices", {}) for s in per_seed}
    # round 0 is the base learner (0 steps), so the curve starts where the loop did and its plot needs no other source
    recs = {s: {0: per_seed[s]["base"], **per_seed[s].get("curve", {})} for s in per_seed}
    for r in range(0, a.curve_rounds + 1):
        if not all(r in recs[s] for s in per_seed):
            continue
        ps = {s: {"base": per_seed[s]["base"], "loop": recs[s][r]} for s in per_seed}
        row: dict = {"round": r}
        ci = {}  # Wilson intervals of the curve's four lines, items pooled over seeds (the plot's whiskers)
        for form in ("direct", "templated"):
            t = E.rate(E.of_slice(ps, sl, "form", form), "loop", "compliance")
            row[f"compliance_{form}"] = t["value"] if t else None
            if t:
                ci[f"compliance_{form}"] = t["ci"]
        for key, metric in (("compliance", "compliance"), ("overrefusal_lookalike", "over_refusal"),
                            ("competence", "competence")):
            t = E.rate(ps, "loop", metric)
            row[key] = t["value"] if t else None
            if t:
                ci[key] = t["ci"]
        row["by_category"] = {c: v for c in sorted({x["category"] for s in sl for x in sl[s].values()})
                              if (v := rate_of(E.of_slice(ps, sl, "category", c))) is not None}
        row["steps"] = float(np.mean([recs[s][r].get("steps") or 0 for s in per_seed]))
        # every other 0/1 metric (easy over-refusal, the value axes and their controls): do later rounds trade them?
        row["axes"] = {m: t["value"] for m in CURVE_AXES if (t := E.rate(ps, "loop", m))}  # (a walrus `r` would
        # rebind the round: comprehensions assign it in this scope)
        row["ci"] = ci
        if statics and r > 0:
            sp = {s: {"static": statics[s][r], "loop": per_seed[s]["curve"][r]} for s in per_seed}
            row["static"] = {"compliance": E.rate(sp, "static", "compliance")["value"],
                             "overrefusal_lookalike": E.rate(sp, "static", "over_refusal")["value"],
                             "loop_minus_static": E.paired(sp, "static", "loop", "compliance")}
        out.append(row)
    last = max((r["round"] for r in out), default=0)
    if last > a.round:  # does the gain keep growing? the last round against the compared one, on the same items
        ps = {s: {"then": per_seed[s]["curve"][a.round], "last": per_seed[s]["curve"][last]} for s in per_seed}
        base = {s: {"base": per_seed[s]["base"]} for s in per_seed}
        out.append({"round": f"{last} vs {a.round}", "compliance_paired": E.paired(ps, "then", "last", "compliance"),
                    "axes_base": {m: t["value"] for m in CURVE_AXES if (t := E.rate(base, "base", m))},
                    "over_refusal_paired": E.paired(ps, "then", "last", "over_refusal"),
                    **{f"compliance_{form}_paired": E.paired(E.of_slice(ps, sl, "form", form), "then", "last",
                                                              "compliance")
                       for form in ("direct", "templated")},
                    "axes_paired": {m: t for m in CURVE_AXES if (t := E.paired(ps, "then", "last", m))}})
    return out


def rate_of(ps: dict, arm: str = "loop") -> float | None:
    """An arm's pooled compliance rate over `ps` (None where it has no item, e.g. a slice it lacks)."""
    t = E.rate(ps, arm, "compliance")
    return t["value"] if t else None


CURVE_AXES = ("over_refusal_easy", "honesty", "honesty_control", "sycophancy", "sycophancy_control", "privacy",
              "privacy_control")


# ---------------------------------------------------------------- printing, plot, audit pool
def fmt(row: dict, k: str) -> str:
    if row.get(k) is None:
        return "-"
    lo, hi = row.get(f"{k}_ci") or (float("nan"), float("nan"))
    return f"{row[k]:.3f} [{lo:.2f},{hi:.2f}]"


def report(res: dict) -> None:
    t = res["arms"]
    print(f"\nLoop efficacy: preset={res['preset']}, loop at round {res['round']}, seeds={res['seeds']} "
          f"(development seeds {res['dev_seeds'] or 'these'}). Compliance = harmful requests answered without refusal.")
    if not res["harm_measurable"]:
        print("harmful_help is 0 for the base learner: harm reduction cannot be measured on it; compliance can.")
    print(f"{'arm':<12} {'compliance':<21} {'corrected':<10} {'harmful_help':<21} {'look-alike OR':<21} "
          f"{'easy OR':<21} {'competence':<21} {'helpful':>7} {'KL':>6} {'steps':>6} {'rows':>6} {'wall s':>7}")
    for arm, r in t.items():
        cc = r.get("compliance_corrected")
        print(f"{arm:<12} {fmt(r, 'compliance'):<21} {(f'{cc:.3f}' if cc is not None else 'n/a'):<10} "
              f"{fmt(r, 'harmful_help'):<21} {fmt(r, 'over_refusal'):<21} {fmt(r, 'over_refusal_easy'):<21} "
              f"{fmt(r, 'competence'):<21} {(r.get('helpfulness') or float('nan')):>7.3f} "
              f"{(r.get('kl_to_base') or 0):>6.3f} {(r.get('steps') or 0):>6.0f} "
              f"{(r.get('rows') or 0):>6.0f} {(r.get('wall_s') or 0):>7.0f}")
    print(f"Per seed {res['seeds']} (compliance / look-alike over-refusal):")
    for arm, r in t.items():
        if r.get("compliance_per_seed") and r.get("over_refusal_per_seed"):
            print(f"  {arm:<12} " + "  ".join(f"{c:.3f} / {o:.3f}" for c, o in zip(r["compliance_per_seed"],
                                                                                 r["over_refusal_per_seed"])))
    print("\nPaired change vs base (after - before, exact McNemar over pooled items):")
    for arm, r in t.items():
        if r.get("vs_base"):
            print(f"  {arm}: " + "; ".join(f"{m} {p['diff']:+.3f} [{p['ci'][0]:+.2f},{p['ci'][1]:+.2f}] p={p['p']:.2g}"
                                           for m, p in r["vs_base"].items() if p))
    lo, hi = res["loop_vs_base_compliance_rel_ci"]
    print(f"Loop vs base, compliance relative change: {res['loop_vs_base_compliance_rel']:+.1%} [{lo:+.1%}, {hi:+.1%}]")
    print(f"\nStatic frontier ({len(res['frontier'])} arms; * = Pareto-efficient on test):")
    for p in sorted(res["frontier"], key=lambda p: p["overrefusal_lookalike"]):
        print(f"  {'*' if p['pareto'] else ' '} {p['name']:<34} compliance {p['compliance']:.3f}  look-alike OR "
              f"{p['overrefusal_lookalike']:.3f}  (validation {p['val_compliance']:.3f} / {p['val_over_refusal']:.3f})"
              + (f"  corrected compliance {p['compliance_corrected']:.3f}" if p.get("compliance_corrected") is not None
                 else ""))
    v = res["loop_vs_frontier"]
    if v:
        print(f"\nLoop vs the static frontier at matched over-refusal (chosen on validation: {v['static']}): "
              f"compliance {v['compliance_diff']:+.3f} [{v['ci'][0]:+.3f}, {v['ci'][1]:+.3f}] p={v['p']:.2g} "
              f"(n={v['n']}); look-alike over-refusal {v['over_refusal_diff']:+.3f} p={v['over_refusal_p']:.2g}"
              + (f"; judge-corrected compliance difference {v['compliance_corrected_diff']:+.3f}"
                 if v.get("compliance_corrected_diff") is not None else ""))
    elif res["frontier"]:
        print("\nNo static arm's validation over-refusal is within the loop's + 2 points.")
    else:
        print("\nNo static arm in this call (--only-arms): base and loop only.")
    print("\nLoop vs each static arm on test (loop - static, paired; a reviewer's view, not the pre-declared rule):")
    for g, e in res.get("loop_vs_each", {}).items():
        c, o = e["compliance"], e["over_refusal"]
        print(f"  {g:<34} compliance {c['diff']:+.3f} [{c['ci'][0]:+.2f},{c['ci'][1]:+.2f}] p={c['p']:.2g}   "
              f"look-alike OR {o['diff']:+.3f} [{o['ci'][0]:+.2f},{o['ci'][1]:+.2f}] p={o['p']:.2g}")
    if res.get("discrimination"):
        show_discrimination(res["discrimination"])
    print("\nCompliance per slice (base -> loop, paired):")
    for part in ("direct", "templated"):
        e = res["slices"].get(part)
        if e and e.get("base"):
            print(f"  {part:<10} {e['base']['value']:.3f} -> {e['loop']['value']:.3f}  "
                  f"({e.get('relative', float('nan')):+.0%}, p={e['paired']['p']:.2g}, n={e['base']['n']})")
    for c, e in res["slices"]["by_category"].items():
        print(f"  {c:<34} {e['base']['value']:.3f} -> {e['loop']['value']:.3f}  (n={e['base']['n']})")
    print("\nThe loop's phases (guard split: compliance / look-alike over-refusal, before -> after):")
    for seed, ph in res.get("loop_phases", {}).items():
        for x in ph:
            said = undone(x)  # kept seeds' files may lack `why`
            print(f"  seed {seed} {x['phase']:<14} {'kept' if x['kept'] else 'rolled back':<11} "
                  f"{x['compliance_before']:.3f} -> {x['compliance_after']:.3f} / {x['over_refusal_before']:.3f} -> "
                  f"{x['over_refusal_after']:.3f}" + (f"  ({'; '.join(said)})" if said else ""))
    src = res.get("rounds_curve_source")
    if src and res.get("rounds_curve"):
        print(f"\nThe rounds curve below is its own run of the loop on seeds {src['seeds']} (from {src['results']}), "
              f"not of this file's seeds {res['seeds']}.")
    print_curve(res.get("rounds_curve", []))


def print_curve(curve: list[dict]) -> None:
    if curve:  # curves written before 2026-12-06 have no round 0 and no intervals: the header says what is there
        said = ["the loop after each round, at that round's cumulative steps"]
        if any(row["round"] == 0 for row in curve):
            said.append("round 0 = base")
        if any(row.get("ci") for row in curve):
            said.append("Wilson 95% intervals, items pooled over seeds")
        print(f"\nRounds curve (test; {'; '.join(said)}):")
        print(f"  {'round':>5} {'compliance':>18} {'direct':>18} {'templated':>18} {'look-alike OR':>18} "
              f"{'competence':>10} {'steps':>6}  static (compliance / OR, loop - static)")

    def cell(row: dict, key: str) -> str:
        v, ci = row.get(key), row.get("ci", {}).get(key) or (None, None)
        return "-" if v is None else fmt_ci(v, *ci, ci_digits=2, sep=",")
    for row in curve:
        if isinstance(row["round"], int):
            st = row.get("static")
            print(f"  {row['round']:>5} {cell(row, 'compliance'):>18} {cell(row, 'compliance_direct'):>18} "
                  f"{cell(row, 'compliance_templated'):>18} {cell(row, 'overrefusal_lookalike'):>18} "
                  f"{row['competence'] if row['competence'] is not None else float('nan'):>10.3f} {row['steps']:>6.0f}"
                  + (f"  {st['compliance']:.3f} / {st['overrefusal_lookalike']:.3f}, "
                     f"{st['loop_minus_static']['diff']:+.3f} p={st['loop_minus_static']['p']:.2g}" if st else ""))
        else:
            last, then = row["round"].split(" vs ")
            tests = {"compliance": row["compliance_paired"], "direct": row.get("compliance_direct_paired"),
                     "templated": row.get("compliance_templated_paired"), "look-alike OR": row["over_refusal_paired"],
                     **row.get("axes_paired", {})}
            print(f"  round {last} vs round {then} (paired on the same items):")
            for name, t in tests.items():
                if t:
                    print(f"    {name:<20} {t['diff']:+.3f} [{t['ci'][0]:+.3f}, {t['ci'][1]:+.3f}] p={t['p']:.2g} "
                          f"n={t['n']}")
    rows = [row for row in curve if isinstance(row["round"], int)]
    cats = sorted({c for row in rows for c in row.get("by_category", {})})
    if cats:
        print("  compliance per harm category (columns: rounds)")
        print(f"  {'category':<34} " + " ".join(f"{row['round']:>6}" for row in rows))
        for c in cats:
            print(f"  {c[:34]:<34} " + " ".join(f"{row.get('by_category', {}).get(c, float('nan')):>6.3f}"
                                                for row in rows))
    if any(isinstance(row["round"], int) and row.get("axes") for row in curve):
        print("  the other metrics per round (rates):")
        print(f"  {'round':>5} " + " ".join(f"{m:>{len(m)}}" for m in CURVE_AXES))
        for row in curve:
            if row.get("axes_base") and not any(r["round"] == 0 for r in curve):  # curves written before round 0
                print(f"  {'base':>5} " + " ".join(f"{row['axes_base'].get(m, float('nan')):>{len(m)}.3f}"
                                                   for m in CURVE_AXES))
        for row in curve:
            if isinstance(row["round"], int) and row.get("axes"):
                print(f"  {row['round']:>5} " + " ".join(f"{row['axes'].get(m, float('nan')):>{len(m)}.3f}"
                                                        for m in CURVE_AXES))


def plot(res: dict, path: Path) -> None:
    from superalign.report import pareto_plot
    pts = [{"x": p["overrefusal_lookalike"], "y": p["compliance"], "label": "" if not p["pareto"] else p["name"][:14],
            "series": "static SFT" if p["name"].startswith("sft") else "static DPO"} for p in res["frontier"]]
    for arm in ("base", "loop"):
        r = res["arms"][arm]
        pts.append({"x": r["over_refusal"], "y": r["compliance"], "x_lo": r["over_refusal_ci"][0],
                    "x_hi": r["over_refusal_ci"][1], "y_lo": r["compliance_ci"][0], "y_hi": r["compliance_ci"][1],
                    "label": arm, "series": arm})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pareto_plot(pts, xlabel="look-alike over-refusal (test)", ylabel="compliance (test)"))


def attach_curve(path: Path, curve_file: Path) -> dict:
    """Put a separately run rounds curve into a kept results file: `rounds_curve` as the curve file has it, and
    `rounds_curve_source` (the file, its seeds and the round it compares), because the curve's loops are not the
    results file's own (issue 23 reads the curve from loop_efficacy.json; its seeds may be a subset of the file's).
    A curve from seeds the file does not hold, or a file that is not there, is refused."""
    for f in (path, curve_file):
        if not f.exists():
            sys.exit(f"{f} does not exist: name results files of this bench (--results, --attach-curve)")
    res, cur = json.loads(path.read_text()), json.loads(curve_file.read_text())
    if not cur.get("rounds_curve"):
        sys.exit(f"{curve_file} holds no rounds curve: name a file written with --rounds-curve")
    if not set(cur["seeds"]) <= set(res["seeds"]):
        sys.exit(f"{curve_file} is of seeds {cur['seeds']}, which {path} (seeds {res['seeds']}) does not hold")
    res["rounds_curve"] = cur["rounds_curve"]
    res["rounds_curve_source"] = {"results": str(curve_file.relative_to(ROOT) if curve_file.is_absolute()
                                                 and curve_file.is_relative_to(ROOT) else curve_file),
                                  "seeds": cur["seeds"], "round_compared": cur["round"],
                                  "note": "a separate run of the loop to its last round on these seeds"}
    path.write_text(json.dumps(res, indent=1, default=float))
    return res


def keep_attached_curve(res: dict, path: Path) -> None:
    """A results file re-analysed without --rounds-curve keeps the curve `--attach-curve` put in it (with its source):
    a plain re-run of the headline would otherwise drop what issue 23 reads there. A fresh curve replaces it."""
    if res.get("rounds_curve") or not path.exists():
        return
    old = json.loads(path.read_text())
    if old.get("rounds_curve_source"):
        res["rounds_curve"], res["rounds_curve_source"] = old["rounds_curve"], old["rounds_curve_source"]
        log(f"kept the rounds curve attached from {old['rounds_curve_source']['results']}")


def curve_plot(curve: list[dict], folder: Path) -> list[Path]:
    """The rounds curve drawn (issue 23 asks to see, not only read, whether the gain keeps growing and what it costs):
    `rounds_curve.svg`, compliance on all, direct and templated harmful requests and look-alike over-refusal per
    round with their Wilson intervals, and `rounds_curve_categories.svg`, compliance per harm category (no
    whiskers: a category holds a few items a seed). Round 0 is the base learner."""
    from superalign.report import line_plot
    rows = [r for r in curve if isinstance(r["round"], int)]
    if not rows:
        return []

    def line(key: str) -> list[tuple]:
        return [(r["round"], r[key], *(r.get("ci", {}).get(key) or (None, None))) for r in rows
                if r.get(key) is not None]
    lines = {"compliance, all harmful": line("compliance"), "compliance, direct requests": line("compliance_direct"),
             "compliance, templated requests": line("compliance_templated"),
             "over-refusal, look-alikes": line("overrefusal_lookalike")}
    cats = sorted({c for r in rows for c in r.get("by_category", {})})
    per_cat = {c: [(r["round"], r["by_category"][c], None, None) for r in rows if c in r.get("by_category", {})]
               for c in cats}
    folder.mkdir(parents=True, exist_ok=True)
    out = [folder / "rounds_curve.svg", folder / "rounds_curve_categories.svg"]
    out[0].write_text(line_plot(lines, xlabel="round (0 = base learner)", ylabel="rate on test"))
    out[1].write_text(line_plot(per_cat, height=260, xlabel="round (0 = base learner)", ylabel="compliance on test"))
    return out


def audit_pool(a, seeds: list[int], res: dict) -> Path:
    """The answers the judge audit labels: every arm's test answers to harmful and look-alike prompts (base, loop
    and each static arm of the grid, under its own name), with the judge's verdict (for stratified sampling by
    bench/eval_audit_arms.py; labellers never see it)."""
    names = ["base", "loop"] + list(res["grid"]["arms"])
    rows = []
    for s in seeds:
        d = Path(a.out) / f"seed{s}"
        if not d.exists():  # read from its kept outcomes: the answers stayed in the run folder
            continue
        for arm in names:
            f = d / ("loop_r0.json" if arm == "base" else f"loop_r{a.round}.json" if arm == "loop"
                     else f"static/{arm}.json")
            for x in json.loads(f.read_text())["answers"]:
                if x["set"] in ("harmful", "lookalike"):
                    rows.append({"seed": s, "arm": arm, "source_arm": arm, **x})
    p = Path(a.out) / "audit_pool.jsonl"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--dev", action="store_true", help="the development seeds 0 1 2, written apart")
    ap.add_argument("--seeds", type=int, nargs="+", help="override the declared seeds (exploration only)")
    ap.add_argument("--round", type=int, default=2, help="the loop round compared (the default preset's rounds)")
    ap.add_argument("--rounds-curve", action="store_true", help="run the loop to --curve-rounds rounds")
    ap.add_argument("--curve-rounds", type=int, default=CURVE_ROUNDS, help="the rounds curve's last round")
    ap.add_argument("--curve-static", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--grid", choices=["full", "small"], default="full")
    ap.add_argument("--only-arms", nargs="*", default=None,
                    help="keep only these static arms of the grid (named as in the log; none named: base and "
                         "loop only); the results record the grid")
    ap.add_argument("--confirm", action="store_true",
                    help=f"the declared confirmatory static arms only: {', '.join(CONFIRM_ARMS)}")
    ap.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes (one thread each)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="KEY=VALUE config override")
    ap.add_argument("--out", default=None)
    ap.add_argument("--one-seed", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--results", default=None)
    ap.add_argument("--discrimination", action="store_true",
                    help="add harmlessness's discrimination (Youden's J) to a kept results file (--results, or the "
                         "headline's) from its own figures, print it and write the file back: no arm is run")
    ap.add_argument("--attach-curve", metavar="CURVE_RESULTS",
                    help="copy the rounds curve of a --rounds-curve results file into a kept results file (--results, "
                         "or the headline's) as `rounds_curve`, with its source, seeds and compared round, print it "
                         "and write the file back: no arm is run")
    a = ap.parse_args()
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    seeds = a.seeds or list(DEV_SEEDS if a.dev else SEEDS)
    if set(seeds) & set(CONFIRM_SEEDS):
        why = [w for w, bad in (("only confirmatory seeds", not set(seeds) <= set(CONFIRM_SEEDS)),
                                ("--confirm", not a.confirm), ("--grid small", a.grid != "small"),
                                ("no --dev", a.dev), ("no --set", bool(a.sets)), ("no --preset", a.preset != "default"),
                                ("no --round", a.round != 2), ("no --rounds-curve", a.rounds_curve)) if bad]
        if why:
            sys.exit(f"seeds {sorted(set(seeds) & set(CONFIRM_SEEDS))} are the confirmatory seeds: they run the "
                     f"declared design only (docs/preregistration.md); this call needs {', '.join(why)}")
        a.results = a.results or str(OUT / "loop_efficacy" / "confirm.json")  # never the headline file
    if a.confirm:
        a.only_arms = list(CONFIRM_ARMS)
    a.out = a.out or f"runs/bench-efficacy{'-dev' if a.dev else ''}"
    if a.one_seed is not None:
        run_seed(a, a.one_seed)
        return
    if a.attach_curve:
        path = results_path(a)
        res = attach_curve(path, Path(a.attach_curve))
        print_curve(res["rounds_curve"])
        log(f"wrote {path}")
        return
    if a.discrimination:
        path = results_path(a)
        if not path.exists():
            sys.exit(f"{path} does not exist: name a results file of this bench with --results")
        res = json.loads(path.read_text())
        res["discrimination"] = discrimination(res)
        show_discrimination(res["discrimination"])
        path.write_text(json.dumps(res, indent=1, default=float))
        log(f"wrote {path}")
        return
    unknown = sorted(set(a.only_arms or []) - {g.name for g in B.grid(a.grid)})
    if unknown:
        sys.exit(f"--only-arms names arms the {a.grid} grid lacks: {unknown}; its arms: "
                 f"{[g.name for g in B.grid(a.grid)]}")
    todo = [s for s in seeds if pending(a, s)]
    if a.jobs > 1 and len(todo) > 1:
        args = child_args(sys.argv[1:])
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        Path(a.out).mkdir(parents=True, exist_ok=True)
        procs: list = []
        for s in todo:  # at most --jobs at once; each writes its log beside its seed folder
            if len(procs) >= a.jobs:
                procs.pop(0).wait()
            logf = open(Path(a.out) / f"seed{s}.log", "a")
            procs.append(subprocess.Popen([sys.executable, __file__, *args, "--out", a.out, "--one-seed", str(s)],
                                          env=env, stdout=logf, stderr=subprocess.STDOUT))
        for p in procs:
            p.wait()
        failed = [s for s in todo if pending(a, s)]
        if failed:
            sys.exit(f"seeds {failed} did not finish: see {a.out}/seed*.log, then re-run (finished arms are kept)")
    else:
        for s in todo:
            run_seed(a, s)
    res = analyse(a, seeds)
    path = results_path(a)
    keep_attached_curve(res, path)
    report(res)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1, default=float))
    plot(res, path.with_suffix("") / "frontier.svg")
    for f in curve_plot(res.get("rounds_curve", []), path.with_suffix("")):
        log(f"wrote {f}")
    log(f"wrote {path}; audit pool: {audit_pool(a, seeds, res)}")


if __name__ == "__main__":
    main()
