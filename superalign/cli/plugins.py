"""`superalign plugins list`: the attack strategies and critic rubrics a config can name."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer):
    plugins_app = typer.Typer(help="Attack strategies and critic rubrics (built in, garak, PyRIT, entry points).",
                              no_args_is_help=True)
    app.add_typer(plugins_app, name="plugins")

    @plugins_app.command("list")
    def plugins_list() -> None:
        """Every name `loop.strategies` and `loop.rubric` accept, by family."""
        from superalign import plugins
        t = Table("kind", "family", "names")
        fams: dict[str, list[str]] = {}
        for n in plugins.strategy_names():
            fam = "loop" if n in plugins.LOOP_STRATEGIES else n.split(":")[0] if ":" in n else "entry point"
            fams.setdefault(fam, []).append(n)
        for fam, ns in fams.items():
            t.add_row("strategy", fam, ", ".join(ns))
        t.add_row("rubric", "", ", ".join(plugins.rubric_names()))
        Console().print(t)
