"""Several torch processes on few cores: what the thread count per process does to generation.

    python bench/threads.py            # about 3 minutes on 2 cores; run it with the machine otherwise idle

A researcher running seeds or arms side by side starts one process each. torch sizes its thread pool to the
machine, so two processes on 2 cores each spin 2 OpenMP threads on cores the other one needs. Three layouts, same
work per process (the embedded learner answers 16 prompts, 32 greedy tokens each):
  one process, 2 threads | two processes at once, 2 threads each | two processes at once, 1 thread each.
Each process loads its model first and starts generating at a common moment, so loading is not timed.
Prints and writes bench/results/threads.json: per layout, the wall time of the slowest process and the
prompts answered per second by all processes together.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [f"In two sentences, explain {t}." for t in (
    "why the sky is blue", "how a bicycle stays upright", "what a prime number is", "how vaccines work",
    "why bread rises", "what inflation means", "how a compass works", "why leaves change colour",
    "how tides happen", "what a budget is", "how rainbows form", "why cats purr", "how a lever works",
    "what photosynthesis does", "why we sleep", "how a refrigerator cools")]


def worker(start_at: float, out: str) -> None:
    import torch
    sys.path.insert(0, str(ROOT))
    from superalign.models.base import GenParams
    from superalign.models.local import LocalLM
    lm = LocalLM(device="cpu", batch_size=8)
    chats = [[{"role": "user", "content": p}] for p in PROMPTS]  # a bare string gets no chat template: EOS at once
    lm.generate(chats[:2], GenParams(max_new_tokens=4, temperature=0.0))  # warm-up
    time.sleep(max(0.0, start_at - time.time()))
    t0 = time.perf_counter()
    outs = lm.generate_full(chats, GenParams(max_new_tokens=32, temperature=0.0))
    Path(out).write_text(json.dumps({"wall_s": time.perf_counter() - t0, "threads": torch.get_num_threads(),
                                     "tokens": sum(o.completion_tokens for o in outs)}))


def layout(procs: int, threads: int, tmp: Path) -> dict:
    start_at = time.time() + 60  # every process has loaded its model by then (about 15 s each on 2 busy cores)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    outs = [tmp / f"p{procs}t{threads}-{i}.json" for i in range(procs)]
    ps = [subprocess.Popen([sys.executable, __file__, "--worker", str(start_at), str(o)], env=env) for o in outs]
    for p in ps:
        if p.wait() != 0:
            sys.exit(f"a worker failed (exit {p.returncode})")
    got = [json.loads(o.read_text()) for o in outs]
    walls = [g["wall_s"] for g in got]
    return {"processes": procs, "threads_each": threads, "wall_s": max(walls), "walls": walls,
            "tokens": [g["tokens"] for g in got],
            "prompts_per_s": procs * len(PROMPTS) / max(walls)}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker(float(sys.argv[2]), sys.argv[3])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "threads.json"))
    a = ap.parse_args()
    import tempfile
    load_before = os.getloadavg()[0]  # above ~0.2 another process shares the cores and every figure is off
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for procs, threads in ((1, 2), (2, 2), (2, 1)):
            r = layout(procs, threads, Path(d))
            rows.append(r)
            print(f"{procs} process(es) x {threads} thread(s): slowest {r['wall_s']:.1f} s, "
                  f"{r['prompts_per_s']:.2f} prompts/s in all", flush=True)
    res = {"cores": os.cpu_count(), "load_before": load_before, "prompts": len(PROMPTS), "new_tokens": 32,
           "layouts": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
