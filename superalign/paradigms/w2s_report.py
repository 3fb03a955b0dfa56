"""Report section for weak-to-strong runs: accuracy/AUROC/PGR per task and method with 95% CIs
across seeds, PGR bars, and accuracy along the gap-annealing ladder."""
from __future__ import annotations

from superalign.report import Markup, esc, fmt_ci, line_plot, table

ORDER = ["weak", "xent", "aux_conf", "bootstrap", "ladder", "ceiling"]
COLORS = {"xent": "#1f77b4", "aux_conf": "#d62728", "bootstrap": "#9467bd", "ladder": "#2ca02c"}


def pgr_bars(groups: dict[str, list[tuple[str, float, float, float]]], width: int = 640, height: int = 220) -> Markup:
    """Inline SVG: per task a group of bars (method, value, lo, hi) with CI whiskers; y from -0.5 to 1.5."""
    n = sum(len(v) for v in groups.values()) + len(groups)
    if not n:
        return Markup("")
    vals = [x for v in groups.values() for _, m, lo, hi in v for x in (m, lo, hi) if x == x]
    y0, y1 = min([-0.25, *vals]), max([1.25, *vals])
    y0, y1 = max(y0, -2.0), min(y1, 3.0)
    L, B, bw = 45, 40, (width - 55) / n

    def Y(y):
        return 10 + (y1 - min(max(y, y0), y1)) / (y1 - y0) * (height - B - 10)

    out = [f'<svg width="{width}" height="{height + 20}" xmlns="http://www.w3.org/2000/svg" style="font:11px sans-serif">']
    for ref, dash in ((0.0, ""), (1.0, ' stroke-dasharray="4 3"')):
        out.append(f'<line x1="{L}" y1="{Y(ref):.1f}" x2="{width - 10}" y2="{Y(ref):.1f}" stroke="#999"{dash}/>'
                   f'<text x="{L - 5}" y="{Y(ref) + 4:.1f}" text-anchor="end">{ref:g}</text>')
    x = L + bw / 2
    for task, bars in groups.items():
        x0 = x
        for method, m, lo, hi in bars:
            c = COLORS.get(method, "#777")
            if m == m:
                out.append(f'<rect x="{x:.1f}" y="{min(Y(m), Y(0)):.1f}" width="{bw * .8:.1f}" '
                           f'height="{abs(Y(0) - Y(m)):.1f}" fill="{c}"><title>{esc(method)}: {m:.2f}</title></rect>')
            if lo == lo and hi == hi:
                cx = x + bw * .4
                out.append(f'<line x1="{cx:.1f}" y1="{Y(lo):.1f}" x2="{cx:.1f}" y2="{Y(hi):.1f}" stroke="#000"/>')
            x += bw
        out.append(f'<text x="{(x0 + x) / 2:.1f}" y="{height - B + 16}" text-anchor="middle">{esc(task)}</text>')
        x += bw
    for i, (method, c) in enumerate(COLORS.items()):
        out.append(f'<rect x="{L + 110 * i}" y="{height - 8}" width="10" height="10" fill="{c}"/>'
                   f'<text x="{L + 110 * i + 14}" y="{height + 1}">{esc(method)}</text>')
    out.append(f'<text x="12" y="{height / 2}" transform="rotate(-90 12 {height / 2})" text-anchor="middle">PGR</text></svg>')
    return Markup("".join(out))


def ladder_series(rungs: list[dict], weak: list[float]) -> dict:
    from superalign.evaluation.stats import mean_ci_t
    steps = sorted({r["meta"]["step"] for r in rungs})
    stud, ceil = [(0, *mean_ci_t(weak))], [(0, *mean_ci_t(weak))]
    for s in steps:
        rs = [r for r in rungs if r["meta"]["step"] == s]
        stud.append((s, *mean_ci_t([r["value"] for r in rs])))
        ceil.append((s, *mean_ci_t([r["meta"]["ceiling"] for r in rs])))
    clean = lambda pts: [(x, y, lo if lo == lo else None, hi if hi == hi else None) for x, y, lo, hi in pts]  # noqa: E731
    return {"ladder student (trained on previous rung)": clean(stud), "rung ceiling (gold labels)": clean(ceil)}


def w2s_section(store) -> str | None:
    from superalign.paradigms.w2s import LABELS, summarise
    rows = [r for r in store.rows("metrics", stage="w2s") if not r["meta"].get("aggregate")]
    if not rows:
        return None
    tasks = list(dict.fromkeys(r["meta"]["task"] for r in rows))
    agg = summarise(rows)
    parts = ["<p>Burns et al. protocol per task and seed (weak-train / transfer / test reshuffled per seed). "
             "PGR = (w2s − weak) / (ceiling − weak), mean over seeds with a 95% t-interval. "
             "Ladder: each rung is trained on the previous rung's labels (cross-fitted on the transfer split).</p>"]
    bars = {}
    for task in tasks:
        get = {(r["meta"]["method"], r["name"]): r for r in agg if r["meta"]["task"] == task}
        methods = [m for m in ORDER if (m, "accuracy") in get]
        models = {m: get[(m, "accuracy")]["model"] for m in methods}
        body = []
        for m in methods:
            c = lambda name: get.get((m, name))  # noqa: E731
            body.append([LABELS[m], models[m], *[fmt_ci(c(n)["value"], c(n)["lo"], c(n)["hi"]) if c(n) else "–"
                                                 for n in ("accuracy", "auroc", "pgr")], c("accuracy")["n"]])
        parts.append(f"<h3>{esc(task)}</h3>" + table(["method", "model", "accuracy", "AUROC", "PGR", "seeds"], body))
        bars[task] = [(m, get[(m, "pgr")]["value"], get[(m, "pgr")]["lo"], get[(m, "pgr")]["hi"])
                      for m in methods if (m, "pgr") in get]
        rungs = [r for r in rows if r["role"] == "rung" and r["meta"]["task"] == task and r["name"] == "accuracy"]
        if rungs:
            weak = [r["value"] for r in rows if r["role"] == "weak" and r["name"] == "accuracy" and r["meta"]["task"] == task]
            steps = sorted({r["meta"]["step"] for r in rungs})
            srows = []
            for s in steps:
                rs = [r for r in rungs if r["meta"]["step"] == s]
                mean = lambda k: sum(r["meta"][k] for r in rs) / len(rs)  # noqa: E731
                srows.append([s, rs[0]["meta"]["supervisor"], rs[0]["model"], f"{mean('label_accuracy'):.3f}",
                              f"{mean('supervisor_accuracy'):.3f}", f"{sum(r['value'] for r in rs) / len(rs):.3f}",
                              f"{mean('ceiling'):.3f}", f"{mean('gap'):+.3f}", f"{mean('step_pgr'):+.2f}"])
            parts.append("<p>Gap annealing ladder (means over seeds; gap = student ceiling − supervisor accuracy):</p>"
                         + table(["step", "supervisor", "student", "label acc (transfer)", "supervisor acc",
                                  "student acc", "student ceiling", "gap", "step PGR"], srows)
                         + line_plot(ladder_series(rungs, weak), xlabel="ladder step (0 = weak supervisor)",
                                     ylabel="test accuracy"))
    parts.insert(1, "<h3>PGR by task and method</h3>" + pgr_bars(bars))
    return "".join(parts)


SECTIONS = [
    ("Weak-to-strong generalization", w2s_section),
]
