"""Where a loop round's time goes, measured: every stage, and inside `learn` every candidate update's rows, tokens,
steps and seconds; inside `eval` the prompts, prefill and decode tokens and seconds.

    python bench/loop_speed.py                          # one round of the default preset, seed 3 -> loop_speed.json
    python bench/loop_speed.py --part eval              # one test evaluation of the untrained learner (no cache)
    python bench/loop_speed.py --part learn --rows RUN/training/r1-conformity.jsonl   # one DPO phase's candidates
    python bench/loop_speed.py --part matmul            # fp32 vs bf16 matmul throughput on this CPU
    python bench/loop_speed.py --code ../before ...     # the same measurement with another checkout's package

`--part eval` and `--part learn` use only functions that exist in earlier versions of the package too, so a
checkout of an older commit (`--code DIR`) runs the same work: that is how the before/after ratios in
docs/performance.md were paired. The full round runs with the evaluation cache off (`eval.cache=false`): it
measures the work, not the cache. Set OMP_NUM_THREADS to the cores the run may use, on an idle machine.
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
OUT = ROOT / "bench" / "results" / "loop_speed.json"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class StageClock:
    """A loop UI that keeps each stage's wall time (the loop calls start/done around every stage)."""

    def __init__(self):
        self.stages: dict[str, float] = {}

    def start(self, r, name):
        log(f"round {r} {name} ...")

    def done(self, r, name, secs):
        key = name if r > 0 or name == "setup" else "eval_round0"
        self.stages[key] = self.stages.get(key, 0.0) + secs
        log(f"round {r} {name}: {secs:.1f} s")

    def skip(self, r, name): pass
    def note(self, text): pass
    def bar(self, desc, total): return lambda n: None
    def steps(self, desc): return lambda done, total: None


def one_round(a) -> dict:
    from superalign import config as C
    from superalign.loop import run as R
    from superalign.store import RunStore
    sets = {**C.parse_sets(a.sets), "run.seed": a.seed, "loop.rounds": 1, "eval.cache": False}
    cfg = C.load(None, sets, a.preset)
    d = Path(a.out) / f"{a.preset}-seed{a.seed}-{int(time.time())}"
    clock = StageClock()
    ctx = R.open_run(cfg, d, ui=clock)
    t0 = time.time()
    R.run(ctx)
    wall = time.time() - t0
    s = RunStore(d)
    info = {(x["round"], x["name"]): json.loads(x["info"] or "{}") for x in s.stages()}
    learn = info[(1, "learn")]
    cands = [{"phase": p["phase"], "candidate": p.get("candidate"), "method": "dpo" if p["phase"].startswith(
        ("conformity", "joint")) else "sft", "rows": p["train"]["n"], "steps": p["train"]["steps"],
              "tokens": p["train"].get("tokens"), "train_s": p.get("fit_s"), "with_selection_s": p["train_s"]}
             for p in learn["phases"] if "train" in p]
    tok = sum(c["tokens"] or 0 for c in cands)
    tsec = sum(c["train_s"] or 0 for c in cands)
    ev = info[(1, "eval")]
    usage = ev.get("usage", {})
    n_eval = sum(len(v) for k, v in ev.get("outcomes", {}).items() if k in ("asr", "over_refusal", "over_refusal_easy"))
    return {"preset": a.preset, "seed": a.seed, "run_dir": str(d), "wall_s": round(wall, 1),
            "stages": {k: round(v, 1) for k, v in clock.stages.items()},
            "learn": {"rows": sum(c["rows"] for c in cands), "tokens": tok,
                      "tokens_per_s": round(tok / tsec, 1) if tsec else None, "train_s": round(tsec, 1),
                      "candidates": cands},
            "eval": {"prompts": n_eval, "prefill_tokens": usage.get("prompt_tokens"),
                     "padded_prefill_tokens": usage.get("padded_prompt_tokens"),
                     "decode_tokens": usage.get("completion_tokens"), "generate_s": usage.get("generate_s"),
                     "scored_tokens": usage.get("scored_tokens"), "score_s": usage.get("score_s"),
                     "seconds": round(clock.stages.get("eval", 0.0), 1)}}


def part_eval(a) -> dict:
    """One test evaluation of the untrained learner (generation, judge, competence): the eval stage's work."""
    from superalign import config as C
    from superalign.evaluation import suite
    from superalign.loop import run as R
    cfg = C.load(None, {**C.parse_sets(a.sets), "run.seed": a.seed}, a.preset)
    ctx = R.open_run(cfg, Path(a.out) / f"eval-{os.getpid()}")
    sets = ctx.sets("test")
    ctx.judge(), ctx.learner  # built before the clock starts
    t0 = time.time()
    res = suite.run(ctx.ex, ctx.judge(), sets, cfg.eval.tokens, ctx.seed, asr=cfg.eval.asr)
    secs = time.time() - t0
    return {"prompts": suite.size(sets), "seconds": round(secs, 2), "summary": suite.summary(res)}


def part_learn(a) -> dict:
    """One phase's candidate updates on stored training rows (the default preset's conformity candidates)."""
    from superalign import config as C
    from superalign.loop import learn as L
    from superalign.loop import run as R
    cfg = C.load(None, {**C.parse_sets(a.sets), "run.seed": a.seed}, a.preset)
    ctx = R.open_run(cfg, Path(a.out) / f"learn-{os.getpid()}")
    rows = [json.loads(x) for x in Path(a.rows).read_text().splitlines() if x.strip()]
    method = "dpo" if "chosen" in rows[0] else "sft"
    cands = [cfg.loop.conformity] + list(cfg.loop.candidates) if method == "dpo" else [cfg.loop.competence]
    ctx.initial_adapter(), ctx.judge(), ctx.sets("val_select")  # built before the clock starts
    t0 = time.time()
    log_: list = []  # train every candidate from the untrained adapter and rank them on val_select, as `learn` does
    L.select(ctx, 1, "speed", method, rows, cands, log_, reject_regressions=False)
    secs = time.time() - t0
    return {"rows": len(rows), "method": method, "candidates": len(cands), "seconds": round(secs, 2),
            "seconds_per_row": round(secs / len(rows) / len(cands), 3),
            "train_s": [round(c.get("fit_s", c.get("train_s", 0)), 1) for c in log_]}


def part_matmul(a) -> dict:
    import torch
    out = {}
    for dt in (torch.float32, torch.bfloat16):
        x, w = torch.randn(2048, 576, dtype=dt), torch.randn(576, 1536, dtype=dt)
        for _ in range(3):
            x @ w
        t0, n = time.perf_counter(), 30
        for _ in range(n):
            x @ w
        out[str(dt).split(".")[-1]] = round(2 * 2048 * 576 * 1536 * n / (time.perf_counter() - t0) / 1e9, 1)
    return {"gflops": out, "shape": "2048x576 @ 576x1536 (an MLP projection of SmolLM2 at 2,048 tokens)",
            "threads": torch.get_num_threads()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["round", "eval", "learn", "matmul"], default="round")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--rows", help="--part learn: a phase's training rows (RUN/training/r1-conformity.jsonl)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="KEY=VALUE config override")
    ap.add_argument("--out", default="runs/bench-speed")
    ap.add_argument("--code", default=str(ROOT), help="import superalign from this checkout")
    ap.add_argument("--results", default=str(OUT), help="where to write (the round; parts go under 'parts')")
    ap.add_argument("--label", default=None, help="name of this measurement under 'parts' (default: the part)")
    a = ap.parse_args()
    sys.path.insert(0, str(Path(a.code).resolve()))
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import torch
    res = {"round": one_round, "eval": part_eval, "learn": part_learn, "matmul": part_matmul}[a.part](a)
    res["env"] = {"threads": torch.get_num_threads(), "torch": torch.__version__, "code": str(Path(a.code).resolve()),
                  "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    print(json.dumps(res, indent=1))
    path = Path(a.results)
    old = json.loads(path.read_text()) if path.exists() else {}
    if a.part == "round":
        old.update(res)
    else:
        old.setdefault("parts", {})[a.label or a.part] = res
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(old, indent=1))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
