"""`superalign export` round-trips a run's store through files `datasets` loads; `runs compare` across seeds."""
import json

import pytest

from superalign.errors import SuperalignError
from superalign.store import RunStore
from superalign.store import export as E


def _fill(d, seed: int, compliance: list[float]):
    s = RunStore(d, create=True)
    s.put("name", "demo")
    s.put("seed", seed)
    lin = dict(role="attacker", model="tiny-random", seed=seed)
    s.insert("prompts", [{"id": "p1", "kind": "attack", "text": "harmful request, with a comma", "category": "c",
                          "meta": {"style": "direct"}},
                         {"id": "p2", "kind": "benign", "text": 'a "quoted"\nbenign request', "category": None}],
             round=1, stage="attack", **lin)
    s.insert("responses", [{"id": "r1", "prompt_id": "p1", "sample": 0, "text": "sure, here is"},
                           {"id": "r2", "prompt_id": "p2", "sample": 0, "text": "I'm sorry, I can't help"},
                           {"id": "r3", "prompt_id": "p2", "sample": 1, "text": "Here is a clear answer."}],
             round=1, stage="respond", role="learner", model="tiny-random", seed=seed)
    s.insert("critiques", [
        {"id": "c1", "response_id": "r1", "text": "unsafe", "better_response": "I can't help with that.",
         "meta": {"pair": True, "utility": 0.1, "better_utility": 0.9, "kind": "attack"}},
        {"id": "c2", "response_id": "r2", "text": "over-refusal", "better_response": "Here is a clear answer.",
         "meta": {"pair": True, "utility": 0.0, "better_utility": 0.8, "kind": "benign"}},
        {"id": "c3", "response_id": "r3", "text": "helpful", "better_response": None,
         "meta": {"pair": False, "utility": 0.8, "kind": "benign"}}], round=1, stage="critique", role="critic",
             model="classifier", seed=seed)
    s.insert("labels", [{"id": "l1", "target_id": "r1", "status": "done", "label": 1.0, "labeler": "ann"}],
             round=1, stage="escalate", seed=seed)
    (s.dir / "training").mkdir()
    (s.dir / "training" / "r1-conformity.jsonl").write_text(json.dumps(
        {"prompt": "<user>harmful request", "chosen": "I can't help with that.", "rejected": "sure, here is"}) + "\n")
    s.insert("checkpoints", [{"id": "r1:conformity", "path": None, "phase": "conformity", "accepted": 0,
                              "meta": {"rows": "training/r1-conformity.jsonl", "method": "dpo"}}],
             round=1, stage="learn", role="learner", model="tiny-random", seed=seed)
    for rnd, a in enumerate(compliance):
        s.insert("metrics", [{"name": "compliance", "value": a, "lo": a - 0.1, "hi": a + 0.1, "n": 20},
                             {"name": "competence", "value": 0.5, "lo": 0.4, "hi": 0.6, "n": 40}],
                 round=rnd, stage="eval", seed=seed)
    s.close()


def test_collect_builds_pairs_and_sft_rows(tmp_path):
    _fill(tmp_path / "r", 0, [0.5, 0.3])
    s = RunStore(tmp_path / "r")
    d = E.collect(s, ["pairs", "sft"])
    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in d["pairs"]] == [
        ("harmful request, with a comma", "I can't help with that.", "sure, here is"),
        ('a "quoted"\nbenign request', "Here is a clear answer.", "I'm sorry, I can't help")]
    assert [(x["prompt"], x["completion"], x["utility"]) for x in d["sft"]] == [
        ('a "quoted"\nbenign request', "Here is a clear answer.", 0.8)]
    with pytest.raises(SuperalignError, match="unknown table"):
        E.collect(s, ["nope"])


def _cell(v):
    if v is None or v == "":
        return None
    try:
        return round(float(v), 9)
    except (TypeError, ValueError):
        return str(v)


@pytest.mark.parametrize("fmt", ["jsonl", "hf", "csv"])
def test_export_round_trips_through_datasets(tmp_path, fmt):
    import datasets
    _fill(tmp_path / "r", 0, [0.5, 0.3])
    counts = E.export(tmp_path / "r", tmp_path / "out", fmt)
    assert counts["training"] == 1 and counts["checkpoints"] == 1  # what the phase trained on, though rolled back
    assert counts["pairs"] == 2 and counts["responses"] == 3 and counts["metrics"] == 4 and counts["scores"] == 0
    want = E.collect(RunStore(tmp_path / "r"))
    for table, rows in want.items():
        if not rows:  # `datasets` loads no empty split back; the hf export leaves empty tables out
            assert fmt != "hf" or table not in datasets.load_from_disk(str(tmp_path / "out"))
            continue
        if fmt == "hf":
            got = list(datasets.load_from_disk(str(tmp_path / "out"))[table])
        else:
            got = list(datasets.load_dataset(fmt if fmt != "jsonl" else "json",
                                             data_files=str(tmp_path / "out" / f"{table}.{fmt}"), split="train"))
        if fmt == "csv":  # CSV has no types: compare as text with numbers as numbers, empty cell = None
            rows, got = [[{k: _cell(v) for k, v in r.items()} for r in x] for x in (rows, got)]
        assert got == rows, table
    if fmt == "jsonl":
        meta = json.loads(json.loads((tmp_path / "out" / "critiques.jsonl").read_text().splitlines()[0])["meta"])
        assert meta["better_utility"] == 0.9


def test_runs_compare_groups_seeds_with_paired_change(tmp_path):
    from superalign.report import compare
    _fill(tmp_path / "a", 0, [0.5, 0.4, 0.3])
    _fill(tmp_path / "b", 1, [0.6, 0.5, 0.2])
    (tmp_path / "empty").mkdir()
    RunStore(tmp_path / "empty", create=True).close()
    runs, skipped = compare.load([tmp_path / "a", tmp_path / "b", tmp_path / "empty", tmp_path / "nothing"])
    assert [r["seed"] for r in runs] == [0, 1]  # the runs with held-out metrics; the others named with the reason
    assert skipped == [(str(tmp_path / "empty"), "no finished eval stage (status unknown)"),
                       (str(tmp_path / "nothing"), "not a run directory (no store.sqlite)")]
    rows = {(r["kind"], r["seed"], r["metric"]): r for r in compare.rows(runs)}
    a = rows[("run", 0, "compliance")]
    assert a["baseline"] == 0.5 and a["final"] == 0.3 and a["round"] == 2 and a["delta"] == pytest.approx(-0.2)
    g = rows[("seeds", "0,1", "compliance")]
    assert g["final"] == pytest.approx(0.25) and g["delta"] == pytest.approx(-0.3)
    assert g["delta_lo"] < g["delta"] < g["delta_hi"]  # t-interval over the two seeds' paired changes
    # ... kept inside what a rate can be: two seeds' t-interval (t = 12.7) ran to -0.385 for the final, -1.57 for
    # the change
    assert (g["final_lo"], g["delta_lo"]) == (0.0, -1.0) and g["final_hi"] < 1.0 and g["delta_hi"] < 1.0
    from superalign.evaluation import metrics as M  # which metrics are rates: registered ones and their slices
    assert all(map(M.is_rate, ["compliance", "compliance_direct", "compliance:harmbench", "over_refusal_easy"]))
    assert not any(map(M.is_rate, ["helpfulness", "kl_to_base"]))
    files = compare.write(runs, tmp_path / "cmp")
    html = files["html"].read_text()
    assert "<svg" in html and "seed 1" in html and "harmful request" not in html
    assert len(files["csv"].read_text().splitlines()) == 1 + len(rows)
    with pytest.raises(SuperalignError, match="no finished eval stage"):
        compare.load([tmp_path / "empty"])


def test_cli_export_and_compare_print_no_text(tmp_path):
    from typer.testing import CliRunner
    from superalign.cli.main import app
    _fill(tmp_path / "a", 0, [0.5, 0.3])
    _fill(tmp_path / "b", 1, [0.6, 0.4])
    r = CliRunner().invoke(app, ["export", str(tmp_path / "a"), "--format", "jsonl", "-t", "pairs", "-t", "metrics"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a" / "export-jsonl" / "pairs.jsonl").exists() and "harmful" not in r.output
    r = CliRunner().invoke(app, ["runs", "compare", str(tmp_path / "a"), str(tmp_path / "b"),
                                 "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 0, r.output
    assert "2 seeds" in r.output and (tmp_path / "cmp" / "compare.html").exists()
