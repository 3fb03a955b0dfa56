"""`superalign review RUN`: the human review page over a run's label queue."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from superalign.extras import need

from superalign.errors import SuperalignError

console = Console(stderr=True)


def register(app: typer.Typer):

    @app.command()
    def review(run: Path = typer.Argument(..., help="Run directory whose human-label queue to serve."),
               config: Optional[Path] = typer.Option(None, "--config", "-c"),
               host: Optional[str] = typer.Option(None, help="Bind address (default 127.0.0.1)."),
               port: Optional[int] = typer.Option(None, help="Port (default 8765; 0 picks a free one)."),
               token: Optional[str] = typer.Option(None, envvar="SUPERALIGN_REVIEW_TOKEN",
                                                   help="Reuse a token (default: a new random one).")):
        """Serve the human review page for RUN's label queue (token printed here, required on every call)."""
        import socket

        need("fastapi", "the review page")
        need("uvicorn", "the review page")
        import uvicorn

        from superalign import config as C
        from superalign.review import queue_stats
        from superalign.review.app import create_app, new_token
        from superalign.review.config import from_config
        from superalign.store import RunStore
        rc = from_config(C.load(config))
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
