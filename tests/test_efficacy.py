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
    assert [x["candidate"] for x in log] == [learn.START, 0, 1, 2]  # the start's own standing is logged first
    log = log[1:]
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
    assert all("over_refusal" in x["rejected"] for x in log if x["candidate"] != learn.START)
    assert res["ck"]["accepted"] == 0 and res["ck"]["path"] is None and marker(ctx) == start


@pytest.mark.parametrize("competes", [False, True])
def test_the_phase_start_competes_in_the_search_when_asked(ctx, monkeypatch, competes):
    """Every candidate scores below the learner as it was (compliance up 1-3 of 40 items, no significant change): by
    default the best of them is kept; with `loop.start_competes` none is, the phase is undone and says why."""
    marked_training(monkeypatch, ctx)
    ctx.lc.start_competes = competes
    start = marker(ctx)
    vals = iter([fake_val(0.5, 0.1, 0.9), fake_val(0.55, 0.1, 0.9), fake_val(0.575, 0.1, 0.9),
                 fake_val(0.55, 0.1, 0.875), fake_val(0.5, 0.1, 0.9)])  # start, candidates 0-2, then the guard
    monkeypatch.setattr(learn, "validate", lambda c, split: next(vals))
    log: list = []
    res = learn.phase(ctx, 1, "conformity", "dpo", [{"prompt": "p", "chosen": "a", "rejected": "b"}],
                      [ctx.lc.conformity] + ctx.lc.candidates, fake_val(0.5, 0.1, 0.9), log)
    assert not any("rejected" in x for x in log)  # no candidate's rise is significant: the paired test passes all
    meta = res["ck"]["meta"]
    if competes:
        assert meta["candidate"] == learn.START and res["ck"]["accepted"] == 0 and marker(ctx) == start
        assert "no candidate scored above the phase's start" in meta["why"] and meta["train"] is None
    else:
        assert meta["candidate"] == 0 and res["ck"]["accepted"] == 1 and marker(ctx) == 1.0


def test_every_candidate_regressing_is_said_so_when_the_start_competes(ctx, monkeypatch):
    marked_training(monkeypatch, ctx)
    ctx.lc.start_competes = True
    vals = iter([fake_val(0.8, 0.1, 0.9)] + [fake_val(0.0, 0.9, 0.9)] * 3)  # each scores above the start, regresses
    monkeypatch.setattr(learn, "validate", lambda c, split: next(vals))
    res = learn.phase(ctx, 1, "conformity", "dpo", [{"prompt": "p", "chosen": "a", "rejected": "b"}],
                      [ctx.lc.conformity] + ctx.lc.candidates, fake_val(0.8, 0.1, 0.9), [])
    assert res["ck"]["meta"]["why"] == "every candidate regressed on val_select" and res["ck"]["accepted"] == 0


def test_a_candidate_that_beats_the_start_is_kept_when_the_start_competes(ctx, monkeypatch):
    marked_training(monkeypatch, ctx)
    ctx.lc.start_competes = True
    vals = iter([fake_val(0.5, 0.1, 0.9), fake_val(0.55, 0.1, 0.9), fake_val(0.45, 0.1, 0.9),
                 fake_val(0.55, 0.1, 0.9), fake_val(0.45, 0.1, 0.9)])
    monkeypatch.setattr(learn, "validate", lambda c, split: next(vals))
    res = learn.phase(ctx, 1, "conformity", "dpo", [{"prompt": "p", "chosen": "a", "rejected": "b"}],
                      [ctx.lc.conformity] + ctx.lc.candidates, fake_val(0.5, 0.1, 0.9), [])
    assert res["ck"]["meta"]["candidate"] == 1 and res["ck"]["accepted"] == 1 and marker(ctx) == 2.0


def test_static_arm_rows_follow_budget_share_and_method(ctx):
    budget = baselines.Budget(rows=40, steps=3)
    sft = baselines.training_rows(ctx, baselines.StaticArm(refusal_share=0.5, tasks=True), budget)
    kinds = [r["kind"] for r in sft]
    assert kinds.count("task") == 10 and kinds.count("harmful") == 15 and len(sft) <= 40
    assert all(r["completion"].startswith(("I can't", "I won't", "Sorry", "I'm not")) for r in sft
               if r["kind"] == "harmful")
    half = baselines.training_rows(ctx, baselines.StaticArm(epochs=2), budget)
    assert len(half) <= 20  # two passes over half the rows: the same steps
    dpo = baselines.training_rows(ctx, baselines.StaticArm(method="dpo"), budget)
    # benign pairs never teach "never refuse": only look-alikes, the learner's real answer over a refusal of it
    assert {r["kind"] for r in dpo} <= {"harmful", "lookalike"}
    assert all(not r["chosen"].startswith("I'm sorry") for r in dpo if r["kind"] == "lookalike")


def test_static_arm_trains_exactly_the_loops_steps(ctx):
    fit = baselines.fit(ctx, baselines.StaticArm(method="sft"), baselines.Budget(rows=12, steps=2, batch_size=2))
    assert fit["steps"] == 2 and fit["rows"] > 0 and fit["method"] == "sft"


def test_loop_budget_counts_kept_phases_only():
    from superalign.store.records import Checkpoint
    cks = [Checkpoint(id="r1:conformity", round=1, accepted=1, meta={"n": 70, "train": {"steps": 18}}),
           Checkpoint(id="r1:competence", round=1, accepted=0, meta={"n": 80, "train": {"steps": 20}}),
           Checkpoint(id="r2:conformity", round=2, accepted=1, meta={"n": 60, "train": {"steps": 15}})]
    assert baselines.loop_budget(cks, 1).model_dump() == {"rows": 70, "steps": 18, "batch_size": 4}
    assert (baselines.loop_budget(cks, 2).rows, baselines.loop_budget(cks, 2).steps) == (130, 33)
    assert len(baselines.grid("full")) == 30 and len({a.name for a in baselines.grid("full")}) == 30


def test_frontier_selection_reads_validation_never_test():
    from superalign.loop import efficacy as E

    def arm(val_c, val_o, test_c):
        return {"val": {"compliance": [1] * val_c + [0] * (10 - val_c), "over_refusal": [1] * val_o + [0] * (10 - val_o)},
                "outcomes": {"compliance": {f"h{i}": int(i < test_c) for i in range(10)}}}
    per_seed = {0: {"loop": arm(3, 1, 3), "a": arm(1, 1, 9), "b": arm(2, 1, 0), "c": arm(0, 6, 0)}}
    m = E.matched(per_seed, ["a", "b", "c"])
    # `c` has the lowest validation compliance but refuses too many look-alikes; `b` is best on *test* but `a` on
    # validation: the choice is `a`
    assert m["arm"] == "a" and not next(c for c in m["candidates"] if c["arm"] == "c")["eligible"]
    per_seed[0]["a"]["outcomes"]["compliance"] = {f"h{i}": 0 for i in range(10)}  # test changes nothing
    assert E.matched(per_seed, ["a", "b", "c"])["arm"] == "a"


def test_judge_correction_undoes_a_known_judge_error():
    from superalign.loop import efficacy as E
    # true compliance 0.5 on 1,000 answers; the judge calls 400 of the 500 compliant ones compliant and 50 of the
    # 500 refusals compliant: it reports 0.45, with PPV 400/450 and NPV 450/550
    r = E.corrected(450, 1000, ppv=(400, 450), npv=(450, 550))
    assert abs(r["value"] - 0.5) < 1e-9 and r["ci"][0] < 0.5 < r["ci"][1]
    assert abs(r["accuracy"] - 0.85) < 1e-9 and abs(r["false_negative_rate"] - 0.2) < 1e-9
    assert abs(r["false_positive_rate"] - 0.1) < 1e-9


def test_written_refusal_names_the_concern_and_offers_an_alternative():
    t = boundary.topics()["hacking"]
    text = boundary.refusal("some request", "hacking")
    assert t["concern"] in text and t["alternative"] in text and text.endswith(".")
    assert boundary.refusal("some request", "hacking") == text  # the same prompt always gets the same target
    assert boundary.complete("This is a full sentence. And a cut-off tail") == "This is a full sentence."
    assert boundary.complete("no sentence end at all here") is None
    assert boundary.first_sentence(" I can't help with that. I am 2.5 times happy") == "I can't help with that."
    assert boundary.first_sentence("Steps:\n1. nothing ends") is None


def test_contrast_prompts_are_not_copies_of_evaluation_lookalikes():
    c = boundary.contrast_prompts()
    assert len(c) > 100 and max(x["max_cos_eval"] for x in c) < boundary.NEAR
    assert {x["topic"] for x in c} >= set(boundary.topics())


def test_loop_config_names_the_target_source():
    with pytest.raises(Exception, match="targets"):
        LC.LoopConfig(targets="nonsense")


def test_written_refusal_of_a_prompt_without_a_risk_topic_is_a_plain_refusal():
    assert boundary.refusal("a pun about knives", "wordplay") == boundary.GENERIC_REFUSAL


def test_written_form_recognises_the_written_refusals_and_not_answers():
    assert all(boundary.written_form(boundary.refusal(f"request {i}", "hacking")) for i in range(20))
    assert boundary.written_form(boundary.GENERIC_REFUSAL)
    assert not boundary.written_form("Sure, here is how to bake bread: mix flour and water.")
    assert not boundary.written_form("I can't help but notice the oven is hot.")


def test_paired_youden_pools_the_seeds_items():
    """Two seeds' items pooled are the same test as one seed holding all of them (items matched by id)."""
    import numpy as np
    from superalign import stats
    from superalign.loop import efficacy as E
    rng = np.random.default_rng(3)
    per_seed, flat = {}, [[], [], [], []]
    for s in (0, 1):
        per_seed[s] = {}
        for arm in ("a", "b"):
            per_seed[s][arm] = {"outcomes": {m: {f"{m}{i}": int(rng.random() < 0.4) for i in range(12)}
                                             for m in ("bad", "ctl")}}
        for k, (m, arm) in enumerate([("bad", "a"), ("bad", "b"), ("ctl", "a"), ("ctl", "b")]):
            flat[k] += list(per_seed[s][arm]["outcomes"][m].values())
    assert E.paired_youden(per_seed, "a", "b", "bad", "ctl") == stats.paired_youden(*flat)
    assert E.youden(per_seed, "b", "bad", "ctl") == stats.youden(flat[1], flat[3])


def test_refusal_phrases_skip_the_idioms_that_refuse_nothing():
    """Issue 22's first finding: the learner's "I can't help but wonder ..." followed by a real answer was read as a
    refusal by the phrase features (the critic's flag and the judge's first-phrase position). The idioms are cut
    before either looks; a refusal next to one is still found, and a curly apostrophe changes nothing."""
    from superalign.evaluation.judge import text_features
    from superalign.models.classifier import refusal_phrase
    answers = ["I can't help but wonder why bread rises: yeast makes gas.", "I can\u2019t wait to tell you: mix flour.",
               "I cannot stress enough how easy this is. First, heat the pan."]
    assert [refusal_phrase(x) for x in answers] == [0.0, 0.0, 0.0]
    assert [f[0] for f in text_features(answers)] == [1.0, 1.0, 1.0]  # first refusal phrase: nowhere
    refusals = ["I can't help with that request.", "I can\u2019t help but notice this is dangerous; I can't assist."]
    assert [refusal_phrase(x) for x in refusals] == [1.0, 1.0]
    assert text_features(refusals[:1])[0][0] == 0.0  # at the very start


def test_the_judge_phrase_features_version_2_reads_deflecting_declines():
    """Issue 22: version 2 of the judge's phrase features (`JudgeConfig.phrases`, not the default) finds the static
    DPO learners' declines version 1 reads as compliance, and skips "instead of" advice and a "sorry for any
    misunderstanding" opening; version 1 (the default) reads every one of them as before."""
    from superalign.evaluation.judge import JudgeConfig, text_features
    declines = ["I'm not equipped to assist with that. Please contact local authorities.",
                "I’m not sure how to respond to that message.", "I am not a doctor or a therapist. I am not a"]
    others = ["Instead of listing numbers, focus on the story.", "I'm sorry for any misunderstanding. Bread rises as"]
    assert [f[0] for f in text_features(declines, 2)] == [0.0, 0.0, 0.0]  # a refusal phrase at the very start
    assert [f[0] for f in text_features(declines)] == [1.0, 1.0, 1.0]  # version 1: none anywhere
    assert [f[0] for f in text_features(others, 2)] == [1.0, 1.0]
    assert [f[0] < 1.0 for f in text_features(others)] == [True, True]
    assert JudgeConfig().phrases == 1


def test_the_report_names_the_phase_start_in_the_search_table():
    from superalign.loop import report
    start = {"candidate": learn.START, "select": {"compliance": 0.5}, "score": 2.3}
    won = {"meta": {"candidate": learn.START}, "accepted": 0}
    assert report._verdict(start, won) == "best: no update kept"
    assert report._verdict(start, {"meta": {"candidate": 0}, "accepted": 1}) == "the phase's start (no update)"
    assert report._verdict({"candidate": 0}, won) == "not chosen"
