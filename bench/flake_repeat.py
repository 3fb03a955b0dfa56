"""Is a test flaky under CPU load? Runs one pytest node many times, with a busy loop on one core beside it
(what CI's neighbours and the loop's own jobs do to a 2-core machine), and counts the failures.

    python bench/flake_repeat.py --node "tests/test_throughput.py::test_accelerate_ddp_dpo_lora_on_two_cpu_processes" \
        --runs 60 --busy 1

Why: the two-process DDP test failed CI once (stop 31, rank 0 aborted while gloo/DDP objects were torn down after
training) and passed every idle run here; a flake shows only under load and only in some runs, so one green run
proves nothing. Prints and writes bench/results/flake_repeat.json (one entry per node: runs, failures, wall times,
the tail of each failure's output).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "flake_repeat.json"


def _spin(stop):
    while not stop.is_set():
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--node", required=True, help="a pytest node id")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--busy", type=int, default=1, help="cores kept busy beside the test")
    ap.add_argument("--timeout", type=float, default=300, help="seconds before a run counts as hung")
    a = ap.parse_args()
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(a.busy)]
    for p in spinners:
        p.start()
    runs = []
    try:
        for i in range(a.runs):
            t0 = time.time()
            try:
                proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", a.node], cwd=ROOT,
                                      capture_output=True, text=True, timeout=a.timeout)
                ok, tail = proc.returncode == 0, (proc.stdout + proc.stderr)[-1500:]
            except subprocess.TimeoutExpired:
                ok, tail = False, f"hung: no result after {a.timeout:.0f} s"
            runs.append({"ok": ok, "wall_s": round(time.time() - t0, 1), **({} if ok else {"tail": tail})})
            print(f"run {i + 1}/{a.runs}: {'pass' if ok else 'FAIL'} ({runs[-1]['wall_s']} s)", flush=True)
    finally:
        stop.set()
        for p in spinners:
            p.join()
    fails = sum(not r["ok"] for r in runs)
    print(f"{a.node}: {fails} failures in {len(runs)} runs with {a.busy} busy core(s)")
    res = json.loads(OUT.read_text()) if OUT.exists() else {}
    res[a.node] = {"runs": len(runs), "failures": fails, "busy_cores": a.busy, "timeout_s": a.timeout,
                   "date": time.strftime("%Y-%m-%d"), "per_run": runs}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
