"""A run directory holds one run: its identity is fixed at creation, a start that differs is refused before anything
is written (byte for byte), a busy run refuses a second process without writing, a fork records its lineage; the
store's records read back typed, and `runs show` / `runs list` read every run state the same way."""
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from superalign import config as C
from superalign.cli.main import app
from superalign.errors import SuperalignError
from superalign.loop import config as LC
from superalign.loop import run as R
from superalign.store import TABLES, LINEAGE, RunStore
from superalign.store import records as rec
from superalign.store.summary import RunSummary

sys.path.insert(0, str(Path(__file__).parent))
import test_loop as T  # noqa: E402


def _cfg(**loop):
    return C.parse({**T.TINY, "loop": LC.merge(T.LOOP, loop)})


def _started(d: Path, cfg=None) -> Path:
    """A run as a killed process leaves it: created by `open_run`, round 0 committed, marked running, lock free."""
    ctx = R.open_run(cfg or _cfg(), d)
    ctx.store.run_stage(0, "setup", lambda: {"prompts": [{"id": "test:harmful:1", "kind": "eval_harmful", "text": "x"}],
                                             "info": {"sizes": {"test": {"harmful": 1}}}})
    ctx.store.run_stage(0, "eval", lambda: {
        "metrics": [{"name": "asr", "value": 0.5, "lo": 0.1, "hi": 0.9, "n": 2},
                    {"name": "kl_to_base", "value": None, "n": 0, "meta": {"null": "every answer was empty"}}],
        "info": {"outcomes": {"asr": {"harmful:1": 1}}, "kl_to_base": None, "asr": 0.5}})
    ctx.store.put("status", "running")
    ctx.close()
    ctx.store.close()
    return d


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file() and p.name != ".lock"}


def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


@pytest.fixture
def tiny_yaml(tmp_path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump({**T.TINY, "loop": T.LOOP}))
    return p


# ---------------------------------------------------------------------- identity
def test_a_start_that_differs_is_refused_naming_the_keys_and_the_store_is_byte_identical(tmp_path, tiny_yaml):
    d = _started(tmp_path / "r", C.load(tiny_yaml))
    before = _snapshot(d)
    cases = [(("run", "-c", tiny_yaml, "--seed", "7", "--run-dir", d), "already holds run"),  # no --resume
             (("run", "-c", tiny_yaml, "--seed", "7", "--resume", d), "differs in run.seed"),
             (("run", "--resume", d, "--set", "loop.label_budget=99"), "differs in loop.label_budget"),
             (("run", "-c", tiny_yaml, "--resume", d, "--set", "eval.tokens=9"), "differs in eval.tokens")]
    for args, words in cases:
        r = _cli(*args)
        assert r.exit_code == 2 and words in r.stderr, r.stderr
        assert _snapshot(d) == before, args  # nothing written: not the stored loop settings, not report.html
    assert RunStore(d).get("loop")["label_budget"] == T.LOOP["label_budget"]


def test_a_second_start_on_a_busy_run_writes_nothing(tmp_path, tiny_yaml):
    d = _started(tmp_path / "r")
    before = _snapshot(d)
    with R.lock(d):  # another process holds the run
        r = _cli("run", "--resume", d, "--rounds", "3")
        assert r.exit_code == 2 and "in use by pid" in r.stderr
        with pytest.raises(SuperalignError, match="in use"):
            R.open_run(_cfg(), d)
    assert _snapshot(d) == before and not (d / "report.html").exists()


def test_resume_keeps_the_identity_and_may_change_only_resumable_keys(tmp_path):
    d = _started(tmp_path / "r")
    ident = RunStore(d).get("identity")
    ctx = R.open_run(_cfg(rounds=5, wait_for_labels=3), d)  # how far it goes and how long it waits: the same run
    ctx.close()
    s = RunStore(d)
    assert s.get("identity") == ident and s.get("loop")["rounds"] == 5
    with pytest.raises(SuperalignError, match=r"differs in loop.sizes.attacks"):
        R.open_run(_cfg(sizes={"attacks": 7}), d)
    with pytest.raises(SuperalignError, match="already holds"):
        R.open_run(_cfg(), d, resume=False)


def test_fork_records_lineage_and_copies_round_0_only_when_it_cannot_differ(tmp_path, tiny_yaml):
    old = _started(tmp_path / "old")
    ctx = R.open_run(_cfg(label_budget=9), tmp_path / "same0", fork_of=old)  # a loop-only change: round 0 shared
    ctx.close()
    s, o = RunStore(tmp_path / "same0"), RunStore(old)
    lineage = s.get("forked_from")
    assert lineage["run_id"] == o.run_id and lineage["differs"] == ["loop.label_budget"]
    assert lineage["copied"] == ["0:setup", "0:eval"] and s.run_id != o.run_id
    assert [m["value"] for m in s.rows("metrics")] == [m["value"] for m in o.rows("metrics")]
    assert {m["run_id"] for m in s.rows("metrics")} == {o.run_id}  # rows keep the lineage of the run that made them
    assert s.last_info(rec.EvalInfo, before=1).outcomes == {"asr": {"harmful:1": 1}}
    ctx = R.open_run(C.parse({**T.TINY, "run": {"name": "t", "seed": 7}, "loop": T.LOOP}), tmp_path / "seed7",
                     fork_of=old)
    ctx.close()
    s = RunStore(tmp_path / "seed7")
    assert s.get("forked_from")["differs"] == ["run.seed"] and s.get("forked_from")["copied"] == []
    assert not s.stages() and s.get("seed") == 7
    r = _cli("run", "--resume", old, "--fork", tmp_path / "same0")  # a fork never lands on an existing run
    assert r.exit_code == 2 and "already holds" in r.stderr
    r = _cli("run", "-c", tiny_yaml, "--fork", tmp_path / "x")
    assert r.exit_code == 2 and "--resume OLDDIR" in r.stderr and not (tmp_path / "x").exists()


# ---------------------------------------------------------------------- every run state, read one way
def test_runs_show_and_list_read_every_run_state_alike(tmp_path):
    states = {"killed": _started(tmp_path / "killed")}
    for status in ("done", "failed", "interrupted"):
        d = _started(tmp_path / status)
        s = RunStore(d)
        s.put("status", status)
        if status == "failed":
            s.put("error", "RuntimeError: boom\nsecond line")
        s.close()
        states[status] = d
    RunStore(tmp_path / "fresh", create=True).close()
    states["unknown"] = tmp_path / "fresh"
    listed = {Path(r["dir"]).name: r["status"] for r in
              __import__("superalign.store", fromlist=["list_runs"]).list_runs(tmp_path)}
    for status, d in states.items():
        r = _cli("runs", "show", d)
        assert r.exit_code == 0, r.output
        assert f"status={status}" in r.stdout and listed[d.name] == status
        assert RunSummary.of(d).status == status
    assert "every answer was empty" in _cli("runs", "show", states["done"]).stdout  # a NULL metric, with its reason
    with R.lock(states["killed"]):
        assert "status=running" in _cli("runs", "show", states["killed"]).stdout


# ---------------------------------------------------------------------- the records
def test_row_types_match_the_store_tables():
    lineage = [c.split()[0] for c in LINEAGE.split(", ")]
    for kind in rec.ROWS:
        cols = [c.split()[0] for c in TABLES[kind.TABLE].split(", ")]
        assert set(kind.columns()) == set(cols + lineage), kind.TABLE
    assert {k.TABLE for k in rec.ROWS} == set(TABLES)


def test_record_ids_are_built_and_parsed_in_one_place():
    p = rec.prompt_id(2, "a", 5)
    s = rec.sample_id(p, 1)
    assert (p, s) == ("r2:a5", "r2:a5:s1") and rec.prompt_of(s) == p
    v = rec.revision_id(s)
    assert rec.is_revision(v) and not rec.is_revision(s) and rec.revised(v) == s and rec.prompt_of(v) == p
    assert rec.eval_item(rec.eval_response_id(3, "harmful:x:s2"), 3) == "harmful:x:s2"
    assert rec.eval_item("r1:harmful:x", 3) is None and rec.eval_prompt_id("test", "x") == "test:x"
    assert rec.label_id(1, s) == "r1:label:r2:a5:s1" and rec.checkpoint_id(1, "conformity") == "r1:conformity"


def test_stage_infos_read_back_typed_and_keep_unknown_keys(tmp_path):
    s = RunStore(tmp_path, create=True)
    for r in (1, 2):
        s.run_stage(r, "learn", lambda r=r: {"info": {"phases": [{"phase": "conformity", "r": r}],
                                                      "rolled_back": [], "guard": {"summary": {"asr": r / 10}},
                                                      "new_key": r}})
    s.run_stage(3, "calibrate", lambda: {"info": {"labels": 2, "calibrated": True, "label_ids": ["a", "b"]}})
    assert s.last_info(rec.LearnInfo).round == 2 and s.last_info(rec.LearnInfo, before=2).guard == {
        "summary": {"asr": 0.1}}
    assert s.last_info(rec.LearnInfo, before=1) is None
    info = s.infos(rec.LearnInfo)[2]
    assert info.phases == [{"phase": "conformity", "r": 2}] and info.extra == {"new_key": 2} and info.wall_s >= 0
    cal = s.last_info(rec.CalibrateInfo, before=4)
    assert cal.calibrated and cal.label_ids == ["a", "b"] and cal.round == 3
    assert [type(x.info) for x in s.stage_records()] == [rec.LearnInfo, rec.LearnInfo, rec.CalibrateInfo]


def test_identity_hash_ignores_resumable_keys_and_names_the_others():
    a = _cfg().model_dump(mode="json")
    b = _cfg(rounds=9).model_dump(mode="json")
    c = _cfg(label_budget=9).model_dump(mode="json")
    ia, ib, ic = (rec.RunIdentity.of(x, "v") for x in (a, b, c))
    assert ia == ib and ia.config_hash != ic.config_hash
    assert rec.differing_keys(a, c) == ["loop.label_budget"] and rec.differing_keys(a, b) == []
