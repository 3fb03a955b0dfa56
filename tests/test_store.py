import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from superalign.errors import SuperalignError
from superalign.store import RunStore, list_runs


def test_round_trip_with_lineage(tmp_path):
    s = RunStore(tmp_path / "r", create=True)
    s.insert("prompts", [{"id": "p1", "text": "hello", "kind": "benign", "meta": {"a": 1}}],
             round=0, stage="attack", role="attacker", model="m", seed=3)
    (row,) = s.rows("prompts", round=0)
    assert row["text"] == "hello" and row["meta"] == {"a": 1} and row["seed"] == 3 and row["role"] == "attacker"
    assert row["run_id"] == s.run_id and row["created_at"] > 0
    s.close()
    again = RunStore(tmp_path / "r")
    assert again.run_id == s.run_id and len(again.rows("prompts")) == 1


def test_stage_runs_once_and_is_atomic(tmp_path):
    s = RunStore(tmp_path / "r", create=True)
    calls = []

    def stage():
        calls.append(1)
        return {"metrics": [{"name": "compliance", "value": 0.5}]}

    assert s.run_stage(0, "eval", stage) is True
    assert s.run_stage(0, "eval", stage) is False
    assert len(calls) == 1 and len(s.rows("metrics")) == 1

    def broken():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        s.run_stage(1, "eval", broken)
    assert s.stage_status(1, "eval") == "running" and len(s.rows("metrics", round=1)) == 0


def test_open_missing_store_is_clear(tmp_path):
    with pytest.raises(SuperalignError, match="no run store"):
        RunStore(tmp_path / "nothing")


SCRIPT = textwrap.dedent("""
    import sys, time, pathlib
    from superalign.store import RunStore
    d = pathlib.Path(sys.argv[1])
    s = RunStore(d, create=True)
    def first():
        (d / "first_runs").open("a").write("x")
        return {"prompts": [{"id": f"p{i}", "text": str(i)} for i in range(5)]}
    def second():
        (d / "second_started").write_text("1")
        if not (d / "let_finish").exists():
            time.sleep(600)
        return {"responses": [{"id": "r0", "prompt_id": "p0", "text": "ok"}]}
    s.run_stage(0, "attack", first)
    s.run_stage(0, "respond", second)
    s.put("status", "finished")
""")


def test_resume_after_kill_mid_stage(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    p = subprocess.Popen([sys.executable, str(script), str(d)], start_new_session=True)
    for _ in range(300):
        if (d / "second_started").exists():
            break
        time.sleep(0.1)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    s = RunStore(d)
    assert s.stage_status(0, "attack") == "done" and s.stage_status(0, "respond") == "running"
    assert len(s.rows("prompts")) == 5
    (d / "let_finish").write_text("1")
    subprocess.run([sys.executable, str(script), str(d)], check=True, timeout=120)
    assert (d / "first_runs").read_text() == "x"  # the finished stage was not redone
    assert len(s.rows("prompts")) == 5 and len(s.rows("responses")) == 1
    assert s.get("status") == "finished"
    assert list_runs(tmp_path)[0]["stages_done"] == 2
