"""`superalign sandwich` (the sandwiching experiment) and `superalign review RUN` (the human review page)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from superalign.errors import SuperalignError

console = Console(stderr=True)


def sandwich_table(res: dict) -> Table:
    from superalign.paradigms.sandwich import ASSISTED, CONDITIONS
    seeds = list(res["per_seed"])
    t = Table("condition", "accuracy (mean over seeds)", "95% CI (t, seeds)",
              *[f"seed {s} [bootstrap CI]" for s in seeds], "errors")
    for c in CONDITIONS:
        m, lo, hi = res["summary"][f"{c}/accuracy"]
        per = [res["per_seed"][s][c] for s in seeds]
        t.add_row(c, f"{m:.3f}", f"[{lo:.3f}, {hi:.3f}]",
                  *[f"{a:.3f} [{l:.2f}, {h:.2f}] n={n}" for a, l, h, n, _ in per], str(sum(p[4] for p in per)))
    for c in ASSISTED:
        m, lo, hi = res["summary"][f"gain/{c}"]
        per = [res["per_seed"][s][c][0] - max(res["per_seed"][s]["judge"][0], res["per_seed"][s]["strong"][0])
               for s in seeds]
        t.add_row(f"gain: {c} - max(judge, strong)", f"{m:+.3f}", f"[{lo:+.3f}, {hi:+.3f}]",
                  *[f"{g:+.3f}" for g in per], "")
    return t


def register(app: typer.Typer):
    @app.command()
    def sandwich(config: Optional[Path] = typer.Option(None, "--config", "-c"),
                 run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Store to write (default OUT_DIR/NAME-sandwich)."),
                 seeds: Optional[str] = typer.Option(None, help="Comma-separated seeds (default oversight.sandwich.seeds)."),
                 questions: Optional[int] = typer.Option(None, help="Questions per seed."),
                 rounds: Optional[int] = typer.Option(None, help="Debate rounds / consultant turns."),
                 human: Optional[int] = typer.Option(None, help="Queue this many debates for a human judge.")):
        """Sandwiching: weak judge alone / strong alone / judge + consultant / judge + debate, with CIs."""
        from superalign import config as C
        from superalign.paradigms import sandwich as S
        from superalign.store import RunStore
        over = {}
        for key, val in (("questions", questions), ("rounds", rounds), ("human_items", human)):
            if val is not None:
                over[f"oversight.sandwich.{key}"] = val
        if seeds:
            try:
                over["oversight.sandwich.seeds"] = [int(x) for x in seeds.split(",")]
            except ValueError:
                raise SuperalignError(f"--seeds {seeds!r} is not a comma-separated list of integers",
                                      "pass e.g. --seeds 0,1,2") from None
        cfg = C.load(config, over)
        S.parse_config(cfg.oversight)
        run_dir = run_dir or Path(cfg.run.out_dir) / f"{cfg.run.name}-sandwich"
        store = RunStore(run_dir, create=True)
        store.put("name", run_dir.name)
        store.put("config", cfg.model_dump(mode="json"))
        store.put("status", "running")
        res = S.run(cfg, store, progress=lambda m: console.print(f"[dim]{m}[/]"))
        store.put("status", "done")
        Console().print(sandwich_table(res))
        console.print(f"run store: {run_dir}  (report: superalign report {run_dir})")

    @app.command()
    def review(run: Path = typer.Argument(..., help="Run directory whose human-label queue to serve."),
               config: Optional[Path] = typer.Option(None, "--config", "-c"),
               host: Optional[str] = typer.Option(None, help="Bind address (default 127.0.0.1)."),
               port: Optional[int] = typer.Option(None, help="Port (default 8765; 0 picks a free one)."),
               token: Optional[str] = typer.Option(None, envvar="SUPERALIGN_REVIEW_TOKEN",
                                                   help="Reuse a token (default: a new random one).")):
        """Serve the human review page for RUN's label queue (token printed here, required on every call)."""
        import socket

        from superalign.extras import need
        need("fastapi", "the review page")
        need("uvicorn", "the review page")
        import uvicorn

        from superalign import config as C
        from superalign.paradigms.sandwich import parse_config
        from superalign.review import queue_stats
        from superalign.review.app import create_app, new_token
        from superalign.store import RunStore
        rc = parse_config(C.load(config).oversight).review
        host, port = host or rc.host, rc.port if port is None else port
        RunStore(run).close()  # a missing run is a clear error before anything binds
        token = token or new_token()
        app = create_app(run, token, lease_s=rc.lease_minutes * 60)
        st = queue_stats(app.state.store)["total"]
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(2048)  # the URL is printed before uvicorn runs: connections wait, not refused
        except OSError as e:
            raise SuperalignError(f"cannot listen on {host}:{port}: {e.strerror}",
                                  "pass another --port (0 picks a free one) or stop what is using it") from None
        port = sock.getsockname()[1]
        if host not in ("127.0.0.1", "localhost", "::1"):
            console.print(f"[yellow]warning:[/] listening on {host}, not only this machine; anyone with the token can label")
        console.print(f"queue: {st['queued']} queued, {st['claimed']} claimed, {st['done']} done, {st['skipped']} skipped")
        console.print(f"token: {token}")
        Console().print(f"open: http://{'[' + host + ']' if ':' in host else host}:{port}/?token={token}")
        uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
