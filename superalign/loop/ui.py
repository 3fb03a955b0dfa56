"""Console progress for a run: one line per stage, a bar per long step. Never prints record text
(attack prompts and responses may be harmful); those live in the run store and the report."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RichUI:
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, transient=True)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def start(self, r, name):
        self._task = self.progress.add_task(f"round {r} {name}", total=None)

    def done(self, r, name, secs):
        self.progress.remove_task(self._task)
        for t in list(self.progress.task_ids):
            self.progress.remove_task(t)
        self.console.print(f"[green]✓[/] round {r} {name:<16} {secs:6.1f}s")

    def skip(self, r, name):
        self.console.print(f"[dim]↷ round {r} {name:<16} already done (resumed)[/]")

    def note(self, text):
        self.console.print(f"  {text}")

    def bar(self, desc, total):
        t = self.progress.add_task(desc, total=total)
        return lambda n: self.progress.advance(t, n)

    def steps(self, desc):
        """A bar for a training phase: fed (steps done, total steps) by the trainer's callback."""
        t = self.progress.add_task(desc, total=None)
        return lambda done, total: self.progress.update(t, completed=done, total=total)
