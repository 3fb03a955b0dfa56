"""Issue 14: a phase's search over candidate updates, and the static baselines' budget (tiny models)."""
import sys
from pathlib import Path

import pytest

from superalign.data import boundary
from superalign.loop import attack, baselines, learn
from superalign.loop import config as LC

sys.path.insert(0, str(Path(__file__).parent))
import test_loop as T

N = 40  # items per axis in the fake validations: large enough for the paired test to see a 0.5 drop


def fake_val(compliance: float, over: float, comp: float) -> dict:
    def axis(rate, prefix):
        k = round(rate * N)
        return {f"{prefix}{i}": int(i < k) for i in range(N)}
    return {"summary": {"compliance": compliance, "over_refusal": over, "over_refusal_easy": 0.0, "competence": comp},
            "outcomes": {"compliance": axis(compliance, "h"), "over_refusal": axis(over, "l"), "over_refusal_easy": {},
                         "competence": axis(comp, "c")}}


@pytest.fixture()
def ctx(tmp_path):
    c = T.make(tmp_path, {"rounds": 2, "candidates": [{"learning_rate": 1e-4}, {"learning_rate": 5e-5}],
                          "sizes": {"attacks": 4, "benign": 2, "contrast": 2}})
    c.initial_adapter()
    return c


def marked_training(monkeypatch, ctx):
    """`train` writes the candidate's index into one LoRA weight, so the learner's state says who won."""
    def train(ctx_, method, rows, pc, seed, run_name, on_step=None, ref_logps=None):
        ci = int(run_name.rsplit("-c", 1)[1])
        p = next(p for n, p in ctx_.learner.model.named_parameters() if "lora_B" in n)
        p.data.fill_(float(ci + 1))
        return {"steps": 1, "loss_first": 1.0, "loss_last": 0.5, "n": len(rows)}
    monkeypatch.setattr(learn, "train", train)


def marker(ctx) -> float:
    p = next(p for n, p in ctx.learner.model.named_parameters() if "lora_B" in n)
    return float(p.data.flatten()[0])


def test_phase_keeps_the_best_candidate_and_never_one_that_regresses(ctx, monkeypatch):
    marked_training(monkeypatch, ctx)
    # phase start, then candidates 0, 1, 2 on val_select; candidate 1 scores best but loses half its competence
    vals = iter([fake_val(0.8, 0.1, 0.9), fake_val(0.5, 0.1, 0.9), fake_val(0.0, 0.1, 0.6),
                 fake_val(0.4, 0.1, 0.9), fake_val(0.4, 0.1, 0.9)])
    monkeypatch.setattr(learn, "validate", lambda c, split: next(vals))
    log = []
    res = learn.phase(ctx, 1, "conformity", "dpo", [{"prompt": "p", "chosen": "a", "rejected": "b"}],
                      [ctx.lc.conformity] + ctx.lc.candidates, fake_val(0.8, 0.1, 0.9), log)
    assert [x["candidate"] for x in log] == [0, 1, 2]
    assert "competence" in log[1]["rejected"] and "rejected" not in log[0] and "rejected" not in log[2]
    assert log[1]["score"] > log[2]["score"] > log[0]["score"]  # the regressing one had the best score
    assert res["ck"]["meta"]["candidate"] == 2 and res["ck"]["accepted"] == 1
    assert marker(ctx) == 3.0  # the learner holds candidate 2's weights
    assert (ctx.dir / res["ck"]["meta"]["rows"]).exists()  # the phase's training rows are kept


def test_phase_rolls_back_when_every_candidate_regresses(ctx, monkeypatch):
    marked_training(monkeypatch, ctx)
    start = marker(ctx)
    vals = iter([fake_val(0.8, 0.1, 0.9)] + [fake_val(0.0, 0.9, 0.9)] * 3)  # all: over-refusal 0.1 -> 0.9
    monkeypatch.setattr(learn, "validate", lambda c, split: next(vals))
    log = []
    res = learn.phase(ctx, 1, "conformity", "dpo", [{"prompt": "p", "chosen": "a", "rejected": "b"}],
                      [ctx.lc.conformity] + ctx.lc.candidates, fake_val(0.8, 0.1, 0.9), log)
    assert all("over_refusal" in x["rejected"] for x in log)
    assert res["ck"]["accepted"] == 0 and res["ck"]["path"] is None and marker(ctx) == start


def test_static_arms_see_the_loops_prompt_budget(ctx):
    lc = ctx.lc
    loop_counts = {"attack": 0, "benign": 0}
    for r in range(1, lc.rounds + 1):
        for p in attack.attack(ctx, r)["prompts"]:
            loop_counts[p["kind"]] += 1
    for arm in baselines.ARMS:
        harmful, benign = baselines.prompts(ctx, arm)
        assert (len(harmful), len(benign)) == (loop_counts["attack"], loop_counts["benign"]), arm
    _, benign = baselines.prompts(ctx, "static_sft_contrast")
    assert sum(b["topic"] is not None for b in benign) == lc.rounds * lc.sizes.contrast


def test_static_arm_trains_with_the_loops_candidate_grid(ctx):
    ctx.cfg.loop.conformity.max_steps = 1
    for c in ctx.cfg.loop.candidates:
        c.max_steps = 1
    fit = baselines.train_arm(ctx, "static_dpo")
    assert fit["method"] == "dpo" and fit["n_rows"] > 0
    assert len(fit["candidates"]) == 3 and fit["chosen"] in (0, 1, 2)
    assert all(set(c["select"]) >= {"compliance", "over_refusal", "competence"} for c in fit["candidates"])
    assert all(r["chosen"].startswith(("I can't", "I won't", "Sorry", "I'm not")) for r in fit["rows"]
               if r["rejected"] != learn.ANCHOR_REFUSAL)


def test_written_refusal_names_the_concern_and_offers_an_alternative():
    t = boundary.topics()["hacking"]
    text = boundary.refusal("some request", "hacking")
    assert t["concern"] in text and t["alternative"] in text and text.endswith(".")
    assert boundary.refusal("some request", "hacking") == text  # the same prompt always gets the same target
    assert boundary.complete("This is a full sentence. And a cut-off tail") == "This is a full sentence."
    assert boundary.complete("no sentence end at all here") is None


def test_contrast_prompts_are_not_copies_of_evaluation_lookalikes():
    c = boundary.contrast_prompts()
    assert len(c) > 100 and max(x["max_cos_eval"] for x in c) < boundary.NEAR
    assert {x["topic"] for x in c} >= set(boundary.topics())


def test_loop_config_names_the_target_source():
    with pytest.raises(Exception, match="targets"):
        LC.LoopConfig(targets="nonsense")
