"""`superalign w2s`: weak-to-strong generalization and gap annealing, one run directory per call."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer):
    @app.command("w2s")
    def w2s_cmd(config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML with a `w2s:` section."),
                tasks: Optional[list[str]] = typer.Option(None, "--tasks", help="Data sets (repeat the flag)."),
                seeds: Optional[list[int]] = typer.Option(None, "--seeds", help="Seeds (repeat the flag)."),
                out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Parent of the run directory."),
                resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run directory.")):
        """Train weak supervisor, strong students (xent, aux conf, ladder) and ceilings; report PGR with CIs."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Table

        from superalign import config as C
        from superalign.paradigms import w2s
        from superalign.paradigms.w2s_report import SECTIONS
        from superalign.report import build as build_report
        from superalign.store import RunStore

        cfg = C.load(config)
        section = dict(cfg.w2s)
        if tasks:
            section["tasks"] = tasks
        if seeds:
            section["seeds"] = seeds
        wcfg = w2s.parse_config(section)
        run_dir = resume or Path(out_dir or cfg.run.out_dir) / time.strftime(f"w2s-%Y%m%d-%H%M%S")
        store = RunStore(run_dir, create=resume is None)
        store.put("name", store.get("name") or run_dir.name)
        store.put("config", {**cfg.model_dump(mode="json"), "w2s": wcfg.model_dump()})
        store.put("seeds", wcfg.seeds)
        store.put("status", "running")
        console = Console(stderr=True)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            res = w2s.run(wcfg, store, progress)
        store.put("status", "done")
        store.close()
        out = Console()
        for task, agg in res.items():
            t = Table("method", "model", "accuracy", "AUROC", "PGR", title=task)
            get = {(r["meta"]["method"], r["name"]): r for r in agg}
            for m in ["weak", *[x for x in w2s.METHODS if x in wcfg.methods], "ceiling"]:
                cells = [(f"{r['value']:.3f}" + (f" [{r['lo']:.2f}, {r['hi']:.2f}]" if r["lo"] == r["lo"] else ""))
                         if (r := get.get((m, n))) else "" for n in ("accuracy", "auroc", "pgr")]
                t.add_row(w2s.LABELS[m], get[(m, "accuracy")]["model"] if (m, "accuracy") in get else "", *cells)
            out.print(t)
        out.print(f"report: {build_report(run_dir, SECTIONS)}")
