"""Sandwiching: questions, quote verification, the four conditions, store rows, report, human judge."""
import numpy as np
import pytest

from superalign import config as C, data, review
from superalign.errors import SuperalignError
from superalign.paradigms import sandwich as S
from superalign.store import RunStore


@pytest.fixture(scope="module")
def rows():
    return data.load_all("countries")


def test_source_texts_state_every_fact(rows):
    assert len(rows) > 200
    r = next(x for x in rows if x["name"] == "France")
    assert "Its capital city is Paris." in r["text"] and r["facts"]["currency"] == "EUR"
    assert " ".join(r["sentences"]) == r["text"]


def test_items_are_answerable_only_from_the_text(rows):
    items = S.build_items(rows, 40, list(S.QUESTIONS), seed=3)
    assert len(items) == 40 and {it.fact for it in items} == set(S.QUESTIONS)
    for it in items:
        right, wrong = it.options[it.label], it.options[1 - it.label]
        assert right in it.source and wrong not in it.source and right != wrong
    assert [it.options for it in S.build_items(rows, 40, list(S.QUESTIONS), seed=3)] == [it.options for it in items]
    assert 10 < sum(it.label for it in items) < 30  # option order is shuffled


def test_quotes_are_verified_by_exact_match():
    src = "Its capital city is Paris. Its currency has the ISO code EUR."
    assert S.mark("Its capital city is Paris.", src) == "<quote verified>Its capital city is Paris.</quote>"
    assert "unverified" in S.mark("Its capital city is Lyon.", src)
    assert "unverified" in S.mark("its capital city is paris.", src)  # exact, not fuzzy
    assert not S.verified("  ", src)


def test_speakers_pick_their_best_unused_quote():
    pref = np.array([0.5, 3.0, -2.0, 1.0])
    assert S.pick_quote(pref, 0, set()) == 1 and S.pick_quote(pref, 1, set()) == 2
    assert S.pick_quote(pref, 0, {1}) == 3 and S.pick_quote(pref, 1, {2}) == 0


def test_config_is_strict():
    with pytest.raises(SuperalignError, match=r"oversight\.sandwich\.qestions: unknown key"):
        S.parse_config({"sandwich": {"qestions": 3}})
    with pytest.raises(SuperalignError, match=r"oversight\.sandwich\.consultant_side"):
        S.parse_config({"sandwich": {"consultant_side": "always-right"}})
    assert S.parse_config({}).review.host == "127.0.0.1"


class Reader:
    """A scripted model with perfect reading and no knowledge: an option scores by how often it
    appears in the prompt outside the options line. It can answer only from what it is shown."""
    name = "reader"

    def logprobs(self, prompts, completions):
        out = []
        for p, c in zip(prompts, completions):
            seen = "\n".join(l for l in p.splitlines() if not l.startswith("Options:"))
            out.append(float(seen.count(c.strip())) - 1.0)
        return out


class Talker:
    """A backend without log-probs: its generated answers must be parsed, and may not parse."""
    name = "talker"

    def __init__(self, replies):
        self.replies = replies

    def logprobs(self, prompts, completions):
        raise SuperalignError("endpoint does not return echoed prompt log-probs", "")

    def generate(self, prompts, params):
        return [self.replies[i % len(self.replies)] for i in range(len(prompts))]


def test_debate_lets_a_blind_judge_use_verified_quotes(rows):
    cfg = S.SandwichConfig(questions=30, rounds=1)
    res = S.run_seed(cfg, Reader(), Reader(), rows, seed=1)
    acc = {c: np.mean(v) for c, v in res["correct"].items()}
    assert acc["strong"] == 1.0 and acc["debate"] == 1.0  # the honest debater quotes the answer
    assert acc["judge"] < 0.8  # blind: it cannot know
    # this judge believes whoever it hears: right exactly when the (random-side) consultant was honest
    honest = [int(side == it.label) for side, it in zip(res["consultant_sides"], res["items"])]
    assert res["correct"]["consultancy"] == honest and 0 < sum(honest) < 30
    t = res["transcripts"]["debate"][0]
    assert t.count("<quote verified>") == 2 and "unverified>" not in t
    own = S.run_seed(S.SandwichConfig(questions=30, rounds=1, consultant_side="own"), Reader(), Reader(), rows, 1)
    assert np.mean(own["correct"]["consultancy"]) == 1.0


def test_unparseable_answers_are_errors_counted_wrong(rows):
    items = S.build_items(rows, 3, ["capital"], seed=0)
    good = items[0].options[items[0].label]
    picks = S.decide(Talker([f"It is {good}.", "no idea", " / ".join(items[2].options)]),
                     [S.mc_prompt(it) for it in items], items)
    assert picks == [items[0].label, None, None]


def test_run_on_tiny_model_writes_store_report_and_human_queue(tmp_path, rows, tiny):
    from superalign.paradigms import oversight_report  # noqa: F401  (registers the sections)
    from superalign.experiments import build_report as build
    cfg = C.parse({"roles": {"judge": {"backend": "local", "model": "tiny-random", "device": "cpu"},
                             "strong": {"backend": "local", "model": "tiny-random", "device": "cpu"}},
                   "oversight": {"sandwich": {"questions": 4, "rounds": 1, "seeds": [0, 1], "argue_tokens": 6,
                                              "human_items": 2}}})
    store = RunStore(tmp_path / "run", create=True)
    res = S.run(cfg, store)
    for s in (0, 1):
        assert set(res["per_seed"][s]) == set(S.CONDITIONS)
        for acc, lo, hi, n, err in res["per_seed"][s].values():
            assert 0 <= lo <= acc <= hi <= 1 and n == 4 and err == 0
    summ = {m["name"]: m for m in store.rows("metrics", stage="sandwich/summary")}
    assert {"sandwich/debate/accuracy", "sandwich/gain/debate", "sandwich/gain/consultancy"} <= set(summ)
    g = [res["per_seed"][s]["debate"][0] - max(res["per_seed"][s]["judge"][0], res["per_seed"][s]["strong"][0])
         for s in (0, 1)]
    assert summ["sandwich/gain/debate"]["value"] == pytest.approx(np.mean(g))
    resp = store.rows("responses", where="id LIKE ?", params=("%:debate",))
    assert len(resp) == 8 and all(r["text"].count("<quote ") >= 2 for r in resp) and resp[0]["seed"] in (0, 1)
    # resuming does not redo finished seeds
    n_rows = len(store.rows("responses"))
    S.run(cfg, store)
    assert len(store.rows("responses")) == n_rows and len(store.rows("metrics", stage="sandwich/summary")) == len(summ)
    # the queued debates are judged on the review page, then scored against gold
    queued = store.rows("labels", stage="sandwich/human")
    assert len(queued) == 2 and queued[0]["meta"]["head"] == "sandwich" and len(queued[0]["meta"]["options"]) == 2
    it = review.claim(store, "ann")
    assert it["options"] and "<quote" in it["response"]
    target = next(q["target_id"] for q in queued if q["id"] == it["id"])
    gold = store.rows("prompts", id=target.rsplit(":", 1)[0])[0]["meta"]["label"]
    review.submit(store, it["id"], "ann", float(gold))
    assert S.human_accuracy(store) == (1, [1])
    store.close()
    html = build(tmp_path / "run").read_text()
    assert "Scalable oversight: sandwiching" in html and "gain: debate" in html and "Human judges" in html
    assert "Human review queue" in html and "ann" in html
