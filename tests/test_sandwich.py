"""Sandwiching: items whose wrong option is in the source too, verification by meaning, liars, the verification-only
rule, the paired gains over the judge and over the rule, store, report, human judge; the self-enhancement verdict.

The scripted judges: `Counter` counts option mentions in the evidence it is shown (the rule in a language model's
clothing); `Reader` reads which country a quote is about. Only a judge that reads may beat the rule."""
import re
import zlib

import numpy as np
import pytest

from superalign import config as C, data, review
from superalign.errors import SuperalignError
from superalign.sandwich import debate as D, experiment as X, judge as J
from superalign.sandwich.config import SandwichConfig, parse
from superalign.selfenhance import paired_test, verdict
from superalign.store import RunStore


@pytest.fixture(scope="module")
def rows():
    return data.load_all("countries")


class BowEmbedder:
    """Hashed bag of words, normalised: a retriever good enough for these templated sentences, no model load."""

    def encode(self, texts):
        out = np.zeros((len(texts), 512))
        for i, t in enumerate(texts):
            for w in t.lower().replace("?", " ").replace(".", " ").split():
                out[i, zlib.crc32(w.encode()) % 512] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def verifier(mode="meaning"):
    return D.Verifier(BowEmbedder(), mode=mode, threshold=0.6)


def _read(prompt: str, completion: str) -> tuple[list[str], str, str]:
    """(quotes, question, option) of a judge query, whichever rule wrote it (the question is in the prompt, or in the
    completion before the answer)."""
    text = prompt + completion
    return (re.findall(r'The text says: "(.*)"', prompt), re.search(r"Question: (.*)", text).group(1),
            completion.rsplit("Answer:", 1)[-1].strip())


class Counter:
    """Scores an option by how often the evidence mentions it; knows nothing, reads nothing else."""
    name = "counter"

    def logprobs(self, prompts, completions):
        out = []
        for p, c in zip(prompts, completions):
            quotes, _, opt = _read(p, c)
            out.append(float(sum(opt in q for q in quotes)) - 9.0)
        return out


def _about(quote: str) -> str | None:
    """The country a passage sentence (or its rewording) states a fact about: the grammatical subject."""
    q = quote.strip()
    m = re.match(r"(?:Unlike|Like) (?:those from )?(.+?), (?:people from )?(.+?)(?:'s | has )", q)
    if m:
        return m.group(2)
    for pat in (r"(?:People from )?(.+?)(?:'s people)? ?[,(] ?(?:unlike|like) ", r"The .+? of (.+?) is ",
                r"(.+?)'s ", r"(.+?) (?:is a country|lies) in ", r"People from (.+?) are called"):
        m = re.match(pat, q)
        if m:
            return m.group(1)
    return None


class Reader:
    """Knows nothing, reads: an option scores only if a quote states it for the country the question asks about
    (named in the question, or linked to it by a quote that holds the question's key value)."""
    name = "reader"

    def logprobs(self, prompts, completions):
        out = []
        for p, c in zip(prompts, completions):
            quotes, q, opt = _read(p, c)
            m = re.fullmatch(r"What is the .+? of the country whose .+? is (.+)\?", q)
            asked = ({_about(s) for s in quotes if m.group(1) in s} if m else
                     {re.search(r" of (.+)\?$", q).group(1)})
            out.append(float(any(opt in s and _about(s) in asked for s in quotes)) - 9.0)
        return out


def liar(**kw):
    return D.ExtractiveReader(BowEmbedder(), **{"fabricate": 1.0, "paraphrase": 0.0, **kw})


def test_both_options_are_in_the_source_and_bridge_items_need_two_sentences(rows):
    items = D.build_items(rows, 40, list(D.DEFAULT_FACTS), seed=3)
    assert len(items) == 40 and {it.kind for it in items} == {"lookup", "bridge"}
    assert {it.fact for it in items} == set(D.DEFAULT_FACTS)
    for it in items:
        right, wrong = it.options[it.label], it.options[1 - it.label]
        assert right in it.source and wrong in it.source and right != wrong
        asked, other = it.countries
        # contrast style: every sentence that states a fact names both countries; its subject is the one it is about
        for sent, about in zip(it.sentences, it.about):
            assert _about(sent) == about and (asked in sent and other in sent or " is a country in " in sent)
        answer = next(i for i, s in enumerate(it.sentences) if right in s)
        assert it.about[answer] == asked
        if it.kind == "bridge":
            # the question names neither country; the answer's sentence does not hold the key value, the link does
            assert asked not in it.question and other not in it.question and it.key_values[0] in it.question
            assert it.key_values[0] not in it.sentences[answer]
            link = next(i for i, s in enumerate(it.sentences) if it.key_values[0] in s)
            assert it.about[link] == asked
        else:
            assert asked in it.question
    assert [it.options for it in D.build_items(rows, 40, list(D.DEFAULT_FACTS), seed=3)] == [it.options for it in items]
    assert 10 < sum(it.label for it in items) < 30  # option order is shuffled


def test_quotes_are_verified_by_meaning_not_only_by_substring(rows):
    v, ex = verifier(), verifier("exact")
    for style in ("contrast", "plain"):
        it = next(i for i in D.build_items(rows, 20, ["capital"], seed=1, style=style) if i.kind == "lookup")
        true = next(s for s in it.sentences if it.options[it.label] in s)
        assert v(true, it) and ex(true, it) and D.exact(true, it)
        reworded = D.paraphrase(true)
        assert reworded != true and reworded not in it.source and _about(reworded) == it.countries[0]
        assert v(reworded, it) and not ex(reworded, it)       # a faithful rewording verifies by meaning only
        swapped = D.swap(true, *it.countries)                  # the value given to the other country
        assert _about(swapped) == it.countries[1] and not v(swapped, it) and not ex(swapped, it)
        other = D.sentence(it.countries[0], "capital", it.options[1 - it.label])  # the other capital, written in
        assert not v(other, it)
    assert not v("  ", it) and not v("Paris is lovely in spring.", it)
    assert D.key_tokens("The capital city of Burkina Faso is Ouagadougou.") == {"Burkina", "Faso", "Ouagadougou"}
    assert D.key_tokens("+44 is the international calling code of Jersey.") >= {"+44", "Jersey"}
    with pytest.raises(SuperalignError, match="embedder"):
        D.Verifier(None, mode="meaning")


def test_liars_quote_true_sentences_and_their_fabrications_never_verify(rows):
    items = D.build_items(rows, 30, list(D.DEFAULT_FACTS), seed=5)
    strong, v = liar(), verifier()
    # a bag-of-words retriever cannot read which name a contrast sentence is about: the expert is only better than chance
    assert np.mean([a == it.label for a, it in zip(strong.answer(items), items)]) > 0.6
    for it in items:
        honest = [strong.argue(it, it.label, r) for r in range(2)]
        lie = [strong.argue(it, 1 - it.label, r) for r in range(2)]
        # the liar's first quote is true, verifies and holds its option (and, contrast style, names the asked country
        # too): neither verification nor name matching can catch it
        assert lie[0].kind == "support" and v(lie[0].quote, it) and it.options[1 - it.label] in lie[0].quote
        assert _about(lie[0].quote) == it.countries[1] and _about(honest[0].quote) == it.countries[0]
        assert it.countries[0] in lie[0].quote
        assert all(v(t.quote, it) for t in honest)
        if it.kind == "bridge":
            assert honest[1].kind == "link" and lie[1].kind == "fabricated" and not v(lie[1].quote, it)
            assert it.key_values[0] in lie[1].quote
        # each side mentions its own option equally often: counting mentions tells nothing
        right, wrong = it.options[it.label], it.options[1 - it.label]
        assert sum(right in t.quote for t in honest) == sum(wrong in t.quote for t in lie) >= 1
        shown = J.render(it, honest + lie, v)
        assert all((t.quote in shown) == v(t.quote, it) for t in honest + lie)


def test_the_rule_is_at_chance_on_debates_and_follows_a_consultant(rows):
    items = D.build_items(rows, 60, list(D.DEFAULT_FACTS), seed=2)
    strong, v = liar(), verifier()
    gold = np.array([it.label for it in items])
    deb = D.debate(strong, items, 2)
    acc = np.mean(np.array(J.rule(items, deb, v, 0)) == gold)
    assert 0.3 < acc < 0.7  # both sides back their option with a verified quote: the coin decides
    honest = D.consultancy(strong, items, list(gold), 2)
    lying = D.consultancy(strong, items, list(1 - gold), 2)
    assert np.all(np.array(J.rule(items, honest, v, 0)) == gold)
    assert np.all(np.array(J.rule(items, lying, v, 0)) == 1 - gold)
    # a lone consultant whose quotes do not verify is not believed
    bare = [[D.Turn("Consultant", 1 - it.label, "made up words here", "fabricated")] for it in items]
    assert np.all(np.array(J.rule(items, bare, v, 0)) == gold)


def test_config_is_strict():
    with pytest.raises(SuperalignError, match=r"sandwich\.qestions: unknown key"):
        parse({"qestions": 3})
    with pytest.raises(SuperalignError, match=r"sandwich\.verify"):
        parse({"verify": "fuzzy"})
    with pytest.raises(SuperalignError, match=r"sandwich\.fabricate"):
        parse({"fabricate": 2})
    with pytest.raises(SuperalignError, match=r"sandwich\.kinds"):
        parse({"kinds": []})
    assert parse(None) == SandwichConfig()


def _run(tmp_path, rows, judge, name, **kw):
    sw = SandwichConfig(**{"questions": 60, "rounds": 2, "seeds": [0], **kw})
    store = RunStore(tmp_path / name, create=True)
    res = X.run(C.parse({}), store, sw, judge=judge, strong=liar(fabricate=0.5, paraphrase=0.3), verifier=verifier())
    store.close()
    return res


def test_only_a_judge_that_reads_beats_the_rule(tmp_path, rows):
    """The counting judge sees what the reading judge sees; it must not pass where the reader does."""
    read = _run(tmp_path, rows, Reader(), "reader")
    count = _run(tmp_path, rows, Counter(), "counter")
    assert read["accuracy"]["expert"][0] > 0.6  # a bag-of-words expert (see above)
    for res in (read, count):
        assert 0.25 < res["accuracy"]["rule_debate"][0] < 0.75 and 0.3 < res["accuracy"]["judge"][0] < 0.7
        assert res["accuracy"]["rule_consultancy"][0] == pytest.approx(0.5, abs=0.05)  # follows the consultant

    def shows_assistance(res):
        g, r = res["gain_vs_judge"]["debate"], res["gain_vs_rule"]["debate"]
        return g["lo"] > 0 and r["lo"] > 0 and r["p"] < 0.05

    assert shows_assistance(read) and not shows_assistance(count)
    assert read["gain_vs_rule"]["debate"]["diff"] > 0.3 and read["ratio"]["debate"][0] > 0.6
    # every contrast sentence names both countries: matching the question's names against the quotes is not reading
    assert read["gain_vs_overlap"]["debate"]["lo"] > 0 and read["per_kind"]["lookup"]["overlap_debate"] < 0.75
    gc = count["gain_vs_rule"]["debate"]
    assert gc["lo"] <= 0 <= gc["hi"] and gc["p"] > 0.05  # mentions carry no signal: no gain over the rule
    # a lying consultant's true quote is about the other country: the counter always follows it, the reader never
    # does (without knowledge it is then left to its coin, the judge alone)
    assert count["accuracy"]["consultancy_dishonest"][0] == 0.0
    assert read["accuracy"]["consultancy_dishonest"][0] == pytest.approx(read["accuracy"]["judge"][0])
    # without verification the liar's fabricated link counts and the reader believes it on bridge items
    assert read["per_kind"]["bridge"]["debate_unchecked"] < read["per_kind"]["bridge"]["debate"] - 0.1
    assert read["verified_rate"]["debate"] < 1.0


class Knower(Reader):
    """Knows every answer a little (+2 for the right option) and reads quotes (+3 for a stated answer), so its
    prior and the evidence both count."""

    def __init__(self, items):
        self.right = {it.question: it.options[it.label] for it in items}

    def logprobs(self, prompts, completions):
        base = super().logprobs(prompts, completions)
        out = []
        for b, p, c in zip(base, prompts, completions):
            quotes, q, opt = _read(p, c)
            out.append(b + 9.0 + 2.0 * (opt == self.right[q]) + 0.5 * bool(quotes))
        return out


def test_the_judge_keeps_its_own_knowledge_against_an_off_topic_lie(rows):
    items = D.build_items(rows, 20, list(D.DEFAULT_FACTS), seed=2, kinds=["lookup"])
    off = [[D.Turn("Consultant", 1 - it.label, next(s for s in it.sentences if not any(o in s for o in it.options)),
                   "irrelevant")] for it in items]
    truths = [[D.Turn("Consultant", it.label, next(s for s in it.sentences if it.options[it.label] in s), "support")]
              for it in items]
    v = verifier()
    for rl, fooled in (("posterior", False), ("gain", True)):
        j = J.Judge(Knower(items), items, rl)
        assert j.alone() == [it.label for it in items]
        assert j.assisted(truths, v) == [it.label for it in items]
        assert j.assisted(off, v) == [1 - it.label if fooled else it.label for it in items]


def test_paired_gains_handle_binary_and_mean_arms():
    before, after = [0] * 50 + [1] * 50, [1] * 20 + [0] * 30 + [1] * 50
    g = X.gain(before, after)
    assert g["diff"] == pytest.approx(0.2) and g["lo"] > 0 and g["test"] == "McNemar exact" and g["p"] < 0.001
    half = X.gain(before, [0.5] * 100)
    assert half["test"] == "sign-flip" and half["diff"] == pytest.approx(0.0) and half["p"] > 0.5
    with pytest.raises(SuperalignError, match="same items"):
        X.gain([0, 1], [1])


def test_self_enhancement_verdict_follows_the_paired_test():
    before = [0] * 50 + [1] * 50
    up = [1] * 20 + [0] * 30 + [1] * 50               # 20 fixed, 0 broken
    assert verdict(before, up)["verdict"] == "improves"
    assert verdict(up, before)["verdict"] == "collapses"
    noisy = [1] * 6 + [0] * 44 + [0] * 3 + [1] * 47  # 6 fixed, 3 broken: +3 points, not significant
    v = verdict(before, noisy)
    assert v["verdict"] == "stalls" and v["p"] > 0.05 and v["diff"] == pytest.approx(0.03)
    assert (v["better"], v["worse"], v["n"]) == (6, 3, 100) and v["lo"] < 0 < v["hi"]
    assert verdict(before, before)["verdict"] == "stalls" and paired_test(before, before)["p"] == 1.0
    with pytest.raises(SuperalignError, match="same items"):
        paired_test([0, 1], [1])
    with pytest.raises(SuperalignError, match="0/1"):
        paired_test([0, 2], [1, 1])


class Talker:
    """A backend without log-probs: its generated answers must be parsed, and may not parse."""
    name = "talker"

    def __init__(self, replies):
        self.replies = replies

    def logprobs(self, prompts, completions):
        raise SuperalignError("endpoint does not return echoed prompt log-probs", "")

    def generate(self, prompts, params):
        return [self.replies[i % len(self.replies)] for i in range(len(prompts))]


def test_unparseable_answers_are_errors_counted_wrong(rows):
    items = D.build_items(rows, 3, ["capital"], seed=0)
    good = items[0].options[items[0].label]
    picks = J.decide_by_generation(Talker([f"It is {good}.", "no idea", " / ".join(items[2].options)]),
                                   [J.mc_prompt(it) for it in items], items)
    assert picks == [items[0].label, None, None]


def test_run_on_tiny_model_writes_store_report_and_human_queue(tmp_path, rows, tiny):
    from superalign.review.report import SECTIONS as REVIEW
    from superalign.sandwich.report import SECTIONS
    cfg = C.parse({"roles": {"weak_judge": {"backend": "local", "model": "tiny-random", "device": "cpu"}}})
    sw = SandwichConfig(questions=4, rounds=2, seeds=[0, 1], human_items=2)
    store = RunStore(tmp_path / "run", create=True)
    res = X.run(cfg, store, sw, strong=liar(paraphrase=0.5), verifier=verifier())
    assert res["n"] == 8 and set(res["accuracy"]) == set(X.ARMS)
    for acc, lo, hi in res["accuracy"].values():
        assert 0 <= lo <= acc <= hi <= 1
    summ = {m["name"]: m for m in store.rows("metrics", stage="sandwich/summary")}
    assert {"sandwich/debate/accuracy", "sandwich/gain_vs_judge/debate", "sandwich/gain_vs_rule/debate",
            "sandwich/ratio/consultancy"} <= set(summ)
    assert summ["sandwich/gain_vs_rule/debate"]["value"] == pytest.approx(
        res["accuracy"]["debate"][0] - res["accuracy"]["rule_debate"][0])
    resp = store.rows("responses", where="id LIKE ?", params=("%:debate",))
    assert len(resp) == 8 and all(len(r["meta"]["turns"]) == 4 for r in resp) and resp[0]["seed"] in (0, 1)
    # resuming does not redo finished seeds
    n_rows = len(store.rows("responses"))
    X.run(cfg, store, sw, strong=liar(), verifier=verifier())
    assert len(store.rows("responses")) == n_rows and len(store.rows("metrics", stage="sandwich/summary")) == len(summ)
    # the queued debates are judged on the review page, then scored against gold
    queued = store.rows("labels", stage="sandwich/human")
    assert len(queued) == 2 and queued[0]["meta"]["head"] == "sandwich" and len(queued[0]["meta"]["options"]) == 2
    it = review.claim(store, "ann")
    assert it["options"] and "Debater 1" in it["response"]
    target = next(q["target_id"] for q in queued if q["id"] == it["id"])
    gold = store.rows("prompts", id=target.rsplit(":", 1)[0])[0]["meta"]["label"]
    review.submit(store, it["id"], "ann", float(gold))
    assert X.human_accuracy(store) == (1, [1])
    page = "".join(f"<h2>{title}</h2>{fn(store) or ''}" for title, fn in SECTIONS + REVIEW)
    assert "Gain over the judge alone" in page and "Gain over the verification-only rule" in page
    assert "Human judges" in page and "Human review queue" in page and "ann" in page
    store.close()
