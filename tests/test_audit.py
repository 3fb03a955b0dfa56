"""The hand-labelled audit set and the evaluation judge's independence from the critic."""
import json

import pytest
from pydantic import ValidationError

from superalign import config as Cfg
from superalign.data import audit
from superalign.errors import SuperalignError
from superalign.evaluation import judge_data
from superalign.evaluation.judge import JudgeConfig, check_independent, text_features


def test_audit_file_loads_with_well_formed_labels():
    rows = audit.load_rows()
    assert len(rows) >= 420
    assert {r["model_state"] for r in rows} == {"base", "trained"}
    kinds = [r["prompt_kind"] for r in rows]
    assert 0.35 < kinds.count("harmful") / len(rows) < 0.65
    dev = audit.load_rows("dev")
    assert 0.4 < len(dev) / len(rows) < 0.6
    assert all(r["labeler"] for r in rows)
    # a look-alike prompt asks for nothing harmful, so its answer cannot help toward a harmful goal
    assert all(r["harmful"] == "no" for r in rows if r["prompt_kind"] == "lookalike")
    # a full refusal gives no help
    assert all(r["harmful"] == "no" for r in rows if r["refusal"] == "full")
    assert {r["refusal"] for r in rows} >= {"full", "none"} and {r["harmful"] for r in rows} == {"yes", "no"}


def test_audit_registered_as_judge_data():
    from superalign import data
    assert "audit" in data.names("judge")
    recs = data.load_all("audit")
    assert len(recs) == len(audit.load_rows()) and {r["label"] for r in recs} <= {0.0, 1.0}


def test_bad_audit_rows_are_rejected(tmp_path):
    row = audit.load_rows()[0]
    for bad in ({**row, "refusal": "maybe"}, {k: v for k, v in row.items() if k != "harmful"}):
        p = tmp_path / "a.jsonl"
        p.write_text(json.dumps(bad) + "\n")
        with pytest.raises(SuperalignError):
            audit.load_rows(path=p)
    other = {**row, "id": row["id"] + "x", "split": "test" if row["split"] == "dev" else "dev"}
    p.write_text(json.dumps(row) + "\n" + json.dumps(other) + "\n")
    with pytest.raises(SuperalignError, match="both dev and test"):
        audit.load_rows(path=p)


def test_judge_identical_to_critic_is_an_error():
    critic = Cfg.Classifier()
    with pytest.raises(SuperalignError):
        check_independent(None, critic)  # no judge: the loop would evaluate with a copy of the critic
    with pytest.raises(SuperalignError):
        check_independent(Cfg.Classifier(), critic)
    with pytest.raises(SuperalignError, match="label sets"):
        check_independent(Cfg.Classifier(heads=["refusal_labels"], holdout=0.3), critic)
    with pytest.raises(SuperalignError):
        check_independent({"backend": "local", "model": "m"}, {"backend": "local", "model": "m"})
    with pytest.raises(ValidationError):  # only sources disjoint from the critic's exist for the judge
        JudgeConfig(train_on=["refusal_labels"])
    with pytest.raises(SuperalignError, match="roles.judge"):  # and the config refuses it at load
        Cfg.parse({"roles": {"critic": {"backend": "classifier"}, "judge": {"backend": "classifier"}}})
    check_independent(JudgeConfig(), critic)  # the shipped judge is independent
    check_independent(JudgeConfig().model_dump(), critic.model_dump())


def test_judge_training_rows_exclude_audit_test_split():
    rows = judge_data.training_rows(JudgeConfig())
    test_ids = {f"audit:{r['id']}" for r in audit.load_rows("test")}
    ids = {r["id"] for r in rows}
    assert test_ids and not ids & test_ids
    assert any(r["source"] == "audit_dev" for r in rows) and any(r["source"] == "uncensorbench" for r in rows)
    # and none of the critic's PyRIT rows
    assert not any(r["source"].startswith("pyrit") for r in rows)


def test_dpo_arm_declines_are_an_optional_judge_source(tmp_path, monkeypatch):
    """The development seed's hand-labelled DPO answers load as judge rows on request; they are not a default source
    (they did not help on the headline seed's DPO arms), and a corrupt file is named, not half-read."""
    assert "arms_dev" not in JudgeConfig().train_on
    rows = judge_data.training_rows(JudgeConfig(train_on=["uncensorbench", "audit_dev", "arms_dev"]))
    dev = [r for r in rows if r["source"] == "arms_dev"]
    assert len(dev) == 122 and len({r["id"] for r in dev}) == 122
    assert {r["refusal"] for r in dev} == {0, 1} and all(r["weight"] == JudgeConfig().audit_weight for r in dev)
    kind = {x["id"]: x["prompt_kind"] for x in map(json.loads, judge_data.ARMS_DEV.read_text().splitlines())}
    assert all((r["harmful"] is None) == (kind[r["id"]] == "lookalike") for r in dev)  # harm asked of harmful only
    bad = tmp_path / "arms_dev_v1.jsonl"
    bad.write_text('{"id": 1,\n')
    monkeypatch.setattr(judge_data, "ARMS_DEV", bad)
    with pytest.raises(SuperalignError, match="corrupt"):
        judge_data.arms_dev()


def test_a_leak_of_test_rows_is_caught(monkeypatch):
    real = audit.load_rows
    monkeypatch.setattr(audit, "load_rows", lambda split="all", **kw: real("all" if split == "dev" else split, **kw))
    with pytest.raises(SuperalignError, match="audit test rows"):
        judge_data.training_rows(JudgeConfig())


def test_judge_features_are_response_side():
    x = text_features(["I'm sorry, I can't help with that.", "Step 1: mix the flour. Step 2: bake.", ""])
    assert x.shape == (3, 7)
    assert x[0, 0] == 0.0 and x[1, 0] == 1.0  # refusal phrase at the very start vs nowhere
    assert x[2, -1] == 1.0  # empty answer flagged
