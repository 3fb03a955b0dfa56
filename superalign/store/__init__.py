"""The run store: one SQLite file (WAL) per run directory holding every prompt, response,
critique, score, label, checkpoint and metric, each row with its lineage.

A stage's rows and its `done` mark are committed in one transaction, so a run killed at any
point resumes with every finished stage intact and no half-written stage visible.
"""
from __future__ import annotations

import fcntl
import json
import sqlite3
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from superalign.errors import SuperalignError
from superalign.store.records import Row, Stage, StageInfo

LINEAGE = "run_id TEXT, round INTEGER, stage TEXT, role TEXT, model TEXT, seed INTEGER, created_at REAL"
TABLES = {
    "prompts": "id TEXT PRIMARY KEY, kind TEXT, text TEXT, source TEXT, category TEXT, parent_id TEXT, meta TEXT",
    "responses": "id TEXT PRIMARY KEY, prompt_id TEXT, sample INTEGER, text TEXT, meta TEXT",
    "critiques": "id TEXT PRIMARY KEY, response_id TEXT, text TEXT, better_response TEXT, meta TEXT",
    "scores": "id TEXT PRIMARY KEY, target_id TEXT, name TEXT, value REAL, confidence REAL, error TEXT, meta TEXT",
    "labels": "id TEXT PRIMARY KEY, target_id TEXT, status TEXT, label REAL, labeler TEXT, comment TEXT, meta TEXT",
    "checkpoints": "id TEXT PRIMARY KEY, path TEXT, parent_id TEXT, phase TEXT, accepted INTEGER, meta TEXT",
    "metrics": "id TEXT PRIMARY KEY, name TEXT, value REAL, lo REAL, hi REAL, n INTEGER, meta TEXT",
}
JSON_COLS = {"meta"}
R = TypeVar("R", bound=Row)
I = TypeVar("I", bound=StageInfo)  # noqa: E741


def _jsonable(o):
    """numpy scalars and arrays (judge outputs) go into `meta` as plain numbers and lists."""
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


class RunStore:
    def __init__(self, run_dir: str | Path, create: bool = False):
        self.dir = Path(run_dir)
        self.path = self.dir / "store.sqlite"
        if not create and not self.path.exists():
            raise SuperalignError(f"no run store at {self.path}", "check the run directory (`superalign runs list`)")
        if not create and self.path.stat().st_size == 0:
            # SQLite would take an empty file for a new database: a read would write a fresh run into it, and
            # `run --resume` would start a default-config run there
            raise SuperalignError(f"the run store {self.path} is empty (0 bytes): it holds no run",
                                  "restore store.sqlite from a copy, or delete it and start the run again")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=30000")
            with self.tx():
                self.db.execute("CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT)")
                self.db.execute("CREATE TABLE IF NOT EXISTS stages (round INTEGER, name TEXT, status TEXT, "
                                "started_at REAL, finished_at REAL, info TEXT, PRIMARY KEY (round, name))")
                for t, cols in TABLES.items():
                    self.db.execute(f"CREATE TABLE IF NOT EXISTS {t} ({cols}, {LINEAGE})")
                    self.db.execute(f"CREATE INDEX IF NOT EXISTS {t}_round_stage ON {t}(round, stage)")
            self.run_id = self.get("run_id") or self._init_id()
        except sqlite3.DatabaseError as e:
            self.db.close()
            if "not a database" in str(e) or "malformed" in str(e):  # name the file: `runs list` opens many
                raise SuperalignError(f"the run store {self.path} is corrupt (sqlite: {e})",
                                      "restore store.sqlite from a copy, or move that run directory away") from None
            raise

    def _init_id(self) -> str:
        rid = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.put("run_id", rid)
        return rid

    # ------------------------------------------------------------------ transactions & key/value
    @contextmanager
    def tx(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def put(self, key: str, value: Any):
        self.db.execute("INSERT OR REPLACE INTO run VALUES (?, ?)", (key, json.dumps(value)))

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM run WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # ------------------------------------------------------------------ rows
    def _insert(self, table: str, rows: Iterable[dict], lineage: dict):
        if table not in TABLES:
            raise ValueError(f"unknown table {table}")
        cols = [c.split()[0] for c in TABLES[table].split(", ")] + [c.split()[0] for c in LINEAGE.split(", ")]
        now = time.time()
        for r in rows:
            r = {**lineage, **r}
            r.setdefault("id", uuid.uuid4().hex)
            r.setdefault("run_id", self.run_id)
            r.setdefault("created_at", now)
            unknown = set(r) - set(cols)
            if unknown:
                raise ValueError(f"{table} has no columns {sorted(unknown)}")
            vals = [json.dumps(r.get(c), default=_jsonable) if c in JSON_COLS and r.get(c) is not None else r.get(c) for c in cols]
            self.db.execute(f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", vals)

    def insert(self, table: str, rows: Iterable[dict], **lineage):
        with self.tx():
            self._insert(table, rows, lineage)

    def rows(self, table: str, where: str = "", params: tuple = (), **eq) -> list[dict]:
        clauses = [f"{k}=?" for k in eq] + ([where] if where else [])
        sql = f"SELECT * FROM {table}" + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY rowid"
        out = []
        for row in self.db.execute(sql, tuple(eq.values()) + params):
            d = dict(row)
            for c in JSON_COLS & d.keys():
                d[c] = json.loads(d[c]) if d[c] else {}
            out.append(d)
        return out

    def records(self, kind: type[R], where: str = "", params: tuple = (), **eq) -> list[R]:
        """`rows` of kind's table as typed records (`superalign.store.records`)."""
        return [kind.from_row(r) for r in self.rows(kind.TABLE, where, params, **eq)]

    def update(self, table: str, id: str, **values):
        sets = ", ".join(f"{k}=?" for k in values)
        vals = [json.dumps(v, default=_jsonable) if k in JSON_COLS else v for k, v in values.items()]
        with self.tx():
            self.db.execute(f"UPDATE {table} SET {sets} WHERE id=?", (*vals, id))

    # ------------------------------------------------------------------ stages
    def stage_status(self, rnd: int, name: str) -> str | None:
        row = self.db.execute("SELECT status FROM stages WHERE round=? AND name=?", (rnd, name)).fetchone()
        return row[0] if row else None

    def stages(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM stages ORDER BY started_at")]

    def stage_records(self) -> list[Stage]:
        """Every stage row with its info decoded by the stage's type, in the order the stages started."""
        return [Stage.from_row(r) for r in self.stages()]

    def last_info(self, kind: type[I], before: int | None = None) -> I | None:
        """The info of the last finished stage `kind.STAGE` of a round before `before` (any round when None)."""
        where, params = "name=? AND status='done'", list[Any]([kind.STAGE])
        if before is not None:
            where, params = where + " AND round<?", [*params, before]
        row = self.db.execute(f"SELECT round, info FROM stages WHERE {where} ORDER BY round DESC LIMIT 1",
                              params).fetchone()
        return kind.parse(row[0], row[1]) if row else None

    def infos(self, kind: type[I]) -> dict[int, I]:
        """{round: info} of every finished stage `kind.STAGE`."""
        return {r: kind.parse(r, text) for r, text in self.db.execute(
            "SELECT round, info FROM stages WHERE name=? AND status='done' ORDER BY round", (kind.STAGE,))}

    def status(self) -> str:
        """The run's status, read one way everywhere: what the run wrote (`running`, `done`, `failed`,
        `interrupted`), except that a run marked `running` whose lock no process holds died without a word:
        `killed`."""
        status = self.get("status", "unknown")
        return "killed" if status == "running" and not held(self.dir / ".lock") else status

    def run_stage(self, rnd: int, name: str, fn: Callable[[], dict[str, Any]], **lineage) -> bool:
        """Run `fn` unless (round, name) is already done. `fn` returns {table: rows}; the rows and
        the done mark commit together. Returns True if the stage ran now, False if it was resumed."""
        if self.stage_status(rnd, name) == "done":
            return False
        with self.tx():  # clear what a crashed attempt of this stage may have left
            for t in TABLES:
                self.db.execute(f"DELETE FROM {t} WHERE round=? AND stage=?", (rnd, name))
            self.db.execute("INSERT OR REPLACE INTO stages VALUES (?, ?, 'running', ?, NULL, NULL)",
                            (rnd, name, time.time()))
        t0 = time.time()
        out = fn() or {}
        with self.tx():
            for table, rows in out.items():
                if table == "info":
                    continue
                self._insert(table, rows, {"round": rnd, "stage": name, **lineage})
            info: dict[str, Any] = {"wall_s": time.time() - t0, **(out.get("info") or {})}
            self.db.execute("UPDATE stages SET status='done', finished_at=?, info=? WHERE round=? AND name=?",
                            (time.time(), json.dumps(info, default=_jsonable), rnd, name))
        return True

    def close(self):
        self.db.close()


def writable(run_dir: str | Path) -> None:
    """Refuse, before any work, a run directory that cannot be written: it (or its nearest existing parent) must
    take a file. Creates nothing."""
    p = Path(run_dir)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as e:
        raise SuperalignError(f"cannot write the run directory {run_dir}: {e.strerror or e}",
                              "pass a writable --run-dir, or set run.out_dir to a writable folder") from None


def list_runs(out_dir: str | Path) -> list[dict]:
    """One row per run directory under `out_dir`, at any depth (the benches nest theirs: `bench-efficacy/seed10/loop`,
    `bench-w2s-.../w2s`). A store that cannot be read (corrupt, empty) is a row with status `unreadable` and its
    `error` (a SuperalignError): one damaged run must not hide the others from the list."""
    out: list[dict] = []
    for p in sorted(Path(out_dir).glob("**/store.sqlite")):
        try:
            s = RunStore(p.parent)
        except SuperalignError as e:
            out.append({"dir": str(p.parent), "run_id": "?", "name": p.parent.name, "status": "unreadable",
                        "stages_done": 0, "stages": 0, "error": e})
            continue
        st = s.stages()
        out.append({"dir": str(p.parent), "run_id": s.run_id, "name": s.get("name", p.parent.name),
                    "status": s.status(), "stages_done": sum(x["status"] == "done" for x in st),
                    "stages": len(st)})
        s.close()
    return out


def held(lock_path: Path) -> bool:
    """Whether some process holds the flock on a run's lock file (`superalign.loop.run.lock`)."""
    if not lock_path.exists():
        return False
    with open(lock_path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False
