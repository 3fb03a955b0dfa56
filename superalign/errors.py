"""One error type whose message always names the problem and the fix, and the one strict base for typed config.

The strict base lives here, at the bottom of the import graph, so that every experiment's config section can use it
and the root config can compose those sections without an import cycle.
"""
from __future__ import annotations

import errno
import signal
import sqlite3

from pydantic import BaseModel, ConfigDict, ValidationError


class SuperalignError(Exception):
    """A user-facing error: `problem` says what went wrong, `fix` what to do about it."""

    def __init__(self, problem: str, fix: str = ""):
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}" + (f"\n  fix: {fix}" if fix else ""))


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors, so a misspelt key fails at load, not at run."""
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


_UNION_TAGS = ("local", "openai", "classifier", "eval_judge")


def error_paths(e: ValidationError) -> list[str]:
    """The dotted key path of each problem, in `e.errors()` order (union tags dropped; '' for the whole model)."""
    return [".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)) for err in e.errors()]


def describe(e: ValidationError, prefix: str = "") -> str:
    """One `dotted.path: message` per problem, joined by '; '."""
    lines = []
    for err, path in zip(e.errors(), error_paths(e)):
        path = ".".join(p for p in (prefix, path) if p) or "config"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{path}: {msg}")
    return "; ".join(lines)


FIX_KEYS = "fix the key(s) named above; `superalign config show` prints every key with its default"


def validate(model: type[BaseModel], data, where: str, prefix: str = "", fix: str = FIX_KEYS):
    """`model.model_validate(data)`, with a validation failure turned into one SuperalignError naming each key."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as e:
        raise SuperalignError(f"invalid {where}: {describe(e, prefix)}", fix) from None


class Interrupted(BaseException):
    """SIGTERM (or SIGINT) turned into an exception, so a run is marked `interrupted` and its lock released, and the
    command ends with one line and exit status 128 + signal. A BaseException, as KeyboardInterrupt is: code that
    catches Exception must not swallow it."""

    def __init__(self, signum: int, fix: str = ""):
        self.signum, self.fix = signum, fix
        super().__init__(f"terminated by {signal.Signals(signum).name}")

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def raise_interrupted(signum, frame):
    """A signal handler: SIGTERM raises `Interrupted` in the main thread."""
    raise Interrupted(signum)


def explain(e: BaseException) -> SuperalignError | None:
    """The user's problem behind an error the environment raised (a full disk, a read-only or missing path, a
    corrupt or locked store), as a SuperalignError; None for anything else (a bug: its traceback is the report)."""
    if isinstance(e, SuperalignError):
        return e
    if isinstance(e, sqlite3.Error):
        msg = str(e)
        if "disk is full" in msg or "disk I/O error" in msg:
            return SuperalignError(f"the disk is full (sqlite: {msg})", _ROOM)
        if "readonly" in msg or "unable to open database" in msg:
            return SuperalignError(f"cannot write the run store (sqlite: {msg})", _WRITABLE)
        if "not a database" in msg or "malformed" in msg:
            return SuperalignError(f"the run store is corrupt (sqlite: {msg})",
                                   "restore store.sqlite from a copy, or start a new run with a new --run-dir")
        if "locked" in msg:
            return SuperalignError(f"the run store is locked by another process (sqlite: {msg})",
                                   "wait for the other `superalign` command on this run to finish")
        return None
    if isinstance(e, UnicodeError):
        return SuperalignError(f"text that cannot be encoded: {e}", "remove lone surrogates or undecodable bytes")
    if isinstance(e, OSError) and e.errno is not None:
        where = f" ({e.filename})" if e.filename else ""
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return SuperalignError(f"no space left on the device{where}", _ROOM)
        if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return SuperalignError(f"cannot write{where}: {e.strerror}", _WRITABLE)
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
            return SuperalignError(f"{e.strerror}{where}", "check the path")
        if e.errno == errno.EEXIST:  # mkdir(exist_ok=True) on an output directory that is a file
            return SuperalignError(f"{e.filename or 'an output path'} exists and is not a directory",
                                   "pass a directory (or a path that does not exist yet) as the output")
    return None


_ROOM = "free disk space, or point --run-dir (or run.out_dir) at a disk with room; finished stages are kept"
_WRITABLE = "pass a writable --run-dir / --out (or set run.out_dir to a writable folder)"
