"""`superalign adapter merge|export RUN`: the run's trained learner as a standalone model or a portable adapter."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer):
    adapter_app = typer.Typer(help="The learner's LoRA adapter from a run: merge into the base, or export.",
                              no_args_is_help=True)
    app.add_typer(adapter_app, name="adapter")

    @adapter_app.command("merge")
    def merge_cmd(run_dir: Path, out: Optional[Path] = typer.Option(None, "--out", "-o",
                                                                    help="Output dir (default RUN/merged)."),
                  checkpoint: Optional[str] = typer.Option(None, help="Checkpoint id, e.g. r2:conformity "
                                                                      "(default: the last accepted one).")):
        """Base + adapter merged into one transformers model directory (loads with AutoModelForCausalLM)."""
        from superalign.training.merge import merge
        warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' v6 deprecation notes inside peft
        print(f"merged model: {merge(run_dir, out or run_dir / 'merged', checkpoint)}")

    @adapter_app.command("export")
    def export_cmd(run_dir: Path, out: Optional[Path] = typer.Option(None, "--out", "-o",
                                                                     help="Output dir (default RUN/adapter)."),
                   checkpoint: Optional[str] = typer.Option(None, help="Checkpoint id (default: the last accepted).")):
        """The LoRA adapter with a base_model_name_or_path plain peft can load (hub id or absolute dir)."""
        import json
        from superalign.training.merge import export
        warnings.filterwarnings("ignore", category=FutureWarning)
        p = export(run_dir, out or run_dir / "adapter", checkpoint)
        base = json.loads((p / "adapter_config.json").read_text())["base_model_name_or_path"]
        print(f"adapter: {p}\nbase_model_name_or_path: {base}")
