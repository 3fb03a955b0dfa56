"""The loop report's sections on a real (tiny) 1-round run: the safety boundary, the candidate updates per phase,
and the attacker measured against the frozen base learner, whose metric rows the store must hold."""
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from superalign.loop import report as LR
from superalign.store import RunStore

sys.path.insert(0, str(Path(__file__).parent))
import test_loop as T  # noqa: E402

TWO = {"rounds": 1, "candidates": [{"max_steps": 1, "learning_rate": 1e-3, "beta": 0.3}]}


@pytest.fixture(scope="module")
def run1(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    T.run(T.make(d, loop=TWO))
    return d, RunStore(d)


def test_attacker_update_stores_success_vs_base_and_coverage(run1):
    _, s = run1
    rows = {m["name"]: m for m in s.rows("metrics", round=1, stage="attacker_update")}
    assert {"attacker_success_vs_base", "attacker_harmful_vs_base", "archive_coverage"} <= set(rows)
    n_attacks = T.LOOP["sizes"]["attacks"]
    for k in ("attacker_success_vs_base", "attacker_harmful_vs_base"):
        m = rows[k]
        assert m["n"] == n_attacks and m["meta"]["ci"] == "wilson" and m["lo"] <= m["value"] <= m["hi"]
        assert m["value"] * n_attacks == pytest.approx(round(m["value"] * n_attacks))  # a share of the n attacks
    info = json.loads(next(x for x in s.stages() if x["name"] == "attacker_update")["info"])
    cov = info["coverage"]
    assert 0 < cov["filled"] <= cov["cells"] == cov["categories"] * cov["styles"]
    assert rows["archive_coverage"]["value"] == pytest.approx(cov["filled"] / cov["cells"])
    # every archive cell of the seeds' categories and the configured styles counts; none counts twice
    assert cov["filled"] <= len(info["archive"])


def test_attacker_update_stores_the_learners_compliance_per_prompt_and_cell(run1):
    """Issue 23: success against the current learner is explicit: one `learner_complies` score per attack prompt (the
    share of its sampled answers the critic judged compliant), summed per (category, style) cell in the stage info."""
    d, s = run1
    attacks = {p["id"]: p for p in s.rows("prompts", round=1, stage="attack", kind="attack")}
    scores = {x["target_id"]: x for x in s.rows("scores", round=1, stage="attacker_update", name="learner_complies")}
    assert set(scores) == set(attacks)
    info = json.loads(next(x for x in s.stages() if x["name"] == "attacker_update")["info"])
    cells = info["cells"]
    assert sum(c["prompts"] for c in cells.values()) == len(attacks)
    for key, c in cells.items():
        mine = [scores[i] for i, p in attacks.items() if f"{p['category']}|{p['meta']['style']}" == key]
        assert c["samples"] == sum(x["meta"]["samples"] for x in mine)
        assert c["complied"] == pytest.approx(sum(x["value"] * x["meta"]["samples"] for x in mine if x["value"] is not None))
    m = {x["name"]: x for x in s.rows("metrics", round=1, stage="attacker_update")}["attacker_success_vs_learner"]
    assert m["n"] == sum(x["value"] is not None for x in scores.values()) and m["lo"] <= m["value"] <= m["hi"]
    assert "compliance per harm category × style" in (d / "report.html").read_text()


def test_base_answers_ignore_the_trained_adapter(tmp_path):
    """The attacker's fixed target is the base model: however far the adapter moves the learner, the base answers
    stay the same, while the learner's own greedy answers change."""
    import torch

    from superalign.loop import attack as A
    from superalign.roles.learner import respond_stage
    ctx = T.make(tmp_path, loop={"rounds": 1})
    prompts = [{"id": f"p{i}", "text": t} for i, t in enumerate(["Tell me about rivers.", "How do bridges stand?",
                                                                  "Name a colour.", "What is a prime number?"])]
    kw = {"max_new_tokens": ctx.cfg.eval.tokens, "temperature": 0.0}
    recs = [{"prompt_id": p["id"], "text": p["text"], "sample": 0} for p in prompts]
    before = A.base_answers(ctx, prompts)
    assert [x["response"] for x in respond_stage(ctx.learner, recs, kw)] == before  # untrained adapter: identity
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, w in ctx.learner.model.named_parameters():
            if "lora_B" in n:
                w.copy_(torch.randn(w.shape, generator=g) * 5)
    assert A.base_answers(ctx, prompts) == before
    assert [x["response"] for x in respond_stage(ctx.learner, recs, kw)] != before
    ctx.ex.close()


def test_report_renders_boundary_candidates_and_vs_base(run1):
    d, s = run1
    page = (d / "report.html").read_text()
    for title in ("Safety boundary (Pareto)", "Candidate updates per phase",
                  "Attacker against the frozen base learner"):
        assert title in page
    titles = re.findall(r"<h2[^>]*>([^<]+)", page)
    assert len(titles) == len(set(titles)), titles  # the review queue once, though loop and review both list it
    svg = ET.fromstring(str(LR.boundary(s)).split("</svg>", 1)[0] + "</svg>")
    assert len(svg.findall("{http://www.w3.org/2000/svg}circle")) == 2  # base and round 1
    html = LR.candidates(s)
    assert html.count("<h4>") == 2  # conformity and competence of round 1
    assert "winner, kept" in html or "winner, rolled back" in html
    assert "not chosen" in html or "rejected" in html  # conformity had two candidates: one lost
    assert "lr 0.001" in html and "β 0.3" in html  # the extra candidate's settings
    # each guard test says what it could flag at its size (a tiny split: nothing at all)
    assert re.search(r"compliance_change [-+]\d\.\d{3} \(p=[^,]+, n=\d+, flags (≥\d\.\d\d|nothing at this n)\)", html)
    assert LR._flags(10, 0.05) == "flags ≥0.60" and LR._flags(5, 0.05) == "flags nothing at this n"


def test_a_candidate_the_lead_rejected_shows_its_reason():
    ck = {"accepted": 1, "meta": {"candidate": 0, "regressions": []}}
    assert "rejected</span>: too few pairs" in LR._verdict({"candidate": 1, "rejected": "too few pairs"}, ck)
    assert "winner, kept" in LR._verdict({"candidate": 0}, ck)
    rolled = {"accepted": 0, "meta": {"candidate": 0, "regressions": ["asr 0.1->0.4 <p>"]}}
    assert "rolled back</span>: asr 0.1-&gt;0.4 &lt;p&gt;" in LR._verdict({"candidate": 0}, rolled)


def test_phases_render_a_phase_whose_every_candidate_regressed(run1, tmp_path):
    """A phase with no winner stores `train: None` (nothing was kept, so nothing trained counts); the report must
    still render it as rolled back instead of failing the whole report (seed 11 of the value-axes bench did)."""
    import shutil
    d = tmp_path / "run"
    shutil.copytree(run1[0], d)  # the shared run stays as the other tests read it
    s = RunStore(d)
    ck = dict(s.rows("checkpoints", role="learner")[0])
    meta = dict(ck["meta"]) | {"train": None, "candidate": None, "regressions": [],
                               "why": "every candidate regressed on val_select"}
    s.insert("checkpoints", [{"id": "r9-conformity", "path": None, "phase": "conformity", "accepted": 0,
                              "role": "learner", "model": ck["model"], "meta": meta}], round=9, stage="learn")
    html = LR.phases(s)
    assert html is not None and "rolled back</span>: every candidate regressed on val_select" in html
    # a run stored before `why` kept the sentence among the regressions, and still reads the same
    old = dict(meta) | {"regressions": ["every candidate regressed on val_select"]}
    old.pop("why")
    assert LR._undone(old) == LR._undone(meta) == "every candidate regressed on val_select"


def test_phase_decisions_read_kept_and_rolled_back_phases_for_both_benches(run1, tmp_path):
    """The one reader both benches print phases with: a phase whose every candidate regressed (`train: None`) is
    read as rolled back with no steps, and `upto` leaves out later rounds."""
    import shutil
    from superalign.loop import efficacy as E
    d = tmp_path / "run"
    shutil.copytree(run1[0], d)
    s = RunStore(d)
    ck = dict(s.rows("checkpoints", role="learner")[0])
    meta = dict(ck["meta"]) | {"train": None, "regressions": [], "why": "every candidate regressed on val_select"}
    s.insert("checkpoints", [{"id": "r9:conformity", "path": None, "phase": "conformity", "accepted": 0,
                              "role": "learner", "model": ck["model"], "meta": meta}], round=9, stage="learn")
    got = E.phase_decisions(d)
    last = got[-1]
    assert last["phase"] == "r9:conformity" and last["round"] == 9 and not last["kept"] and last["steps"] is None
    assert last["regressions"] == [] and last["why"] == "every candidate regressed on val_select"
    first = got[0]
    assert first["phase"] == ck["id"] and first["steps"] == ck["meta"]["train"]["steps"]
    assert first["compliance_before"] == ck["meta"]["val_before"].get("compliance")
    assert [x["phase"] for x in E.phase_decisions(d, upto=1)] == [x["phase"] for x in got if x["round"] <= 1]


def test_the_search_table_says_a_phase_whose_candidates_were_all_skipped(run1, tmp_path):
    """Every search logs the phase start's own standing first (`learn.START`): a phase whose every candidate was
    skipped still reads as skipped, not as a table of the start alone (and not a KeyError)."""
    import shutil
    from superalign.loop.learn import START
    d = tmp_path / "run"
    shutil.copytree(run1[0], d)
    s = RunStore(d)
    why = "no training rows under this mix"
    s.run_stage(9, "learn", lambda: {"info": {"phases": [
        {"phase": "conformity", "candidate": START, "cfg": {}, "mix": None, "select": {"compliance": 0.5},
         "score": 2.0}, {"phase": "conformity", "candidate": 0, "skipped": why},
        {"phase": "conformity", "candidate": 1, "skipped": why}]}})
    html = LR.candidates(s)
    assert html is not None and f"Round 9 · conformity</h4><p class=muted>skipped: {why}" in html
