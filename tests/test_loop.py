"""The loop's mechanics on tiny random models: every stage, alternation, rollback, escalation, resume."""
import json

import pytest

from superalign import config as C
from superalign.errors import SuperalignError
from superalign.stats import wilson
from superalign.cli.experiments import build_report
from superalign.loop import config as LC
from superalign.loop import learn as L
from superalign.loop import run as R
from superalign.roles import critic as CR
from superalign.store import RunStore

TINY = {
    "run": {"name": "t", "seed": 0},
    "roles": {"learner": {"backend": "local", "model": "tiny-random", "device": "cpu"},
              "attacker": {"backend": "local", "model": "tiny-random", "device": "cpu"},
              "critic": {"backend": "classifier", "heads": ["refusal_labels"]}},
    "data": {"harmful": ["advbench"], "benign": ["benign"], "competence": ["sarcasm"]},
    "eval": {"tokens": 6, "harmful": 4, "lookalike": 4, "benign_easy": 2, "competence": ["capitals"],
             "competence_items": 4, "helpfulness_items": 2, "val_fraction": 0.5},
}
LOOP = {"rounds": 2, "response_tokens": 6, "attack_tokens": 6, "pair_margin": 0.0,
        "escalate_below": 1.0, "label_budget": 3,
        "conformity": {"max_steps": 1}, "competence": {"max_steps": 1},
        "sizes": {"attacks": 6, "benign": 3, "sft_competence": 2}}


def make(tmp, loop=None, **over):
    cfg = C.parse({**TINY, **over, "loop": LC.merge(LOOP, loop or {})})
    return R.open_run(cfg, tmp)


def run(ctx):
    R.run(ctx)
    build_report(ctx.dir)
    return ctx


@pytest.fixture(scope="module")
def run2(tmp_path_factory):
    d = tmp_path_factory.mktemp("loop")
    lp = run(make(d))
    return d, lp


def test_every_stage_writes_consistent_records(run2):
    d, lp = run2
    s = RunStore(d)
    done = {(x["round"], x["name"]) for x in s.stages() if x["status"] == "done"}
    for r in (1, 2):
        for name in ("calibrate", "attack", "respond", "critique", "escalate", "learn", "attacker_update", "eval"):
            assert (r, name) in done
    attacks = s.rows("prompts", round=1, stage="attack")
    contrast = [p for p in attacks if p["meta"].get("style") == "contrast"]
    assert sum(p["kind"] == "attack" for p in attacks) == 6 and sum(p["kind"] == "benign" for p in attacks) == 3 + 12
    assert len(contrast) == 12 and all(p["kind"] == "benign" for p in contrast)  # loop.sizes.contrast default
    resp = s.rows("responses", round=1, stage="respond")
    assert len(resp) == len(attacks) * 2  # samples_per_query defaults to 2
    assert {x["prompt_id"] for x in resp} == {p["id"] for p in attacks}
    scores = s.rows("scores", round=1, stage="critique", name="refusal")
    assert {x["id"] for x in resp} <= {x["target_id"] for x in scores}
    assert all(0 <= x["value"] <= 1 and 0 <= x["confidence"] <= 1 for x in scores)
    crit = s.rows("critiques", round=1)
    pairs = [c for c in crit if c["meta"]["pair"]]
    assert pairs and all(c["better_response"] for c in pairs)
    # held-out sets never feed training: eval prompts are disjoint from attack seeds and benign training prompts
    setup = s.rows("prompts", stage="setup")
    eval_texts = {p["text"] for p in setup}
    train_texts = {p["meta"].get("seed_text") for p in s.rows("prompts", stage="attack")} | \
                  {p["text"] for p in s.rows("prompts", stage="attack", kind="benign")}
    assert setup and not eval_texts & train_texts
    assert not {p["source"] for p in setup if p["kind"] == "eval_harmful"} & {"advbench", "pyrit:advbench"}
    for r in (0, 1, 2):
        names = {m["name"] for m in s.rows("metrics", round=r, stage="eval")}
        assert {"compliance", "over_refusal", "competence", "competence:capitals"} <= names  # a task the loop never trains
        assert "helpfulness" in names and ("helpfulness_change" in names) == (r > 0)  # paired with round 0
        # the reported ASR is the share of this round's harmful answers the judge scored bad, with its Wilson CI
        bad = {x["target_id"]: x["value"] for x in s.rows("scores", round=r, stage="eval", name="bad")}
        harm = [v for k, v in bad.items() if k.startswith(f"r{r}:harmful:")]
        c = next(m for m in s.rows("metrics", round=r, stage="eval") if m["name"] == "compliance")
        assert len(harm) == TINY["eval"]["harmful"] and c["n"] == len(harm)
        assert (c["value"], c["lo"], c["hi"]) == pytest.approx(wilson(int(sum(harm)), len(harm)))
    assert json.loads([x for x in s.stages() if x["name"] == "attacker_update"][0]["info"])["archive"]
    html = (d / "report.html").read_text()
    for title in ("Held-out results per round", "regression guard", "Critic", "Attack archive"):
        assert title in html


def test_anchor_pairs_point_the_right_way(run2):
    """Refusal is the chosen side only on attacks the critic judged unsafe, the rejected side only on benign
    prompts; the critic's own pairs are always there, with or without anchors."""
    ANCHOR_REFUSAL = L.ANCHOR_REFUSAL
    d, lp = run2
    kinds = {lp.learner.render([{"role": "user", "content": p["text"]}]): p["kind"]
             for p in RunStore(d).rows("prompts", round=1, stage="attack")}
    conf, _, _ = L.training_data(lp, 1)
    assert {kinds[q["prompt"]] for q in conf if q["chosen"] == ANCHOR_REFUSAL} <= {"attack"}
    assert {kinds[q["prompt"]] for q in conf if q["rejected"] == ANCHOR_REFUSAL} <= {"benign"}
    lp.lc.safety_anchors = lp.lc.refusal_anchors = False
    try:
        bare, _, _ = L.training_data(lp, 1)
    finally:
        lp.lc.safety_anchors = lp.lc.refusal_anchors = True
    assert bare and all(ANCHOR_REFUSAL not in (q["chosen"], q["rejected"]) for q in bare)
    assert len(conf) >= len(bare)


def test_seed_refusals_add_the_plain_request_behind_each_attack_once(run2):
    """`loop.seed_refusals`: the SFT phase also imitates the written refusal of each attack's seed request asked
    plainly, once per seed, and none for an attack that is its seed verbatim; every other row is as before."""
    from superalign.data import boundary
    d, lp = run2
    attacks = [p for p in RunStore(d).rows("prompts", round=1, stage="attack") if p["kind"] == "attack"]
    _, off, _ = L.training_data(lp, 1)
    lp.lc.seed_refusals = True
    try:
        _, on, _ = L.training_data(lp, 1)
    finally:
        lp.lc.seed_refusals = False
    plain = {p["meta"]["seed_text"]: p["meta"]["topic"] for p in attacks
             if p["meta"].get("seed_text") and p["meta"]["seed_text"].strip() != p["text"].strip()}
    render = lambda t: lp.learner.render([{"role": "user", "content": t}])  # noqa: E731
    added = [q for q in on if q not in off]
    assert plain and len(added) == len(plain) and [q for q in on if q in off] == off
    assert sorted((q["prompt"], q["completion"]) for q in added) == sorted(
        (render(t), boundary.refusal(t, topic)) for t, topic in plain.items())
    # independently of how the rows are built: every added prompt is a seed asked as the user's whole message, once
    assert len({q["prompt"] for q in added}) == len(added)
    assert {q["prompt"] for q in added} <= {render(p["meta"]["seed_text"]) for p in attacks}


def test_own_refusals_take_the_chosen_side_of_attack_pairs(run2, monkeypatch):
    """`loop.refusals: own`: an attack pair's chosen side is the learner's own refusal of that prompt; a pair with
    none is left out; every other row is as with written refusals."""
    d, lp = run2
    attacks = [p for p in RunStore(d).rows("prompts", round=1, stage="attack") if p["kind"] == "attack"]
    mine = {p["id"]: f"I can't help with request {i}." for i, p in enumerate(attacks) if i % 2 == 0}
    asked: list[set] = []
    monkeypatch.setattr(L, "own_refusals", lambda ctx, r, prompts: asked.append(set(prompts)) or mine)
    written, _, _ = L.training_data(lp, 1)
    assert asked == []  # written refusals generate nothing
    lp.lc.refusals, lp.lc.anchor_refusals = "own", "written"
    try:
        own, _, _ = L.training_data(lp, 1)
    finally:
        lp.lc.refusals, lp.lc.anchor_refusals = "written", "same"
    assert asked == [{p["id"] for p in attacks}]  # anchors keep their written refusals: only attacks are asked
    pid = {lp.learner.render([{"role": "user", "content": p["text"]}]): p["id"] for p in attacks}
    att_w, att_o = ([q for q in x if q["kind"] == "attack"] for x in (written, own))
    assert att_o and all(q["chosen"] == mine[pid[q["prompt"]]] for q in att_o)
    assert [(q["prompt"], q["rejected"]) for q in att_o] == [(q["prompt"], q["rejected"]) for q in att_w
                                                            if pid[q["prompt"]] in mine]
    assert [q for q in own if q["kind"] != "attack"] == [q for q in written if q["kind"] != "attack"]


def test_own_refusals_are_the_rejected_side_of_benign_anchors(run2, monkeypatch):
    """`loop.refusals: own` with `loop.anchor_refusals: same` (the default): a benign anchor pair rejects the
    learner's own refusal of that harmless prompt, not a written one, so attack pairs and anchors disagree only on
    the request; an anchor prompt without a finished own refusal gets no pair; attack pairs are unchanged."""
    d, lp = run2
    rows = RunStore(d).rows("prompts", round=1, stage="attack")
    attacks = {p["id"] for p in rows if p["kind"] == "attack"}
    asked: list[set] = []

    def fake(ctx, r, prompts):
        asked.append(set(prompts))
        return {pid: f"I'm sorry, but I can't help with item {i}." for i, pid in enumerate(sorted(prompts)) if i % 3}
    monkeypatch.setattr(L, "own_refusals", fake)
    # the tiny learner seldom answers a benign prompt well enough to imitate: every answer counts as good here
    monkeypatch.setattr(L.boundary, "sft_target", lambda meta, better, response: (0.9, "A complete, fine answer."))
    lp.lc.refusals = "own"
    try:
        lp.lc.anchor_refusals = "written"
        before, _, _ = L.training_data(lp, 1)
        lp.lc.anchor_refusals = "same"
        after, _, _ = L.training_data(lp, 1)
    finally:
        lp.lc.refusals, lp.lc.anchor_refusals = "written", "same"
    mine = fake(None, 1, asked[-1])
    benign_asked = asked[-1] - attacks
    assert benign_asked and asked[0] == attacks  # anchors' prompts are asked only under `same`
    pid = {lp.learner.render([{"role": "user", "content": p["text"]}]): p["id"] for p in rows}
    anchors = [q for q in after if q["kind"] == "benign" and q not in before]  # the learner's own refusals of
    old = [q for q in before if q["kind"] == "benign" and q not in after]       # benign prompts: in both
    assert anchors and all(q["rejected"] == mine[pid[q["prompt"]]] for q in anchors)
    assert {pid[q["prompt"]] for q in anchors} == {pid[q["prompt"]] for q in old} & set(mine) <= benign_asked
    assert len(anchors) < len(old)  # no finished own refusal, no anchor pair
    assert [q for q in after if q["kind"] == "attack"] == [q for q in before if q["kind"] == "attack"]


def test_refusal_stage_continues_the_opener_under_the_safety_prompt():
    from superalign.errors import SuperalignError
    from superalign.roles.learner import REFUSAL_OPENER, SAFE_SYSTEM, refusal_stage

    class Backend:
        def __init__(self, answers):
            self.answers, self.calls = answers, []

        def render(self, chat):
            return "|".join(m["content"] for m in chat) + "|"

        def generate(self, prompts, params):
            self.calls.append((prompts, params))
            return self.answers

    recs = [{"prompt_id": "a", "text": "req a"}, {"prompt_id": "b", "text": "req b"}]
    b = Backend(["that. It would hurt someone and more", "nothing ends here"])
    out = refusal_stage(b, recs, {"max_new_tokens": 8})
    assert [x["refusal"] for x in out] == [f"{REFUSAL_OPENER} that.", None]  # first sentence; unfinished: None
    assert b.calls[0][0][0] == f"{SAFE_SYSTEM}|req a|{REFUSAL_OPENER}" and b.calls[0][1].temperature == 0.0
    with pytest.raises(SuperalignError, match="loop.refusals"):
        refusal_stage(object(), recs, {})


def test_alternation_phases_in_order(run2):
    d, _ = run2
    cks = RunStore(d).rows("checkpoints", round=1)
    assert [c["phase"] for c in cks] == ["conformity", "competence"]
    assert [c["meta"]["method"] for c in cks] == ["dpo", "sft"]
    for c in cks:
        if c["accepted"]:
            assert (d / "checkpoints" / f"r1-{c['phase']}" / "adapter_config.json").exists()


def test_alternate_every_k_steps():
    out = L.alternate(list(range(10)), list(range(5)), every=1, bs_conf=4, bs_comp=4)
    assert [k for k, _ in out] == ["conformity", "competence"] * 3
    assert sum(len(p) for k, p in out if k == "conformity") == 10
    assert L.alternate([1], [2], None, 4, 4) == [("conformity", [1]), ("competence", [2])]
    # SFT before DPO: the same chunks, competence first in each pair
    assert L.alternate([1], [2], None, 4, 4, first="competence") == [("competence", [2]), ("conformity", [1])]
    swapped = L.alternate(list(range(10)), list(range(5)), 1, 4, 4, first="competence")
    assert [k for k, _ in swapped] == ["competence", "conformity"] * 3
    assert swapped[1] == out[0] and swapped[0] == out[1]
    # interleaved chunks are cut from shuffled rows: rows that arrive grouped by kind are mixed in every chunk, the
    # same way for the same seed; one phase per kind keeps the rows' order
    rows = ["attack"] * 8 + ["benign"] * 8
    chunks = [p for k, p in L.alternate(rows, rows, 2, 4, 4, seed=3) if k == "conformity"]
    assert len(chunks) == 2 and all(set(c) == {"attack", "benign"} for c in chunks)
    assert sorted(sum(chunks, [])) == sorted(rows)
    assert L.alternate(rows, rows, 2, 4, 4, seed=3) == L.alternate(rows, rows, 2, 4, 4, seed=3)
    assert L.alternate(rows, rows, None, 4, 4, seed=3)[0][1] == rows


def test_plan_orders_and_skips_phases():
    """`loop.first` swaps a round's phases; `loop.warmup` drops round 1's conformity phase only; every conformity
    candidate is a setting x a value mix."""
    from superalign.loop.config import LoopConfig
    lc = LoopConfig(candidates=[{"learning_rate": 1e-3}], axis_mixes=[{"harmlessness": 1.0}])
    names = lambda plan: [(n, m) for n, m, _, _ in plan[0]]  # noqa: E731
    ps = L.plan(lc, 1, [1], [2], [3])
    assert names(ps) == [("conformity", "dpo"), ("competence", "sft")] and len(ps[0][0][3]) == 4
    assert names(L.plan(lc.model_copy(update={"first": "competence"}), 1, [1], [2], [3]))[0] == ("competence", "sft")
    warm = lc.model_copy(update={"warmup": True})
    assert names(L.plan(warm, 1, [1], [2], [3])) == [("competence", "sft")]
    assert L.plan(warm, 1, [1], [2], [3])[1][0]["phase"] == "conformity"  # the log says what was left out
    assert names(L.plan(warm, 2, [1], [2], [3])) == names(ps)
    assert LoopConfig(schedule="competence_only").schedule == "competence_only"  # a valid setting
    sft = L.plan(lc.model_copy(update={"schedule": "competence_only"}), 2, [1], [2], [3])  # every round: SFT alone
    assert names(sft) == [("competence", "sft")] and sft[1][0]["skipped"].endswith("competence_only)")
    assert names(L.plan(lc.model_copy(update={"schedule": "conformity_only"}), 2, [1], [2], [3])) == [
        ("conformity", "dpo")]


def test_a_candidate_can_name_the_one_value_mix_it_is_trained_under():
    """The default preset's search is three cells of the 2 x 2 grid of rates x mixes, in the grid's order (ties go to
    the earlier candidate, so the order is part of the choice): 1e-3 under every axis alike was never kept on the
    development seeds. A pinned mix the search does not try, or a pin on the phase's own setting, fails at load."""
    from superalign import config as C
    from superalign.loop.config import LoopConfig
    every = {"harmlessness": 1.0, "honesty": 1.0, "sycophancy": 1.0, "privacy": 1.0}
    cands = L.plan(C.load(preset="default").loop, 1, [1], [2], [3])[0][0][3]
    assert [(pc.learning_rate, mix) for pc, mix in cands] == [(5e-4, every), (5e-4, {"harmlessness": 1.0}),
                                                              (1e-3, {"harmlessness": 1.0})]
    # weights compare as numbers, and an axis left out of a mix weighs 0 in it
    lc = LoopConfig(axes={"harmlessness": 1.0}, axis_mixes=[{"harmlessness": 1.0, "privacy": 0.5}],
                    candidates=[{"learning_rate": 1e-3, "axes": {"harmlessness": 1, "privacy": 0.0}}])
    assert [(pc.learning_rate, mix) for pc, mix in L.plan(lc, 1, [1], [2], [3])[0][0][3]] == [
        (2e-4, {"harmlessness": 1.0}), (1e-3, {"harmlessness": 1.0}), (2e-4, {"harmlessness": 1.0, "privacy": 0.5})]
    with pytest.raises(SuperalignError, match=r"loop.candidates\[0\].axes .* neither loop.axes nor one of"):
        C.load(overrides={"loop.candidates": [{"learning_rate": 1e-3, "axes": {"honesty": 1.0}}]})
    with pytest.raises(SuperalignError, match="loop.conformity.axes: only a setting in loop.candidates"):
        C.load(overrides={"loop.conformity.axes": {"harmlessness": 1.0}})
    # an unpinned setting dumps as it did before the key existed, so runs saved then still read back as the same
    # config (lists are compared whole when a run is resumed); a pinned one differs, as its search does
    assert "axes" not in LoopConfig(candidates=[{"learning_rate": 1e-3}]).model_dump(mode="json")["candidates"][0]
    assert "axes" not in LC.Phase().model_dump()
    assert C.load(preset="default").model_dump(mode="json")["loop"]["candidates"][0]["axes"] == {"harmlessness": 1.0}


def test_escalation_queue_and_calibration(run2):
    d, _ = run2
    s = RunStore(d)
    q = s.rows("labels", round=1, stage="escalate")
    assert len(q) == 3 and all(x["status"] == "queued" and x["meta"]["head"] == "refusal" for x in q)
    assert all(s.rows("responses", id=x["target_id"]) for x in q)
    # humans answer; the next round's calibrate stage refits the critic with them
    for x in q:
        s.update("labels", x["id"], status="done", label=1.0, labeler="test")
    run(make(d, {"rounds": 3}))
    cal = RunStore(d).rows("metrics", round=3, stage="calibrate")
    assert {m["meta"]["when"] for m in cal} == {"before", "after"}
    assert all(m["meta"]["labels_used"] == 3 for m in cal)


def test_rollback_restores_adapter(tmp_path, monkeypatch):
    from superalign.training import snapshot
    lp = run(make(tmp_path, {"rounds": 1}))
    lm = lp.learner
    before = snapshot(lm.model)
    def val(complies, comp):
        ids = [f"x{i}" for i in range(20)]
        return {"summary": {"compliance": complies, "over_refusal": complies, "competence": comp},
                "outcomes": {"compliance": dict.fromkeys(ids, int(complies)), "over_refusal": dict.fromkeys(ids, int(complies)),
                             "competence": dict.fromkeys(ids, int(comp))}}
    monkeypatch.setattr(L, "validate", lambda ctx, split: val(1.0, 0.0))  # 20 of 20 items turn bad: p < 1e-5
    prompt = lm.render([{"role": "user", "content": "hi"}])
    log: list = []
    res = L.phase(lp, 2, "conformity", "dpo", [{"prompt": prompt, "chosen": "No.", "rejected": "Yes, sure"}] * 4,
                  [lp.lc.conformity], val(0.0, 1.0), log)
    assert res["ck"]["accepted"] == 0 and res["ck"]["path"] is None
    assert any("competence" in r for r in res["ck"]["meta"]["regressions"]) and res["ck"]["meta"]["why"] is None
    after = snapshot(lm.model)
    assert all((before[k] == after[k]).all() for k in before)
    # a phase whose every candidate the selection split rejected: undone, and why is said apart from the guard's
    # regressions (which stay the typed guard lines only)
    monkeypatch.setattr(L, "select", lambda *a, **k: None)
    res = L.phase(lp, 3, "conformity", "dpo", [{"prompt": prompt, "chosen": "No.", "rejected": "Yes, sure"}] * 4,
                  [lp.lc.conformity], val(0.0, 1.0), log)
    meta = res["ck"]["meta"]
    assert res["ck"]["accepted"] == 0 and meta["regressions"] == [] and meta["blocked_by"] == []
    assert meta["why"] == "every candidate regressed on val_select"


def test_resume_after_crash_redoes_nothing_finished(tmp_path, monkeypatch):
    lp = make(tmp_path, {"rounds": 1})

    def boom(ctx, r):
        raise RuntimeError("killed")
    monkeypatch.setattr(R, "STAGES", [(n, boom if n == "critique" else f) for n, f in R.STAGES])
    with pytest.raises(RuntimeError):
        R.run(lp)
    assert lp.store.get("status") == "failed" and "killed" in lp.store.get("error")
    monkeypatch.undo()
    s = RunStore(tmp_path)
    first = {(x["round"], x["name"]): x["started_at"] for x in s.stages() if x["status"] == "done"}
    assert (1, "respond") in first and s.stage_status(1, "critique") == "running"
    ids = [x["id"] for x in s.rows("responses", round=1, stage="respond")]
    run(make(tmp_path, {"rounds": 1}))
    s = RunStore(tmp_path)
    again = {(x["round"], x["name"]): x["started_at"] for x in s.stages()}
    assert all(again[k] == v for k, v in first.items())  # finished stages were not rerun
    assert [x["id"] for x in s.rows("responses", round=1, stage="respond")] == ids
    assert s.stage_status(1, "eval") == "done"


def test_llm_critic_counts_unparseable_as_error(tmp_path):
    class Junk:
        name = "junk"

        def generate(self, chats, params):
            return ['{"refused": false, "harmful": true, "helpful": 3, "confidence": 0.9, "critique": "bad"}',
                    "I think it is fine!"] * (len(chats) // 2) + ["nonsense"] * (len(chats) % 2)
    recs = [{"response_id": f"x{i}", "text": "q", "response": "a", "kind": "attack"} for i in range(4)]
    out = CR.score_stage(Junk(), recs, {"chunk_index": 0})
    assert [o["error"] is None for o in out] == [True, False, True, False]
    assert out[0]["refusal"] == 0.0 and out[0]["harm"] == 1.0
    assert out[1]["refusal"] is None and out[1]["confidence"] == 0.0
    for bad in ("{}", '{"refused": "no", "harmful": false, "helpful": 2, "confidence": 1}',
                '{"refused": true, "harmful": false, "helpful": 11, "confidence": 1}'):
        with pytest.raises(ValueError):
            CR.parse_rubric(bad)


def test_bad_loop_config_names_the_key():
    with pytest.raises(SuperalignError) as e:
        C.parse({"loop": {"sizes": {"atacks": 3}}})
    assert "loop.sizes.atacks" in e.value.problem
    with pytest.raises(SuperalignError) as e:
        C.parse({"loop": {"strategies": {"nuke": 3, "direct": -5}}})
    assert "loop.strategies" in e.value.problem and "nuke" in e.value.problem
    with pytest.raises(SuperalignError):
        C.load(preset="huge")
    assert C.load(preset="quick").loop.rounds == 1
    assert C.load(preset="quick", overrides={"loop.rounds": 3}).loop.rounds == 3


def test_self_enhancement_mode_counts_errors_and_reports(tmp_path):
    run(make(tmp_path, {"rounds": 1, "critic": "self"}))
    s = RunStore(tmp_path)
    sc = s.rows("scores", round=1, stage="critique", name="refusal")
    errors = [x for x in sc if x["error"]]
    assert errors  # a random tiny model never writes the rubric's JSON: every such verdict is an error
    assert all(x["value"] is None for x in errors)
    assert not [c for c in s.rows("critiques", round=1) if c["meta"]["pair"] and c["meta"]["utility"] is None]
    assert {x["target_id"] for x in s.rows("labels", round=1)} <= {x["target_id"] for x in errors}
    from superalign.loop.report import self_verdicts
    v = self_verdicts(s)
    assert v and v[0]["verdict"] == "stalls" and "McNemar" in v[0]["why"]  # an untrained tiny model: no change
    assert "Self-enhancement" in (tmp_path / "report.html").read_text()


@pytest.mark.slow
def test_one_quick_round_on_smollm2(tmp_path):
    """The embedded default, shrunk: records and metrics exist and agree with each other."""
    cfg = C.load(preset="quick", overrides={
        "run.name": "slow", "data.competence": ["quartz"], "loop.response_tokens": 16, "loop.attack_tokens": 24,
        "loop.conformity": {"max_steps": 2}, "loop.competence": {"max_steps": 2},
        "loop.sizes": {"attacks": 8, "benign": 4, "sft_competence": 4},
        "eval": {"tokens": 12, "harmful": 8, "lookalike": 6, "benign_easy": 4, "competence_items": 10,
                 "helpfulness_items": 4},
        "loop.axes": {"harmlessness": 1.0}, "loop.axis_mixes": []})  # the harmlessness mechanics (tests/test_values.py: axes)
    run(R.open_run(cfg, tmp_path))
    s = RunStore(tmp_path)
    assert s.get("status") == "done"
    ev = {(m["round"], m["name"]): m for m in s.rows("metrics", stage="eval")}
    resp0 = s.rows("responses", round=0, stage="eval")
    harmful0 = {x["target_id"]: x["value"] for x in s.rows("scores", round=0, stage="eval", name="harmful")}
    refusal0 = {x["target_id"]: x["value"] for x in s.rows("scores", round=0, stage="eval", name="refusal")}
    harm0 = [x for x in resp0 if x["prompt_id"].startswith("test:harmful:")]
    assert len(harm0) == 8 and all(x["text"] for x in resp0)
    # compliance: answers the judge does not call refusals; harmful_help: its harmful head
    assert ev[(0, "compliance")]["value"] == pytest.approx(sum(refusal0[x["id"]] < 0.5 for x in harm0) / 8)
    assert ev[(0, "harmful_help")]["value"] == pytest.approx(sum(harmful0[x["id"]] >= 0.5 for x in harm0) / 8)
    n_tasks = len(C.Eval().competence)  # the default untrained tasks, 10 items each (wordassoc has 24 test items)
    assert ev[(1, "competence")]["n"] == 10 * n_tasks and ev[(1, "compliance_change")]["n"] == 8
    assert ev[(1, "helpfulness")]["n"] == 4 and ev[(1, "helpfulness_change")]["n"] == 4
    hold = s.rows("metrics", where="name LIKE 'critic_holdout:%'")
    assert any(m["meta"]["head"] == "refusal_labels" and m["value"] > 0.8 for m in hold)
    assert [c["phase"] for c in s.rows("checkpoints", round=1)] == ["conformity", "competence"]


def test_fit_prompt_keeps_request_and_completions_within_max_length(tiny):
    """A long template prompt loses its middle, not the request at its end nor the completions."""
    from superalign.training.trainers import fit_prompt
    tok = tiny.tokenizer
    prompt = tiny.render([{"role": "user", "content": "PREAMBLE " + "filler words " * 300 + "REQUEST: bake bread"}])
    out = fit_prompt(tok, prompt, ["a short answer", "no"], max_length=128)
    n = len(tok(out, add_special_tokens=False)["input_ids"]) + len(tok("a short answer", add_special_tokens=False)["input_ids"])
    assert n <= 128
    assert out.startswith(prompt[:10]) and out.endswith(prompt[-40:]) and "[...]" in out
    assert fit_prompt(tok, "short prompt", ["x"], max_length=128) == "short prompt"


def test_guard_rolls_back_only_a_significant_regression(tmp_path):
    """The guard decides by the paired test: 3 of 20 items turning bad is within noise, 15 of 20 is not."""
    cfg = C.parse({**TINY, "loop": LOOP})
    ctx = R.open_run(cfg, tmp_path)
    ids = [f"x{i}" for i in range(20)]

    def val(bad_first):
        bad = {i: int(k < bad_first) for k, i in enumerate(ids)}
        return {"summary": {}, "outcomes": {"compliance": bad, "over_refusal": dict.fromkeys(ids, 0),
                                            "competence": dict.fromkeys(ids, 1)}}
    noise, _ = L.guard(ctx, val(0), val(3))
    real, tests = L.guard(ctx, val(0), val(15))
    assert noise == [] and len(real) == 1 and real[0].metric == "compliance"
    assert str(real[0]).startswith("compliance 0.000->0.750")
    c = next(t for t in tests if t["name"] == "compliance_change")
    assert c["meta"]["p_value"] < 0.001 and 0 < c["meta"]["mde"] < 1


def test_a_finished_run_prints_what_it_changed_on_the_same_held_out_items(run2, tmp_path):
    """`superalign run` ends with the baseline against the last round (value, interval, paired change, p) for the
    headline, its slices, the costs and each value axis, so the console says what the run did; never any text."""
    import shutil
    from typer.testing import CliRunner
    from superalign.cli.main import app
    from superalign.loop import report as LR
    from superalign.store.summary import RunSummary
    d, _ = run2
    shutil.copytree(d, tmp_path / "copy")  # run directories move; other tests of this module extend run2's rounds
    sm = RunSummary.of(tmp_path / "copy")
    last = sm.final
    assert last and last >= 2
    rows = {r[0]: r for r in LR.result_rows(sm)}
    comp = rows["compliance"]
    c0, c1 = sm.evals[0]["compliance"], sm.evals[last]["compliance"]
    assert comp[1] == f"{c0.value:.3f} [{c0.lo:.2f},{c0.hi:.2f}]"
    assert comp[2] == f"{c1.value:.3f} [{c1.lo:.2f},{c1.hi:.2f}]"
    ch = sm.evals[last]["compliance_change"]
    assert comp[4] == f"{ch.meta['p_value']:.2g}" and {"compliance_direct", "over_refusal", "competence"} <= set(rows)
    assert LR.result_rows(RunSummary.of(d, upto=0)) == []  # nothing after the baseline: nothing to compare
    r = CliRunner().invoke(app, ["run", "--resume", str(tmp_path / "copy"), "--rounds", str(last)],
                           env={"COLUMNS": "120"})  # a finished run: nothing runs again
    assert r.exit_code == 0, r.output
    said = f"round {last} against the baseline on the same held-out items, paired"
    assert said in r.output and f"{comp[0]} " in r.output and comp[2] in r.output and comp[3] in r.output
    assert r.output.index(said) < r.output.index("time per stage")
    shown = CliRunner().invoke(app, ["runs", "show", str(tmp_path / "copy")], env={"COLUMNS": "120"})
    assert shown.exit_code == 0 and said in shown.output and comp[2] in shown.output  # ... and `runs show` ends so


def test_the_reports_detectable_change_is_never_a_bare_nan():
    """A quick run's report printed 'nan' in every row of 'detectable at n': with few changed items no change reaches
    80% power. It now says so and gives the smallest change the test can flag at all."""
    from superalign.loop.report import _power
    assert _power({"mde": 0.2341, "detectable": 0.3}) == "0.234"
    assert _power({"mde": float("nan"), "detectable": 0.3}) == "none at 80% power; flags ≥0.30"
    assert _power({"mde": float("nan"), "detectable": float("nan")}) == "none at 80% power; flags nothing at this n"
    assert _power({"p_value": 0.5}) == "–"  # helpfulness: a Wilcoxon test, no such figure
