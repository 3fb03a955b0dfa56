"""The experiments superalign runs, registered explicitly: each brings its CLI commands and its report sections.

A new experiment is one more entry here — no module is imported by name string, so an editor (and the import
graph) can follow every one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from superalign import report
from superalign.cli import eval as eval_cli
from superalign.cli import loop as loop_cli
from superalign.cli import review as review_cli
from superalign.cli import sandwich as sandwich_cli
from superalign.cli import serve as serve_cli
from superalign.cli import w2s as w2s_cli
from superalign.evaluation import report as eval_report
from superalign.loop import report as loop_report
from superalign.review import report as review_report
from superalign.sandwich import report as sandwich_report
from superalign.values import report as values_report
from superalign.w2s import report as w2s_report


@dataclass(frozen=True)
class Experiment:
    name: str
    register: Callable            # register(app): adds the experiment's commands to the `superalign` CLI
    sections: Sequence[report.Section]


EXPERIMENTS = [
    Experiment("eval", eval_cli.register, eval_report.SECTIONS + values_report.SECTIONS),
    Experiment("loop", loop_cli.register, loop_report.SECTIONS),
    Experiment("w2s", w2s_cli.register, w2s_report.SECTIONS),
    Experiment("sandwich", sandwich_cli.register, sandwich_report.SECTIONS),
    Experiment("review", review_cli.register, review_report.SECTIONS),
    Experiment("serve", serve_cli.register, []),
]


def build_report(run_dir: str | Path) -> Path:
    """report.html for any run directory: every experiment's sections (each shows only what the run has), each
    once: the loop lists the review queue among its own sections, where it belongs in a loop's report."""
    sections: dict[object, report.Section] = {}
    for e in EXPERIMENTS:
        for s in e.sections:
            sections.setdefault(s[1], s)
    return report.build(run_dir, list(sections.values()))
