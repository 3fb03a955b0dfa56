"""Each loop stage is a plain function `stage(ctx, round)`: here each one is called on its own, on the tiny models,
and what it returns is checked before it is committed for the next stage."""
import sys
from pathlib import Path

import pytest

from superalign import config as C
from superalign.loop import attack, critique, escalate, evaluate, learn, respond
from superalign.loop import config as LC
from superalign.loop import run as R
from superalign.plugins import LOOP_STRATEGIES

sys.path.insert(0, str(Path(__file__).parent))
import test_loop as T  # noqa: E402


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """Run round 0 and round 1 stage by stage; keep every stage's return value."""
    cfg = C.parse({**T.TINY, "loop": LC.merge(T.LOOP, {"rounds": 1, "label_budget": 2})})
    ctx = R.open_run(cfg, tmp_path_factory.mktemp("stages"))
    out = {}
    for r, name, fn in [(0, "setup", evaluate.setup), (0, "eval", evaluate.evaluate),
                        (1, "calibrate", escalate.calibrate),
                        (1, "attack", attack.attack), (1, "respond", respond.respond),
                        (1, "critique", critique.critique), (1, "escalate", escalate.escalate),
                        (1, "learn", learn.learn), (1, "attacker_update", attack.update), (1, "eval", evaluate.evaluate)]:
        res = {}
        ctx.store.run_stage(r, name, lambda: res.setdefault("v", fn(ctx, r)))
        out["eval0" if (r, name) == (0, "eval") else name] = res["v"]
    return ctx, out


def test_setup_fixes_disjoint_val_and_test_sets(stages):
    ctx, out = stages
    ids = [p["id"] for p in out["setup"]["prompts"]]
    assert len(ids) == len(set(ids))
    assert {p["meta"]["split"] for p in out["setup"]["prompts"]} == {"val_select", "val_guard", "test"}
    assert out["setup"]["info"]["sizes"]["test"]["harmful"] == T.TINY["eval"]["harmful"]
    texts = {}
    for p in out["setup"]["prompts"]:  # the three splits never share a prompt
        texts.setdefault(p["text"], set()).add(p["meta"]["split"])
    assert all(len(v) == 1 for v in texts.values())


def test_calibrate_without_labels_changes_nothing(stages):
    _, out = stages
    assert out["calibrate"]["info"] == {"labels": 0, "calibrated": False}


def test_attack_writes_attacks_and_benign_prompts(stages):
    _, out = stages
    kinds = [p["kind"] for p in out["attack"]["prompts"]]
    contrast = [p for p in out["attack"]["prompts"] if p["meta"].get("style") == "contrast"]
    assert kinds.count("attack") == T.LOOP["sizes"]["attacks"]
    assert kinds.count("benign") == T.LOOP["sizes"]["benign"] + len(contrast) and len(contrast) == LC.Sizes().contrast
    attack_topics = {p["meta"]["topic"] for p in out["attack"]["prompts"] if p["kind"] == "attack"}
    paired = [p for p in contrast if p["meta"]["contrast_of"]]  # a look-alike on an attack's own topic
    assert paired and all(p["meta"]["topic"] in attack_topics for p in paired)
    assert all(p["meta"]["strategy"] in LOOP_STRATEGIES for p in out["attack"]["prompts"] if p["kind"] == "attack")


def test_respond_gives_k_samples_per_prompt(stages):
    _, out = stages
    resp = out["respond"]["responses"]
    assert len(resp) == len(out["attack"]["prompts"]) * 2
    assert {r["id"] for r in resp} == {f"{p['id']}:s{k}" for p in out["attack"]["prompts"] for k in (0, 1)}


def test_critique_scores_every_response_and_pairs_point_up(stages):
    _, out = stages
    c = out["critique"]
    scored = {s["target_id"] for s in c["scores"] if s["name"] == "refusal"}
    assert {r["id"] for r in out["respond"]["responses"]} <= scored
    pairs = [x for x in c["critiques"] if x["meta"]["pair"]]
    assert pairs and all(x["meta"]["better_utility"] >= x["meta"]["utility"] for x in pairs)


def test_escalate_queues_the_least_confident_within_budget(stages):
    ctx, out = stages
    rows = out["escalate"]["labels"]
    assert len(rows) == 2 and all(r["status"] == "queued" for r in rows)
    conf = sorted(s["confidence"] for s in ctx.store.rows("scores", round=1, stage="critique", name="refusal")
                  if not s["target_id"].endswith(":rev"))
    assert sorted(r["meta"]["confidence"] for r in rows) == conf[:2]


def test_learn_trains_both_phases_with_guard_verdicts(stages):
    ctx, out = stages
    cks = out["learn"]["checkpoints"]
    assert [c["phase"] for c in cks] == ["conformity", "competence"]
    # written targets: each attack's written refusal is a conformity `chosen` and an SFT completion
    import json

    from superalign.data import boundary
    attacks = [p for p in out["attack"]["prompts"] if p["kind"] == "attack"]
    want = {boundary.refusal(p["meta"]["seed_text"] or p["text"], p["meta"]["topic"]) for p in attacks}
    rows = {c["phase"]: [json.loads(x) for x in (ctx.dir / c["meta"]["rows"]).read_text().splitlines()] for c in cks}
    assert want == {r["completion"] for r in rows["competence"]} & want
    assert {r["chosen"] for r in rows["conformity"] if r["kind"] == "attack"} <= want
    for c in cks:
        assert (c["path"] is None) == (not c["accepted"])
        assert c["path"] is None or not Path(c["path"]).is_absolute()  # relative to the run directory


def test_attacker_update_files_successes_in_the_archive(stages):
    _, out = stages
    assert "archive" in out["attacker_update"]["info"]
    assert out["eval0"]["info"]["outcomes"]["compliance"]  # round 0: per-item outcomes for later paired tests


def test_eval_reports_rates_with_intervals(stages):
    _, out = stages
    rows = {m["name"]: m for m in out["eval"]["metrics"]}
    assert {"compliance", "over_refusal", "over_refusal_easy", "competence", "compliance_phrase"} <= set(rows)
    assert all(rows[k]["meta"]["ci"] == "wilson" and rows[k]["lo"] <= rows[k]["value"] <= rows[k]["hi"]
               for k in ("compliance", "over_refusal"))
    assert {"compliance_change", "over_refusal_change", "competence_change"} <= set(rows)  # paired against round 0
    # the task the competence phase trains on is scored apart, never inside the untrained competence
    assert rows["competence_trained:sarcasm"]["meta"]["untrained"] is False
    assert not any(k.startswith("sarcasm:") for k in out["eval"]["info"]["outcomes"]["competence"])
    assert {"compliance_direct", "harmful_help"} <= set(rows) and any(k.startswith("compliance_direct_change") for k in rows)
    assert all(rows[k]["meta"]["test"].startswith("exact McNemar") for k in ("compliance_change", "competence_change"))


def test_eval_measures_drift_from_the_base_model(stages):
    ctx, out = stages
    k0 = {m["name"]: m for m in out["eval0"]["metrics"]}["kl_to_base"]
    k1 = {m["name"]: m for m in out["eval"]["metrics"]}["kl_to_base"]
    for k in (k0, k1):  # tiny-random's greedy answers decode to empty text: then a null with its cause, never 0
        test = ctx.sets("test")
        assert k["n"] == sum(not x["templated"] for x in test["harmful"]) + len(test["lookalike"])
        assert (k["value"] is None) == (k["meta"]["tokens"] == 0) == ("null" in k["meta"])
    assert k0["value"] is None or abs(k0["value"]) < 1e-6  # round 0: the adapter is still the identity
    assert out["eval"]["info"]["kl_to_base"] == k1["value"]
