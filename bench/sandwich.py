"""Sandwiching: judge alone / expert / judge + consultant / judge + debate (with and without quote
verification), accuracy with Wilson CIs, and the paired gain over the judge alone (McNemar exact p, paired
bootstrap CI over the items of all seeds), the across-seed t CI of the per-seed gains and the sandwiching ratio.

    python bench/sandwich.py [--questions 30] [--seeds 0,1,2] [--rounds 2] [--config my.yaml]

Judge: the embedded SmolLM2-135M-Instruct, without the source text. Strong side: the MiniLM extractive
reader over the source (expert, consultant, debaters). Writes bench/results/sandwich.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=30)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--consultant-side", default="random", choices=["random", "own"])
    ap.add_argument("--judge-rule", default="posterior", choices=["posterior", "gain"])
    ap.add_argument("--config", default=None)
    ap.add_argument("--run-dir", default=None, help="keep the store here (default: a temp dir)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sandwich.json"))
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    from rich.console import Console

    from superalign import config as C
    from superalign.cli.sandwich import sandwich_table
    from superalign.sandwich import config as SC
    from superalign.sandwich import experiment as X
    from superalign.store import RunStore
    seeds = [int(s) for s in a.seeds.split(",")]
    cfg = C.load(a.config)
    sw = SC.parse({**SC.from_config(cfg).model_dump(), "questions": a.questions, "rounds": a.rounds, "seeds": seeds,
                   "consultant_side": a.consultant_side, "judge_rule": a.judge_rule})
    run_dir = Path(a.run_dir or tempfile.mkdtemp(prefix="sandwich-bench-"))
    store = RunStore(run_dir, create=True)
    t0 = time.time()
    res = X.run(cfg, store, sw, progress=lambda m: print(f"[{time.time() - t0:6.0f}s] {m}", flush=True))
    wall = time.time() - t0
    judge = cfg.roles.get(sw.judge_role)
    judge = judge.model if judge is not None else "smollm2-135m-instruct (default)"
    print(f"\nsandwiching on {sw.data}: {a.questions} questions x {len(seeds)} seeds = {res['n']} items, "
          f"{a.rounds} round(s), consultant side {a.consultant_side}, P(fabricate) {sw.fabricate}, "
          f"P(paraphrase) {sw.paraphrase}, judge rule {sw.judge_rule}; judge={judge} without the source, strong=extractive reader "
          f"({sw.strong_embedder}) with it; wall {wall:.0f}s, torch threads {a.threads}")
    Console(width=220).print(sandwich_table(res))
    out = {"judge_alone": res["accuracy"]["judge"][0], "expert": res["accuracy"]["expert"][0],
           "consultancy": res["accuracy"]["consultancy"][0], "debate": res["accuracy"]["debate"][0],
           "accuracy": res["accuracy"], "per_seed": {str(s): v for s, v in res["per_seed"].items()},
           "gain": {c: g["diff"] for c, g in res["gain"].items()},
           "gain_ci": {c: [g["lo"], g["hi"]] for c, g in res["gain"].items()},
           "gain_test": res["gain"], "sandwiching_ratio": res["ratio"], "errors": res["errors"], "n_items": res["n"],
           "config": sw.model_dump(), "judge": judge, "strong": f"extractive reader ({sw.strong_embedder})",
           "wall_s": wall, "threads": a.threads, "store": str(run_dir)}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2, default=float))
    print(f"store: {run_dir}\nwrote {a.out}")


if __name__ == "__main__":
    main()
