"""Resume restores everything a stage depends on: a run that dies at any stage boundary — with human labels
arriving between rounds — ends with the same tables as one that never stopped."""
import sys
from pathlib import Path

import pytest

import superalign.roles as roles
from superalign import config as C
from superalign.loop import config as LC
from superalign.loop import learn
from superalign.loop import run as R
from superalign.store import TABLES, RunStore

sys.path.insert(0, str(Path(__file__).parent))
import test_loop as T  # noqa: E402


class Crash(Exception):
    pass


def _learn_after_labels(ctx, r):
    """Humans answer round r's queue before it learns (so round r+1's calibrate has labels to replay)."""
    for x in ctx.store.rows("labels", where="status='queued' AND round=?", params=(r,)):
        ctx.store.update("labels", x["id"], status="done", label=1.0, labeler="test")
    return learn.learn(ctx, r)


ORDER = [(0, n) for n, _ in R.SETUP] + [(r, n) for r in (1, 2) for n, _ in R.STAGES]
STAGES = [(n, _learn_after_labels if n == "learn" else f) for n, f in R.STAGES]
RUN_STAGE = R.run_stage


def _boom(ctx, r):
    raise Crash()


def _fresh(d):
    """A new process in all but name: nothing cached from the previous attempt."""
    roles._LOADED.clear()
    cfg = C.parse({**T.TINY, "loop": LC.merge(T.LOOP, {"rounds": 2})})
    return R.open_run(cfg, d)


def _run(ctx, monkeypatch, crash_at=None):
    monkeypatch.setattr(R, "STAGES", STAGES)
    monkeypatch.setattr(R, "run_stage", lambda c, r, n, f: RUN_STAGE(c, r, n, _boom if (r, n) == crash_at else f))
    try:
        R.run(ctx)
    finally:
        ctx.ex.close()


def _tables(d):
    s = RunStore(d)
    out = {t: sorted(({k: v for k, v in r.items() if k not in ("id", "run_id", "created_at")} for r in s.rows(t)),
                     key=repr) for t in TABLES}
    s.close()
    return out


def _close(a, b, tol=1e-5):
    if isinstance(a, float) and isinstance(b, float):
        return (a != a and b != b) or abs(a - b) <= tol * max(1.0, abs(a), abs(b))  # NaN (no estimate) matches NaN
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    return a == b


@pytest.mark.slow
def test_crash_at_every_stage_boundary_then_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    _run(_fresh(tmp_path / "straight"), monkeypatch)
    d = tmp_path / "crashy"
    for at in ORDER[1:]:  # die just before each stage (after the previous one committed), resume in a fresh context
        with pytest.raises(Crash):
            _run(_fresh(d), monkeypatch, crash_at=at)
        assert RunStore(d).get("status") == "failed"
    _run(_fresh(d), monkeypatch)
    assert RunStore(d).get("status") == "done"
    a, b = _tables(tmp_path / "straight"), _tables(d)
    assert a["labels"] and any(m["name"].startswith("critic_holdout") for m in a["metrics"] if m["round"] == 2)
    for t in TABLES:
        assert _close(a[t], b[t]), t


def test_a_second_process_on_the_same_run_is_refused(tmp_path):
    from superalign.errors import SuperalignError
    with R.lock(tmp_path):
        with pytest.raises(SuperalignError, match=f"in use by pid {__import__('os').getpid()}"):
            with R.lock(tmp_path):
                pass
    with R.lock(tmp_path):  # released on exit
        pass


def test_killed_run_is_not_listed_as_running(tmp_path):
    from superalign.store import list_runs
    s = RunStore(tmp_path / "r1", create=True)
    s.put("status", "running")
    assert list_runs(tmp_path)[0]["status"] == "killed"
    with R.lock(tmp_path / "r1"):
        assert list_runs(tmp_path)[0]["status"] == "running"


def test_checkpoints_resolve_inside_a_moved_run_and_a_missing_one_is_named(tmp_path):
    from superalign.errors import SuperalignError
    from superalign.training import load_adapter
    assert R.checkpoint_path(tmp_path, "checkpoints/r1-conformity") == tmp_path / "checkpoints/r1-conformity"
    with pytest.raises(SuperalignError, match="checkpoint .* is missing"):
        load_adapter(object(), tmp_path / "checkpoints" / "gone")


def test_git_commit_names_the_checkout_and_its_uncommitted_changes(tmp_path, monkeypatch):
    """The run identity and the benches' `code` read the commit through one function: outside a checkout it is "",
    inside the short commit, "+dirty" only when a named path changed."""
    import shutil
    import subprocess
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # a TMPDIR inside a checkout stays outside
    assert R.git_commit(tmp_path) == ""

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t",
                        "-c", "commit.gpgsign=false", *args], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("n\n")
    git("add", ".")
    git("commit", "-q", "-m", "c")
    sha = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert R.git_commit(tmp_path, ("pkg",)) == sha
    (tmp_path / "notes.txt").write_text("changed\n")
    assert R.git_commit(tmp_path, ("pkg",)) == sha
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert R.git_commit(tmp_path, ("pkg",)) == sha + "+dirty"
    assert R.git_commit(tmp_path) == sha
