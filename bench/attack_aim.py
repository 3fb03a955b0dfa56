"""Where the attacker aims (issue 23), on the real models: round 1's attack -> respond -> critique ->
attacker_update of the default preset, then round 2's attack stage planned from round 1's per-cell compliance,
under the anneal and the flat curriculum. No learning in between, so round 2 faces the same learner: what changes is
only where the attacker looks.

    python bench/attack_aim.py [--run-dir /tmp/attack_aim] [--seed 0]

Prints counts only (never a prompt) and writes bench/results/attack_aim.json: round 1's rewrites kept/rejected,
its attacks per style and category, the learner's compliance per cell, and round 2's attacks per style and category
for each schedule. The default preset on 2 CPU cores: about 15 minutes (respond and the base-learner answers).
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one
from superalign import config as C  # noqa: E402
from superalign.loop import attack, critique, respond  # noqa: E402
from superalign.loop import run as R  # noqa: E402
from superalign.roles import attacker as A  # noqa: E402

OUT = Path(__file__).parent / "results" / "attack_aim.json"


def direct_share(by_style: dict) -> float:
    n = sum(by_style.values())
    return round(sum(v for k, v in by_style.items() if k in A.DIRECT) / n, 3) if n else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", default="/tmp/attack_aim")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    shutil.rmtree(a.run_dir, ignore_errors=True)
    cfg = C.load(preset="default", overrides={"run.name": "attack-aim", "run.seed": a.seed})
    ctx = R.open_run(cfg, a.run_dir)
    wall = {}
    for name, fn in [("attack", attack.attack), ("respond", respond.respond), ("critique", critique.critique),
                     ("attacker_update", attack.update)]:
        t0 = time.time()
        ctx.store.run_stage(1, name, lambda f=fn: f(ctx, 1))
        wall[name] = round(time.time() - t0, 1)
        print(f"round 1 {name}: {wall[name]} s", flush=True)
    info = {x["name"]: json.loads(x["info"] or "{}") for x in ctx.store.stages() if x["round"] == 1}
    a1, up = info["attack"], info["attacker_update"]
    out = {"seed": a.seed, "wall_s_round1": wall, "round1": {
        "on_goal": a1["on_goal"], "by_style": a1["by_style"], "by_category": a1["by_category"],
        "by_strategy": a1["by_strategy"], "direct_request_share": direct_share(a1["by_style"]),
        "vs": up["vs_base"], "cells": {k: {x: c[x] for x in ("prompts", "samples", "complied", "base_n",
                                                             "base_complied")} for k, c in up["cells"].items()}},
        "round2": {}}
    seeds, templates = attack.seeds_and_templates(ctx)
    archive = attack.archive_before(ctx, 2)
    for kind in ("anneal", "flat"):
        ctx.cfg.loop.curriculum.kind = kind
        rng = random.Random(ctx.seed * 1009 + 2)  # the attack stage's own draw for round 2
        weights, aimed = attack.aim(ctx, 2, seeds, templates, rng)
        plan = A.plan(seeds, templates, archive, ctx.lc.sizes.attacks, ctx.lc.strategies, rng, weights=weights)
        by_style = dict(Counter(p["style"] for p in plan))
        out["round2"][kind] = {"admitted": aimed["admitted"], "cells": aimed["cells"], "share": aimed["share"],
                               "by_style": by_style, "by_category": dict(Counter(p["category"] for p in plan)),
                               "direct_request_share": direct_share(by_style)}
    r1 = out["round1"]
    print(f"round 1: rewrites kept {r1['on_goal']['kept']}/{r1['on_goal']['tried']} {r1['on_goal']['rejected']}; "
          f"success vs learner {r1['vs'].get('attacker_success_vs_learner'):.3f}, vs base "
          f"{r1['vs'].get('attacker_success_vs_base'):.3f}; direct-request share {r1['direct_request_share']}")
    for kind, x in out["round2"].items():
        print(f"round 2 ({kind}): {x['admitted']}/{x['cells']} cells admitted, direct-request share "
              f"{x['direct_request_share']}, by category {dict(sorted(x['by_category'].items()))}")
    OUT.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
