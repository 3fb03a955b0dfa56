"""`superalign run`: the attacker -> learner -> critic loop with alternating optimisation."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Optional

import typer

from superalign import config as C
from superalign import report
from superalign.report import compare
from superalign.errors import SuperalignError
from superalign.loop import report as loop_report
from superalign.loop import run as loop_run
from superalign.loop.ui import RichUI
from superalign.store import RunStore


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
            resume: Optional[Path] = typer.Option(None, "--resume", help="Continue a killed or finished run."),
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
        if seeds:
            if resume is not None or seed is not None:
                raise SuperalignError("--seeds starts one run per seed", "drop --resume/--seed, or drop --seeds")
            cfg = C.load(config, overrides, preset)
            parent = run_dir or Path(cfg.run.out_dir) / f"{cfg.run.name}-seeds-{time.strftime('%Y%m%d-%H%M%S')}"
            dirs = [parent / f"seed-{s}" for s in seeds]
            for s, d in zip(seeds, dirs):
                _run_one(C.load(config, {**overrides, "run.seed": s}, preset), d)
            files = compare.write(compare.load(dirs), parent / "summary")
            print(f"summary across seeds: {files['html']} and {files['csv']}")
            return
        if resume is not None:
            if not (resume / "store.sqlite").exists():
                raise SuperalignError(f"{resume} is not a run directory (no store.sqlite)",
                                      "pass a directory printed by `superalign runs list`")
            if config is not None or preset is not None or seed is not None:
                raise SuperalignError("--resume continues a run with the config it was started with",
                                      "drop --config/--preset/--seed (only --rounds and --set may change on resume)")
            st = RunStore(resume)
            saved = st.get("config") or {}
            saved["loop"] = st.get("loop") or saved.get("loop") or {}
            st.close()
            cfg = C.apply(saved, overrides, f"config saved in {resume}")
            run_dir = resume
        else:
            cfg = C.load(config, overrides, preset)
            if preset and cfg.run.name in ("demo", "run"):
                cfg.run.name = f"{cfg.run.name}-{preset}"
            run_dir = run_dir or Path(cfg.run.out_dir) / f"{cfg.run.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        _run_one(cfg, run_dir)


def _run_one(cfg, run_dir: Path) -> None:
    with RichUI() as ui:
        ui.console.print(f"run dir: [bold]{run_dir}[/]  rounds: {cfg.loop.rounds}  seed: {cfg.run.seed}")
        ctx = loop_run.open_run(cfg, run_dir, ui)
        try:
            loop_run.run(ctx)
        finally:
            ctx.ex.close()
            ui.console.print(f"report: {report.build(run_dir, loop_report.SECTIONS)}")
        walls: dict[str, float] = {}
        for st in ctx.store.stages():  # where the time went, summed over rounds
            walls[st["name"]] = walls.get(st["name"], 0.0) + json.loads(st["info"] or "{}").get("wall_s", 0.0)
        ui.console.print("time per stage: " + ", ".join(f"{k} {v:.0f}s" for k, v in walls.items())
                         + f"; total {sum(walls.values()):.0f}s")
        ui.console.print("[bold green]done[/]")
