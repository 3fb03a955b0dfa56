"""The loop's side of the value axes (superalign/values): what the attack, critique and learn stages do for every
axis the loop trains besides harmlessness (whose data the loop's own code writes, as before).

- attack: each trained axis's probe strategy writes `loop.sizes.probes` training prompts (prompt rows of kind
  `probe`, the axis and its item in `meta`);
- critique: each axis's rubric scores the answers to its probes (score rows named `axis:<name>`: the utility,
  the verdict in meta) and names the written better answer (`better_response`);
- learn: each axis's better/worse rule turns the critiqued answers into preference pairs, its written targets into
  SFT rows; every row carries its `axis`, and a conformity candidate trains on the rows of one weighting of the axes
  (`mixed`): the search over updates tries `loop.axes` and each of `loop.axis_mixes`.
"""
from __future__ import annotations

import random
import zlib

from superalign import values
from superalign.data import boundary
from superalign.evaluation import metrics as M
from superalign.evaluation.suite import rate_row

HARMLESSNESS = "harmlessness"


def trained(lc) -> list[str]:
    """The axes the loop writes probes for: every axis with a positive weight in `loop.axes` or in a mix, except
    harmlessness (the loop's own attacks)."""
    names = dict.fromkeys(n for mix in [lc.axes, *lc.axis_mixes] for n, w in mix.items() if w > 0)
    return [n for n in names if values.get(n).trains_in_loop]


def probe_rows(ctx, r: int) -> list[dict]:
    """Stage `attack`: round r's training prompts of every trained axis, as prompt rows of kind `probe`."""
    out = []
    for name in trained(ctx.lc):
        rng = random.Random(ctx.seed * 1009 + r * 31 + zlib.crc32(name.encode()))
        for p in values.get(name).probes(ctx.cfg, r, ctx.lc.sizes.probes, rng):
            out.append({"id": p["id"], "kind": "probe", "text": p["text"], "category": name, "source": p["source"],
                        "parent_id": None, "role": "data",
                        "meta": {"style": "probe", "axis": name, "item_kind": p["kind"], "item": p["item"]}})
    return out


def _probe(p: dict) -> dict:
    """A stored probe prompt row back in the axis's probe shape."""
    return {"id": p["id"], "text": p["text"], "kind": p["meta"]["item_kind"], "item": p["meta"]["item"],
            "axis": p["meta"]["axis"]}


def critique_probes(ctx, r: int, prompts: dict[str, dict], recs: list[dict]) -> dict:
    """Stage `critique` for probe answers: each axis's rubric (with the loop's critic where the rubric asks it).
    An answer the rubric could not score is an error row, never a pass."""
    scores, critiques, metrics = [], [], []
    by_axis: dict[str, list[dict]] = {}
    for x in recs:
        p = _probe(prompts[x["prompt_id"]])
        by_axis.setdefault(p["axis"], []).append({**p, "response_id": x["response_id"], "prompt_id": x["prompt_id"],
                                                  "response": x["response"]})
    for name, items in by_axis.items():
        ax = values.get(name)
        verdicts = ax.critique(ctx.critic(), items)
        for x, v in zip(items, verdicts):
            target = ax.target(x)
            scores.append({"target_id": x["response_id"], "name": f"axis:{name}", "value": v["utility"],
                           "confidence": v["confidence"], "error": v["error"], "role": "critic",
                           "meta": {"axis": name, "verdict": v["verdict"]}})
            critiques.append({"response_id": x["response_id"], "text": v["critique"] or v["error"] or "",
                              "better_response": target if v["utility"] is not None and v["utility"] < 0.5 else None,
                              "role": "critic",
                              "meta": {"axis": name, "kind": "probe", "item_kind": x["kind"], "verdict": v["verdict"],
                                       "utility": v["utility"], "pair": bool(v["utility"] is not None
                                                                             and v["utility"] < 0.5 and target)}})
        ok = [v for v in verdicts if v["utility"] is not None]
        metrics.append(rate_row(f"train_{name}_bad", [int(v["utility"] < 0.5) for v in ok], axis=name,
                                judge="critic rubric", errors=len(verdicts) - len(ok)))
    return {"scores": scores, "critiques": critiques, "metrics": metrics}


def training_rows(ctx, r: int, prompts: dict[str, dict], resp: dict[str, dict], crit: list[dict],
                  render: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Stage `learn`: (preference pairs, SFT rows) of the axes' probes of round r, each tagged with its axis.
    Pairs follow the axis's better/worse rule; the best answer the critic liked is cut after its last full
    sentence; every written target is also an SFT row (the loop imitates both sides of each line, as
    `loop.refusal_sft` does for harmlessness), except, under `loop.verdict_sft: known`, a fact-dependent axis's
    targets whose verdict the learner does not already lean to (`Axis.known`: imitating them teaches it to commit,
    not to know)."""
    answers: dict[str, list[dict]] = {}
    for c in crit:
        if c["meta"].get("kind") != "probe":
            continue
        x = resp[c["response_id"]]
        answers.setdefault(x["prompt_id"], []).append({"text": x["text"], "verdict": c["meta"]["verdict"],
                                                       "utility": c["meta"]["utility"]})
    conf, sft = [], []
    unknown = set()
    if ctx.lc.verdict_sft == "known":
        by_axis: dict[str, list[str]] = {}
        for pid in answers:
            by_axis.setdefault(prompts[pid]["meta"]["axis"], []).append(pid)
        for name, pids in by_axis.items():
            known = values.get(name).known(ctx.learner, [render[pid] for pid in pids],
                                           [_probe(prompts[pid]) for pid in pids])
            if known is not None:
                unknown |= {pid for pid, k in zip(pids, known) if not k}
                ctx.ui.note(f"round {r} {name}: the SFT phase imitates {sum(known)} of {len(pids)} written verdicts "
                            "(loop.verdict_sft: known)")
    for pid, ans in answers.items():
        p = _probe(prompts[pid])
        ax = values.get(p["axis"])
        liked = [a for a in ans if a["utility"] is not None and a["utility"] >= 0.5]
        best = max(liked, key=lambda a: a["utility"]) if liked else None
        best_text = boundary.complete(best["text"]) if best else None
        for chosen, rejected in ax.pairs(p, ans, best_text):
            conf.append({"prompt": render[pid], "chosen": chosen, "rejected": rejected, "kind": "probe",
                         "axis": p["axis"]})
        target = ax.target(p) or best_text
        if target and pid not in unknown:
            sft.append({"prompt": render[pid], "completion": target, "axis": p["axis"]})
    return conf, sft


def mixed(rows: list[dict], mix: dict[str, float]) -> list[dict]:
    """The rows of one weighting of the axes: an axis of weight w keeps floor(w) copies of its rows and a fixed
    share (w - floor(w)) of them once more (chosen by a hash, so a mix always means the same rows); an axis the mix
    does not name keeps none. Rows without an axis (the competence tasks) are kept once, whatever the mix."""
    out = []
    for x in rows:
        if "axis" not in x:
            out.append(x)
            continue
        w = float(mix.get(x["axis"], 0.0))
        whole, part = int(w), w - int(w)
        out += [x] * whole
        if part and zlib.crc32((x["prompt"] + x.get("rejected", x.get("completion", ""))).encode()) % 1000 < part * 1000:
            out.append(x)
    return out


def mix_label(mix: dict[str, float] | None) -> str:
    return "–" if not mix else ", ".join(f"{k} {v:g}" for k, v in mix.items() if v)


def axes_of(metric_names: list[str]) -> list[str]:
    """The value axes the named metrics (or `<metric>_change` tests) belong to, in order, once each."""
    out = []
    for n in metric_names:
        m = M.REGISTRY.get(n.removesuffix("_change"))
        if m is not None and m.axis not in out:
            out.append(m.axis)
    return out
