"""The hand-labelled audit set: the embedded learner's own answers (base and a safety-trained
checkpoint) to harmful and benign look-alike prompts, each read and labelled for refusal and harm.

It exists because a judge's accuracy on someone else's answers (PyRIT's) says little about its
accuracy on a 135M model's answers, which are short, often incoherent, and rarely use the refusal
phrases a phrase list knows. The `split` field is fixed in the file (by prompt group, so a plain and a
templated version of one seed, and the base and trained answers to it, are on the same side): a judge
may be fit on `dev` only; `test` is for measuring it. See files/audit_v1.md for the datasheet.
"""
from __future__ import annotations

import json
from pathlib import Path

from superalign.errors import SuperalignError

FILE = Path(__file__).resolve().parent / "files" / "audit_v1.jsonl"
FIELDS = ("id", "model_state", "prompt_source", "prompt_kind", "templated", "prompt", "response", "refusal",
          "harmful", "split", "labeler")
ALLOWED = {"model_state": ("base", "trained"), "prompt_kind": ("harmful", "lookalike"),
           "refusal": ("full", "partial", "none"), "harmful": ("yes", "no"), "split": ("dev", "test")}


def validate(rows: list[dict], where: str = str(FILE)) -> list[dict]:
    """Every row has every field with an allowed value, ids are unique, and no prompt group straddles the split."""
    seen: set[str] = set()
    group_split: dict[str, str] = {}
    for i, r in enumerate(rows):
        missing = [f for f in FIELDS if f not in r]
        if missing:
            raise SuperalignError(f"row {i} of {where} lacks {', '.join(missing)}", "regenerate the audit file")
        for f, ok in ALLOWED.items():
            if r[f] not in ok:
                raise SuperalignError(f"row {i} of {where}: {f}={r[f]!r} is not one of {ok}", "fix the label")
        if not isinstance(r["templated"], bool):
            raise SuperalignError(f"row {i} of {where}: templated must be true/false", "fix the row")
        if r["id"] in seen:
            raise SuperalignError(f"duplicate id {r['id']!r} in {where}", "ids must be unique")
        seen.add(r["id"])
        g = r.get("group", r["id"])
        if group_split.setdefault(g, r["split"]) != r["split"]:
            raise SuperalignError(f"prompt group {g!r} is in both dev and test in {where}",
                                  "assign the split per group, not per row")
    return rows


def read_labels(path: Path, what: str) -> list[dict]:
    """A packaged file of hand labels (one JSON object per line), read whole: a missing or corrupt file is named
    with its fix, never half-read."""
    if not path.exists():
        raise SuperalignError(f"{what} {path} is missing", f"check out {path.name} from git")
    try:
        return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    except json.JSONDecodeError as e:
        raise SuperalignError(f"{what} {path} is corrupt: {e}", "restore it from git") from None


def load_rows(split: str = "all", path: Path | str | None = None) -> list[dict]:
    """Audit rows of `split` (dev | test | all), in file order."""
    if split not in ("dev", "test", "all"):
        raise SuperalignError(f"unknown audit split {split!r}", "use dev, test or all")
    p = Path(path or FILE)
    rows = read_labels(p, "audit file")
    validate(rows, str(p))
    return [r for r in rows if split == "all" or r["split"] == split]


def refused(r: dict) -> int:
    """Binary refusal label: a partial refusal (declines, then hedges or helps a little) counts as one."""
    return int(r["refusal"] != "none")


def harmful(r: dict) -> int:
    return int(r["harmful"] == "yes")


def as_judge_records() -> list[dict]:
    """The `audit` data set in the judge-record shape (`label` = refusal, like `refusal_labels`)."""
    return [{**r, "source": f"audit_v1:{r['prompt_source']}", "label": float(refused(r))} for r in load_rows()]
