"""Report section for the human-label queue: counts per round and reviewer, critic accuracy on escalated items.

`SECTIONS` lists (title, fn(store) -> html | None) in display order; the report registers it."""
from __future__ import annotations

from superalign.report import fmt_ci, table


def queue_section(store) -> str | None:
    from superalign.review import queue_stats
    st = queue_stats(store)
    if not sum(st["total"].values()):
        return None
    keys = ("queued", "claimed", "done", "skipped")
    rows = [[r, *(v.get(k, 0) for k in keys)] for r, v in sorted(st["rounds"].items())]
    rows.append(["all", *(st["total"][k] for k in keys)])
    out = table(["round", *keys], rows)
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


def critic_agreement(store) -> dict:
    """(round, head) -> (n, accuracy, lo, hi) of the critic's score (>= 0.5) against human labels."""
    from superalign.stats import bootstrap_ci
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


SECTIONS = [("Human review queue", queue_section)]
