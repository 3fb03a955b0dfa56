"""Answers of the learner to label for the value axes' judges (issue 25, item 2): base model and a briefly
trained adapter, greedy, `eval.tokens` new tokens, exactly as the evaluation generates them.

    OMP_NUM_THREADS=1 nice -n 15 python bench/axes_audit_build.py [--steps 40] [--per-axis 60]

Writes
- bench/audit/axes_to_label.jsonl   the audit set: every test item of honesty, sycophancy and privacy (the items
                                    `superalign eval` draws from), answered by both model states. Fields: id, axis,
                                    model_state, prompt, response. No judge verdict, no item kind: the labellers
                                    see what the learner saw and what it said.
- bench/audit/axes_items.jsonl      per audit id: the axis's item (kind, right/wrong answers, ...), which the judge
                                    needs and bench/axes_audit.py reads; kept apart from the labelling file.
- bench/audit/axes_dev_answers.jsonl  answers to *training-source* prompts (never evaluated), for the judges'
                                    training labels (superalign/data/files/axes_judge_v1.jsonl, labelled apart).
The adapter: LoRA (the loop's LoraSpec) SFT on the axes' written targets for one set of training probes, and on
the base model's own non-refusing answers to the privacy controls (the loop's counterweight); the dev answers
come from other probes, so no answer is a memorised target. Resumable: each file is written once.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from superalign import config as C  # noqa: E402
from superalign import values  # noqa: E402
from superalign.models.classifier import refusal_phrase  # noqa: E402
from superalign.roles.learner import respond_stage  # noqa: E402

AUDIT = ROOT / "bench" / "audit"
AXES = ("honesty", "sycophancy", "privacy")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def probes(cfg, axis: str, rounds: range, per_round: int) -> list[dict]:
    """Training-source prompts of `axis`, unique by text, drawn as the loop's attack stage draws them."""
    ax, seen, out = values.get(axis), set(), []
    for r in rounds:
        for p in ax.probes(cfg, r, per_round, random.Random(1000 + r)):
            if p["text"] not in seen:
                seen.add(p["text"])
                out.append(p)
    return out


def eval_wording(axis: str, p: dict) -> dict:
    """A training-source probe reworded with the evaluation's templates (its content stays a training item)."""
    from superalign.values import common, honesty, sycophancy
    if axis == "sycophancy":
        it = p["item"]
        return {**p, "text": sycophancy.ask(common.pick(sycophancy.EVAL_ASK, p["id"]), it["question"], it["prior"],
                                            it["push"])}
    if axis == "honesty":
        return {**p, "text": honesty.ask(common.pick(honesty.EVAL_ASK, p["id"]), p["item"]["statement"])}
    return p


def answer(lm, recs: list[dict], tokens: int) -> list[str]:
    kw = {"seed": 0, "max_new_tokens": tokens, "temperature": 0.0}
    todo = [{"prompt_id": x["id"], "text": x["text"], "sample": 0} for x in recs]
    out = []
    for i in range(0, len(todo), 16):
        out += [x["response"] for x in respond_stage(lm, todo[i:i + 16], kw)]
    return out


def both_states(lm, recs: list[dict], tokens: int) -> dict[str, list[str]]:
    with lm.model.disable_adapter():
        base = answer(lm, recs, tokens)
    return {"base": base, "trained": answer(lm, recs, tokens)}


def final_checkpoint(run: Path) -> Path:
    """A finished loop run's final learner: its last kept checkpoint (round, then conformity before competence).
    Refuses a headline-seed run: the judges' training labels come from development seeds only."""
    from superalign.store import RunStore
    seed = RunStore(run).get("config")["run"]["seed"]
    if seed in (10, 11, 12):
        sys.exit(f"{run} is a headline-seed run (seed {seed}): judge training labels come from development seeds")
    order = {"conformity": 0, "competence": 1}
    cks = sorted((run / "checkpoints").glob("r*-*"),
                 key=lambda p: (int(p.name[1:].split("-")[0]), order.get(p.name.split("-", 1)[1], 2)))
    if not cks:
        sys.exit(f"{run} holds no kept checkpoint")
    return cks[-1]


def loop_state(lm, run: Path, tokens: int, recs: list[dict]) -> list[str]:
    """`recs` answered by `run`'s final learner (its adapter loaded into the attached LoRA, then put back)."""
    from superalign.training import load_adapter, restore, snapshot
    keep = snapshot(lm.model)
    load_adapter(lm.model, final_checkpoint(run))
    try:
        return answer(lm, recs, tokens)
    finally:
        restore(lm.model, keep)


def train_adapter(cfg, lm, steps: int) -> dict:
    """SFT on written targets of probes from rounds 1-3 (the dev answers use rounds 11-13)."""
    from superalign.training import SFTArgs, sft
    rows = []
    for axis in AXES:
        ax = values.get(axis)
        ps = probes(cfg, axis, range(1, 4), 20)
        ctrl = [p for p in ps if ax.target(p) is None]
        with lm.model.disable_adapter():
            own = dict(zip([p["id"] for p in ctrl], answer(lm, ctrl, 48)))
        for p in ps:
            t = ax.target(p) or (own[p["id"]] if not refusal_phrase(own[p["id"]]) else None)
            if t:
                rows.append({"prompt": lm.render([{"role": "user", "content": p["text"]}]), "completion": t})
    random.Random(0).shuffle(rows)
    args = SFTArgs(learning_rate=2e-4, epochs=1, batch_size=4, max_length=256, max_steps=steps, seed=0)
    return {"rows": len(rows), **sft(lm.model, lm.tokenizer, rows, args)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--dev-per-round", type=int, default=24)
    ap.add_argument("--more-dev", type=int, default=0, metavar="K",
                    help="only write bench/audit/axes_dev_answers_K.jsonl: dev answers to probes of rounds 10K+1..10K+3 "
                         "(more judge training labels; the audit files are left as they are)")
    ap.add_argument("--axes", nargs="+", default=list(AXES))
    ap.add_argument("--adapters", nargs="*", type=Path, default=[], metavar="RUN",
                    help="with --more-dev: answer also as these loop-trained learners (a development-seed run "
                         "folder: its final kept checkpoint; model_state 'loop:<run>'), whose answers may read "
                         "differently from the base model's and the short SFT adapter's")
    ap.add_argument("--states", nargs="*", default=["base", "trained"], choices=["base", "trained"],
                    help="with --more-dev: which of the base and SFT-adapter states answer too")
    ap.add_argument("--eval-wording", action="store_true",
                    help="with --more-dev: word the training-source probes as the evaluation words its items (the "
                         "sycophancy and honesty EVAL_ASK templates), so the judges see answers to that wording too")
    args = ap.parse_args()
    cfg = C.load(preset="quick", overrides={"eval.axes": ["harmlessness", *AXES], "eval.axis_items": 1000})
    from superalign.roles import build
    from superalign.assets import cache_dir
    from superalign.training import attach, load_adapter, save_adapter
    lm = build(cfg.role("learner"), seed=0, shared=False)
    lm.model = attach(lm.model, cfg.loop.lora, seed=0)
    lm.model.eval()
    t0 = time.time()
    saved = cache_dir() / "audit" / f"axes_sft_adapter_{args.steps}"
    if args.more_dev and "trained" not in args.states:  # no answer of the SFT adapter is wanted: do not train it
        info = {"rows": 0, "steps": 0}
    elif (saved / "adapter_config.json").exists():  # the same adapter as the audit set's (deterministic, reused)
        load_adapter(lm.model, saved)
        info = json.loads((saved / "train_info.json").read_text())
    else:
        info = train_adapter(cfg, lm, args.steps)
        save_adapter(lm.model, saved)
        (saved / "train_info.json").write_text(json.dumps({k: info[k] for k in ("rows", "steps") if k in info}))
    lm.model.eval()
    log(f"adapter: {info['rows']} rows, {info.get('steps')} steps, {time.time() - t0:.0f}s")
    if args.more_dev:
        asked = {}  # axis -> its probes; every state answers all axes' probes in one pass (one adapter load each)
        for axis in args.axes:
            ps = probes(cfg, axis, range(10 * args.more_dev + 1, 10 * args.more_dev + 4), args.dev_per_round)
            asked[axis] = [eval_wording(axis, p) for p in ps] if args.eval_wording else ps
        flat = [(axis, p) for axis, ps in asked.items() for p in ps]
        recs = [p for _, p in flat]
        got: dict[str, list[str]] = {}
        if "base" in args.states:  # only the states asked for are generated
            with lm.model.disable_adapter():
                got["base"] = answer(lm, recs, cfg.eval.tokens)
        if "trained" in args.states:
            got["trained"] = answer(lm, recs, cfg.eval.tokens)
        for run in args.adapters:
            got[f"loop:{run.name}"] = loop_state(lm, run, cfg.eval.tokens, recs)
        dev = [{"id": f"dev{args.more_dev}:{state}:{p['id']}", "axis": axis, "model_state": state,
                "prompt": p["text"], "response": r, "kind": p["kind"], "item": p["item"]}
               for state, resp in got.items() for (axis, p), r in zip(flat, resp)]
        out = AUDIT / f"axes_dev_answers_{args.more_dev}.jsonl"
        out.write_text("".join(json.dumps(r) + "\n" for r in dev))
        print(f"wrote {len(dev)} dev answers to {out.relative_to(ROOT)}")
        return
    tokens = cfg.eval.tokens
    AUDIT.mkdir(parents=True, exist_ok=True)
    dev, label, items = [], [], []
    for axis in AXES:
        ax = values.get(axis)
        ps = probes(cfg, axis, range(11, 14), args.dev_per_round)
        got = both_states(lm, ps, tokens)
        for state, resp in got.items():
            dev += [{"id": f"dev:{state}:{p['id']}", "axis": axis, "model_state": state, "prompt": p["text"],
                     "response": r, "kind": p["kind"], "item": p["item"]} for p, r in zip(ps, resp)]
        test = ax.items(cfg, 0, "test")
        got = both_states(lm, test, tokens)
        for state, resp in got.items():
            for x, r in zip(test, resp):
                rid = f"{state}:{x['id']}"
                label.append({"id": rid, "axis": axis, "model_state": state, "prompt": x["text"], "response": r})
                items.append({"id": rid, "axis": axis, "kind": x["kind"], "item_id": x["id"], "item": x["item"]})
        log(f"{axis}: {len(ps)} dev prompts, {len(test)} test items, {time.time() - t0:.0f}s")
    random.Random(25).shuffle(label)  # the labellers see the states and axes mixed
    for name, rows in (("axes_dev_answers", dev), ("axes_to_label", label), ("axes_items", items)):
        (AUDIT / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(label)} answers to label (bench/audit/axes_to_label.jsonl), {len(dev)} dev answers; "
          f"adapter {info['rows']} rows / {info.get('steps')} steps; {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
