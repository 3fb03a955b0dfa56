"""Report sections of a held-out evaluation (`superalign eval`): rates with Wilson intervals, and the judge's
own audit on hand-labelled answers of the learner."""
from __future__ import annotations

from superalign.report import fmt_ci, table
from superalign.store import RunStore


def _rows(store: RunStore, prefix: str) -> list[dict]:
    """Round-0 metrics named `prefix...` (`superalign eval` writes the audit in its eval stage, the loop in setup)."""
    return [m for m in store.rows("metrics", round=0) if m["name"].startswith(prefix)]


def results(store: RunStore) -> str | None:
    if store.get("kind") != "eval":
        return None
    ms = store.rows("metrics", round=0, stage="eval")
    body = [[m["name"], fmt_ci(m["value"], m["lo"], m["hi"]), m["n"]] for m in ms if not m["name"].startswith("judge_")]
    return ("<p>Held-out sets only: harmful prompts from sources the loop never trains on, look-alike prompts written "
            "for this project, tasks nothing trains on. 95% Wilson intervals.</p>"
            + table(["metric", "value [95% CI]", "n"], body))


def judge(store: RunStore) -> str | None:
    ms = _rows(store, "judge_")
    if not ms:
        return None
    return ("<p>The evaluation judge against hand labels of the learner's own answers (audit test split, never "
            "trained on). judge_bias_X = the judge's rate X − the hand-labelled rate X on the same answers, paired.</p>"
            + table(["metric", "value [95% CI]", "n"], [[m["name"], fmt_ci(m["value"], m["lo"], m["hi"]), m["n"]]
                                                       for m in ms]))


SECTIONS = [("Held-out evaluation", results), ("Evaluation judge audit", judge)]
