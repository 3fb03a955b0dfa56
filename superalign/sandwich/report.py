"""Report section for sandwiching: accuracy per condition, the paired gain over the judge alone, the ratio.

`SECTIONS` lists (title, fn(store) -> html | None) in display order; the report registers it."""
from __future__ import annotations

from superalign.report import fmt_ci, table

LABELS = {"judge": "judge alone (no source)", "expert": "expert: strong reader with the source",
          "consultancy": "judge + consultant (quotes verified)", "debate": "judge + debate (quotes verified)",
          "consultancy_unchecked": "judge + consultant, quotes not verified",
          "debate_unchecked": "judge + debate, quotes not verified"}


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def sandwich_section(store) -> str | None:
    from superalign.stats import bootstrap_ci
    from superalign.sandwich.experiment import human_accuracy
    from superalign.sandwich.judge import ASSISTED, CONDITIONS
    summ = {m["name"]: m for m in store.rows("metrics", stage="sandwich/summary")}
    if not summ:
        return None
    seeds = next(iter(summ.values()))["meta"]["seeds"]
    acc_rows = []
    for c in CONDITIONS:
        m = summ[f"sandwich/{c}/accuracy"]
        acc_rows.append([LABELS.get(c, c), fmt_ci(m["value"], m["lo"], m["hi"]), m["n"]]
                        + [f"{v:.3f}" for v in m["meta"]["per_seed"]] + [m["meta"].get("errors", 0)])
    gain_rows = []
    for c in ASSISTED:
        g, r = summ[f"sandwich/gain/{c}"], summ[f"sandwich/ratio/{c}"]
        lo_s, hi_s = g["meta"]["across_seeds"][1:]
        gain_rows.append([LABELS.get(c, c), fmt_ci(g["value"], g["lo"], g["hi"]), _p(g["meta"]["p"]),
                          f"{g['meta']['better']} / {g['meta']['worse']}",
                          fmt_ci(sum(g["meta"]["per_seed"]) / len(seeds), lo_s, hi_s),
                          fmt_ci(r["value"], r["lo"], r["hi"])])
    cfg = (store.get("sandwich") or {}).get("config", {})
    out = ("<p>A weak judge answers two-choice questions about a source text it never sees. The expert (a MiniLM "
           "extractive reader) reads the text. Speakers are assigned an option: the consultant a random one, "
           "wrong half the time; debaters one each. A speaker the text does not support fabricates a quote or "
           "quotes an off-topic sentence; quotes are verified by exact match against the source, and the judge "
           "sees an unverified quote only as 'not found' (the unchecked rows show it everything). The judge scores each "
           "side's answer by its log-probability after that side's verified quotes (judge rule: posterior) or by "
           "the quotes' gain over its own prior (gain). Accuracy over "
           "the items of all seeds with Wilson intervals; errors (no valid decision) count as wrong.</p>"
           + table(["condition", "accuracy [95% CI]", "items"] + [f"seed {s}" for s in seeds] + ["errors"], acc_rows)
           + "<h3>Gain over the judge alone (same items)</h3>"
           + table(["condition", "gain [paired Newcombe CI]", "McNemar p", "fixed / broken",
                    f"mean of {len(seeds)} seed gains [t CI]", "sandwiching ratio [CI]"], gain_rows)
           + "<p class='muted'>Sandwiching ratio: (assisted - judge) / (expert - judge), the share of the gap to "
             f"the expert that assistance closes. {cfg.get('questions')} questions per seed, {cfg.get('rounds')} "
             f"round(s), consultant side {cfg.get('consultant_side')}, P(fabricate) {cfg.get('fabricate')}, "
             f"P(paraphrase) {cfg.get('paraphrase')}, judge rule {cfg.get('judge_rule')}.</p>")
    n, correct = human_accuracy(store)
    if n:
        a, lo, hi = bootstrap_ci(correct)
        out += f"<p>Human judges on the review page (same debates): accuracy {fmt_ci(a, lo, hi)}, n={n}.</p>"
    return out


SECTIONS = [("Scalable oversight: sandwiching", sandwich_section)]
