import json

import pytest

from superalign import data
from superalign.errors import SuperalignError

# After dropping exact duplicates (same question and options), which would leak across splits:
# MMLU 14,042 -> 13,937, QuaRTz 3,860 -> 3,844, Social IQa 2,224 -> 2,203.
EXPECTED = {"advbench": 520, "harmbench": 200, "mmlu": 13937, "quartz": 3844, "socialiqa": 2203,
            "pyrit_seeds": 35}  # PyRIT's AI Red Team objectives: a small curated set, counted exactly


@pytest.mark.parametrize("name,n", EXPECTED.items())
def test_counts(name, n):
    rows = data.load_all(name)
    assert len(rows) == n
    assert all(r["source"] and r["prompt"] for r in rows)


def test_every_registered_set_loads_with_sources():
    for name in data.names():
        rows = data.load_all(name)
        assert len(rows) > 100 or len(rows) == EXPECTED.get(name), name
        assert len({r["id"] for r in rows}) == len(rows), f"{name} ids not unique"


def test_task_records_are_well_formed():
    for name in data.names("task"):
        for r in data.load(name, "test", limit=50):
            assert 0 <= r["label"] < len(r["choices"])
    s = data.load_all("sarcasm")
    assert 28000 < len(s) <= 28614 and {r["label"] for r in s} == {0, 1}


def test_wordswap_swaps_one_neighbouring_pair_of_the_headline():
    """W2S's word-order task: a label-1 text is its sarcasm headline with exactly one pair of neighbouring (different)
    words exchanged, a label-0 text the headline itself; the draw is fixed by the headline and roughly balanced."""
    from superalign.data.tasks import swap_neighbours
    assert swap_neighbours(["a", "a", "a"], "s") is None
    words, i = swap_neighbours(["one", "two", "two", "three"], "s")
    assert i in (0, 2) and sorted(words) == ["one", "three", "two", "two"] and words != ["one", "two", "two", "three"]
    heads = {" ".join(r["input"][-1]["content"].split()) for r in data.tasks._evals("sarcasm/samples.jsonl")}
    rows = data.load_all("wordswap")
    assert 0.45 < sum(r["label"] for r in rows) / len(rows) < 0.55
    for r in rows[:2000]:
        if r["label"] == 0:
            assert " ".join(r["text"].split()) in heads and "swapped_at" not in r
            continue
        w, i = r["text"].split(), r["swapped_at"]
        back = " ".join(w[:i] + [w[i + 1], w[i]] + w[i + 2:])
        assert back in heads and back != r["text"] and w[i].lower() != w[i + 1].lower()
    fresh = data.tasks._wordswap()  # built again from the wheel (load_all reads its disk cache): the same draw
    assert [r["text"] for r in fresh[:50]] == [r["text"] for r in rows[:50]]


def test_judge_labels_are_human_scores():
    for name in data.names("judge"):
        rows = data.load_all(name)
        assert all(0.0 <= r["label"] <= 1.0 and r["response"] for r in rows)
        assert 0.1 < sum(r["label"] >= 0.5 for r in rows) / len(rows) < 0.9


def test_splits_are_disjoint_and_fixed_by_seed():
    parts = {s: {r["id"] for r in data.load("advbench", s, seed=3)} for s in ("train", "val", "test")}
    assert not (parts["train"] & parts["test"]) and not (parts["val"] & parts["test"])
    assert sum(map(len, parts.values())) == 520
    assert parts["test"] == {r["id"] for r in data.load("advbench", "test", seed=3)}
    assert parts["test"] != {r["id"] for r in data.load("advbench", "test", seed=4)}


def test_records_of_one_group_share_a_split(tmp_path):
    f = tmp_path / "passages.jsonl"
    f.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"question {i}", "group": f"p{i // 4}"}) + "\n"
                         for i in range(200)))
    for seed in range(3):
        parts = {s: data.load(str(f), s, seed=seed) for s in ("train", "val", "test")}
        where = {}
        for s, rows in parts.items():
            for r in rows:
                where.setdefault(r["group"], set()).add(s)
        assert all(len(v) == 1 for v in where.values())
        assert sum(map(len, parts.values())) == 200 and all(len(rows) > 20 for rows in parts.values())


def test_a_set_without_shared_groups_splits_as_before():
    """Social IQa's stories each carry one question here: its group field must not move any item between splits
    (the evaluation items of earlier runs stay the same)."""
    import random
    rows = sorted(data.load_all("socialiqa"), key=lambda r: r["id"])
    assert len({r["group"] for r in rows}) == len(rows)
    random.Random(5).shuffle(rows)
    assert [r["id"] for r in data.load("socialiqa", "test", seed=5)] == [r["id"] for r in rows[int(0.8 * len(rows)):]]


def test_local_jsonl_and_csv(tmp_path):
    j = tmp_path / "x.jsonl"
    j.write_text(json.dumps({"question": "why?", "label": 1}) + "\n")
    assert data.load(str(j))[0]["prompt"] == "why?"
    c = tmp_path / "x.csv"
    c.write_text("prompt,label\nhello,0\n")
    assert data.load(str(c))[0]["source"] == str(c)


def test_corrupt_and_unknown_data_are_clear_errors(tmp_path):
    j = tmp_path / "bad.jsonl"
    j.write_text('{"prompt": "ok"}\n{not json\n')
    with pytest.raises(SuperalignError, match="corrupt"):
        data.load(str(j))
    with pytest.raises(SuperalignError, match="unknown data set"):
        data.load("no_such_set")


@pytest.mark.parametrize("text, words", [
    ('{"prompt": "a"}\n\n{"prompt": "b"\n', ("corrupt", "line 3,")),  # the file's line, not json's `line 1`
    ('[{"prompt": "a"}, {"prompt": "b"}]\n', ("line 1", "JSON list, not an object")),  # a JSON array saved as .jsonl
    ('{"prompt": "a"}\n"b"\n', ("line 2", "JSON str, not an object")),
])
def test_a_bad_jsonl_line_is_named_by_its_line_in_the_file(tmp_path, text, words):
    j = tmp_path / "bad.jsonl"
    j.write_text(text)
    with pytest.raises(SuperalignError) as e:
        data.load(str(j))
    assert str(j) in e.value.problem and all(w in e.value.problem for w in words), e.value.problem
    assert e.value.fix
    with pytest.raises(SuperalignError, match="unknown split"):
        data.load("advbench", "dev")
