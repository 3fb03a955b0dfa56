"""How long a loop run will take, before it starts: `make demo` prints this line.

    python bench/estimate.py [--preset default] [--rounds N]

From the measured round in bench/results/loop_speed.json (`python bench/loop_speed.py`, one round of the default
preset on an idle 2-core CPU): setup + the round-0 evaluation + N x (one round's stages). A preset measured end to
end (`python bench/loop_speed.py --part cli --preset quick --results bench/results/loop_speed/quick.json`) is
estimated from its own file: its start-up and round 0 + N x its round 1. A first run on a new
machine also builds caches (evaluation sets, embeddings), so it can take longer; later runs of a seed read the
round-0 evaluation from the evaluation cache and take less.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = {"quick": 1, "default": 2, "full": 4}


def estimate(speed: dict, rounds: int) -> float:
    st = speed["stages"]
    if any(k.startswith("r0:") for k in st):  # `--part cli`: "rROUND:stage" times and the command's whole wall time
        r0 = sum(v for k, v in st.items() if k.startswith("r0:"))
        r1 = sum(v for k, v in st.items() if k.startswith("r1:"))
        startup = speed["wall_s"] - sum(st.values())  # interpreter, imports, models, report
        return startup + r0 + rounds * r1
    per_round = sum(v for k, v in st.items() if k not in ("setup", "eval_round0"))
    return st.get("setup", 0.0) + st.get("eval_round0", 0.0) + rounds * per_round


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--rounds", type=int, default=None)
    a = ap.parse_args()
    own = ROOT / "bench" / "results" / "loop_speed" / f"{a.preset}.json"
    p = own if own.exists() else ROOT / "bench" / "results" / "loop_speed.json"
    if not p.exists():
        return
    speed = json.loads(p.read_text())
    if "stages" not in speed:
        return
    rounds = a.rounds or ROUNDS.get(a.preset, 2)
    secs = estimate(speed, rounds)
    scale = "" if a.preset == speed.get("preset", "default") else " (measured on the default preset's sizes)"
    print(f"superalign run --preset {a.preset}: {rounds} round(s), about {secs / 60:.0f} min on an idle 2-core CPU"
          f"{scale}; every stage is saved, so an interrupted run resumes with --resume.", flush=True)


if __name__ == "__main__":
    main()
