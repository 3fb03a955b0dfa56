"""`superalign eval`: any model — a built-in alias, a local path or hub name (with an optional LoRA adapter), or
an OpenAI-compatible endpoint — on the held-out instruments, without training. Writes a run directory with the
store, `results.json` and `report.html`."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Optional

import typer

from superalign import config as C
from superalign.errors import SuperalignError
from superalign.evaluation import suite
from superalign.evaluation import report as eval_report
from superalign.values import report as values_report
from superalign.values import suite as axes_suite
from superalign.executors import LocalExecutor
from superalign.loop.ui import RichUI
from superalign.report import build
from superalign.store import RunStore


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
        ex = LocalExecutor(cfg)
        if adapter is not None:
            _load_adapter(ex.backend("evaluated"), adapter)
        run_dir = run_dir or Path(cfg.run.out_dir) / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"
        store = RunStore(run_dir, create=True)
        store.put("config", cfg.model_dump(mode="json"))
        store.put("name", f"eval {model}" + (f" + {adapter}" if adapter else ""))
        store.put("kind", "eval")
        with RichUI() as ui:
            ui.console.print(f"evaluating [bold]{model}[/]{' + ' + str(adapter) if adapter else ''} -> {run_dir}")
            out = axes_suite.evaluate(ex, cfg, seed, role="evaluated",
                                      bar=lambda total: ui.bar("generating and scoring", total))
            sets, res, rows = out["sets"], out["res"], out["rows"]
            extra = axes_suite.store_rows(res, "r0:", "evaluated", model)
            store.run_stage(0, "eval", lambda: {
                "prompts": [{"id": x["id"], "kind": x["set"], "text": x["text"], "source": x["source"],
                             "category": x["kind"], "meta": {"templated": x["templated"]}} for x in res["items"]]
                + axes_suite.prompts(sets),
                "responses": [{"id": f"r0:{x['id']}", "prompt_id": x["id"], "sample": 0, "text": x["response"],
                               "role": "evaluated", "model": model} for x in res["items"]] + extra["responses"],
                "scores": [{"target_id": f"r0:{x['id']}", "name": n, "value": x[k], "role": "judge"}
                           for x in res["items"] for n, k in (("refusal", "refusal_p"), ("harmful", "harmful_p"),
                                                              ("bad", "bad"), ("phrase_refusal", "phrase"))]
                + extra["scores"],
                "metrics": rows, "info": {"model": model, "adapter": str(adapter) if adapter else None,
                                          "axes": list(cfg.eval.axes)}}, seed=seed)
            results = {"model": model, "adapter": str(adapter) if adapter else None, "endpoint": endpoint,
                       "seed": seed, "metrics": {r["name"]: {k: r[k] for k in ("value", "lo", "hi", "n")} for r in rows},
                       "axes": out["axes"]}
            (run_dir / "results.json").write_text(json.dumps(results, indent=2))
            store.put("status", "done")
            for r in rows:
                if ":" not in r["name"] or r["name"].startswith("judge_accuracy"):
                    ui.console.print(f"  {r['name']:<34} {r['value']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]  n={r['n']}")
            ui.console.print(f"results: {run_dir / 'results.json'}\nreport: {build(run_dir, eval_report.SECTIONS + values_report.SECTIONS)}")


def _load_adapter(backend, path: Path) -> None:
    if not (path / "adapter_config.json").exists():
        raise SuperalignError(f"{path} is not a LoRA adapter directory (no adapter_config.json)",
                              "pass a checkpoint directory such as RUN/checkpoints/r1-conformity")
    from peft import PeftModel  # peft pulls torch: imported only when an adapter is asked for
    backend.model = PeftModel.from_pretrained(backend.model, str(path)).eval()
