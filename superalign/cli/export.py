"""`superalign export RUN` and `superalign runs compare RUN...`: a run's data and metrics out of its store.

Only counts and file paths are printed: prompts and responses (red-team data) go to files."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer, runs_app: typer.Typer):
    """`export` on the app; `compare` under the `runs` group."""

    @app.command("export")
    def export_cmd(run_dir: Path = typer.Argument(..., help="Run directory (holds store.sqlite)."),
                   fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl | csv | hf (datasets.save_to_disk)."),
                   out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output dir (default RUN/export-FORMAT)."),
                   tables: Optional[list[str]] = typer.Option(None, "--table", "-t",
                                                              help="Only these tables (repeatable).")):
        """Write prompts, responses, critiques, scores, labels, metrics, checkpoints, DPO pairs and SFT rows."""
        from superalign.store.export import export
        dest = out or run_dir / f"export-{fmt}"
        counts = export(run_dir, dest, fmt, tables)
        t = Table("table", "rows")
        for name, n in counts.items():
            t.add_row(name, str(n))
        Console().print(t)
        print(f"wrote {fmt} to {dest}")

    @runs_app.command("compare")
    def runs_compare(run_dirs: list[Path] = typer.Argument(..., help="Run directories (several seeds of one config "
                                                                     "are grouped by run.name)."),
                     out: Path = typer.Option(Path("runs/compare"), "--out", "-o", help="Where compare.html/.csv go."),
                     metric: Optional[list[str]] = typer.Option(None, "--metric", "-m",
                                                                help="Metrics (default: compliance, over_refusal, competence).")):
        """Table of baseline vs final held-out metrics per run and per seed group, and plots over rounds."""
        from superalign.report import compare
        from superalign.report import fmt_ci
        runs = compare.load(run_dirs)
        metrics = tuple(metric or compare.METRICS)
        t = Table("name", "run", "seed", "metric", "baseline", "final [95% CI]", "change [95% CI]")
        for r in compare.rows(runs, metrics):
            t.add_row(str(r["name"]), str(r["run"]), str(r["seed"]), r["metric"], fmt_ci(r["baseline"]),
                      fmt_ci(r["final"], r["final_lo"], r["final_hi"]), fmt_ci(r["delta"], r["delta_lo"], r["delta_hi"]))
        Console().print(t)
        files = compare.write(runs, out, metrics)
        print(f"wrote {files['html']} and {files['csv']}")
