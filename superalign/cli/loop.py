"""`superalign run`: the attacker -> learner -> critic loop with alternating optimisation."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer):
    @app.command()
    def run(config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config (default: packaged)."),
            preset: Optional[str] = typer.Option(None, "--preset", "-p", help="quick | default"),
            rounds: Optional[int] = typer.Option(None, "--rounds", "-r", help="Override loop.rounds."),
            seed: Optional[int] = typer.Option(None, "--seed", help="Override run.seed."),
            run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run directory (default: out_dir/name-time)."),
            resume: Optional[Path] = typer.Option(None, "--resume", help="Continue a killed or finished run."),
            ):
        """Run the loop; every stage is saved, so re-running with --resume continues where it stopped."""
        import warnings
        from transformers.utils import logging as hf_logging
        warnings.filterwarnings("ignore", category=FutureWarning)
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        from superalign import config as C
        from superalign.errors import SuperalignError
        from superalign.loop import config as LC
        from superalign.loop.run import Loop
        from superalign.loop.ui import RichUI
        from superalign.store import RunStore
        if resume is not None:
            if not (resume / "store.sqlite").exists():
                raise SuperalignError(f"{resume} is not a run directory (no store.sqlite)",
                                      "pass a directory printed by `superalign runs list`")
            st = RunStore(resume)
            cfg = C.parse(st.get("config"), f"config saved in {resume}")
            saved = st.get("loop") or {}
            st.close()
            lc = LC.LoopConfig.model_validate({**saved, **({"rounds": rounds} if rounds is not None else {})})
            run_dir = resume
        else:
            overrides = {"run.seed": seed} if seed is not None else {}
            cfg = C.load(config, overrides)
            lc = LC.parse(cfg.loop, preset, rounds)
            if preset and cfg.run.name in ("demo", "run"):
                cfg.run.name = f"{cfg.run.name}-{preset}"
            run_dir = run_dir or Path(cfg.run.out_dir) / f"{cfg.run.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        with RichUI() as ui:
            ui.console.print(f"run dir: [bold]{run_dir}[/]  rounds: {lc.rounds}  seed: {cfg.run.seed}")
            report = Loop(cfg, lc, run_dir, ui).run()
            ui.console.print(f"[bold green]done[/] report: {report}")
