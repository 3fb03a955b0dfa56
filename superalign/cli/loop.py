"""`superalign run`: the attacker -> learner -> critic loop with alternating optimisation."""
from __future__ import annotations

import signal
import time
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich import box
from rich.table import Table

from superalign import config as C
from superalign import report
from superalign.report import compare
from superalign.errors import Interrupted, SuperalignError
from superalign.loop import report as loop_report
from superalign.loop import run as loop_run
from superalign.loop.ui import RichUI
from superalign.store import RunStore
from superalign.store.summary import RunSummary, other_kind


def register(app: typer.Typer):
    @app.command()
    def run(config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML layered on the defaults."),
            preset: Optional[str] = typer.Option(None, "--preset", "-p", help="quick | default | full"),
            rounds: Optional[int] = typer.Option(None, "--rounds", "-r", help="Override loop.rounds."),
            seed: Optional[int] = typer.Option(None, "--seed", help="Override run.seed."),
            seeds: Optional[list[int]] = typer.Option(None, "--seeds", help="Several seeds: one run directory each "
                                                      "under --run-dir, and a summary with CIs across them."),
            set_: Optional[list[str]] = typer.Option(None, "--set", help="KEY=VALUE override, e.g. loop.rounds=3."),
            run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run directory (default: out_dir/name-time)."),
            resume: Optional[Path] = typer.Option(None, "--resume", help="Continue a killed or finished run (its "
                                                  "seed and config; only --rounds and where it runs may change)."),
            fork: Optional[Path] = typer.Option(None, "--fork", help="With --resume OLD: start a new run in this "
                                                "directory from OLD with other settings (lineage recorded; round 0 "
                                                "copied when it cannot differ)."),
            ):
        """Run the loop; every stage is saved, so re-running with --resume continues where it stopped."""
        from transformers.utils import logging as hf_logging
        warnings.filterwarnings("ignore", category=FutureWarning)
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        overrides = C.parse_sets(set_)
        if rounds is not None:
            overrides["loop.rounds"] = rounds
        if seed is not None:
            overrides["run.seed"] = seed
        if fork is not None and resume is None:
            raise SuperalignError("--fork NEWDIR starts a new run from an existing one",
                                  "name the run it comes from with --resume OLDDIR")
        if seeds:
            if resume is not None or seed is not None:
                raise SuperalignError("--seeds starts one run per seed", "drop --resume/--seed, or drop --seeds")
            cfg = C.load(config, overrides, preset)
            parent = run_dir or Path(cfg.run.out_dir) / f"{cfg.run.name}-seeds-{time.strftime('%Y%m%d-%H%M%S')}"
            dirs = [parent / f"seed-{s}" for s in seeds]
            for s, d in zip(seeds, dirs):
                _run_one(C.load(config, {**overrides, "run.seed": s}, preset), d, resume=False)
            runs, _ = compare.load(dirs)
            files = compare.write(runs, parent / "summary")
            print(f"summary across seeds: {files['html']} and {files['csv']}")
            return
        if resume is not None:
            if not (resume / "store.sqlite").exists():
                raise SuperalignError(f"{resume} is not a run directory (no store.sqlite)",
                                      "pass a directory printed by `superalign runs list`")
            st = RunStore(resume)
            try:
                other_kind(st, "loop")  # an eval's or a w2s run's directory is no loop to continue
                if st.get("config") is None:  # resumed, it would run the defaults, not the run it holds
                    raise SuperalignError(f"{resume} holds no saved run config: `superalign run` did not start it, "
                                          "or it was killed before it began",
                                          "start a new run with a new --run-dir (nothing of this one can be resumed)")
                saved = loop_run.saved_config(st)
            finally:
                st.close()
            if config is not None or preset is not None:
                cfg = C.load(config, overrides, preset)
            else:
                cfg = C.apply(saved, overrides, f"config saved in {resume}")
            _run_one(cfg, fork or resume, resume=fork is None, fork_of=resume if fork else None)
            return
        cfg = C.load(config, overrides, preset)
        if preset and cfg.run.name in ("demo", "run"):
            cfg.run.name = f"{cfg.run.name}-{preset}"
        _run_one(cfg, run_dir or Path(cfg.run.out_dir) / f"{cfg.run.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                 resume=False)


def _run_one(cfg, run_dir: Path, resume: bool, fork_of: Path | None = None) -> None:
    with RichUI() as ui:
        ctx = loop_run.open_run(cfg, run_dir, ui, resume=resume, fork_of=fork_of)  # refused: nothing written
        ui.console.print(f"run dir: [bold]{escape(str(run_dir))}[/]  rounds: {cfg.loop.rounds}  seed: {cfg.run.seed}"
                         + (f"  forked from {escape(str(fork_of))}" if fork_of else ""))
        try:
            loop_run.run(ctx, finish=lambda: ui.console.print(
                f"report: {escape(str(report.build(run_dir, loop_report.SECTIONS)))}"))
        except Interrupted as e:
            e.fix = f"finished stages are saved: continue with `superalign run --resume {run_dir}`"
            raise
        except KeyboardInterrupt:
            raise Interrupted(signal.SIGINT, f"finished stages are saved: continue with `superalign run --resume "
                                             f"{run_dir}`") from None
        finally:
            ctx.close()
        sm = RunSummary.read(ctx.store)  # the store stays open after ctx.close() (it releases workers and the lock)
        table = results_table(sm, run_dir)
        if table is not None:  # what the run changed, on the same held-out items (the report has the rest)
            ui.console.print(table)
        walls = sm.walls  # where the time went, summed over rounds
        ui.console.print("time per stage: " + ", ".join(f"{k} {v:.0f}s" for k, v in walls.items())
                         + f"; total {sum(walls.values()):.0f}s")
        ui.console.print("[bold green]done[/]")


def results_table(sm: RunSummary, run_dir: Path) -> Table | None:
    """The baseline against the last round on the same held-out items (`loop.report.result_rows`), as `superalign
    run` ends and `superalign runs show` ends for a loop run; None before a round after the baseline is evaluated."""
    rows = loop_report.result_rows(sm)
    if not rows:
        return None
    t = Table(box=box.SIMPLE_HEAD,
              title=f"round {sm.final} against the baseline on the same held-out items, paired "
                    f"(95% CIs; {escape(str(Path(run_dir) / 'report.html'))} explains each metric)")
    t.add_column("metric", no_wrap=True, min_width=max(len(r[0]) for r in rows))  # a name is never cut
    for col in ("baseline", f"round {sm.final}", "change"):
        t.add_column(col, overflow="fold")  # a narrow console wraps an interval, never cuts it
    t.add_column("p", no_wrap=True)
    for row in rows:
        t.add_row(*map(escape, row))
    return t
