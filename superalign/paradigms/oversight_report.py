"""Report sections for scalable oversight: the sandwiching table and the human-label queue."""
from __future__ import annotations

from superalign.report import fmt_ci, table
from superalign.store import RunStore


def sandwich_section(store: RunStore) -> str | None:
    from superalign.evaluation.stats import bootstrap_ci
    from superalign.paradigms.sandwich import ASSISTED, CONDITIONS, human_accuracy
    summ = {m["name"]: m for m in store.rows("metrics", stage="sandwich/summary")}
    if not summ:
        return None
    any_row = next(iter(summ.values()))
    key, seeds = any_row["meta"]["key"], any_row["meta"]["seeds"]
    per = {s: {m["name"].split("/")[1]: m for m in store.rows("metrics", stage=f"sandwich/{key}/seed{s}")}
           for s in seeds}
    rows = []
    for c in CONDITIONS:
        m = summ[f"sandwich/{c}/accuracy"]
        rows.append([c, fmt_ci(m["value"], m["lo"], m["hi"])]
                    + [fmt_ci(per[s][c]["value"], per[s][c]["lo"], per[s][c]["hi"]) if c in per[s] else "–"
                       for s in seeds] + [m["meta"].get("errors", 0)])
    for c in ASSISTED:
        m = summ[f"sandwich/gain/{c}"]
        rows.append([f"gain: {c} − max(judge, strong)", fmt_ci(m["value"], m["lo"], m["hi"])]
                    + ["" for _ in seeds] + [""])
    cfg = store.get("oversight", {}).get("sandwich", {})
    out = ("<p>A weak judge answers two-choice questions about a source text it never sees; strong models "
           "that read the text assist it. Quotes are checked word for word against the source. Accuracy is "
           "against gold labels; the first column is the mean over seeds with a t interval, the seed columns "
           "bootstrap intervals over questions. Errors (no valid decision) count as wrong.</p>"
           + table(["condition", f"mean over {len(seeds)} seeds"] + [f"seed {s}" for s in seeds] + ["errors"], rows)
           + f"<p class='muted'>{cfg.get('questions')} questions per seed, {cfg.get('rounds')} rounds, "
             f"consultant side: {cfg.get('consultant_side')}, facts: {', '.join(cfg.get('facts', []))}.</p>")
    n, correct = human_accuracy(store)
    if n:
        acc, lo, hi = bootstrap_ci(correct)
        out += f"<p>Human judges on the review page (same debates): accuracy {fmt_ci(acc, lo, hi)}, n={n}.</p>"
    return out


def queue_section(store: RunStore) -> str | None:
    from superalign.review import queue_stats
    st = queue_stats(store)
    if not sum(st["total"].values()):
        return None
    rows = [[r, *(v.get(k, 0) for k in ("queued", "claimed", "done", "skipped"))] for r, v in sorted(st["rounds"].items())]
    rows.append(["all", *(st["total"][k] for k in ("queued", "claimed", "done", "skipped"))])
    out = table(["round", "queued", "claimed", "done", "skipped"], rows)
    if st["labelers"]:
        out += "<h3>Labels per reviewer</h3>" + table(["reviewer", "done", "skipped"],
                                                      [[k, v["done"], v["skipped"]] for k, v in sorted(st["labelers"].items())])
    agree = critic_agreement(store)
    if agree:
        out += ("<h3>Critic against human labels (escalated items)</h3>"
                "<p class='muted'>These items were escalated because the critic was unsure, so this is its "
                "accuracy where it is weakest, not overall.</p>"
                + table(["round", "head", "labels", "critic accuracy"],
                        [[r, h, n, fmt_ci(a, lo, hi)] for (r, h), (n, a, lo, hi) in sorted(agree.items())]))
    return out


def critic_agreement(store: RunStore) -> dict:
    """(round, head) -> (n, accuracy, lo, hi) of the critic's score (>= 0.5) against human labels."""
    from superalign.evaluation.stats import bootstrap_ci
    by: dict = {}
    for lab in store.rows("labels", status="done"):
        head = (lab["meta"] or {}).get("head")
        if head not in ("refusal", "harm"):
            continue
        sc = store.rows("scores", target_id=lab["target_id"], name=head)
        if not sc or sc[0]["value"] is None or sc[0]["error"]:
            continue
        by.setdefault((lab["round"], head), []).append(int((sc[0]["value"] >= 0.5) == (lab["label"] >= 0.5)))
    return {k: (len(v), *bootstrap_ci(v)) for k, v in by.items()}


SECTIONS = [
    ("Scalable oversight: sandwiching", sandwich_section),
    ("Human review queue", queue_section),
]
