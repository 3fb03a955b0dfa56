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
from superalign.evaluation import report as eval_report
from superalign.values import report as values_report
from superalign.values import suite as axes_suite
from superalign.executors import LocalExecutor
from superalign.loop.ui import RichUI
from superalign.report import build, fmt_ci
from superalign.store import RunStore, writable
from superalign.store.records import eval_response_id


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
        cfg = C.load(config, {**C.parse_sets(set_), "run.seed": seed})
        role = (C.OpenAIEndpoint(model=model, base_url=endpoint) if endpoint
                else C.LocalModel(**{**cfg.role("learner").model_dump(), "model": model}))
        if adapter is not None and endpoint:
            raise SuperalignError("--adapter loads LoRA weights on a local model", "drop --endpoint or --adapter")
        cfg.roles["evaluated"] = role
        run_dir = run_dir or Path(cfg.run.out_dir) / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"
        if (run_dir / "store.sqlite").exists():
            raise SuperalignError(f"{run_dir} already holds a run", "pass a new --run-dir")
        writable(run_dir)
        ex = LocalExecutor(cfg)
        backend = ex.backend("evaluated")  # the model and adapter are checked before judges and sets are built
        if adapter is not None:
            _load_adapter(backend, adapter)
        with RichUI() as ui:
            ui.console.print(f"evaluating [bold]{escape(model)}[/]{escape(' + ' + str(adapter)) if adapter else ''} "
                             f"-> {escape(str(run_dir))}")
            out = axes_suite.evaluate(ex, cfg, seed, role="evaluated",
                                      bar=lambda total: ui.bar("generating and scoring", total))
            sets, res, rows = out["sets"], out["res"], out["rows"]
            extra = axes_suite.store_rows(res, eval_response_id(0, ""), "evaluated", model)
            results = {"model": model, "adapter": str(adapter) if adapter else None, "endpoint": endpoint,
                       "seed": seed, "metrics": {r["name"]: {k: r[k] for k in ("value", "lo", "hi", "n")} for r in rows},
                       "axes": out["axes"]}
            _write(run_dir, cfg, f"eval {model}" + (f" + {adapter}" if adapter else ""), seed, {
                "prompts": [{"id": x["id"], "kind": x["set"], "text": x["text"], "source": x["source"],
                             "category": x["kind"], "meta": {"templated": x["templated"]}} for x in res["items"]]
                + axes_suite.prompts(sets),
                "responses": [{"id": eval_response_id(0, x["id"]), "prompt_id": x["id"], "sample": 0,
                               "text": x["response"], "role": "evaluated", "model": model} for x in res["items"]]
                + extra["responses"],
                "scores": [{"target_id": eval_response_id(0, x["id"]), "name": n, "value": x[k], "role": "judge"}
                           for x in res["items"] for n, k in (("refusal", "refusal_p"), ("harmful", "harmful_p"),
                                                              ("bad", "bad"), ("phrase_refusal", "phrase"))]
                + extra["scores"],
                "metrics": rows, "info": {"model": model, "adapter": str(adapter) if adapter else None,
                                          "axes": list(cfg.eval.axes)}}, results)
            for r in rows:
                if ":" not in r["name"] or r["name"].startswith("judge_accuracy"):
                    ui.console.print(f"  {r['name']:<34} {fmt_ci(r['value'], r['lo'], r['hi'])}  n={r['n']}")
            ui.console.print(f"results: {escape(str(run_dir / 'results.json'))}\n"
                             f"report: {escape(str(build(run_dir, eval_report.SECTIONS + values_report.SECTIONS)))}")


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


def _load_adapter(backend, path: Path) -> None:
    """LoRA weights from `path` onto the backend's model; a directory that is not a readable adapter is one
    clear error (not peft's traceback)."""
    conf = path / "adapter_config.json"
    if not conf.exists():
        raise SuperalignError(f"{path} is not a LoRA adapter directory (no adapter_config.json)",
                              "pass a checkpoint directory such as RUN/checkpoints/r1-conformity")
    try:
        json.loads(conf.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SuperalignError(f"{conf} is not valid JSON ({e})",
                              "restore the adapter directory, or re-export it with `superalign adapter export RUN`")
    from peft import PeftModel  # peft pulls torch: imported only when an adapter is asked for
    try:
        backend.model = PeftModel.from_pretrained(backend.model, str(path)).eval()
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise SuperalignError(f"cannot load the adapter {path} on {backend.name}: {str(e).splitlines()[0][:300]}",
                              "pass an adapter trained on this --model (its adapter_config.json names the base)")
