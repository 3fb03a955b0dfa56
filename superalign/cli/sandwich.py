"""`superalign sandwich`: judge alone / expert / judge + consultant / judge + debate, with paired gains."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from superalign.errors import SuperalignError

console = Console(stderr=True)


def sandwich_table(res: dict) -> Table:
    """Accuracy per arm (pooled over seeds) and the paired gains over the judge alone and over the
    verification-only rule on the same transcripts."""
    from superalign.sandwich.experiment import ARMS
    seeds = res["seeds"]
    t = Table("arm", "accuracy [95% CI]", *[f"seed {s}" for s in seeds], "errors",
              "gain vs judge [paired CI]", "p", "gain vs rule [paired CI]", "p ")

    def cells(g):
        return [f"{g['diff']:+.3f} [{g['lo']:+.3f}, {g['hi']:+.3f}]", f"{g['p']:.2g}"] if g else ["", ""]
    for a in ARMS:
        acc, lo, hi = res["accuracy"][a]
        t.add_row(a, f"{acc:.3f} [{lo:.3f}, {hi:.3f}]", *[f"{res['per_seed'][s][a]:.3f}" for s in seeds],
                  str(res["errors"].get(a, "")), *cells(res["gain_vs_judge"].get(a)), *cells(res["gain_vs_rule"].get(a)))
    return t


def register(app: typer.Typer):
    @app.command()
    def sandwich(config: Optional[Path] = typer.Option(None, "--config", "-c"),
                 run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Store to write (default OUT_DIR/NAME-sandwich)."),
                 seeds: Optional[str] = typer.Option(None, help="Comma-separated seeds (default sandwich.seeds)."),
                 questions: Optional[int] = typer.Option(None, help="Questions per seed."),
                 rounds: Optional[int] = typer.Option(None, help="Debate rounds / consultant turns."),
                 human: Optional[int] = typer.Option(None, help="Queue this many debates for a human judge.")):
        """Sandwiching: a judge without the source, alone and assisted by a consultant or two debaters."""
        from superalign import config as C
        from superalign.sandwich import config as SC
        from superalign.sandwich import experiment as X
        from superalign.store import RunStore
        cfg = C.load(config)
        over: dict[str, int | list[int]] = {k: v for k, v in (("questions", questions), ("rounds", rounds),
                                                              ("human_items", human)) if v is not None}
        if seeds:
            try:
                over["seeds"] = [int(x) for x in seeds.split(",")]
            except ValueError:
                raise SuperalignError(f"--seeds {seeds!r} is not a comma-separated list of integers",
                                      "pass e.g. --seeds 0,1,2") from None
        sw = SC.parse({**SC.from_config(cfg).model_dump(), **over})
        run_dir = run_dir or Path(cfg.run.out_dir) / f"{cfg.run.name}-sandwich"
        store = RunStore(run_dir, create=True)
        store.put("name", run_dir.name)
        store.put("config", cfg.model_dump(mode="json"))
        store.put("status", "running")
        res = X.run(cfg, store, sw, progress=lambda m: console.print(f"[dim]{m}[/]"))
        store.put("status", "done")
        Console().print(sandwich_table(res))
        console.print(f"run store: {run_dir}  (report: superalign report {run_dir})")
