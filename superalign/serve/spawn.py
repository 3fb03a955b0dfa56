"""`superalign serve` as a child process on 127.0.0.1, for tests and benchmarks that must see the real
CLI, a real socket and the server's own memory (RSS is read from /proc, Linux only)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path


class Spawned:
    def __init__(self, config: str | Path, role: str = "critic", args: tuple = (), env: dict | None = None,
                 start_timeout_s: float = 180.0):
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", **(env or {}))
        self.proc = subprocess.Popen([sys.executable, "-m", "superalign", "serve", "--role", role, "--config",
                                      str(config), "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        seen, t0, url = [], time.time(), None
        while url is None and time.time() - t0 < start_timeout_s:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if not line and self.proc.poll() is not None:
                break
            seen.append(line)
            m = re.search(r"on (http://127\.0\.0\.1:\d+)/v1", line)
            url = m.group(1) if m else None
        if url is None:
            self.close()
            raise RuntimeError("server did not start:\n" + "".join(seen)[-3000:])
        # keep reading its output (a full pipe would block the server); the last lines stay for errors
        self.log: deque = deque(seen[-50:], maxlen=200)
        threading.Thread(target=self._drain, daemon=True).start()
        self.base = url
        self.url = url + "/v1"
        self.host, self.port = "127.0.0.1", int(url.rsplit(":", 1)[1])

    def _drain(self):
        for line in self.proc.stdout:
            self.log.append(line)

    def rss_mb(self, peak: bool = False) -> float:
        """Resident memory of the server process now (or its peak, VmHWM), in MiB."""
        key = "VmHWM" if peak else "VmRSS"
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {key} for pid {self.proc.pid}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
