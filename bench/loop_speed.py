"""Where a loop round's time goes, measured: every stage, and inside `learn` every candidate update's rows, tokens,
steps and seconds; inside `eval` the prompts, prefill and decode tokens and seconds.

    python bench/loop_speed.py                          # one round of the default preset, seed 3 -> loop_speed.json
    python bench/loop_speed.py --part eval              # one test evaluation of the untrained learner (no cache)
    python bench/loop_speed.py --part learn --rows RUN/training/r1-conformity.jsonl   # one DPO phase's candidates
    python bench/loop_speed.py --part validate          # one val_select validation: generation, scoring, the rest
    python bench/loop_speed.py --part matmul            # fp32 vs bf16 matmul throughput on this CPU
    python bench/loop_speed.py --part early --run RUN   # what stopping decoding at a first refusal sentence saves
    python bench/loop_speed.py --part gen               # the test prompts' generation: prefill vs decode, batch, dtype
    python bench/loop_speed.py --part lora --adapters RUN...   # merged vs unmerged LoRA at inference: time, verdicts
    python bench/loop_speed.py --part workers           # generation on 2 forked processes vs 1 process, 2 threads
    python bench/loop_speed.py --part train_step [--attn eager] --label train_step_eager   # one LoRA training step:
                                                        # tokens/s and an operator profile, at this process's threads
    python bench/loop_speed.py --part train_procs       # that step at 2 threads vs two 1-thread processes at once
    python bench/loop_speed.py --part gen --attn eager --label gen_eager   # generation with another attention kernel
    python bench/loop_speed.py --part decode            # unpadded decoding: transformers' GQA path vs the padded one
    python bench/loop_speed.py --part compare --before bench/results/loop_speed_pairs/round_before.json
                                                        # two rounds stage by stage (reads files only)
    python bench/loop_speed.py --part noninferiority --after bench/results/loop_speed/noninferiority/after \
        --before bench/results/loop_speed/noninferiority/before      # the loop's results, new vs old numerics
    python bench/loop_speed.py --code ../before ...     # the same measurement with another checkout's package
    python bench/loop_speed.py --part stages --run RUN   # a finished run's stages and learn breakdown, from its store
    python bench/loop_speed.py --part kept --runs RUN ... # which conformity candidate finished loops kept, per cell
    python bench/loop_speed.py --part cli --preset quick --results bench/results/loop_speed/quick.json
                                                        # what a user waits for: `superalign run` end to end

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
    from superalign.store.records import EvalInfo, LearnInfo
    sets = {**C.parse_sets(a.sets), "run.seed": a.seed, "loop.rounds": 1, "eval.cache": False}
    cfg = C.load(None, sets, a.preset)
    d = Path(a.out) / f"{a.preset}-seed{a.seed}-{int(time.time())}"
    clock = StageClock()
    ctx = R.open_run(cfg, d, ui=clock)
    t0 = time.time()
    R.run(ctx)
    wall = time.time() - t0
    s = RunStore(d)
    cands = candidates(s.infos(LearnInfo)[1])
    tok = sum(c["tokens"] or 0 for c in cands)
    tsec = sum(c["train_s"] or 0 for c in cands)
    ev = s.infos(EvalInfo)[1]
    usage = ev.usage
    n_eval = sum(len(v) for k, v in ev.outcomes.items() if k in ("compliance", "over_refusal", "over_refusal_easy"))
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


def candidates(learn) -> list[dict]:
    """A round's trained candidates from its stored `LearnInfo`: rows, steps, tokens, training seconds (`train_s`)
    and training plus its `val_select` validation (`with_selection_s`)."""
    return [{"phase": p["phase"], "candidate": p.get("candidate"), "method": "dpo" if p["phase"].startswith(
        ("conformity", "joint")) else "sft", "rows": p["train"]["n"], "steps": p["train"]["steps"],
             "tokens": p["train"].get("tokens"), "train_s": p.get("fit_s"), "with_selection_s": p["train_s"]}
            for p in learn.phases if "train" in p]


def stage_walls(summary) -> dict[str, float]:
    """{"rROUND:stage": seconds} of a run's finished stages (a `RunSummary`, the report's reader of its store)."""
    return {f"r{x.round or 0}:{x.name}": round(x.info.wall_s, 1) for x in summary.stages if x.done}


def part_stages(a) -> dict:
    """Where a finished run's time went, from its store (any run: `make demo`'s, a bench's): each round's total and
    every stage's seconds, and inside each round's `learn` each phase's training (its candidates; the DPO reference
    pass is inside the first conformity candidate's) and the candidates' `val_select` validations, and the rest of
    learn (the guard's `val_guard` validations: before the round's first phase in round 1, after every phase; the
    conformity phase start's `val_select` validation, the bar its candidates must not regress from; the rows)."""
    from superalign.store.summary import RunSummary
    summary = RunSummary.of(a.run)
    done = [x for x in summary.stages if x.done]
    walls = stage_walls(summary)
    total = sum(walls.values()) or 1.0
    by_stage: dict[str, float] = {}  # sums of the rounded stage times, so the table adds up to what is printed
    per_round: dict[int, float] = {}
    for x in done:
        w = walls[f"r{x.round or 0}:{x.name}"]
        by_stage[x.name] = round(by_stage.get(x.name, 0.0) + w, 1)
        per_round[x.round or 0] = round(per_round.get(x.round or 0, 0.0) + w, 1)
    parts: dict[str, float] = {}
    learn = {}
    for x in sorted((x for x in done if x.name == "learn"), key=lambda x: x.round or 0):
        row: dict = {"seconds": walls[f"r{x.round}:learn"]}
        for c in candidates(x.info):
            kind = c["phase"].rstrip("0123456789")
            row[f"{kind}_training_s"] = round(row.get(f"{kind}_training_s", 0.0) + (c["train_s"] or 0), 1)
            row[f"{kind}_validation_s"] = round(row.get(f"{kind}_validation_s", 0.0)
                                                + (c["with_selection_s"] or 0) - (c["train_s"] or 0), 1)
        row["rest_s"] = round(row["seconds"] - sum(v for k, v in row.items() if k != "seconds"), 1)
        for k, v in row.items():
            if k != "seconds":
                parts[k] = round(parts.get(k, 0.0) + v, 1)
        learn[x.round] = row
        log(f"round {x.round} learn: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()))
    log("rounds (all stages): " + ", ".join(f"round {r} {v:.1f} s" for r, v in per_round.items()))
    log("stages in all: " + ", ".join(f"{k} {v:.1f} s" for k, v in by_stage.items()) + f"; total {total:.1f} s")
    share = {k: round(v / total, 3) for k, v in {**by_stage, **{f"learn:{k}": v for k, v in parts.items()}}.items()}
    log("shares of the total: " + ", ".join(f"{k} {v:.0%}" for k, v in share.items() if v))
    return {"run": str(a.run), "stages": walls, "rounds": per_round, "by_stage": by_stage, "total_s": round(total, 1),
            "learn": learn, "learn_all": parts, "share": share}


def part_cli(a) -> dict:
    """`superalign run --preset P` as a user runs it, in a fresh process, timed from the command to its exit:
    interpreter start, imports, model and judge loading, every round, the report. The evaluation cache is off, so
    it is a first run's time (a second run of the seed reads its round-0 evaluation from the cache)."""
    import subprocess
    d = Path(a.out) / f"cli-{a.preset}-seed{a.seed}-{int(time.time())}"
    cmd = [sys.executable, "-m", "superalign", "run", "--preset", a.preset, "--seed", str(a.seed), "--run-dir",
           str(d), "--set", "eval.cache=false", *[x for kv in a.sets for x in ("--set", kv)]]
    env = {**os.environ, "PYTHONPATH": str(Path(a.code).resolve())}
    t0 = time.time()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if p.returncode:
        log(p.stderr[-3000:])
        raise SystemExit(f"superalign run exited {p.returncode}")
    from superalign.store.summary import RunSummary
    return {"command": " ".join(["superalign", *cmd[3:]]), "preset": a.preset, "seed": a.seed, "run_dir": str(d),
            "wall_s": round(wall, 1), "stages": stage_walls(RunSummary.of(d))}


def part_gen(a) -> dict:
    """Where generation time goes on this CPU: the test split's harmful, look-alike and easy prompts answered
    greedily with the evaluation's token budget by `LocalLM.generate`, at the default batching (16 rows, 8,192
    padded tokens) in bf16, at 64 rows / 16,384 tokens, and in float32; and the same batches' prefill alone (one
    forward pass, last logits only), so that decode = generate - prefill."""
    import torch
    from superalign import config as C
    from superalign.loop import run as R
    from superalign.models.base import GenParams
    from superalign.models.local import LocalLM
    from superalign.roles.learner import chat
    cfg = C.load(None, {**C.parse_sets(a.sets), "run.seed": a.seed}, a.preset)
    ctx = R.open_run(cfg, Path(a.out) / f"gen-{os.getpid()}")
    sets = ctx.sets("test")
    texts = [x["text"] for s in ("harmful", "lookalike", "benign_easy") for x in sets[s]]
    ctx.close()
    out: dict = {"prompts": len(texts), "max_new_tokens": cfg.eval.tokens, "runs": []}
    grid = (("bfloat16", 16, 8192),) if a.attn else (("bfloat16", 16, 8192), ("bfloat16", 64, 16384),
                                                       ("float32", 16, 8192))
    for dtype, bs, bt in grid:
        lm = LocalLM(seed=0, dtype=dtype, batch_size=bs, batch_tokens=bt)
        if a.attn:  # another attention kernel (--attn eager): the default batching only
            lm.model.set_attn_implementation(a.attn)
        lm.generate([chat(t) for t in texts[:8]], GenParams(max_new_tokens=4))  # warm-up
        lm.usage = type(lm.usage)()
        t0 = time.perf_counter()
        lm.generate([chat(t) for t in texts], GenParams(max_new_tokens=cfg.eval.tokens))
        gen_s = time.perf_counter() - t0
        rendered = [lm.render(chat(t)) for t in texts]
        t0, n = time.perf_counter(), 0
        for _, idx in lm._batches(rendered):
            enc = lm.tokenizer([rendered[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                lm.model(**enc, logits_to_keep=1)
            n += 1
        pre_s = time.perf_counter() - t0
        u = lm.usage
        row = {"dtype": dtype, "attn": lm.model.config._attn_implementation, "batch_size": bs, "batch_tokens": bt,
               "batches": n, "generate_s": round(gen_s, 1),
               "prefill_s": round(pre_s, 1), "decode_s": round(gen_s - pre_s, 1), "prompt_tokens": u.prompt_tokens,
               "padded_prompt_tokens": u.padded_prompt_tokens, "completion_tokens": u.completion_tokens}
        log(row)
        out["runs"].append(row)
    return out


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
    old = {"asr": cfg.eval.asr} if hasattr(cfg.eval, "asr") else {}  # earlier versions named the headline so
    res = suite.run(ctx.ex, ctx.judge(), sets, cfg.eval.tokens, ctx.seed, **old)
    secs = time.time() - t0
    return {"prompts": suite.size(sets), "seconds": round(secs, 2), "summary": suite.summary(res)}


def part_validate(a) -> dict:
    """One `val_select` validation of the untrained learner, as `learn` runs one per candidate (evaluation cache off):
    its wall time, and how much of it the learner's generation and likelihood scoring took (`LocalLM.usage`)."""
    from superalign import config as C
    from superalign.loop import run as R
    from superalign.loop.evaluate import measure
    cfg = C.load(None, {**C.parse_sets(a.sets), "run.seed": a.seed, "eval.cache": False}, a.preset)
    ctx = R.open_run(cfg, Path(a.out) / f"validate-{os.getpid()}")
    ctx.initial_adapter(), ctx.judge(), ctx.sets("val_select")  # built before the clock starts
    out = []
    for _ in range(2):  # the first pass also warms the workers' and the judge's first calls
        t0 = time.time()
        _, cost = measure(ctx, "val_select")
        secs, u = time.time() - t0, cost["usage"]
        out.append({"seconds": round(secs, 1), "generate_s": round(u.get("generate_s", 0), 1),
                    "score_s": round(u.get("score_s", 0), 1),
                    "rest_s": round(secs - u.get("generate_s", 0) - u.get("score_s", 0), 1),
                    "prompt_tokens": u.get("prompt_tokens"), "completion_tokens": u.get("completion_tokens")})
    return {"split": "val_select", "runs": out}


def part_learn(a) -> dict:
    """One phase's candidate updates on stored training rows (the default preset's conformity candidates)."""
    from superalign import config as C
    from superalign.loop import learn as L
    from superalign.loop import run as R
    cfg = C.load(None, {**C.parse_sets(a.sets), "run.seed": a.seed}, a.preset)
    ctx = R.open_run(cfg, Path(a.out) / f"learn-{os.getpid()}")
    rows = [json.loads(x) for x in Path(a.rows).read_text().splitlines() if x.strip()]
    method = "dpo" if "chosen" in rows[0] else "sft"
    # the preset's conformity candidates (every setting under every value mix), as `learn` plans them
    cands = L.plan(cfg.loop, 1, rows, [], [])[0][0][3] if method == "dpo" else [cfg.loop.competence]
    ctx.initial_adapter(), ctx.judge(), ctx.sets("val_select")  # built before the clock starts
    t0 = time.time()
    log_: list = []  # train every candidate from the untrained adapter and rank them on val_select, as `learn` does
    best = L.select(ctx, 1, "speed", method, rows, cands, log_, reject_regressions=False)
    secs = time.time() - t0
    # what each candidate scored on val_select and which one was kept: a change of speed must keep the choice
    return {"rows": len(rows), "method": method, "candidates": len(cands), "seconds": round(secs, 2),
            "seconds_per_row": round(secs / len(rows) / len(cands), 3),
            "train_s": [round(c.get("fit_s", c.get("train_s", 0)), 1) for c in log_],
            "kept": best["candidate"] if best else None,
            "select": [{k: c.get("select", {}).get(k) for k in ("compliance", "over_refusal", "competence")}
                       | {"score": c.get("score")} for c in log_]}


def part_kept(a) -> dict:
    """Which conformity candidate each phase of finished loops kept (`--runs DIR ...`, run or seed folders): per
    phase every candidate's setting, value mix, val_select score and whether an axis blocked it; then, per cell of
    the grid (learning rate x mix), how often it was tried, blocked and kept. The kept one is recomputed with
    `learn.select`'s rule (`learn.better`: the highest score among the unblocked, the earlier on a tie), since the
    phase log records no "kept" field. Reads stores only: a cell that is never kept costs a phase its training and
    validation and changes no result."""
    from superalign.loop.learn import START, better
    from superalign.store import RunStore
    from superalign.store.records import LearnInfo

    def cell(p: dict) -> str:
        mix = p.get("mix") or {}
        return f"lr {p['cfg']['learning_rate']:g} x {'+'.join(k for k, w in mix.items() if w) or 'no mix'}"
    phases, cells = [], {}
    for d in a.runs:
        d = Path(d)
        d = d / "loop" if (d / "loop" / "store.sqlite").exists() else d
        st = RunStore(d)
        try:
            learned = st.infos(LearnInfo)
            competes = ((st.get("config") or {}).get("loop") or {}).get("start_competes", False)
        finally:
            st.close()
        for r, info in learned.items():
            logged = [p for p in info.phases if p.get("phase") == "conformity" and "score" in p]
            conf = [p for p in logged if p.get("candidate") != START]  # the phase's start is no cell of the grid
            if len(conf) < 2:
                continue
            own = next((p for p in logged if p.get("candidate") == START), None)  # the start's standing, if logged
            kept = own if competes else None
            for p in conf:
                kept = p if better(p, kept) else kept
            kept = None if kept is not None and kept.get("candidate") == START else kept  # no update was kept
            for p in conf:
                c = cells.setdefault(cell(p), {"tried": 0, "blocked": 0, "kept": 0})
                c["tried"] += 1
                c["blocked"] += "rejected" in p
                c["kept"] += p is kept
            phases.append({"run": str(d), "round": r, "kept": cell(kept) if kept else None,
                           "start_score": round(own["score"], 3) if own else None, "start_competes": competes,
                           "candidates": [{"cell": cell(p), "score": round(p["score"], 3),
                                           "blocked_by": p.get("blocked_by")} for p in conf]})
            ph = phases[-1]
            shown = f"{own['score']:.3f}" if own else "-"
            log(f"{d} round {r}: the start {shown}; "
                + "; ".join(f"{x['cell']} {x['score']:.3f}" + (" blocked" if x["blocked_by"] else "")
                            for x in ph["candidates"]) + f"; search keeps {ph['kept'] or 'no update'}")
    for k, c in cells.items():
        log(f"{k:<58} tried {c['tried']:>3}  blocked {c['blocked']:>3}  kept {c['kept']:>3}")
    log(f"{len(phases)} conformity phases in {len(a.runs)} runs")
    return {"runs": list(a.runs), "phases": phases, "cells": cells}


def part_early(a) -> dict:
    """What stopping a row's decoding at its first sentence could save, read from a finished run (`--run DIR`):
    per evaluation round, the answers whose first sentence is complete and a refusal (the rows such a rule would
    end early) and the decode tokens after that sentence (an upper bound of the saving: a batch ends only when
    all its rows have)."""
    import re

    from superalign.models.classifier import refusal_phrase
    from superalign.store import RunStore
    s = RunStore(a.run)
    tok = None
    out = {}
    for r in sorted({x["round"] for x in s.rows("responses", stage="eval")}):
        resp = s.rows("responses", round=r, stage="eval")
        stop, saved, total = 0, 0, 0
        for x in resp:
            t = x["text"]
            if tok is None:
                from transformers import AutoTokenizer

                from superalign.models import embedded
                tok = AutoTokenizer.from_pretrained(embedded.resolve(embedded.SMOLLM2))
            n = len(tok(t, add_special_tokens=False)["input_ids"])
            total += n
            m = re.search(r"[.!?](\s|$)", t)
            if m and refusal_phrase(t[:m.end()]):
                stop += 1
                saved += n - len(tok(t[:m.end()], add_special_tokens=False)["input_ids"])
        out[r] = {"answers": len(resp), "refusal_first_sentence": stop, "decode_tokens": total,
                  "decode_tokens_after_first_refusal_sentence": saved}
    return {"run": a.run, "rounds": out}


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


def part_train_step(a) -> dict:
    """Tokens per second of a LoRA training step of the learner (SmolLM2 + the loop's LoRA, bf16 autocast, AdamW),
    8 rows of 110 tokens as a DPO batch of 4 pairs, at this process's torch threads: 2 warm-up steps, then 5."""
    import torch
    from superalign.models.local import LocalLM
    from superalign.training import LoraSpec, attach
    lm = LocalLM()
    if a.attn:
        lm.model.set_attn_implementation(a.attn)
    model = attach(lm.model, LoraSpec())
    model.train()
    ids = torch.randint(100, 40000, (8, 110), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            h = model.base_model.model.model(input_ids=ids).last_hidden_state
            loss = h[:, -32:].float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
    for _ in range(2):
        step()
    t0, n = time.perf_counter(), 5
    for _ in range(n):
        step()
    secs = (time.perf_counter() - t0) / n
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:  # where two more steps spend their time, by operator
        for _ in range(2):
            step()
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in ops) or 1
    return {"threads": torch.get_num_threads(), "attn": lm.model.config._attn_implementation,
            "s_per_step": round(secs, 3), "tokens_per_s": round(ids.numel() / secs, 1),
            "self_cpu_share": {e.key: round(e.self_cpu_time_total / total, 3) for e in ops[:8]}}


CPU_SDPA = "sdpa_cpu"  # --part decode's routing, registered by it only


def _cpu_sdpa(module, query, key, value, attention_mask, **kwargs):
    """transformers' `sdpa`, except where one query token meets no mask (a decoding step of a batch without
    padding: one prompt, or rows of equal length). There transformers hands PyTorch its grouped-query path
    (`enable_gqa`); an all-True mask sends the step down the padded batch's path instead, which attends to the
    same keys."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    if attention_mask is None and query.shape[2] == 1 and query.device.type == "cpu":
        attention_mask = torch.ones((1, 1, 1, key.shape[2]), dtype=torch.bool, device=query.device)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def part_decode(a) -> dict:
    """Decoding without padding on this CPU. With no mask (one prompt, or rows of equal length) transformers hands
    PyTorch's CPU attention the key/value heads with `enable_gqa`; a padded batch takes another path. This measures
    what routing the unpadded steps the padded way (`_cpu_sdpa`, registered here only) would buy: greedy, 32 new
    tokens, the two attentions in ABBA order `--repeats` times, on single prompts one call each (what `superalign
    serve` and `chat` send), one prompt sixteen times in a batch, the same with a long prompt (look-alike requests
    joined), and sixteen different prompts (padded: the control, where both take the same path). Reports per
    workload the prompts' token lengths, seconds and completion tokens per attention, and whether the answers match.
    Harmless prompts only (look-alike and easy requests): the answers are compared, never printed."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    from superalign import config as C
    from superalign.loop import run as R
    from superalign.models.base import GenParams
    from superalign.models.local import LocalLM
    from superalign.roles.learner import chat
    AttentionInterface.register(CPU_SDPA, _cpu_sdpa)
    ALL_MASK_ATTENTION_FUNCTIONS.register(CPU_SDPA, sdpa_mask)
    cfg = C.load(None, {**C.parse_sets(a.sets), "run.seed": a.seed}, a.preset)
    ctx = R.open_run(cfg, Path(a.out) / f"decode-{os.getpid()}")
    sets = ctx.sets("test")
    texts = [x["text"] for s in ("lookalike", "benign_easy") for x in sets[s]]
    ctx.close()
    lm = LocalLM(seed=0)
    long = " ".join(texts[24:44])
    works = {"single_prompts": [[chat(t)] for t in texts[:8]], "one_prompt_x16": [[chat(texts[0])] * 16],
             "long_prompt_x16": [[chat(long)] * 16], "sixteen_prompts_padded": [[chat(t) for t in texts[8:24]]]}
    params = GenParams(max_new_tokens=32)
    lm.generate([chat(texts[0])], GenParams(max_new_tokens=4))  # warm-up
    out: dict = {"max_new_tokens": 32, "repeats": a.repeats, "order": "ABBA", "workloads": {}}
    for name, calls in works.items():
        lens = [len(lm.tokenizer(lm.render(c))["input_ids"]) for call in calls for c in call]
        row: dict = {"calls": len(calls), "rows": len(lens), "prompt_tokens": [min(lens), max(lens)],
                     "seconds": {}, "completion_tokens": {}}
        answers = {}
        for impl in ("sdpa", CPU_SDPA, CPU_SDPA, "sdpa") * a.repeats:
            lm.model.set_attn_implementation(impl)
            t0, n, got = time.perf_counter(), 0, []
            for c in calls:
                res = lm.generate_full(c, params)
                n += sum(x.completion_tokens for x in res)
                got += [x.ids for x in res]
            row["seconds"].setdefault(impl, []).append(round(time.perf_counter() - t0, 2))
            answers.setdefault(impl, got)
            row["completion_tokens"][impl] = n
        row["median_s"] = {k: sorted(v)[len(v) // 2] for k, v in row["seconds"].items()}
        row["ratio"] = round(row["median_s"]["sdpa"] / row["median_s"][CPU_SDPA], 2)
        row["same_answers"] = answers["sdpa"] == answers[CPU_SDPA]
        log(name, row)
        out["workloads"][name] = row
    return out


def part_train_procs(a) -> dict:
    """Is one training run at 2 threads the best use of 2 cores? The step above in one process at 2 threads, at 1
    thread, and in two 1-thread processes at once (independent runs, as a phase's candidate updates are)."""
    import subprocess
    import tempfile
    tmp = Path(tempfile.mkdtemp())

    def start(threads: int):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        return subprocess.Popen([sys.executable, __file__, "--part", "train_step", "--code", a.code, "--results",
                                 str(tmp / f"{time.time_ns()}.json")], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)

    def read(p) -> dict:
        out, _ = p.communicate()
        return json.loads(out)
    one2, one1 = read(start(2)), read(start(1))
    pair = [read(p) for p in [start(1), start(1)]]
    together = round(sum(x["tokens_per_s"] for x in pair), 1)
    return {"one_process_2_threads": one2, "one_process_1_thread": one1, "two_processes_1_thread": pair,
            "two_processes_tokens_per_s": together,
            "ratio_two_processes_vs_one": round(together / one2["tokens_per_s"], 3)}


def load_dev_adapter(lm, run: Path) -> Path:
    """Load a finished development-seed run's final kept adapter into the learner's attached LoRA
    (`axes_audit_build.final_checkpoint`, which refuses headline-seed runs); returns the checkpoint."""
    sys.path.insert(0, str(ROOT / "bench"))
    from axes_audit_build import final_checkpoint
    from superalign.training import load_adapter
    ck = final_checkpoint(run)
    load_adapter(lm.model, ck)
    return ck


def part_lora(a) -> dict:
    """Merged LoRA at inference (`LocalModel.merge_lora`) against peft's separate low-rank path, on trained adapters:
    for each development-seed run in `--adapters`, its final kept adapter answers the test split (every value
    axis, the loop's own evaluation) once merged and once not, in alternating order. Per adapter: seconds and
    generation seconds of each, answers that differ, and per metric the items whose verdict differs with the
    paired (McNemar) test of merged against unmerged. The merged weight is rounded once to bf16, so answers may
    differ; what must hold is that verdicts and rates do not move beyond noise."""
    from superalign import config as C
    from superalign.evaluation import suite
    from superalign.loop import run as R
    from superalign.store import RunStore
    from superalign.values import suite as axes_suite
    out = []
    for k, run in enumerate(map(Path, a.adapters)):
        seed = RunStore(run).get("config")["run"]["seed"]
        cfg = C.load(None, {**C.parse_sets(a.sets), "run.seed": seed, "eval.cache": False}, a.preset)
        ctx = R.open_run(cfg, Path(a.out) / f"lora-{os.getpid()}-{k}")
        sets, lm = ctx.sets("test"), ctx.learner
        ctx.initial_adapter(), ctx.judge()
        ck = load_dev_adapter(lm, run)
        res, secs, gen = {}, {}, {}
        for merged in ((True, False) if k % 2 == 0 else (False, True)):
            lm.merge_lora = merged
            before = lm.usage.copy()
            t0 = time.time()
            res[merged] = axes_suite.run(ctx.ex, ctx.cfg, ctx.judge(), sets, ctx.seed)
            secs[merged] = round(time.time() - t0, 1)
            gen[merged] = round(lm.usage.delta(before).get("generate_s", 0.0), 1)
            log(run.name, "merged" if merged else "unmerged", secs[merged], "s")
        ctx.close()
        answers = {merged: [x["response"] for x in r["items"]] + [x["response"] for ax in r.get("axes", {}).values()
                                                                  for x in ax["items"]] for merged, r in res.items()}
        o = {m: axes_suite.outcomes(r) for m, r in res.items()}
        differ = {}
        for t in suite.compare(o[False], o[True]):
            m = t["name"].removesuffix("_change")
            if m == "helpfulness":  # a score, not 0/1 outcomes
                continue
            off, on = o[False][m], o[True][m]
            differ[m] = {"n": t["n"], "differ": sum(v != off[i] for i, v in on.items() if i in off),
                         "unmerged": round(t["meta"]["before"], 3), "merged": round(t["meta"]["after"], 3),
                         "p_value": round(t["meta"]["p_value"], 3)}
        row = {"run": str(run), "seed": seed, "checkpoint": ck.name, "seconds": {"merged": secs[True], "unmerged": secs[False]},
               "generate_s": {"merged": gen[True], "unmerged": gen[False]},
               "answers": len(answers[True]), "answers_differ": sum(x != y for x, y in zip(answers[True], answers[False])),
               "outcomes": sum(d["n"] for d in differ.values()), "outcomes_differ": sum(d["differ"] for d in differ.values()),
               "metrics": differ}
        log(json.dumps({k: v for k, v in row.items() if k != "metrics"}))
        out.append(row)
    return {"adapters": out, "split": "test", "note": "development-seed adapters only (final_checkpoint refuses 10-12)"}


def part_workers(a) -> dict:
    """The test prompts' generation (harmful, look-alike, easy) through `LocalLM.generate` by the learner (its
    untrained adapter, or the final adapter of the first `--adapters` run), in one process at all threads against
    `--workers` forked processes sharing the batches, alternating for `--repeats` pairs: seconds of each and whether
    the answers equal one process at the per-worker thread count."""
    import torch
    from superalign import config as C
    from superalign.loop import run as R
    from superalign.models.base import GenParams
    from superalign.roles.learner import chat
    cfg = C.load(None, {**C.parse_sets(a.sets), "run.seed": a.seed}, a.preset)
    ctx = R.open_run(cfg, Path(a.out) / f"workers-{os.getpid()}")
    sets, lm = ctx.sets("test"), ctx.learner
    ctx.initial_adapter()
    if a.adapters:
        load_dev_adapter(lm, Path(a.adapters[0]))
    chats = [chat(x["text"]) for s in ("harmful", "lookalike", "benign_easy") for x in sets[s]]
    p = GenParams(max_new_tokens=cfg.eval.tokens)
    lm.generate(chats[:8], GenParams(max_new_tokens=4))  # warm-up
    threads = torch.get_num_threads()
    walls: dict = {1: [], a.workers: []}
    answers = {}
    for _ in range(a.repeats):
        for w in (1, a.workers):
            lm.workers = w
            t0 = time.perf_counter()
            answers[w] = lm.generate(chats, p)
            walls[w].append(round(time.perf_counter() - t0, 2))
    torch.set_num_threads(max(1, threads // a.workers))
    lm.workers = 1
    same = lm.generate(chats, p) == answers[a.workers]
    torch.set_num_threads(threads)
    ctx.close()
    med = {w: sorted(v)[len(v) // 2] for w, v in walls.items()}
    return {"prompts": len(chats), "threads": threads, "workers": a.workers, "walls": {str(k): v for k, v in walls.items()},
            "ratio_median": round(med[1] / med[a.workers], 3),
            "answers_equal_one_process_at_per_worker_threads": same,
            # numerics: a thread count changes the order of floating-point sums, and bf16 greedy decoding follows
            "answers_differ_from_one_process_at_all_threads": sum(x != y for x, y in zip(answers[1], answers[a.workers]))}


def cpu_model() -> str:
    """The processor's name: the project's machines are not all the same CPU, so a timing names its own."""
    try:
        return next(x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                    if x.startswith("model name"))
    except (OSError, StopIteration):
        import platform
        return platform.processor() or "unknown"


def part_compare(a) -> dict:
    """Two rounds written by this script side by side (`--before FILE`, the after round in `--results`): each stage's
    seconds, before / after, and the learn stage's training and generation seconds. Reads files, runs nothing."""
    before, after = json.loads(Path(a.before).read_text()), json.loads(Path(a.results).read_text())

    def row(x, y):
        return {"before": x, "after": y, "ratio": round(x / y, 2) if x and y else None}
    out = {k: row(before["stages"].get(k), v) for k, v in after["stages"].items()}
    out["wall"] = row(before["wall_s"], after["wall_s"])
    out["learn_training"] = row(before["learn"]["train_s"], after["learn"]["train_s"])
    out["learn_rest"] = row(round(before["stages"]["learn"] - before["learn"]["train_s"], 1),
                            round(after["stages"]["learn"] - after["learn"]["train_s"], 1))
    for k in ("generate_s", "score_s"):
        out[f"eval_{k}"] = row(before["eval"].get(k), after["eval"].get(k))
    from superalign.store import RunStore
    from superalign.store.records import EvalInfo
    u0 = [RunStore(x["run_dir"]).infos(EvalInfo)[0].usage for x in (before, after)]  # the same untrained model
    for k in ("generate_s", "score_s"):
        out[f"eval_round0_{k}"] = row(u0[0].get(k), u0[1].get(k))
    for k, v in out.items():
        log(f"{k:>18}: {v['before']} -> {v['after']}  ({v['ratio']}x)")
    return {"before": a.before, "after": a.results, "cpu": after.get("env", {}).get("cpu"), "stages": out}


# Non-inferiority margins, declared 2026-12-04 before any seed's pair was read (issue 24: where a speed-up changes the
# numbers, the loop's results must stay within these): how much worse the new defaults' loop may be than the old
# numerics' loop on the same seed and items, in the metric's bad direction, absolute. Compliance's margin is about a
# fifth of the loop's effect (0.84 -> 0.37 on the headline seeds); over-refusal's is the guard's own tolerance.
NI_MARGINS = {"compliance": 0.10, "harmful_help": 0.05, "over_refusal": 0.05, "over_refusal_easy": 0.05,
              "competence": 0.05}
NI_AXIS_MARGIN = 0.10   # each value axis's metrics (honesty, privacy, sycophancy and their controls)
NI_ALPHA = 0.10         # two-sided 90% interval = the one-sided 95% bound the margin is tested against


def part_noninferiority(a) -> dict:
    """The loop with the new numerics against the loop with the old ones, paired on the same development seeds and
    items: `--after DIR` and `--before DIR` hold bench/loop_efficacy.py's kept outcomes (`seedS.outcomes.json`) of
    the two settings; every seed in both is pooled (item ids prefixed by the seed). Per metric (`suite.compare`, as
    everywhere): the paired change (after - before) with its Newcombe interval at NI_ALPHA and the exact McNemar p,
    and whether the bound in the
    metric's bad direction stays inside its declared margin (NI_MARGINS). Reads files, runs nothing."""
    import superalign.values  # noqa: F401  (registers the value axes' metrics)
    from superalign.evaluation import metrics as M
    from superalign.evaluation import suite
    before_dir, after_dir = Path(a.before), Path(a.after)
    seeds = sorted(int(f.name.split(".")[0][4:]) for f in after_dir.glob("seed*.outcomes.json")
                   if (before_dir / f.name).exists())
    if not seeds:
        sys.exit(f"no seed has kept outcomes in both {after_dir} and {before_dir} (bench/loop_efficacy.py --results "
                 f"DIR.json keeps them in DIR/)")
    pooled: dict = {"before": {}, "after": {}}   # outcomes of every seed, item ids prefixed by the seed
    per_seed: dict = {}
    for s in seeds:
        kept = [json.loads((d / f"seed{s}.outcomes.json").read_text()) for d in (before_dir, after_dir)]
        if kept[0]["preset"] != kept[1]["preset"] or kept[0]["round"] != kept[1]["round"]:
            sys.exit(f"seed {s}: the two settings ran another preset or round: {[(k['preset'], k['round']) for k in kept]}")
        b, f = (k["arms"]["loop"]["outcomes"] for k in kept)
        for side, out in (("before", b), ("after", f)):
            for m in M.REGISTRY:
                pooled[side].setdefault(m, {}).update({f"{s}:{i}": v for i, v in out.get(m, {}).items()})
        per_seed[s] = {t["name"][:-7]: {"before": t["meta"]["before"], "after": t["meta"]["after"], "n": t["n"]}
                       for t in suite.compare(b, f) if t["name"][:-7] in M.REGISTRY}
        log(f"seed {s}: " + "; ".join(f"{k} {v['before']:.3f} -> {v['after']:.3f}" for k, v in per_seed[s].items()
                                      if k in ("compliance", "over_refusal", "over_refusal_easy", "competence")))
    rows = {}
    for t in suite.compare(pooled["before"], pooled["after"], NI_ALPHA):
        name = t["name"][:-7]
        if name not in M.REGISTRY:  # helpfulness: a likelihood, not a rate with a declared margin
            continue
        m, lo, hi, p = M.REGISTRY[name], t["lo"], t["hi"], t["meta"]["p_value"]
        margin = NI_MARGINS.get(name, NI_AXIS_MARGIN)
        ok = lo >= -margin if m.higher_is_better else hi <= margin   # the bound in the bad direction
        b, f = pooled["before"][name], pooled["after"][name]
        differ = sum(b[i] != v for i, v in f.items() if i in b)
        rows[name] = {"before": t["meta"]["before"], "after": t["meta"]["after"], "diff": t["value"], "ci90": [lo, hi],
                      "p": p, "n": t["n"], "differ": differ, "margin": margin, "non_inferior": bool(ok)}
        log(f"{name:>20}: {t['meta']['before']:.3f} -> {t['meta']['after']:.3f}  {t['value']:+.3f} [{lo:+.3f}, "
            f"{hi:+.3f}] (90%)  p={p:.2g}  {differ} of {t['n']} differ  margin {margin:.2f}: "
            f"{'non-inferior' if ok else 'NOT shown non-inferior'}")
    log(f"seeds {seeds}: {sum(r['non_inferior'] for r in rows.values())} of {len(rows)} metrics within their margins")
    return {"before": str(before_dir), "after": str(after_dir), "seeds": seeds, "alpha": NI_ALPHA,
            "metrics": rows, "per_seed": per_seed,
            "all_non_inferior": all(r["non_inferior"] for r in rows.values())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["round", "cli", "gen", "eval", "validate", "learn", "matmul", "train_step",
                                       "train_procs", "early", "lora", "workers", "compare", "noninferiority",
                                       "kept", "decode", "stages"],
                    default="round")
    ap.add_argument("--before", help="--part compare: a round written by this script before the change; "
                    "--part noninferiority: the old setting's kept outcomes folder")
    ap.add_argument("--after", help="--part noninferiority: the new setting's kept outcomes folder")
    ap.add_argument("--adapters", nargs="*", default=[], help="--part lora: finished development-seed run directories")
    ap.add_argument("--workers", type=int, default=2, help="--part workers: processes to compare with one")
    ap.add_argument("--repeats", type=int, default=3, help="--part workers / decode: alternating pairs")
    ap.add_argument("--run", help="--part early / stages: a finished run directory")
    ap.add_argument("--runs", nargs="*", default=[], help="--part kept: finished loop run (or seed) directories")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--attn", default=None, help="--part train_step / gen: the attention kernel (eager, sdpa)")
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
    from superalign.models.local import cpu_bf16
    res = {"round": one_round, "cli": part_cli, "gen": part_gen, "eval": part_eval, "learn": part_learn,
           "matmul": part_matmul, "validate": part_validate, "train_step": part_train_step, "train_procs": part_train_procs,
           "early": part_early, "lora": part_lora, "workers": part_workers,
           "compare": part_compare, "noninferiority": part_noninferiority, "kept": part_kept,
           "decode": part_decode, "stages": part_stages}[a.part](a)
    res["env"] = {"threads": torch.get_num_threads(), "torch": torch.__version__, "code": str(Path(a.code).resolve()),
                  "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "cpu": cpu_model(), "bf16": cpu_bf16()}
    print(json.dumps(res, indent=1))
    path = Path(a.results)
    old = json.loads(path.read_text()) if path.exists() else {}
    if a.part in ("round", "cli"):
        old.update(res)
    else:
        old.setdefault("parts", {})[a.label or a.part] = res
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(old, indent=1))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
