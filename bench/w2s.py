"""Weak-to-strong on CPU: weak, w2s (xent / aux conf / ladder), ceiling and PGR per task, 3 seeds.

    nice -n 5 python bench/w2s.py [--config FILE] [--seeds 0 1 2] [--out-dir runs]

Setting (Burns et al.'s linear-probe variant): every model is a frozen featurizer + a linear head.
Weak = MiniLM-L6 + head on few gold labels (hashed n-grams + LR on 200 labels scored 0.54 on sarcasm:
chance-level weak labels leave nothing to generalise from); ladder rung = SmolLM2-135M last layer;
strong = SmolLM2-135M layer 12 (its probe beats the last layer: sarcasm ceilings 0.77 vs 0.71). Features are cached, so a second run only trains heads.
Accuracy, AUROC and PGR are means over seeds with 95% t-intervals; each seed reshuffles the
weak-train / transfer / test split of a fixed pool and reseeds training.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml

from superalign.paradigms import w2s
from superalign.store import RunStore

DEFAULT = {
    "tasks": [{"name": "sarcasm", "n_weak": 200, "n_transfer": 800, "n_test": 500},
              {"name": "quartz", "n_weak": 150, "n_transfer": 450, "n_test": 300},
              {"name": "harm_labels", "n_weak": 150, "n_transfer": 550, "n_test": 290}],
    "seeds": [0, 1, 2],
    "weak": "minilm-l6",
    "ladder": ["smollm2-135m-instruct"],
    "strong": "smollm2-135m-instruct@12",
    "methods": ["xent", "aux_conf", "ladder"],
}


def fmt(r: dict | None) -> str:
    if r is None or r["value"] != r["value"]:
        return "n/a"
    ci = f" [{r['lo']:+.2f},{r['hi']:+.2f}]" if r["lo"] == r["lo"] and r["lo"] is not None else ""
    short = f" ({r['n']}/{r['meta']['seeds']} seeds)" if r["n"] < r["meta"].get("seeds", r["n"]) else ""
    return f"{r['value']:.3f}{ci}{short}"


def print_task(name: str, agg: list[dict], rungs: list[dict], cfg: w2s.W2SConfig):
    get = {(r["meta"]["method"], r["name"]): r for r in agg}
    print(f"\n== {name}  (weak={cfg.weak}, strong={cfg.strong}, seeds={cfg.seeds})")
    print(f"{'method':<18}{'accuracy [95% CI]':>26}{'AUROC [95% CI]':>26}{'PGR [95% CI]':>26}")
    for m in ["weak", *[x for x in ("xent", "aux_conf", "bootstrap", "ladder") if x in cfg.methods], "ceiling"]:
        print(f"{w2s.LABELS[m]:<18}{fmt(get.get((m, 'accuracy'))):>26}{fmt(get.get((m, 'auroc'))):>26}"
              f"{fmt(get.get((m, 'pgr'))) if m not in ('weak', 'ceiling') else '':>26}")
    if rungs:
        print("ladder steps (mean over seeds): supervisor -> student: supervisor acc, student acc, student ceiling, "
              "gap = ceiling - supervisor acc, step PGR")
        steps = sorted({r["meta"]["step"] for r in rungs})
        for s in steps:
            rs = [r for r in rungs if r["meta"]["step"] == s and r["name"] == "accuracy"]
            mean = lambda k: sum(r["meta"][k] for r in rs) / len(rs)  # noqa: E731
            acc = sum(r["value"] for r in rs) / len(rs)
            print(f"  {rs[0]['meta']['supervisor']:>26} -> {rs[0]['model']:<26} sup {mean('supervisor_accuracy'):.3f}"
                  f"  student {acc:.3f}  ceiling {mean('ceiling'):.3f}  gap {mean('gap'):+.3f}"
                  f"  step PGR {mean('step_pgr'):+.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", help="YAML with a `w2s:` section (default: the bench setting above)")
    ap.add_argument("--seeds", type=int, nargs="+")
    ap.add_argument("--tasks", nargs="+")
    ap.add_argument("--out-dir", default="runs")
    a = ap.parse_args()
    section = dict(DEFAULT)
    if a.config:
        section = (yaml.safe_load(Path(a.config).read_text()) or {}).get("w2s", {})
    if a.seeds:
        section["seeds"] = a.seeds
    if a.tasks:
        section["tasks"] = [t for t in section["tasks"] if (t if isinstance(t, str) else t["name"]) in a.tasks] \
            or a.tasks
    cfg = w2s.parse_config(section)
    run_dir = Path(a.out_dir) / time.strftime("bench-w2s-%Y%m%d-%H%M%S")
    store = RunStore(run_dir, create=True)
    store.put("name", run_dir.name)
    store.put("config", {"w2s": cfg.model_dump()})
    store.put("seeds", cfg.seeds)
    t0 = time.time()
    res = {}
    for t in cfg.task_specs():
        t1 = time.time()
        res.update(w2s.run(cfg.model_copy(update={"tasks": [t]}), store))
        print_task(t.name, res[t.name], [r for r in store.rows("metrics", role="rung")
                                         if r["meta"]["task"] == t.name], cfg)
        print(f"({t.name}: {time.time() - t1:.0f}s, splits weak/transfer/test = {t.n_weak}/{t.n_transfer}/{t.n_test})")
    store.put("status", "done")
    store.close()
    from superalign.experiments import build_report as build
    print(f"\ntotal wall time {time.time() - t0:.0f}s; run dir {run_dir}; report {build(run_dir)}")


if __name__ == "__main__":
    main()
