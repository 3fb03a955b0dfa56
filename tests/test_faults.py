"""Fault injection through the command line: every failure a user can cause ends in one line naming the problem and
the fix, exit status 2 (130 / 143 for SIGINT / SIGTERM), no traceback, and no store left by a command that never
started. Faults are real where the test can make them (a missing model, a corrupt file, a path through a file, a
signal) and injected at the call that meets them where it cannot (a full disk, a read-only mount, a missing extra).
Everything runs on `tiny-random` and tiny configs; nothing waits on a clock."""
import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from superalign.cli.main import app
from superalign.store import RunStore

sys.path.insert(0, str(Path(__file__).parent))
import test_loop as T  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--set", "eval.harmful=3", "--set", "eval.lookalike=3", "--set", "eval.benign_easy=2",
         "--set", "eval.competence=[capitals]", "--set", "eval.competence_items=3", "--set", "eval.tokens=4",
         "--set", "roles.learner.device=cpu"]


def one_line(text: str, code: int, got: int, *words: str) -> str:
    """The contract: exit `code`, exactly one non-empty line, no traceback, and the line names `words`."""
    lines = [x for x in text.splitlines() if x.strip()]
    assert got == code, text
    assert "Traceback" not in text and len(lines) == 1, text
    assert lines[0].startswith("error:") and all(w in lines[0] for w in words), lines[0]
    return lines[0]


def cli(*args, **env) -> tuple[int, str]:
    """`superalign ARGS` in process (the same Typer app and error path as the console script); (exit code, stderr)."""
    r = CliRunner().invoke(app, [str(a) for a in args], env=env or None)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stderr


def python_m(*args, script: str | None = None) -> subprocess.CompletedProcess:
    """A real `python -m superalign ARGS` (or a script that ends in the CLI's entry point) in a fresh process."""
    cmd = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "superalign", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def tiny_yaml(tmp_path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump({**T.TINY, "loop": T.LOOP}))
    return p


# ---------------------------------------------------------------------- bad model, bad adapter
def test_eval_with_a_model_that_does_not_exist_stops_before_any_setup_and_leaves_nothing(tmp_path):
    p = python_m("eval", "--model", "does/not-exist", *SMALL, "--run-dir", tmp_path / "x")
    one_line(p.stderr, 2, p.returncode, "does/not-exist", "fix:")
    assert not (tmp_path / "x").exists() and p.stdout == ""


def test_run_with_a_learner_that_cannot_load_leaves_no_run_directory(tmp_path, tiny_yaml):
    code, err = cli("run", "-c", tiny_yaml, "--set", "roles.learner.model=./no-such-model", "--run-dir", tmp_path / "r")
    one_line(err, 2, code, "no-such-model", "does not exist")
    assert not (tmp_path / "r").exists()


def test_a_corrupt_adapter_config_is_one_line_and_no_store(tmp_path):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text('{"r": 8, "lora_alpha": ')
    code, err = cli("eval", "--model", "tiny-random", "--adapter", tmp_path / "adapter", *SMALL,
                    "--run-dir", tmp_path / "x")
    one_line(err, 2, code, "adapter_config.json", "not valid JSON")
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------- corrupt files
def test_a_corrupt_store_is_named_by_every_command_that_reads_it(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "store.sqlite").write_bytes(b"this is not an SQLite file, just junk " * 40)
    for args in (("runs", "show", tmp_path / "r"), ("export", tmp_path / "r"), ("report", tmp_path / "r")):
        code, err = cli(*args)
        one_line(err, 2, code, "corrupt", "fix:")
    _store(tmp_path / "good")
    r = CliRunner().invoke(app, ["runs", "list", "--out-dir", str(tmp_path)])  # one damaged store among many
    assert r.exit_code == 0 and "good" in r.stdout and "unreadable" in r.stdout, r.output
    (line,) = [x for x in r.stderr.splitlines() if x.strip()]
    assert line.startswith("unreadable:") and "corrupt" in line and str(tmp_path / "r" / "store.sqlite") in line
    assert "fix:" in line and "Traceback" not in r.output


def _no_start(*a, **k):
    raise AssertionError("a refused start went on to run")


def _kv(run_dir: Path) -> dict:
    s = RunStore(run_dir)
    try:
        return {k: v for k, v in s.db.execute("SELECT key, value FROM run")}
    finally:
        s.close()


def test_an_empty_store_is_refused_by_every_command_and_left_empty(tmp_path, monkeypatch):
    """SQLite takes an empty file for a new database: `runs show` wrote a fresh run into it, and `run --resume`
    started a default-config run there."""
    from superalign.cli import loop as loop_cli
    monkeypatch.setattr(loop_cli, "_run_one", _no_start)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "store.sqlite").write_bytes(b"")  # killed as the store was created, or a truncated copy
    for args in (("runs", "show", tmp_path / "r"), ("export", tmp_path / "r", "-o", tmp_path / "x"),
                 ("report", tmp_path / "r"), ("run", "--resume", tmp_path / "r")):
        code, err = cli(*args)
        one_line(err, 2, code, str(tmp_path / "r" / "store.sqlite"), "is empty", "fix:")
    code, err = cli("runs", "list", "--out-dir", tmp_path)  # listed as unreadable, named, not read as a new run
    assert code == 0 and "is empty" in err and str(tmp_path / "r" / "store.sqlite") in err.replace("\n", ""), err
    assert (tmp_path / "r" / "store.sqlite").stat().st_size == 0
    assert not (tmp_path / "x").exists() and not (tmp_path / "r" / "report.html").exists()


def test_resume_refuses_a_run_directory_another_command_wrote(tmp_path, monkeypatch):
    """Resumed, an eval's directory (or a store with no saved config) ran the loop inside it, and a loop's directory
    the w2s experiment: both now stop before anything is written."""
    from superalign.cli import loop as loop_cli
    from superalign.w2s import experiment as W
    monkeypatch.setattr(loop_cli, "_run_one", _no_start)
    monkeypatch.setattr(W, "run", _no_start)

    def made(name: str, **kv) -> Path:
        s = RunStore(tmp_path / name, create=True)
        for k, v in kv.items():
            s.put(k, v)
        s.close()
        return tmp_path / name
    ev = made("eval", kind="eval", config={"run": {"seed": 0}}, status="done")
    loop = made("loop", config={"run": {"seed": 0}}, loop={"rounds": 1}, status="done")
    bare = _store(tmp_path / "bare")  # metrics and no config, as bench/w2s.py's stores are
    before = {d: _kv(d) for d in (ev, loop, bare)}
    for args, words in [(("run", "--resume", ev), ("holds a run of `superalign eval`", "not of `superalign run`")),
                        (("run", "--resume", ev, "--fork", tmp_path / "f"), ("`superalign eval`",)),
                        (("run", "--resume", bare), ("no saved run config", "new --run-dir")),
                        (("w2s", "--resume", loop), ("`superalign run`", "superalign run --resume"))]:
        code, err = cli(*args)
        one_line(err, 2, code, str(args[2]), *words)
    assert {d: _kv(d) for d in before} == before and not (tmp_path / "f").exists()


def test_a_failed_w2s_run_says_so_in_its_store(tmp_path, monkeypatch):
    """A w2s run that stopped on an error (an unknown task, say) stayed "running" in its store, later shown as
    "killed": the store now says it failed, and why."""
    from superalign.errors import SuperalignError
    from superalign.w2s import experiment as W

    def unknown(*a, **k):
        raise SuperalignError("unknown data set 'nosuch'", "use a built-in")
    monkeypatch.setattr(W, "run", unknown)
    code, err = cli("w2s", "--tasks", "nosuch", "--out-dir", tmp_path)
    one_line(err, 2, code, "unknown data set")
    (run_dir,) = [d for d in tmp_path.iterdir() if d.name.startswith("w2s-")]
    kv = {k: json.loads(v) for k, v in _kv(run_dir).items()}
    assert kv["status"] == "failed" and "unknown data set 'nosuch'" in kv["error"]


def test_an_output_path_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("x")
    for args in (("export", _store(tmp_path / "r"), "-o", tmp_path / "a-file"),
                 ("sandwich", "--run-dir", tmp_path / "a-file", "--questions", "2")):
        code, err = cli(*args)
        one_line(err, 2, code, str(tmp_path / "a-file"), "exists and is not a directory")
    assert (tmp_path / "a-file").read_text() == "x"


def test_a_config_that_is_not_yaml_is_one_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("loop: {rounds: [1, 2\n")
    code, err = cli("run", "-c", tmp_path / "bad.yaml", "--run-dir", tmp_path / "r")
    one_line(err, 2, code, "not valid YAML")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("spec", ["hf:", "hf:org/x?&", "hf:org/x?prompt", "hf:org/x?colum=a"])
def test_a_bad_hf_spec_fails_when_the_config_loads(tmp_path, tiny_yaml, spec):
    cfg = yaml.safe_load(tiny_yaml.read_text())
    cfg["data"]["harmful"] = [spec]
    tiny_yaml.write_text(yaml.safe_dump(cfg))
    code, err = cli("run", "-c", tiny_yaml, "--run-dir", tmp_path / "r")
    one_line(err, 2, code, "bad data set spec", "data.harmful")
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------- full disk, read-only directory
def _store(d: Path) -> Path:
    s = RunStore(d, create=True)
    s.insert("metrics", [{"name": "compliance", "value": 0.5, "lo": 0.2, "hi": 0.8, "n": 10}], round=0, stage="eval")
    s.put("status", "done")
    s.close()
    return d


@pytest.mark.parametrize("error, words", [
    (sqlite3.OperationalError("database or disk is full"), ("disk is full",)),
    (OSError(errno.ENOSPC, "No space left on device", "out/prompts.jsonl"), ("no space left", "out/prompts.jsonl")),
])
def test_a_full_disk_is_one_line(tmp_path, monkeypatch, error, words):
    from superalign.store import export as E

    def full(*a, **k):
        raise error
    monkeypatch.setattr(E, "collect", full)
    code, err = cli("export", _store(tmp_path / "r"))
    one_line(err, 2, code, *words, "free disk space")


def test_a_run_directory_that_cannot_be_written_is_refused_before_anything_starts(tmp_path, tiny_yaml, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    code, err = cli("run", "-c", tiny_yaml, "--run-dir", tmp_path / "a-file" / "r")  # a path through a file
    one_line(err, 2, code, "cannot write the run directory")
    import tempfile

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    for args in (("run", "-c", tiny_yaml), ("eval", "--model", "tiny-random", *SMALL)):
        code, err = cli(*args, "--run-dir", tmp_path / "ro")
        one_line(err, 2, code, "Read-only file system", "writable")
        assert not (tmp_path / "ro").exists()


# ---------------------------------------------------------------------- signals
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_any_command_in_one_line(tmp_path, monkeypatch, sig, code):
    import superalign.cli.main as M

    def killed(*a, **k):
        os.kill(os.getpid(), sig)
        time.sleep(60)  # interrupted by the signal's exception, never slept through
    def host(signum, frame):  # a handler installed before the command (as Ray's driver does) that would exit
        raise SystemExit("the host's handler ran instead of the CLI's")
    monkeypatch.setattr(M, "list_runs", killed)
    before = signal.signal(signal.SIGTERM, host)
    # An interactive process's Ctrl-C: a test suite started in the background of a non-interactive shell (`make test
    # &`, nohup) inherits SIGINT ignored, as POSIX has it, and then the signal rightly does nothing at all
    before_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        got, err = cli("runs", "list", "--out-dir", tmp_path)
        one_line(err, code, got, f"interrupted by {sig.name}")
        assert signal.getsignal(signal.SIGTERM) is host  # the CLI's handler does not outlive the command
    finally:
        signal.signal(signal.SIGTERM, before)
        signal.signal(signal.SIGINT, before_int)


def test_sigterm_stops_a_loop_run_marks_it_interrupted_and_frees_it(tmp_path, tiny_yaml):
    """A real process, killed by SIGTERM while its first stage runs (the stage sends it to its own process)."""
    script = ("import os, signal, sys\n"
              "from superalign.loop import run as R\n"
              "R.SETUP = [('setup', lambda ctx, r: os.kill(os.getpid(), signal.SIGTERM))] + R.SETUP[1:]\n"
              "sys.argv = ['superalign'] + sys.argv[1:]\n"
              "from superalign.cli.main import entry\n"
              "entry()\n")
    d = tmp_path / "r"
    p = python_m("run", "-c", tiny_yaml, "--run-dir", d, script=script)
    assert p.returncode == 143 and "Traceback" not in p.stderr, p.stderr
    errors = [x for x in p.stderr.splitlines() if x.startswith("error:")]  # the run's own lines come before it
    assert len(errors) == 1 and p.stderr.rstrip().endswith(errors[0]), p.stderr
    assert "SIGTERM" in errors[0] and f"--resume {d}" in errors[0]
    assert RunStore(d).status() == "interrupted" and (d / "report.html").exists()
    for args in (("runs", "show", d), ("runs", "list", "--out-dir", tmp_path)):
        r = CliRunner().invoke(app, [str(a) for a in args])
        assert r.exit_code == 0 and "interrupted" in r.stdout


# ---------------------------------------------------------------------- missing extras, bad requests
def test_serve_without_fastapi_names_the_extra_with_its_brackets(monkeypatch):
    import importlib.util

    from superalign import extras
    real = importlib.util.find_spec
    monkeypatch.setattr(extras.importlib.util, "find_spec", lambda m, *a: None if m == "fastapi" else real(m, *a))
    code, err = cli("serve")
    one_line(err, 2, code, "fastapi", "pip install 'superalign[serve]'")


def test_serve_answers_a_lone_surrogate_with_a_400(tiny):
    import httpx

    from superalign.serve import Server
    srv = Server(tiny, ["tiny"], port=0).start()
    try:
        for path, body in (("/chat/completions", '{"messages": [{"role": "user", "content": "hi \\ud800"}]}'),
                           ("/completions", '{"prompt": "\\udfff", "max_tokens": 2}')):
            r = httpx.post(srv.url + path, content=body.encode(), headers={"content-type": "application/json"},
                           timeout=60)
            assert r.status_code == 400, r.text
            assert "surrogate" in r.json()["error"]["message"]
    finally:
        srv.close()


def test_runs_compare_names_what_it_skipped(tmp_path):
    _store(tmp_path / "ok")
    RunStore(tmp_path / "empty", create=True).close()
    (tmp_path / "junk").mkdir()  # a corrupt store is skipped like a missing one (it stopped the comparison)
    (tmp_path / "junk" / "store.sqlite").write_bytes(b"not an SQLite file " * 40)
    r = CliRunner().invoke(app, ["runs", "compare", str(tmp_path / "ok"), str(tmp_path / "empty"),
                                 str(tmp_path / "none"), str(tmp_path / "junk"), "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 0, r.output
    assert f"skipped {tmp_path / 'empty'}: no finished eval stage" in r.stderr
    assert f"skipped {tmp_path / 'none'}: not a run directory" in r.stderr
    assert f"skipped {tmp_path / 'junk'}: the run store {tmp_path / 'junk' / 'store.sqlite'} is corrupt" in r.stderr
    assert "compliance" in r.stdout  # the run it kept


def test_runs_list_finds_nested_runs_and_never_cuts_a_directory(tmp_path):
    """The benches nest their runs (`bench-efficacy/seed10/loop`): `runs list` looked one level down only and
    listed none of them; and a narrow terminal cut the dir column to `runs/bench-ef…`, which cannot be copied."""
    from superalign.store import list_runs
    top, deep = _store(tmp_path / "top"), _store(tmp_path / "bench-efficacy-with-a-long-name" / "seed10" / "loop")
    assert {r["dir"] for r in list_runs(tmp_path)} == {str(top), str(deep)}
    r = CliRunner().invoke(app, ["runs", "list", "--out-dir", str(tmp_path)], env={"COLUMNS": "60"})
    assert r.exit_code == 0 and "…" not in r.stdout, r.stdout
    cells = "".join(x.split("│")[-2].strip() for x in r.stdout.splitlines() if x.count("│") == 6)
    assert str(deep) in cells, cells
