"""How long a loop run will take, before it starts: `make demo` prints this line.

    python bench/estimate.py [--preset default] [--rounds N]

A preset measured end to end (`python bench/loop_speed.py --part cli --preset quick --results
bench/results/loop_speed/quick.json`) is estimated from its own file: its start-up, round 0 and its measured rounds,
each round past the last measured one taken as long as that last one. The default preset's file is `make demo`'s run
(`--part cli --preset default --results bench/results/loop_speed/default.json`), and a preset without a file of its
own is estimated from it, at the default preset's sizes (said so). Without either, the one measured round of
bench/results/loop_speed.json (`python bench/loop_speed.py`): setup + the round-0 evaluation + N x that round. On a
CPU without bf16 hardware (the learner then runs in float32) a float32 measurement of the preset is read where there
is one (`--part cli --preset quick --results bench/results/loop_speed/quick_fp32.json` on such a CPU), and otherwise
the bf16 estimate is scaled by that quick run's ratio to `quick.json`. A first run on a new machine also builds
caches (evaluation sets, embeddings), so it can take longer; later runs of a seed read the round-0 evaluation from
the evaluation cache and take less.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ROUNDS = {"quick": 1, "default": 2, "full": 4}


def estimate(speed: dict, rounds: int) -> float:
    st = speed["stages"]
    if any(k.startswith("r0:") for k in st):  # `--part cli`: "rROUND:stage" times and the command's whole wall time
        measured = [sum(v for k, v in st.items() if k.startswith(f"r{r}:")) for r in range(_last_round(st) + 1)]
        startup = speed["wall_s"] - sum(st.values())  # interpreter, imports, models, report
        return startup + measured[0] + sum(measured[r] if r < len(measured) else measured[-1]
                                           for r in range(1, rounds + 1))
    per_round = sum(v for k, v in st.items() if k not in ("setup", "eval_round0"))
    return st.get("setup", 0.0) + st.get("eval_round0", 0.0) + rounds * per_round


def _last_round(stages: dict) -> int:
    """The last round a `--part cli` file timed. A run's rounds differ in length (the archive, the rows to train on
    and the conformity candidates kept all change), so each measured round stands for itself and the last one for
    every round past it: a file of a two-round run estimates two rounds as they took, not as twice its first."""
    return max(int(k[1:].split(":")[0]) for k in stages)


def slower_here(speed: dict, here_bf16: bool | None) -> bool:
    """Whether the measured machine multiplied bf16 in hardware and this one does not (unknown here: no)."""
    return here_bf16 is False and speed.get("env", {}).get("bf16", True) is not False


def hardware_note(speed: dict, here_bf16: bool | None) -> str:
    """What the estimate cannot see: the measured machine multiplied bf16 in hardware and this one does not. With
    `dtype: auto` the learner then runs in float32 (models/local.py `cpu_bf16`), and every training step and decode
    costs several times more (bf16 against fp32 matmuls: `python bench/loop_speed.py --part matmul`). A file measured
    before the flag was recorded (`env.bf16` absent) counts as a bf16 machine's: the kept files' rounds took about
    the same time on the Intel and the AMD machine, which a float32 learner would not (docs/performance.md)."""
    if not slower_here(speed, here_bf16):
        return ""
    return (" This CPU has no bf16 hardware (AMX or AVX512-BF16) and the measured one had: the learner runs in "
            "float32 here, so expect several times longer.")


def here_bf16() -> bool | None:
    """This CPU's bf16 hardware, or None where the package or torch is not installed yet (nothing to say then)."""
    try:
        from superalign.models.local import cpu_bf16
        return cpu_bf16()
    except ImportError:
        return None


def fp32_ratio(results: Path) -> float | None:
    """How many times longer the quick preset took end to end on a CPU without bf16 hardware than on the measured
    bf16 one (`loop_speed/quick_fp32.json` against `loop_speed/quick.json`, both `--part cli`), or None without both.
    Not a pure dtype ratio: the CPUs differ in more than bf16, and `quick.json` was measured with LoRA merged while
    generating (off by default since); it is what a user of such a CPU waited for against the measured one."""
    fp32, bf16 = results / "loop_speed" / "quick_fp32.json", results / "loop_speed" / "quick.json"
    if not (fp32.exists() and bf16.exists()):
        return None
    slow, fast = json.loads(fp32.read_text()), json.loads(bf16.read_text())
    if slow.get("env", {}).get("bf16") is not False:
        return None
    return estimate(slow, 1) / estimate(fast, 1)


def for_this_cpu(preset: str, rounds: int, here: bool | None, results: Path = ROOT / "bench" / "results"
                 ) -> tuple[float, str, str] | None:
    """(seconds, what they rest on, a warning) for `rounds` of `preset` on this CPU, or None with nothing measured.
    On a CPU without the bf16 hardware the measurement had, a float32 measurement of the preset
    (`loop_speed/PRESET_fp32.json`) is read instead, or else the bf16 estimate is scaled by the quick preset's
    measured float32/bf16 ratio; with neither, the line says only that it will take several times longer
    (`hardware_note`)."""
    found = [f for f in (results / "loop_speed" / f"{preset}.json", results / "loop_speed" / "default.json",
                         results / "loop_speed.json") if f.exists()]
    if not found:
        return None
    p = found[0]
    speed = json.loads(p.read_text())
    if "stages" not in speed:
        return None
    scale = "" if preset == speed.get("preset", "default") else " (measured on the default preset's sizes)"
    if slower_here(speed, here):
        fp32 = results / "loop_speed" / f"{preset}_fp32.json"
        if fp32.exists():
            return (estimate(json.loads(fp32.read_text()), rounds),
                    " (measured on a CPU without bf16 hardware, as this one: the learner runs in float32)", "")
        q = fp32_ratio(results)
        if q:
            return (estimate(speed, rounds) * q,
                    f"{scale} (this CPU has no bf16 hardware: the measured machine's time x {q:.1f}, the quick "
                    "preset's measured ratio between such a CPU and that one)", "")
    return estimate(speed, rounds), scale, hardware_note(speed, here)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--rounds", type=int, default=None)
    a = ap.parse_args()
    rounds = a.rounds or ROUNDS.get(a.preset, 2)
    est = for_this_cpu(a.preset, rounds, here_bf16())
    if est is None:
        return
    secs, basis, warning = est
    print(f"superalign run --preset {a.preset}: {rounds} round(s), about {secs / 60:.0f} min on an idle 2-core CPU"
          f"{basis}; every stage is saved, so an interrupted run resumes with --resume.{warning}", flush=True)


if __name__ == "__main__":
    main()
