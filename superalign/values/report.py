"""Report sections of the value axes: the value profile (every enabled axis's metrics per round, 95% Wilson
intervals, the paired change from round 0) and small multiples of the trade-offs (each axis against harmlessness
and against competence, one point per checkpoint). Loop runs and `superalign eval` runs both have them."""
from __future__ import annotations

from superalign import values
from superalign.evaluation import metrics as M
from superalign.report import Markup, esc, fmt_ci, pareto_plot, table
from superalign.store import RunStore
from superalign.store.records import EvalInfo


def _evals(store: RunStore) -> dict[int, dict[str, dict]]:
    out: dict[int, dict[str, dict]] = {}
    for m in store.rows("metrics", stage="eval"):
        out.setdefault(m["round"], {})[m["name"]] = m
    return out


def _axes(store: RunStore) -> list:
    names = ((store.get("config") or {}).get("eval") or {}).get("axes") or ["harmlessness"]
    return [values.get(n) for n in names if n in values.names()]


def profile(store: RunStore) -> str | None:
    """One row per metric of every enabled axis: its rate per checkpoint and, for a loop, the paired change of the
    last round from round 0 (exact McNemar on the same items); for an axis with contrast items (`Axis.control`) a
    row of its discrimination (`discrimination`), and a note naming the axes the first checkpoint does not tell
    apart."""
    ev, axes = _evals(store), _axes(store)
    if not ev or not any(a.name != "harmlessness" for a in axes):
        return None  # harmlessness alone: the results tables say it all
    rounds = sorted(ev)
    last = rounds[-1]
    head = ["axis", "metric"] + ["baseline" if r == 0 else f"round {r}" for r in rounds]
    head += [f"round {last} − baseline [95% CI], p"] if last != rounds[0] else []
    rows, blind = [], []
    got = {r: i.outcomes for r, i in store.infos(EvalInfo).items() if r in rounds}  # item outcomes, read once
    for ax in axes:
        for m in ax.metrics:
            if not any(m.name in ev[r] for r in rounds):
                continue
            cells = [fmt_ci(ev[r][m.name]["value"], ev[r][m.name]["lo"], ev[r][m.name]["hi"])
                     + f" (n={ev[r][m.name]['n']})" if m.name in ev[r] else "–" for r in rounds]
            if last != rounds[0]:
                ch = ev[last].get(f"{m.name}_change")
                cells.append(_change(ch, m.higher_is_better) if ch else "–")
            rows.append([ax.title, f"{m.label} ({'higher' if m.higher_is_better else 'lower'} is better)", *cells])
        if ax.control:
            jrows, j0 = discrimination(ax, got, rounds)
            rows += jrows
            blind += [ax.title] if j0 and j0["ci"][0] <= 0 else []
        un = [ev[r].get(f"{ax.name}_unscored") for r in rounds]
        if any(u and u["value"] for u in un):
            rows.append([ax.title, "answers the judge could not score",
                         *[f"{u['value']:.3f} (n={u['n']})" if u else "–" for u in un]]
                        + (["–"] if last != rounds[0] else []))
    about = "".join(f"<li><b>{esc(a.title)}</b>: {esc(a.about)}</li>" for a in axes)
    said = ("" if not blind else
            f"<p><b>At baseline the learner does not tell the two kinds of item apart on {esc(', '.join(blind))}</b> "
            "(Youden's J's interval reaches 0): a later change of the headline rate alone is a moved prior, a gain "
            "on one kind of item paid for on the other, unless J moves too.</p>")
    return (table(head, rows) + said
            + f"<ul class=muted>{about}</ul>"
            + "<p class=muted>Rates carry 95% Wilson intervals; a change counts only where the paired test on the "
              "same items says so (J's change: MOVER interval, exact sign-flip test). Each axis is scored by its own "
              "judge, independent of the loop's critic and audited on the learner's own answers (bench/axes_audit.py); "
              "unscored answers are counted, never passed.</p>")


def discrimination(ax, got: dict[int, dict], rounds: list[int]) -> tuple[list[list], dict | None]:
    """The axis's discrimination per checkpoint, Youden's J = 1 - headline - control (`stats.youden`), and the paired
    change of the last round from round 0 (`stats.paired_youden`), from the evaluations' item outcomes (`got`:
    {round: outcomes}): (the table's row, the first checkpoint's J). ([], None) where the store keeps no outcomes of
    both metrics (an evaluation of one kind of item only)."""
    from superalign.values.suite import discrimination as of, discrimination_change
    js = [of(ax, got.get(r, {})) for r in rounds]
    if not all(js):
        return [], None
    cells = [fmt_ci(j["value"], *j["ci"]) + f" (n={sum(j['n'])})" for j in js if j]
    if len(rounds) > 1:  # the change column of the other rows: last round - round 0
        t = discrimination_change(ax, got[rounds[0]], got[rounds[-1]])
        ch = t and {"value": t["diff"], "lo": t["ci"][0], "hi": t["ci"][1], "meta": {"p_value": t["p"]}}
        cells.append(_change(ch, higher_is_better=True) if ch else "–")
    return [[ax.title, "tells its two kinds of item apart: Youden's J = 1 − the two rates above (higher is better; "
             "0 = the same answer to both, so rates that move together moved a prior)", *cells]], js[0]


def _change(ch: dict, higher_is_better: bool) -> Markup:
    worse = ch["value"] < 0 if higher_is_better else ch["value"] > 0
    cls = "" if ch["meta"].get("p_value", 1) >= 0.05 else ("bad" if worse else "good")
    text = f"{ch['value']:+.3f} [{ch['lo']:+.3f}, {ch['hi']:+.3f}], p={ch['meta'].get('p_value', float('nan')):.3g}"
    return Markup(f'<span class="{cls}">{esc(text)}</span>' if cls else esc(text))


def _point(ev: dict, r: int, x: str, y: str) -> dict | None:
    if x not in ev[r] or y not in ev[r]:
        return None
    return {"x": ev[r][x]["value"], "x_lo": ev[r][x]["lo"], "x_hi": ev[r][x]["hi"], "y": ev[r][y]["value"],
            "y_lo": ev[r][y]["lo"], "y_hi": ev[r][y]["hi"], "label": "base" if r == 0 else f"r{r}", "series": "run"}


def tradeoffs(store: RunStore) -> str | None:
    """Small multiples: for every axis but harmlessness, its headline against harmlessness's (compliance) and
    against competence, one point per checkpoint, joined in round order."""
    ev, axes = _evals(store), _axes(store)
    others = [a for a in axes if a.name != "harmlessness"]
    if len(ev) < 2 or not others:
        return None
    plots = []
    for ax in others:
        x = ax.headline.name
        for y, ylabel, caption in (("compliance", M.COMPLIANCE.label.split(" (")[0], "lower-left is better"),
                                   ("competence", M.COMPETENCE.label.split(" (")[0], "upper-left is better")):
            pts = [p for r in sorted(ev) if (p := _point(ev, r, x, y))]
            if pts:
                plots.append(f'<div style="display:inline-block;vertical-align:top">'
                             + pareto_plot(pts, width=300, height=230, xlabel=f"{ax.name}: {ax.headline.label}",
                                           ylabel=ylabel, caption=caption) + "</div>")
    if not plots:
        return None
    return ("".join(plots)
            + "<p class=muted>Each panel: one value axis's headline rate (x, lower is better) against harmlessness "
              "(compliance with harmful requests, lower is better) or against untrained competence (higher is "
              "better), one point per checkpoint (base = before training, rN = after round N) with 95% Wilson "
              "bars. A line running from base toward better on both axes is a gain without a trade-off.</p>")


SECTIONS = [("Value profile (every axis per round)", profile), ("Trade-offs between values", tradeoffs)]
