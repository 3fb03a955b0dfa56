"""`superalign eval`: any model — a built-in alias, a local path or hub name (with an optional LoRA adapter), or
an OpenAI-compatible endpoint — on the held-out instruments, without training. Writes a run directory with the
store, `results.json` and `report.html`."""
from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from superalign import config as C
from superalign.errors import SuperalignError
from superalign.evaluate import config_for, evaluate, open_model
from superalign.evaluation import report as eval_report
from superalign.loop.ui import RichUI
from superalign.report import build, fmt_ci
from superalign.store import RunStore, writable
from superalign.values import report as values_report


def register(app: typer.Typer):
    @app.command("eval")
    def eval_cmd(model: str = typer.Option(..., "--model", "-m",
                                           help="Alias, local path or hub name; with --endpoint, the served name."),
                 endpoint: Optional[str] = typer.Option(None, help="Base URL of an OpenAI-compatible API (…/v1)."),
                 adapter: Optional[Path] = typer.Option(None, help="A LoRA adapter directory to load on --model."),
                 config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML layered on the defaults."),
                 set_: Optional[list[str]] = typer.Option(None, "--set", help="KEY=VALUE override, e.g. eval.harmful=50."),
                 seed: int = typer.Option(0, help="Draws the evaluation split (each seed its own items)."),
                 run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Output (default: out_dir/eval-time).")):
        """Every enabled value axis (eval.axes): held-out compliance with harmful requests per source and slice,
        look-alike and easy over-refusal; honesty, sycophancy and privacy with their controls; untrained competence,
        and the judge's audit."""
        warnings.filterwarnings("ignore", category=FutureWarning)
        if adapter is not None and endpoint:
            raise SuperalignError("--adapter loads LoRA weights on a local model", "drop --endpoint or --adapter")
        cfg = config_for(model, endpoint=endpoint, config=config, overrides=C.parse_sets(set_), seed=seed)
        run_dir = run_dir or Path(cfg.run.out_dir) / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"
        if (run_dir / "store.sqlite").exists():
            raise SuperalignError(f"{run_dir} already holds a run", "pass a new --run-dir")
        writable(run_dir)
        ex = open_model(cfg, adapter)  # the model and adapter are checked before judges and sets are built
        try:
            with RichUI() as ui:
                ui.console.print(f"evaluating [bold]{escape(model)}[/]"
                                 f"{escape(' + ' + str(adapter)) if adapter else ''} -> {escape(str(run_dir))}")
                log = evaluate(model, adapter=adapter, endpoint=endpoint, seed=seed, cfg=cfg, ex=ex,
                               progress=lambda total: ui.bar("generating and scoring", total))
                _write(run_dir, cfg, f"eval {model}" + (f" + {adapter}" if adapter else ""), seed, log.stage,
                       log.results())
                for m in log.metrics:
                    if ":" not in m.name or m.name.startswith("judge_accuracy"):
                        ui.console.print(f"  {m.name:<34} {fmt_ci(m.value, m.lo, m.hi)}  n={m.n}")
                for name, entry in log.summary.items():  # Youden's J: 0 = answers both kinds of item alike
                    if j := entry.get("discrimination"):
                        ui.console.print(f"  {name + ' discrimination (J)':<34} {fmt_ci(j['value'], *j['ci'])}  "
                                         f"n={sum(j['n'])}")
                report = build(run_dir, eval_report.SECTIONS + values_report.SECTIONS)
                ui.console.print(f"results: {escape(str(run_dir / 'results.json'))}\nreport: {escape(str(report))}")
        finally:
            ex.close()


def _write(run_dir: Path, cfg, name: str, seed: int, stage: dict, results: dict) -> None:
    """The store and results.json, written once the evaluation is done: an evaluation that fails or is stopped
    leaves no store behind (and a directory it created, nothing at all)."""
    fresh = not run_dir.exists()
    try:
        store = RunStore(run_dir, create=True)
        try:
            with store.tx():
                store.put("config", cfg.model_dump(mode="json"))
                store.put("name", name)
                store.put("kind", "eval")
                store.put("seed", seed)
            store.run_stage(0, "eval", lambda: stage, seed=seed)
            (run_dir / "results.json").write_text(json.dumps(results, indent=2))
            store.put("status", "done")
        finally:
            store.close()
    except BaseException:
        if fresh:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            for f in ("store.sqlite", "store.sqlite-wal", "store.sqlite-shm", "results.json"):
                (run_dir / f).unlink(missing_ok=True)
        raise
