"""Stage `learn`: alternating conformity (DPO on the critic's better/worse pairs) and competence (SFT on
answers the critic liked and a held-in task) phases. Each phase trains its candidate updates from the same
adapter and ranks them on one validation split (`val_select`); the winner then faces the regression guard on
another (`val_guard`): a paired test of the same items before and after. A phase whose winner is significantly
worse on any axis, by more than the axis's tolerance, is rolled back whole.
Conformity candidates are every candidate setting under every weighting of the value axes (`loop.axes` and
`loop.axis_mixes`: "which values, in which proportion"), or under the one weighting a candidate names; a candidate
that regresses any evaluated axis on the selection split is never kept, and the log names the axis that blocked it
(`blocked_by`).
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

from superalign import data
from superalign.data import boundary
from superalign.evaluation import metrics as M
from superalign.evaluation import suite
from superalign.executors.base import GEN_CHUNK
from superalign.loop import axes as loop_axes
from superalign.loop.context import Context
from superalign.loop.config import same_mix
from superalign.loop.escalate import wait_for_labels
from superalign.loop.evaluate import validate
from superalign.models.classifier import refusal_phrase
from superalign.roles.learner import refusal_stage
from superalign.store.records import PHASE_START, LearnInfo, checkpoint_id, undone
from superalign.training import DPOArgs, SFTArgs, dpo, restore, save_adapter, sft, snapshot
from superalign.values import suite as axes_suite

ANCHOR_REFUSAL = boundary.GENERIC_REFUSAL
START = PHASE_START  # the candidate name of a phase's start (no update) in the search log (`select`)


@dataclass(frozen=True)
class Regression:
    """One guarded metric the guard found worse: typed, so that the axis that blocked a candidate and which test
    flagged it (`soft`: the likelihood test of `loop.guard.soft`) are read from fields, never parsed back out of the
    log line. `str()` is the line the store, the console and the report show."""
    metric: str
    before: float
    after: float
    p: float
    n: int
    soft: bool = False

    def __str__(self) -> str:
        name = f"{self.metric}~soft" if self.soft else self.metric
        return f"{name} {self.before:.3f}->{self.after:.3f} (p={self.p:.3g}, n={self.n})"


def learn(ctx: Context, r: int) -> dict:
    wait_for_labels(ctx, r)
    conf, comp_sft, comp_dpo = training_data(ctx, r)
    lc = ctx.lc
    bar = ctx.ui.bar(f"round {r} learn", 1)
    prev = ctx.store.last_info(LearnInfo, before=r)
    before = (prev.guard if prev else None) or validate(ctx, "val_guard")
    log, cks = [], []
    phases, skipped = plan(lc, r, conf, comp_sft, comp_dpo, seed=ctx.seed)
    log += skipped
    for i, (name, method, part, pcs) in enumerate(phases):
        label = name if len(phases) <= 2 else f"{name}{i // 2}"
        if not part:
            log.append({"phase": label, "skipped": "no training data"})
            continue
        res = phase(ctx, r, label, method, part, pcs, before, log)
        cks.append(res["ck"])
        before = res["val"]
    bar(1)
    metrics = [{"name": f"val_{k}", "value": v, "meta": {"split": "val_guard"}} for k, v in before["summary"].items()]
    return {"checkpoints": cks, "metrics": metrics,
            "info": {"val": before["summary"], "guard": before, "phases": log, "n_conformity": len(conf), "n_competence": len(comp_sft),
                     "rolled_back": [c["phase"] for c in cks if not c["accepted"]]}}


def plan(lc, r: int, conf: list[dict], comp_sft: list[dict], comp_dpo: list[dict],
         seed: int = 0) -> tuple[list[tuple[str, str, list, list]], list[dict]]:
    """Round r's phases in order, (name, method, rows, candidates), and the log entries of the phases it leaves
    out. Conformity candidates are every candidate setting under every weighting of the value axes (the search
    over updates), or under its own one when it names one (`Phase.axes`); `loop.schedule`, `loop.first` and
    `loop.warmup` (round 1 without conformity) decide which phases run and in which order."""
    cands = [(pc, mix) for mix in [dict(lc.axes), *map(dict, lc.axis_mixes)] for pc in [lc.conformity, *lc.candidates]
             if pc.axes is None or same_mix(pc.axes, mix)]
    if lc.schedule == "joint":
        return [("joint", "dpo", conf + comp_dpo, cands)], []
    phases, skipped = [], []
    for kind, part in alternate(conf, comp_sft, lc.alternate_every_steps, lc.conformity.batch_size,
                                lc.competence.batch_size, first=lc.first, seed=seed + r):
        if kind == "competence" and lc.schedule == "conformity_only":
            continue
        if kind == "conformity" and lc.schedule == "competence_only":
            skipped.append({"phase": kind, "skipped": "the SFT phase alone trains (loop.schedule: competence_only)"})
            continue
        if kind == "conformity" and lc.warmup and r == 1:
            skipped.append({"phase": kind, "skipped": "the warm-up round trains SFT only (loop.warmup)"})
            continue
        phases.append((kind, "dpo" if kind == "conformity" else "sft", part,
                       cands if kind == "conformity" else [lc.competence]))
    return phases, skipped


def training_data(ctx: Context, r: int) -> tuple[list[dict], list[dict], list[dict]]:
    """(conformity pairs, competence SFT examples, competence DPO pairs) for round r.

    `loop.targets: written` (default): on an attack, every answer the critic does not rate a refusal loses to a
    written refusal that names the concern and offers a safe alternative (`data/boundary.py`); on a benign or
    contrast prompt, the learner's own complete answer the critic liked wins over a refusal of it, and a
    refusal the learner gave loses to its best answer. `critic`: the critic's best-of-k / self-revision is the
    better answer (the original loop). Every target is cut after its last full sentence (`boundary.complete`)."""
    lm, lc = ctx.learner, ctx.lc
    prompts = {p["id"]: p for p in ctx.store.rows("prompts", round=r, stage="attack")}
    resp = {x["id"]: x for x in ctx.store.rows("responses", round=r)}
    crit_all = ctx.store.rows("critiques", round=r, stage="critique")
    crit = [c for c in crit_all if c["meta"].get("kind") != "probe"]  # the other axes' probes: loop/axes.py
    conf, comp_sft, comp_dpo = [], [], []
    render = {pid: lm.render([{"role": "user", "content": p["text"]}]) for pid, p in prompts.items()}
    best: dict[str, dict] = {}
    for c in crit:  # benign prompts: the critic's favourite complete answer, when it is a real answer
        x = resp[c["response_id"]]
        p = prompts[x["prompt_id"]]
        imitate = boundary.sft_target(c["meta"], c["better_response"], x["text"]) if p["kind"] == "benign" else None
        if imitate and (p["id"] not in best or imitate[0] > best[p["id"]]["u"]):
            best[p["id"]] = {"u": imitate[0], "prompt": render[p["id"]], "completion": imitate[1], "pid": p["id"]}
    own_mode = lc.targets == "written" and lc.refusals == "own"
    own_anchors = own_mode and lc.refusal_anchors and lc.anchor_refusals == "same"
    own = own_refusals(ctx, r, {pid: p for pid, p in prompts.items()  # one generation call for attacks and anchors
                                if p["kind"] == "attack" or (own_anchors and pid in best)}) if own_mode else {}
    for c in crit:
        x = resp[c["response_id"]]
        p = prompts[x["prompt_id"]]
        if lc.targets == "written" and p["kind"] == "attack":
            # the losing side may stop mid-sentence (it is pushed down, not imitated); cut it clean when possible
            answer = boundary.complete(x["text"]) or x["text"].strip()
            if answer and ((c["meta"].get("utility") or 0) < 0.5 or not refusal_phrase(answer)):
                target = (own.get(p["id"]) if lc.refusals == "own"
                          else boundary.refusal(p["meta"].get("seed_text") or p["text"], p["meta"]["topic"]))
                if target:  # an own refusal the learner did not finish leaves the pair out
                    conf.append({"prompt": render[p["id"]], "chosen": target, "rejected": answer, "kind": "attack"})
        elif lc.targets == "written":  # a refusal of a harmless prompt loses to the learner's best answer to it
            answer = boundary.complete(x["text"]) or x["text"]
            if p["id"] in best and refusal_phrase(answer):
                conf.append({"prompt": render[p["id"]], "chosen": best[p["id"]]["completion"], "rejected": answer,
                             "kind": "benign"})
        elif c["meta"].get("pair"):
            conf.append({"prompt": render[p["id"]], "chosen": c["better_response"], "rejected": x["text"],
                         "kind": p["kind"]})
            if (lc.safety_anchors and p["kind"] == "attack" and (c["meta"].get("utility") or 0) < 0.5
                    and not refusal_phrase(c["better_response"])):
                # the critic's best candidate is often a deflection it scores as safe-ish; a plain
                # refusal is the unambiguous better response to an answer it judged unsafe
                conf.append({"prompt": render[p["id"]], "chosen": ANCHOR_REFUSAL, "rejected": x["text"],
                             "kind": "attack"})
    comp_sft += [{"prompt": b["prompt"], "completion": b["completion"]} for b in best.values()]
    if lc.targets == "written" and lc.refusal_sft:
        # the SFT phase imitates both sides of the line: measured without this (bench/loop_efficacy.py, 2 seeds),
        # SFT on answers alone taught the learner to comply and held-out compliance rose 13-22 points in one round
        for p in prompts.values():  # keyed by id: each attack once
            if p["kind"] == "attack":
                comp_sft.append({"prompt": render[p["id"]], "completion": boundary.refusal(
                    p["meta"].get("seed_text") or p["text"], p["meta"]["topic"])})
        if lc.seed_refusals:  # the plain request behind each attack, once per seed, with the same written refusal
            # (an attack that is its seed verbatim adds none; a plain-framed one, the seed with a full stop, adds it)
            plain = {p["meta"]["seed_text"]: p["meta"]["topic"] for p in prompts.values() if p["kind"] == "attack"
                     and p["meta"].get("seed_text") and p["meta"]["seed_text"].strip() != p["text"].strip()}
            comp_sft += [{"prompt": lm.render([{"role": "user", "content": t}]),
                          "completion": boundary.refusal(t, topic)} for t, topic in plain.items()]
    if lc.refusal_anchors:  # the over-refusal counterweight: a good answer beats a refusal of the same prompt
        for b in best.values():
            p = prompts[b["pid"]]
            topic = p["meta"].get("topic") if p["meta"] else None
            if own_anchors:  # the refusal the attack pairs teach, on a harmless prompt; none finished: no pair
                refusal = own.get(p["id"])
            else:
                refusal = boundary.refusal(p["text"], topic) if lc.targets == "written" and topic else ANCHOR_REFUSAL
            if refusal:
                conf.append({"prompt": b["prompt"], "chosen": b["completion"], "rejected": refusal,
                             "kind": "benign"})
    # every value-axis row carries its axis (harmlessness: the rows above); conformity candidates weigh the axes by
    # a mix (`select`), the SFT phase by `loop.axes`
    conf = [{**x, "axis": loop_axes.HARMLESSNESS} for x in conf]
    comp_sft = [{**x, "axis": loop_axes.HARMLESSNESS} for x in comp_sft]
    more_conf, more_sft = loop_axes.training_rows(ctx, r, prompts, resp, crit_all, render)
    conf += more_conf
    comp_sft = loop_axes.mixed(comp_sft + more_sft, lc.axes)
    n = lc.sizes.sft_competence
    for task in ctx.cfg.data.competence:  # the held-in task: a fresh slice of its train split per round
        pool = data.load(task, "train", seed=ctx.cfg.data.split_seed)
        start = ((r - 1) * n) % max(1, len(pool))
        for t in (pool * 2)[start:start + n]:
            y = int(t["label"])
            comp_sft.append({"prompt": t["prompt"], "completion": t["choices"][y]})
            wrong = [c for i, c in enumerate(t["choices"]) if i != y]
            comp_dpo.append({"prompt": t["prompt"], "chosen": t["choices"][y], "rejected": wrong[0]})
    return conf, comp_sft, comp_dpo


def own_refusals(ctx: Context, r: int, prompts: dict[str, dict]) -> dict[str, str]:
    """{prompt id: the learner's own refusal of it} for `loop.refusals: own` (the attacks, and with
    `loop.anchor_refusals: same` the harmless prompts of the benign anchors), from the learner as it is at the start
    of the round's learn stage (the policy the DPO phase starts from); ids it gave none for are absent."""
    recs = [{"prompt_id": p["id"], "text": p["text"]} for p in prompts.values()]
    out = ctx.map(refusal_stage, "learner", recs, GEN_CHUNK, f"round {r} own refusals", max_new_tokens=32)
    return {x["prompt_id"]: x["refusal"] for x in out if x["refusal"]}


def guard(ctx: Context, before: dict, after: dict) -> tuple[list[Regression], list[dict]]:
    """Paired tests on the guard split, per guarded metric of every evaluated axis: (regressions, the tests with
    their detectable effect). A regression is a change in the bad direction beyond the metric's tolerance with
    p < guard.alpha; each names its metric, and `loop_axes.axes_of` the value axis it belongs to.
    With `loop.guard.soft`, the likelihood scores of both validations are tested too (`<metric>_soft_change`,
    values/suite.py); under `enforce` they flag a regression by the same rule (`Regression.soft`)."""
    g = ctx.lc.guard
    tests = suite.compare(before["outcomes"], after["outcomes"], g.alpha)
    if g.soft != "off" and before.get("soft") and after.get("soft"):
        tests += axes_suite.soft_compare(before["soft"], after["soft"], g.alpha)
    metric = {f"{m.name}_change": m for m in M.guarded()}
    metric |= {f"{m.name}_soft_change": m for m in M.guarded()} if g.soft == "enforce" else {}
    bad = []
    for t in tests:
        m = metric.get(t["name"])
        if m is None or m.tolerance is None:
            continue
        lim = m.limit(g)
        worse = -t["value"] > lim if m.higher_is_better else t["value"] > lim
        if worse and t["meta"]["p_value"] < g.alpha:
            bad.append(Regression(m.name, t["meta"]["before"], t["meta"]["after"], t["meta"]["p_value"], t["n"],
                                  bool(t["meta"].get("soft"))))
    return bad, tests


def blocked_by(regressions: list[Regression]) -> list[str]:
    """The value axes of the metrics that regressed (e.g. ["honesty"])."""
    return loop_axes.axes_of([b.metric for b in regressions])


def score(summary: dict) -> float:
    """The selection score of a candidate on `val_select` (`metrics.selection_score`: compliance, look-alike
    over-refusal and competence weighed alike)."""
    return M.selection_score(summary)


def better(cand: dict, best: dict | None) -> bool:
    """Whether a phase's search keeps `cand` over the best so far: no axis blocked it, and it scores higher (so of
    equal scores the earlier candidate stays). `bench/loop_speed.py --part kept` applies it to stored logs."""
    return "rejected" not in cand and (best is None or cand["score"] > best["score"])


def train(ctx: Context, method: str, rows: list[dict], pc, seed: int, run_name: str, on_step=None,
          ref_logps: dict | None = None) -> dict:
    """One candidate update from the learner's current adapter (DPO or SFT through TRL). `ref_logps`: the DPO
    reference log-probs the candidates of one phase share (they start from the same adapter)."""
    lm = ctx.learner
    trackers = ctx.cfg.run.report_to
    common = dict(learning_rate=pc.learning_rate, epochs=pc.epochs, batch_size=pc.batch_size,
                  max_length=pc.max_length, max_steps=pc.max_steps, seed=seed, extra=pc.extra,
                  report_to=trackers, run_name=f"{ctx.cfg.run.name}-{run_name}",
                  log_dir=str(ctx.dir / "trackers" / run_name) if trackers else None)
    if method == "dpo":
        return dpo(lm.model, lm.tokenizer, rows, DPOArgs(beta=pc.beta, loss_type=pc.loss_type,
                                                         reference=pc.reference, **common), on_step=on_step,
                   ref_logps=ref_logps)
    return sft(lm.model, lm.tokenizer, rows, SFTArgs(**common), on_step=on_step)


def select(ctx: Context, r: int, name: str, method: str, rows: list[dict], phase_cfgs, log: list,
           reject_regressions: bool = True) -> dict | None:
    """Train each candidate from the same adapter; rank them on `val_select`. With more than one candidate, a
    candidate that is significantly worse than the phase's start on any axis (the guard's paired test and
    tolerances, on the selection split) is never chosen; None when every candidate was rejected. With
    `loop.start_competes` the start itself is ranked too, first (a candidate must score strictly above it), and
    returned (candidate `START`) when no eligible candidate does. The learner is left holding the winner (or the
    start state when None or `START`)."""
    lm = ctx.learner
    start = snapshot(lm.model)
    many = len(phase_cfgs) > 1  # one candidate needs no ranking: the select split is read only to choose
    sel0 = validate(ctx, "val_select") if many and reject_regressions else None
    best = None
    if sel0 is not None:  # the start's own standing, logged; with `loop.start_competes` it is the bar to clear
        first = {"candidate": START, "cfg": {}, "mix": None, "select": sel0["summary"],
                 "score": score(sel0["summary"]), "phase": name}
        log.append(first)
        best = {**first, "state": start} if ctx.lc.start_competes else None
    eligible = False  # whether any candidate was trained and not rejected
    ref: dict = {}  # every candidate starts from `start`: one reference pass serves them all
    for ci, c in enumerate(phase_cfgs):
        pc, mix = c if isinstance(c, tuple) else (c, None)  # a conformity candidate weighs the axes by its mix
        part = loop_axes.mixed(rows, mix) if mix is not None else rows
        restore(lm.model, start)
        if not part:
            log.append({"candidate": ci, "cfg": pc.model_dump(), "mix": mix, "phase": name,
                        "skipped": "no training rows under this mix"})
            continue
        t0 = time.time()
        bar = ctx.ui.steps(f"round {r} {name} candidate {ci + 1}/{len(phase_cfgs)}")
        info = train(ctx, method, part, pc, ctx.seed + r, f"r{r}-{name}-c{ci}", on_step=bar, ref_logps=ref)
        fit_s = time.time() - t0
        val = validate(ctx, "val_select") if many else None
        sel = val["summary"] if val else {}
        cand = {"candidate": ci, "cfg": pc.model_dump(), "mix": mix, "n_rows": len(part), "train": info,
                "select": sel, "fit_s": fit_s, "score": score(sel) if sel else 0.0, "train_s": time.time() - t0,
                "state": snapshot(lm.model)}
        if sel0 is not None and val is not None:
            bad, _ = guard(ctx, sel0, val)
            if bad:  # the stored log says which axis blocked it
                cand["rejected"], cand["blocked_by"] = "; ".join(map(str, bad)), blocked_by(bad)
        log.append({k: v for k, v in cand.items() if k != "state"} | {"phase": name})
        eligible = eligible or "rejected" not in cand
        if better(cand, best):
            best = cand
    if best is not None and best["candidate"] == START and not eligible:
        best = None  # no candidate was eligible at all: "every candidate regressed", not "the start scored best"
    restore(lm.model, best["state"] if best else start)
    return best


def phase(ctx: Context, r: int, name: str, method: str, rows: list[dict], phase_cfgs, before: dict,
          log: list) -> dict:
    """Train candidate updates from the current adapter, keep the best on validation unless it regresses."""
    lm = ctx.learner
    start = snapshot(lm.model)
    data_path = write_rows(ctx.dir / "training" / f"r{r}-{name}.jsonl", rows)
    best = select(ctx, r, name, method, rows, phase_cfgs, log)
    tests: list[dict] = []
    found: list[Regression] = []
    why = None  # a phase undone for another reason than the guard's regressions says so apart from them
    if best is None:  # every candidate regressed on the selection split: nothing to guard, the phase is undone
        why, after = "every candidate regressed on val_select", before
    elif best["candidate"] == START:  # not training scored best (`loop.start_competes`): the phase is undone
        why, after = "no candidate scored above the phase's start on val_select", before
    else:
        after = validate(ctx, "val_guard")  # only the winner is guarded: selection never sees these items
        found, tests = guard(ctx, before, after)
    regressions = [str(x) for x in found]
    accepted = best is not None and best["candidate"] != START and not (ctx.lc.guard.enabled and regressions)
    if not accepted:
        restore(lm.model, start)
    path = None
    if accepted:  # stored relative to the run directory, so a moved or copied run still finds its adapters
        save_adapter(lm.model, ctx.dir / "checkpoints" / f"r{r}-{name}")
        path = f"checkpoints/r{r}-{name}"
    ck = {"id": checkpoint_id(r, name), "path": path, "phase": name, "accepted": int(accepted), "role": "learner",
          "model": ctx.cfg.role("learner").model,
          "meta": {"val_before": before["summary"], "val_after": after["summary"], "regressions": regressions,
                   "why": why,
                   "guard_tests": tests, "candidates": len(phase_cfgs),
                   "candidate": best["candidate"] if best else None, "train": best.get("train") if best else None,
                   "mix": best.get("mix") if best else None, "n_winner": best.get("n_rows") if best else None,
                   "blocked_by": blocked_by(found), "n": len(rows), "method": method, "rows": data_path}}
    said = undone(ck["meta"])
    ctx.ui.note(f"round {r} {name}: {'kept' if accepted else 'ROLLED BACK'}" + (f" ({'; '.join(said)})" if said else ""))
    return {"ck": ck, "val": after if accepted else before}


def write_rows(path, rows: list[dict]) -> str:
    """A phase's training rows as JSONL in the run directory (every candidate of the phase trains on them), so
    the phase can be inspected, exported and re-run. Returns the path relative to the run directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(x) + "\n" for x in rows))
    tmp.replace(path)
    return f"{path.parent.name}/{path.name}"


def alternate(conf: list, comp: list, every: int | None, bs_conf: int, bs_comp: int,
              first: str = "conformity", seed: int = 0) -> list[tuple[str, list]]:
    """Phase order: conformity then competence (or `first="competence"`: the other way round), or interleaved
    chunks of `every` optimiser steps in that order. The chunks are cut from the rows shuffled (by `seed`): the
    rows arrive grouped by kind (attack pairs, then benign anchors, then each value axis's; the learner's answers,
    then refusals, then each axis's, then the held-in task), and chunks cut in that order trained one kind of row at a
    time."""
    out = []
    if not every:
        out = [("conformity", conf), ("competence", comp)]
    else:
        rng = random.Random(seed)
        conf, comp = rng.sample(conf, len(conf)), rng.sample(comp, len(comp))
        a, b = every * bs_conf, every * bs_comp
        for i in range(max(-(-len(conf) // a), -(-len(comp) // b))):
            out += [("conformity", conf[i * a:(i + 1) * a]), ("competence", comp[i * b:(i + 1) * b])]
    if first == "competence":  # swap within each pair, so chunk i of competence precedes chunk i of conformity
        out = [x for i in range(0, len(out), 2) for x in (out[i + 1], out[i])]
    return out
