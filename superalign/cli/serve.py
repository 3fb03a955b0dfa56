"""`superalign serve`: host one role's local model behind an OpenAI-compatible HTTP API."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer):
    @app.command()
    def serve(role: str = typer.Option("learner", help="Role whose local model is served."),
              config: Optional[Path] = typer.Option(None, "--config", "-c", help="Config YAML (default: packaged)."),
              host: str = typer.Option("127.0.0.1", help="Interface to bind; 0.0.0.0 exposes it to the network."),
              port: int = typer.Option(8000, help="TCP port (0 picks a free one)."),
              name: Optional[str] = typer.Option(None, help="Model name clients send (default: the role's model)."),
              window_ms: float = typer.Option(5.0, help="How long to collect concurrent requests into one batch."),
              max_batch: Optional[int] = typer.Option(None, help="Largest micro-batch (default: the role's batch_size)."),
              api_key_env: Optional[str] = typer.Option(None, help="Require `Authorization: Bearer $THIS_VAR`."),
              log_requests: bool = typer.Option(False, help="Log every request to stderr."),
              max_body_kb: int = typer.Option(1024, min=1, help="Largest request body (KiB); bigger ones get 413."),
              request_timeout_s: float = typer.Option(600.0, min=1, help="Longest one request may take (504 after)."),
              stall_s: float = typer.Option(120.0, min=1, help="/health says 503 when the model thread made no "
                                                                "progress for this long while busy.")):
        """Serve ROLE's model: /v1/chat/completions, /v1/completions (echo, logprobs, stream), /v1/models, /health."""
        import sys
        from superalign import config as C
        from superalign.extras import need
        for module in ("fastapi", "uvicorn"):
            need(module, "superalign serve", extra="serve")
        from superalign.serve import from_config
        cfg = C.load(config)
        srv = from_config(cfg, role, host=host, port=port, served_name=name, window_ms=window_ms,
                          max_batch=max_batch, api_key_env=api_key_env, log_requests=log_requests,
                          max_body=max_body_kb * 1024, request_timeout_s=request_timeout_s, stall_s=stall_s)
        print(f"serving {', '.join(srv.service.names)} ({srv.service.lm.device}) on {srv.url}", flush=True)
        if host not in ("127.0.0.1", "localhost", "::1") and not api_key_env:
            print("warning: bound to a public interface without --api-key-env; anyone who can reach it can use it",
                  file=sys.stderr, flush=True)
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass
