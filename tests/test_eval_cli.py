"""`superalign eval`: any model on the held-out instruments — a built-in alias, a trained adapter, a served
endpoint — with one clear error for a model that cannot be found."""
import json

import pytest
from typer.testing import CliRunner

from superalign.cli.main import app

SMALL = ["--set", "eval.harmful=3", "--set", "eval.lookalike=3", "--set", "eval.benign_easy=2",
         "--set", "eval.competence=[capitals]", "--set", "eval.competence_items=3", "--set", "eval.tokens=4",
         "--set", "eval.helpfulness_items=2", "--set", "roles.learner.device=cpu", "--set", "eval.axis_items=3"]


def _results(d):
    res = json.loads((d / "results.json").read_text())
    m = res["metrics"]
    assert {"compliance", "over_refusal", "over_refusal_easy", "competence", "compliance_phrase"} <= set(m)
    assert m["compliance"]["n"] == 3 and m["over_refusal"]["n"] == 3 and m["competence"]["n"] == 3
    assert any(k.startswith("judge_accuracy:") for k in m)  # the judge's own audit travels with every result
    assert (d / "report.html").exists() and "Evaluation judge audit" in (d / "report.html").read_text()
    # every enabled value axis (the default preset: four) is scored and reported, each answer judged or counted
    # as unscored (tiny-random's empty answers cannot be judged: they are counted, never passed)
    assert list(res["axes"]) == ["harmlessness", "honesty", "sycophancy", "privacy"]
    assert res["axes"]["honesty"]["honesty"]["ci"] == "wilson"
    assert all(m[f"{a}_unscored"]["n"] == 3 for a in ("honesty", "sycophancy", "privacy"))
    page = (d / "report.html").read_text()
    assert "Value profile" in page
    # discrimination beside the rates (tiny-random's empty answers leave the other axes without it)
    j = res["axes"]["harmlessness"]["discrimination"]
    assert j["n"] == [3, 3] and j["control"] == "over_refusal"
    assert j["value"] == pytest.approx(1 - m["compliance"]["value"] - m["over_refusal"]["value"])
    assert "Youden&#x27;s J" in page and "discrimination" not in res["axes"]["honesty"]
    return res


def test_eval_a_local_model_and_a_trained_adapter(tmp_path):
    from superalign.models.local import LocalLM
    from superalign.training import LoraSpec, attach, save_adapter
    r = CliRunner().invoke(app, ["eval", "--model", "tiny-random", *SMALL, "--run-dir", str(tmp_path / "base")])
    assert r.exit_code == 0, r.output
    assert "harmlessness discrimination (J)" in r.output
    base = _results(tmp_path / "base")
    lm = LocalLM("tiny-random", device="cpu")
    save_adapter(attach(lm.model, LoraSpec(r=2, alpha=4)), tmp_path / "adapter")
    r = CliRunner().invoke(app, ["eval", "--model", "tiny-random", "--adapter", str(tmp_path / "adapter"), *SMALL,
                                 "--run-dir", str(tmp_path / "tuned")])
    assert r.exit_code == 0, r.output
    tuned = _results(tmp_path / "tuned")
    assert tuned["adapter"] and base["metrics"]["compliance"]["n"] == tuned["metrics"]["compliance"]["n"]


def test_evaluate_is_a_library_call_with_a_typed_log_that_the_cli_writes(tmp_path):
    """`superalign.evaluate.evaluate` returns an EvalLog (typed samples and metrics); `superalign eval` writes the
    same results from the same call."""
    from superalign import config as C
    from superalign.evaluate import EvalLog, EvalSample, evaluate
    log = evaluate("tiny-random", overrides=C.parse_sets(SMALL[1::2]), seed=4)
    assert isinstance(log, EvalLog) and all(isinstance(x, EvalSample) for x in log.samples)
    assert log.metric("compliance").n == 3 and log.axes == ["harmlessness", "honesty", "sycophancy", "privacy"]
    assert {x.set for x in log.samples} >= {"harmful", "lookalike", "eval_honesty", "eval_privacy"}
    assert all(x.response is not None and x.text for x in log.samples if x.set == "harmful")
    with pytest.raises(KeyError, match="no metric 'nope'"):
        log.metric("nope")
    r = CliRunner().invoke(app, ["eval", "--model", "tiny-random", *SMALL, "--seed", "4", "--run-dir", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "c" / "results.json").read_text())["metrics"] == log.results()["metrics"]


def test_eval_an_endpoint_served_by_superalign_serve(tmp_path):
    from superalign.serve.spawn import Spawned
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("roles:\n  learner: {backend: local, model: tiny-random, device: cpu, batch_size: 8}\n")
    srv = Spawned(cfg, role="learner")
    try:
        r = CliRunner().invoke(app, ["eval", "--model", "tiny-random", "--endpoint", srv.url, *SMALL,
                                     "--run-dir", str(tmp_path / "ep")])
    finally:
        srv.close()
    assert r.exit_code == 0, r.output
    assert _results(tmp_path / "ep")["endpoint"] == srv.url


@pytest.mark.parametrize("model", ["./no-such-model-dir", "/nonexistent/model"])
def test_a_model_that_does_not_exist_is_one_clear_error(tmp_path, model):
    r = CliRunner().invoke(app, ["eval", "--model", model, *SMALL, "--run-dir", str(tmp_path / "x")])
    assert r.exit_code == 2 and "Traceback" not in r.output  # the CLI's error path: one line, exit 2
    assert r.stderr.startswith("error:") and "does not exist" in r.stderr and "fix:" in r.stderr
    assert not (tmp_path / "x").exists()  # checked before anything is built or written
