"""Competence scoring a letter prior cannot pass (cloze, letters averaged over rotations) and the judge-free
helpfulness score (issue 22). Fast: fake backends with a known preference, and the tiny random Llama."""
import itertools

import numpy as np
import pytest
import torch

from superalign.data.tasks import LETTERS, mc_prompt
from superalign.evaluation import likelihood, suite


class LetterPrior:
    """A backend that prefers the letter A by a wide margin, plus a small real preference for the option text
    `good`: the letter logit is prior[letter] + (1 if the option under it is `good` else 0)."""

    def __init__(self, good: str, prior=(6.0, 2.0, 0.0, 0.0)):
        self.good, self.prior = good, prior

    def choice_logprobs(self, prompts, choices):
        out = []
        for p, cs in zip(prompts, choices):
            shown = {ln[0]: ln[3:] for ln in p.splitlines() if len(ln) > 3 and ln[1:3] == ". "}
            logits = np.array([self.prior[i] + (shown[c.strip()] == self.good) for i, c in enumerate(cs)])
            out.append(list(logits - np.logaddexp.reduce(logits)))
        return out


def _item(options, label, fmt="letters", i=0):
    return {"id": f"t:{i}", "question": "Which one?", "options": list(options), "label": label, "format": fmt,
            "context": "Question: Which one?\nAnswer:", "prompt": mc_prompt("Which one?", list(options)),
            "choices": [" " + x for x in LETTERS[:len(options)]]}


def test_letter_prior_picks_a_everywhere_but_rotations_cancel_it():
    opts = ["red", "green", "blue"]
    be = LetterPrior(good="green")
    picked_plain, picked_rot = set(), set()
    for k, order in enumerate(itertools.permutations(opts)):
        rec = _item(order, order.index("green"), i=k)
        plain = likelihood.score_choices(be, [{x: v for x, v in rec.items() if x != "options"}])[0]
        rot = likelihood.score_choices(be, [rec])[0]
        assert plain["pred"] == 0  # the plain letter scoring answers "A" whatever is under it
        picked_plain.add(order[plain["pred"]])
        picked_rot.add(order[rot["pred"]])
        assert rot["method"] == "letters" and rot["correct"] == 1.0
    assert len(picked_plain) == 3  # "A" named a different option each time
    assert picked_rot == {"green"}  # the same answer under every order of the options


def _biased(lm, token: str, bias: float):
    """A forward hook on the output layer adding `bias` to one token's logit: the model is forced to prefer it."""
    tid = lm.tokenizer.convert_tokens_to_ids(token)
    add = torch.zeros(len(lm.tokenizer))
    add[tid] = bias
    return lm.model.lm_head.register_forward_hook(lambda m, i, o: o + add.to(o.dtype))


def test_a_real_model_forced_to_prefer_a(tiny):
    recs = [_item(o, 1, i=i) for i, o in enumerate([["cat", "dog", "fish"], ["up", "down", "left"],
                                                    ["one", "two", "three"], ["sun", "moon", "star"]])]
    before = likelihood.score_choices(tiny, recs)
    hook = _biased(tiny, "A", 12.0)
    try:
        plain = likelihood.score_choices(tiny, [{k: v for k, v in r.items() if k != "options"} for r in recs])
        after = likelihood.score_choices(tiny, recs)
        rotated = [likelihood.score_choices(tiny, [dict(r, options=r["options"][s:] + r["options"][:s])])[0]
                   for r in recs for s in range(3)]
    finally:
        hook.remove()
    assert [x["pred"] for x in plain] == [0, 0, 0, 0]
    # the bias on "A" adds the same amount to every option's averaged score: the answers do not move
    assert [x["pred"] for x in after] == [x["pred"] for x in before]
    for b, a in zip(before, after):
        shift = np.subtract(a["scores"], b["scores"])
        assert np.ptp(shift) < 1e-4
    # a cyclic shift of the options is the same set of prompts: the same scores for the same option texts
    for i, r in enumerate(recs):
        for s in range(3):
            x = rotated[3 * i + s]
            moved = r["options"][s:] + r["options"][:s]
            assert x["scores"] == pytest.approx([after[i]["scores"][r["options"].index(o)] for o in moved], abs=1e-5)


class PerChar:
    """Log-prob of a continuation = -rate * its length, the rate per option text: a longer right answer the model
    finds likelier per character loses on the raw sum."""

    def __init__(self, rates):
        self.rates = rates

    def logprobs(self, prompts, completions):
        return [-self.rates[c.strip()] * len(c) for c in completions]


def test_cloze_length_normalisation_picks_the_long_right_answer():
    rec = _item(["no", "a much longer but right answer"], 1, fmt="cloze")
    be = PerChar({"no": 1.0, "a much longer but right answer": 0.5})
    sums = likelihood.continuation_sums(be, [rec["context"]], [[" " + o for o in rec["options"]]])[0]
    assert int(np.argmax(sums)) == 0  # the raw sum prefers the short wrong answer
    res = likelihood.score_choices(be, [rec])[0]
    assert res["method"] == "cloze" and res["pred"] == 1 and res["correct"] == 1.0
    assert res["scores"] == pytest.approx([s / len(o) for s, o in zip(sums, rec["options"])])


def test_a_tie_scores_chance_not_the_first_position():
    class Flat:
        def choice_logprobs(self, prompts, choices):
            return [[0.0] * len(c) for c in choices]
    recs = [_item(["x", "y", "z"], 0, i=i) for i in range(300)]
    acc = np.mean([x["correct"] for x in likelihood.score_choices(Flat(), recs)])
    assert 0.2 < acc < 0.47  # argmax would say "first option" and score 1.0 here


def test_shared_prefix_equals_scoring_pairs(tiny):
    prefixes = ["Question: a?\nAnswer:", "Q", "A longer question with more words?\nAnswer:"]
    conts = [[" yes", " no thanks", ""], [" x"], [" one", " two three four", " five"]]
    shared = tiny.continuation_logprobs(prefixes, conts)
    pairs = tiny.logprobs([p for p, cs in zip(prefixes, conts) for _ in cs], [c for cs in conts for c in cs])
    assert [x for r in shared for x in r] == pytest.approx(pairs, abs=1e-4)


def test_helpfulness_is_higher_for_a_model_that_likes_the_reference(tiny):
    recs = [{"id": f"h:{i}", "chat": [{"role": "user", "content": f"Say something about item {i}."}],
             "reference": "zzz zzz zzz"} for i in range(4)]
    base = likelihood.reference_stage(tiny, recs, {})
    hook = _biased(tiny, "z", 8.0)
    try:
        likes = likelihood.reference_stage(tiny, recs, {})
    finally:
        hook.remove()
    assert all(b["loglik"] < a["loglik"] for b, a in zip(base, likes))
    row = next(r for r in suite.metrics([], {}, likes) if r["name"] == "helpfulness")
    assert row["n"] == 4 and row["lo"] <= row["value"] <= row["hi"] and row["meta"]["ci"] == "bootstrap"
    ch = suite.helpfulness_change({x["id"]: x["loglik"] for x in base}, {x["id"]: x["loglik"] for x in likes})[0]
    assert ch["name"] == "helpfulness_change" and ch["value"] > 0 and 0 <= ch["meta"]["p_value"] <= 1


def test_helpfulness_needs_per_token_scores():
    class Endpoint:
        def logprobs(self, prompts, completions):
            return [0.0] * len(prompts)
    assert likelihood.reference_stage(Endpoint(), [{"id": "a", "chat": [], "reference": "x"}], {}) == []


def test_outcomes_and_compare_carry_helpfulness():
    res = {"items": [], "competence": {"t": [{"id": "1", "correct": 1.0}]},
           "helpfulness": [{"id": "a", "loglik": -2.0}, {"id": "b", "loglik": -1.0}]}
    out = suite.outcomes(res)
    assert out["helpfulness"] == {"a": -2.0, "b": -1.0}
    later = dict(out, helpfulness={"a": -1.5, "b": -0.5})
    names = {r["name"] for r in suite.compare(out, later)}
    assert {"competence_change", "helpfulness_change"} <= names


def test_tasks_carry_both_forms_and_the_benign_pool_no_untrained_task():
    from superalign import data
    for name in ("socialiqa", "mmlu", "capitals", "wordassoc", "quartz", "sarcasm"):
        for r in data.load(name, "test", seed=0)[:50]:
            assert 0 <= r["label"] < len(r["options"]) == len(r["choices"])
            assert likelihood.method(r) in likelihood.FORMATS
    assert data.load_all("quartz")[0]["format"] == "letters"  # trained lettered: scored lettered, rotated
    for name in ("capitals", "wordassoc"):  # built or answer-last sources: the gold position is spread
        gold = [r["label"] for r in data.load_all(name)]
        assert max(np.bincount(gold)) / len(gold) < 0.4
    assert not any(r["source"].startswith("evals:socialiqa") for r in data.load_all("benign_easy"))
