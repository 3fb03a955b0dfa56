"""Weak-to-strong on CPU: capacity gaps per candidate task, then weak / w2s (xent, aux-conf logconf, ladder) /
ceiling / data-matched control and PGR per task, 3 seeds. Writes bench/results/w2s.json.

    nice -n 10 python bench/w2s.py [--mode lora|linear] [--seeds 0 1 2] [--tasks ...] [--out-dir runs]

Headline (`--mode lora`): the strong model is SmolLM2-135M fine-tuned with LoRA (see DEFAULT["finetune"]); the weak
supervisor is MiniLM-L6 (22M) + a linear head; the ladder's rung is SmolLM2 as a frozen linear probe (fewer
trainable parameters; its gold ceiling is measured). `--mode linear` is the fast variant: the strong model is a
linear probe too (Burns et al.'s linear-probe setting), and is labelled as such in the output.

A task is accepted when its capacity gap (ceiling - data-matched control, both on the same gold rows) is >= 0.10
with a 95% CI excluding 0; rejected ones are listed with their gaps and the reason, and still run (flagged
`accepted: false`): PGR is then shown only where the gap's CI excludes 0 and weak is above chance.
`socialiqa` was chosen before any measurement as the untuned task: no setting here was chosen by looking at it,
and it is reported whatever it shows. (The LoRA setting, exit block 14 / 2 LoRA blocks / mean pool / LP-FT, was
chosen on sarcasm seed 0 only.)
Every fit is cached on disk (features, LoRA-ready token states, trained heads/adapters), so a rerun is fast: the
printed wall time says whether the cache was cold.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from superalign.store import RunStore
from superalign.w2s.config import parse_config
from superalign.w2s.experiment import run
from superalign.w2s.report import LABELS, ORDER

TASKS = [{"name": "sarcasm", "n_weak": 400, "n_transfer": 500, "n_test": 400},
         {"name": "quartz", "n_weak": 400, "n_transfer": 500, "n_test": 400},
         {"name": "harm_labels", "n_weak": 300, "n_transfer": 400, "n_test": 299},
         {"name": "mmlu", "n_weak": 200, "n_transfer": 250, "n_test": 200},
         {"name": "socialiqa", "n_weak": 200, "n_transfer": 250, "n_test": 200, "untuned": True}]
DEFAULT = {
    "seeds": [0, 1, 2],
    "weak": "minilm-l6",
    "strong": "smollm2-135m-instruct",
    "ladder": ["smollm2-135m-instruct@-1"],
    "methods": ["xent", "logconf", "ladder"],
    "control": True,
    "max_tokens": 64,
    "threads": 1,
    "finetune": {"mode": "lora", "exit_layer": 14, "lora_layers": 2, "pool": "mean", "max_epochs": 2,
                 "patience": 1},
}
MIN_GAP = 0.10


def fmt(v, ci=None):
    if v is None:
        return "withheld"
    return f"{v:.3f}" + (f" [{ci[0]:+.3f},{ci[1]:+.3f}]" if ci else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["lora", "linear"], default="lora")
    ap.add_argument("--seeds", type=int, nargs="+")
    ap.add_argument("--tasks", nargs="+")
    ap.add_argument("--weak", help="weak model spec (default minilm-l6)")
    ap.add_argument("--gaps-only", action="store_true", help="only the capacity-gap screening (phase 1)")
    ap.add_argument("--gaps-only-tasks", nargs="+", default=[],
                    help="tasks that get only the gap screening (LoRA students on long texts cost too much CPU)")
    ap.add_argument("--out-dir", default="runs")
    ap.add_argument("--out", help="default: bench/results/w2s.json (lora), w2s/linear.json (linear)")
    a = ap.parse_args()
    a.out = a.out or ("bench/results/w2s.json" if a.mode == "lora" else "bench/results/w2s/linear.json")
    section = dict(DEFAULT)
    if a.mode == "linear":
        section["strong"], section["finetune"] = "smollm2-135m-instruct@12", {"mode": "linear"}
        section["ladder"] = ["smollm2-135m-instruct@20"]
    if a.seeds:
        section["seeds"] = a.seeds
    if a.weak:
        section["weak"] = a.weak
    tasks = [t for t in TASKS if not a.tasks or t["name"] in a.tasks]
    run_dir = Path(a.out_dir) / time.strftime(f"bench-w2s-{a.mode}-%Y%m%d-%H%M%S")
    store = RunStore(run_dir, create=True)
    store.put("name", run_dir.name)
    t0, load0 = time.time(), os.getloadavg()
    out = {"mode": a.mode, "setting": None, "tasks": {}, "rejected": {}, "gaps_only": a.gaps_only_tasks}
    # phase 1: capacity gaps (weak, control, ceiling only), every candidate
    gaps_cfg = parse_config({**section, "tasks": tasks, "methods": []})
    out["setting"] = gaps_cfg.model_dump(mode="json")
    gstore = RunStore(run_dir / "gaps", create=True)
    gstore.put("config", {"w2s": gaps_cfg.model_dump(mode="json")})
    print(f"== capacity gaps ({a.mode}; weak {gaps_cfg.weak}, strong {gaps_cfg.strong}, seeds {gaps_cfg.seeds})")
    gaps = {}
    for t in gaps_cfg.task_specs():
        t1 = time.time()
        s = run(gaps_cfg.model_copy(update={"tasks": [t]}), gstore)[t.name]
        gaps[t.name] = s
        print(f"{t.name:<12} weak {fmt(s['accuracy']['weak'])}  control {fmt(s['accuracy']['control'])}  ceiling "
              f"{fmt(s['accuracy']['ceiling'])}  gap {fmt(s['gap'], s['gap_ci'])}  capacity gap "
              f"{fmt(s['capacity_gap'], s['capacity_gap_ci'])}  chance {s['chance']:.3f}  ({time.time() - t1:.0f}s)")
    keep = [t for t in tasks if gaps[t["name"]]["capacity_gap"] >= MIN_GAP and gaps[t["name"]]["capacity_gap_ci"][0] > 0]
    for t in tasks:
        if t not in keep:
            s = gaps[t["name"]]
            out["rejected"][t["name"]] = {k: s[k] for k in ("gap", "gap_ci", "capacity_gap", "capacity_gap_ci", "chance")}
            out["rejected"][t["name"]].update(weak=s["accuracy"]["weak"], ceiling=s["accuracy"]["ceiling"],
                                              control=s["accuracy"]["control"],
                                              reason=f"capacity gap {s['capacity_gap']:+.3f} "
                                                     f"[{s['capacity_gap_ci'][0]:+.3f}, {s['capacity_gap_ci'][1]:+.3f}]"
                                                     f" is not >= {MIN_GAP} with a CI excluding 0")
    gstore.close()
    out["gaps"] = {n: {"weak": g["accuracy"]["weak"], "control": g["accuracy"]["control"],
                       "ceiling": g["accuracy"]["ceiling"], "gap": g["gap"], "gap_ci": g["gap_ci"],
                       "capacity_gap": g["capacity_gap"], "capacity_gap_ci": g["capacity_gap_ci"],
                       "chance": g["chance"], "accepted": n not in out["rejected"]} for n, g in gaps.items()}
    print("accepted:", [t["name"] for t in keep], " rejected:", list(out["rejected"]))
    # phase 2: weak-to-strong on every task (weak labels, ceilings and controls come from the cache)
    cfg = parse_config({**section, "tasks": tasks})
    store.put("config", {"w2s": cfg.model_dump(mode="json")})
    for t in [] if a.gaps_only else [t for t in cfg.task_specs() if t.name not in a.gaps_only_tasks]:
        t1 = time.time()
        s = run(cfg.model_copy(update={"tasks": [t]}), store)[t.name]
        rungs = [r for r in store.rows("metrics", name="accuracy") if r["meta"]["task"] == t.name
                 and r["role"] == "rung"]
        print(f"\n== {t.name}{' (untuned)' if t.untuned else ''}  {a.mode}  gap {fmt(s['gap'], s['gap_ci'])}  "
              f"capacity gap {fmt(s['capacity_gap'], s['capacity_gap_ci'])}  chance {s['chance']:.3f}")
        for m in [m for m in ORDER if m in s["accuracy"]]:
            p = f"   PGR {fmt(s['pgr'][m], s['pgr_ci'][m])}" if m in s["pgr"] else ""
            print(f"  {LABELS[m]:<42} {fmt(s['accuracy'][m], s['accuracy_ci'][m])}{p}")
        if s["pgr_withheld"]:
            print(f"  PGR withheld: {s['pgr_withheld']}")
        ladder = []
        for step in sorted({r["meta"]["step"] for r in rungs}):
            rs = [r for r in rungs if r["meta"]["step"] == step]
            mean = lambda k: sum(r["meta"][k] for r in rs) / len(rs)  # noqa: E731
            ladder.append({"step": step, "rung": rs[0]["model"], "supervisor_accuracy": mean("supervisor_accuracy"),
                           "student_accuracy": sum(r["value"] for r in rs) / len(rs), "rung_ceiling": mean("ceiling"),
                           "gap": mean("gap")})
            print(f"  ladder step {step}: {rs[0]['meta']['supervisor']} -> {rs[0]['model']}: supervisor "
                  f"{mean('supervisor_accuracy'):.3f}, student {ladder[-1]['student_accuracy']:.3f}, rung gold ceiling "
                  f"{mean('ceiling'):.3f} (rung gap {mean('gap'):+.3f})")
        out["tasks"][t.name] = {"weak": s["accuracy"]["weak"], "ceiling": s["accuracy"]["ceiling"],
                                "control": s["accuracy"].get("control"), "gap": s["gap"], "gap_ci": s["gap_ci"],
                                "capacity_gap": s.get("capacity_gap"), "capacity_gap_ci": s.get("capacity_gap_ci"),
                                "chance": s["chance"], "untuned": t.untuned,
                                "accepted": t.name not in out["rejected"], "accuracy": s["accuracy"],
                                "accuracy_ci": s["accuracy_ci"], "pgr": s["pgr"], "pgr_ci": s["pgr_ci"],
                                "pgr_withheld": s["pgr_withheld"], "ladder": ladder, "seconds": round(time.time() - t1)}
        print(f"  ({time.time() - t1:.0f}s)")
    for t in cfg.task_specs():
        if t.name not in out["tasks"]:  # gap screening only: no students were trained, so no PGR
            g = gaps[t.name]
            out["tasks"][t.name] = {"weak": g["accuracy"]["weak"], "ceiling": g["accuracy"]["ceiling"],
                                    "control": g["accuracy"]["control"], "gap": g["gap"], "gap_ci": g["gap_ci"],
                                    "capacity_gap": g["capacity_gap"], "capacity_gap_ci": g["capacity_gap_ci"],
                                    "chance": g["chance"], "untuned": t.untuned, "accepted": t.name not in out["rejected"],
                                    "pgr": {}, "pgr_ci": {}, "pgr_withheld": "gap screening only: w2s students not "
                                                                             "trained in this run (--gaps-only)"}
    wall = time.time() - t0
    out.update(wall_seconds=round(wall), cpu_count=os.cpu_count(), loadavg_start=load0, loadavg_end=os.getloadavg(),
               run_dir=str(run_dir))
    store.put("status", "done")
    store.close()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"\ntotal wall time {wall:.0f}s on {os.cpu_count()} cores (load average at start {load0[0]:.1f}, "
          f"end {os.getloadavg()[0]:.1f}: other jobs share the CPU); wrote {a.out}; run dir {run_dir}")


if __name__ == "__main__":
    main()
