"""Sandwiching condition table: judge alone, strong alone, judge + consultant, judge + debate,
with per-seed bootstrap CIs, across-seed t CIs and the sandwiching gain.

    python bench/sandwich.py [--questions 30] [--seeds 0,1,2] [--rounds 2] [--config my.yaml]

Defaults: judge and strong are both the embedded SmolLM2-135M-Instruct; the strong side reads
the source text, the judge does not. CPU cost on 2 idle cores is a few minutes per seed.
"""
from __future__ import annotations

import argparse
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
    ap.add_argument("--config", default=None)
    ap.add_argument("--run-dir", default=None, help="keep the store here (default: a temp dir)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    from rich.console import Console

    from superalign import config as C
    from superalign.cli.oversight import sandwich_table
    from superalign.paradigms import sandwich as S
    from superalign.store import RunStore
    seeds = [int(s) for s in a.seeds.split(",")]
    cfg = C.load(a.config, {"oversight.sandwich.questions": a.questions, "oversight.sandwich.rounds": a.rounds,
                            "oversight.sandwich.seeds": seeds,
                            "oversight.sandwich.consultant_side": a.consultant_side})
    run_dir = Path(a.run_dir or tempfile.mkdtemp(prefix="sandwich-bench-"))
    store = RunStore(run_dir, create=True)
    t0 = time.time()
    res = S.run(cfg, store, progress=lambda m: print(f"[{time.time() - t0:6.0f}s] {m}", flush=True))
    sw = S.parse_config(cfg.oversight).sandwich
    print(f"\nsandwiching: {a.questions} questions x {len(seeds)} seeds, {a.rounds} rounds, "
          f"consultant side {a.consultant_side}, judge={cfg.roles.get(sw.judge_role, 'smollm2-135m-instruct (default)')}, "
          f"strong={cfg.roles.get(sw.strong_role, 'smollm2-135m-instruct (default)')} + source text; "
          f"wall {time.time() - t0:.0f}s, torch threads {a.threads}")
    Console(width=200).print(sandwich_table(res))
    print(f"store: {run_dir}")


if __name__ == "__main__":
    main()
