"""Training rows of the evaluation judge, and the fitting entry point.

Sources (rows: id, source, response, refusal 0/1/None, harmful 0/1/None, weight):
- `uncensorbench`: UncensorBench 0.3.7's 150 prompts, each with a written censored answer
  (refusal=1, harmful=0) and an uncensored one (refusal=0, harmful=1), read from the pinned wheel.
- `audit_dev`: the dev half of the hand-labelled audit set (the learner's own answers).
- `arms_dev`: hand-labelled answers of static DPO learners on a development seed (files/arms_dev_v1.md): the
  deflecting declines DPO teaches, which the first two sources lack.
- `arms_headline`, `arms_devloops`, `arms_confirm`: hand-labelled test answers of the efficacy bench's arms on seed
  10, development seeds 1-2 and the confirmatory seeds 16-18 (`LABELLED`, each file with its datasheet). A judge
  trained on one is audited on other answers (`bench/audit/arms_confirm_fresh`: answers of seeds 16-18 that no
  training file holds).
Never used: the critic's PyRIT label sets (`refusal_labels`, `harm_labels`, `objective_labels`), whose
rows and label semantics (off-topic = refusal) are what the critic learnt, and the audit test split,
which is what the judge is measured on. `training_rows` checks the second and fails loudly.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from superalign import assets
from superalign.data import audit
from superalign.errors import SuperalignError
from superalign.evaluation.judge import EvalJudge, JudgeConfig


def uncensorbench() -> list[dict]:
    doc = json.loads(assets.read_member("uncensorbench", "uncensorbench/data/prompts.json"))
    out = []
    for p in doc["prompts"]:
        out.append({"id": f"ucb:{p['id']}:censored", "source": "uncensorbench", "prompt": p["prompt"],
                    "response": p["censored_response"], "refusal": 1, "harmful": 0, "weight": 1.0})
        out.append({"id": f"ucb:{p['id']}:uncensored", "source": "uncensorbench", "prompt": p["prompt"],
                    "response": p["uncensored_response"], "refusal": 0, "harmful": 1, "weight": 1.0})
    return out


def audit_dev(weight: float = 10.0) -> list[dict]:
    """Dev-split audit rows. `harmful` is only a training label on harmful-prompt answers: the head
    answers "does this help toward the harmful request", a question a look-alike prompt does not pose.
    They weigh more than UncensorBench rows (JudgeConfig.audit_weight): they are the distribution the judge is used on."""
    return [{"id": f"audit:{r['id']}", "source": "audit_dev", "prompt": r["prompt"], "response": r["response"],
             "refusal": audit.refused(r), "harmful": audit.harmful(r) if r["prompt_kind"] == "harmful" else None,
             "weight": weight, "split": r["split"]} for r in audit.load_rows("dev")]


FILES = Path(__file__).resolve().parents[1] / "data" / "files"
ARMS_DEV = FILES / "arms_dev_v1.jsonl"
# Hand-labelled test answers of the efficacy bench's arms, one file per audit (each with its datasheet, .md): the
# answers the judge scores, in the learners' own words. Written by `bench/eval_audit_arms.py --export`.
LABELLED = {"arms_dev": ARMS_DEV,                                   # seed 0, static DPO arms
            "arms_headline": FILES / "arms_headline_v1.jsonl",      # seed 10, base, loop and four static arms
            "arms_devloops": FILES / "arms_devloops_v1.jsonl",      # seeds 1-2, base and five loop variants
            "arms_confirm": FILES / "arms_confirm_v1.jsonl"}        # seeds 16-18, base, loop and two static arms


def training_row(r: dict, source: str, weight: float = 10.0) -> dict:
    """A labelled answer (a row of a labelled-answers file) as a training row. It weighs as much as an audit dev row:
    the same kind of answer, the learner's own. `population_weight` (the row's stratum in its arm's answers over the
    labelled count, where the file has it) stays on the row, so a cross-validation can weigh it as the audit did."""
    return {"id": r["id"], "source": source, "prompt": r["prompt"], "response": r["response"],
            "refusal": audit.refused(r), "harmful": audit.harmful(r) if r["prompt_kind"] == "harmful" else None,
            "weight": weight, "prompt_kind": r["prompt_kind"], "arm": r.get("arm"), "seed": r.get("seed"),
            "population_weight": r.get("population_weight", 1.0)}


def labelled(name: str, weight: float = 10.0, path: Path | None = None) -> list[dict]:
    """One labelled-answers file as training rows (`training_row`)."""
    return [training_row(r, name, weight) for r in audit.read_labels(path or LABELLED[name], "judge training file")]


def arms_dev(weight: float = 10.0) -> list[dict]:
    """Development-seed static DPO arms' answers, two labelling passes adjudicated (files/arms_dev_v1.md)."""
    return labelled("arms_dev", weight, ARMS_DEV)


SOURCES: dict[str, Callable[..., list[dict]]] = {"uncensorbench": uncensorbench, "audit_dev": audit_dev,
                                                 "arms_dev": arms_dev,
                                                 **{k: (lambda w=10.0, k=k: labelled(k, w)) for k in LABELLED
                                                    if k != "arms_dev"}}


def training_rows(cfg: JudgeConfig = JudgeConfig()) -> list[dict]:
    """The judge's training rows; an audit test row among them is an error, never a silent leak."""
    rows = []
    for s in cfg.train_on:
        if s not in SOURCES:
            raise SuperalignError(f"unknown evaluation-judge source {s!r}", f"use some of {', '.join(SOURCES)}")
        rows += SOURCES[s](cfg.audit_weight) if s != "uncensorbench" else SOURCES[s]()
    test = audit.load_rows("test")
    test_ids = {f"audit:{r['id']}" for r in test}
    leak = [r["id"] for r in rows if r["id"] in test_ids or r.get("split") == "test"]
    if leak:
        raise SuperalignError(f"{len(leak)} audit test rows are in the judge's training rows (e.g. {leak[0]})",
                              "train the evaluation judge on the audit dev split only")
    return rows


_FITTED: dict[str, EvalJudge] = {}


def fit_judge(cfg: JudgeConfig = JudgeConfig()) -> EvalJudge:
    """The judge for `cfg`, fit once per process (fitting is deterministic: same rows, same seed)."""
    key = cfg.model_dump_json()
    if key not in _FITTED:
        _FITTED[key] = EvalJudge(cfg).fit(training_rows(cfg))
    return _FITTED[key]
