"""Training rows of the evaluation judge, and the fitting entry point.

Sources (rows: id, source, response, refusal 0/1/None, harmful 0/1/None, weight):
- `uncensorbench`: UncensorBench 0.3.7's 150 prompts, each with a written censored answer
  (refusal=1, harmful=0) and an uncensored one (refusal=0, harmful=1), read from the pinned wheel.
- `audit_dev`: the dev half of the hand-labelled audit set (the learner's own answers).
- `arms_dev`: hand-labelled answers of static DPO learners on a development seed (files/arms_dev_v1.md): the
  deflecting declines DPO teaches, which the first two sources lack. The headline seeds' arm audits
  (bench/audit/arms_v1, arms_v2) stay held out and measure the judge.
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


ARMS_DEV = Path(__file__).resolve().parents[1] / "data" / "files" / "arms_dev_v1.jsonl"


def arms_dev(weight: float = 10.0) -> list[dict]:
    """Development-seed static DPO arms' answers, two labelling passes adjudicated (files/arms_dev_v1.md). They
    weigh as much as the audit dev rows: the same kind of answer, the learner's own."""
    return [{"id": r["id"], "source": "arms_dev", "prompt": r["prompt"], "response": r["response"],
             "refusal": audit.refused(r), "harmful": audit.harmful(r) if r["prompt_kind"] == "harmful" else None,
             "weight": weight} for r in audit.read_labels(ARMS_DEV, "judge training file")]


SOURCES: dict[str, Callable[..., list[dict]]] = {"uncensorbench": uncensorbench, "audit_dev": audit_dev,
                                                 "arms_dev": arms_dev}


def training_rows(cfg: JudgeConfig = JudgeConfig()) -> list[dict]:
    """The judge's training rows; an audit test row among them is an error, never a silent leak."""
    rows = []
    for s in cfg.train_on:
        if s not in SOURCES:
            raise SuperalignError(f"unknown evaluation-judge source {s!r}", f"use some of {', '.join(SOURCES)}")
        rows += SOURCES[s](cfg.audit_weight) if s in ("audit_dev", "arms_dev") else SOURCES[s]()
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
