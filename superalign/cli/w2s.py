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
        """Train the weak supervisor, strong students (xent, aux conf, ladder, iterative teacher-student), ceiling
        and data-matched control; report gaps and PGR with CIs."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Table

        from superalign import config as C
        from superalign.report import build
        from superalign.w2s.report import SECTIONS
        from superalign.store import RunStore
        from superalign.store.summary import other_kind
        from superalign.w2s.config import parse_config
        from superalign.w2s.experiment import run
        from superalign.w2s.report import label, methods

        cfg = C.load(config)
        section = cfg.w2s.model_dump() if hasattr(cfg.w2s, "model_dump") else dict(cfg.w2s)
        if tasks:
            section["tasks"] = tasks
        if seeds:
            section["seeds"] = seeds
        wcfg = parse_config(section)
        run_dir = resume or Path(out_dir or cfg.run.out_dir) / time.strftime("w2s-%Y%m%d-%H%M%S")
        store = RunStore(run_dir, create=resume is None)
        if resume is not None:
            other_kind(store, "w2s")  # a loop's or an eval's directory: refused before anything is written into it
        store.put("name", store.get("name") or run_dir.name)
        store.put("config", {**cfg.model_dump(mode="json"), "w2s": wcfg.model_dump(mode="json")})
        store.put("seeds", wcfg.seeds)
        store.put("status", "running")
        console = Console(stderr=True)
        try:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console) as progress:
                res = run(wcfg, store, progress, say=lambda m: progress.console.print(f"[dim]{m}[/]"))
        except KeyboardInterrupt:
            store.put("status", "interrupted")
            raise
        except BaseException as e:  # as the loop does: `runs list` shows the run failed and why, not "running"
            store.put("status", "failed")
            store.put("error", f"{type(e).__name__}: {e}"[:2000])
            raise
        store.put("status", "done")
        store.close()
        out = Console()
        for task, s in res.items():
            if not s:
                continue
            t = Table("model", "accuracy [95% CI]", "PGR [95% CI]", title=task + (" (untuned)" if s["untuned"] else ""))
            for m in methods(s["accuracy"]):
                lo, hi = s["accuracy_ci"][m]
                p = s["pgr"].get(m, "")
                pcell = "withheld" if p is None else (f"{p:+.2f} [{s['pgr_ci'][m][0]:+.2f}, {s['pgr_ci'][m][1]:+.2f}]"
                                                      if p != "" else "")
                t.add_row(label(m), f"{s['accuracy'][m]:.3f} [{lo:.3f}, {hi:.3f}]", pcell)
            out.print(t)
            out.print(f"gap ceiling - weak {s['gap']:+.3f} [{s['gap_ci'][0]:+.3f}, {s['gap_ci'][1]:+.3f}]"
                      + (f"; PGR withheld: {s['pgr_withheld']}" if s["pgr_withheld"] else ""))
        out.print(f"report: {build(run_dir, SECTIONS)}")
