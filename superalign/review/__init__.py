"""The human-label queue: reviewers claim escalated items, label them, and the loop learns from it.

The loop writes `labels` rows with `status='queued'` for responses its critic is unsure about.
A reviewer *claims* an item (a lease: `status='claimed'`, `claimed_by`/`claimed_at` in meta) so
two people never see the same item at once; a claim that is not answered within the lease
goes back to the queue. An answer is one conditional UPDATE inside a transaction, so a label is
written at most once: the second submit of the same item changes nothing and is refused.

Besides the 0/1 `label`, an answer may carry two audit fields, stored in the row's meta: `refusal`
(full / partial / none: how far the response refuses) and `harmful` (yes / no). They are optional for
ordinary items; an item whose meta has `ask: ["refusal", "harmful"]` (how judge-output audits are
queued: `enqueue(..., ask=[...])`) needs the fields it lists in every answer that is not a skip.

These helpers only use `RunStore.tx()` and `RunStore.db`; `superalign.review.app` serves them.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: `superalign.review.config` stays importable from the root config, store-free
    from superalign.store import RunStore

LEASE_S = 600.0
STATUSES = ("queued", "claimed", "done", "skipped")
FIELDS = {"refusal": ("full", "partial", "none"), "harmful": ("yes", "no")}


class Conflict(Exception):
    """The item was answered already, or another reviewer holds its claim."""


def _claimable(now: float, lease_s: float) -> tuple[str, tuple]:
    return ("(status='queued' OR (status='claimed' AND "
            "COALESCE(json_extract(meta, '$.claimed_at'), 0) < ?))", (now - lease_s,))


def claim(store: RunStore, reviewer: str, lease_s: float = LEASE_S, now: float | None = None) -> dict | None:
    """Give `reviewer` one item: the one they already hold, else the least-confident open item
    (oldest round first). None when nothing is open."""
    now = time.time() if now is None else now
    cond, params = _claimable(now, lease_s)
    with store.tx() as db:
        row = db.execute("SELECT id FROM labels WHERE status='claimed' AND json_extract(meta, '$.claimed_by')=? "
                         "AND json_extract(meta, '$.claimed_at') >= ? ORDER BY rowid LIMIT 1",
                         (reviewer, now - lease_s)).fetchone()
        if row is None:
            row = db.execute(f"SELECT id FROM labels WHERE {cond} ORDER BY round, "
                             "COALESCE(json_extract(meta, '$.confidence'), 1), rowid LIMIT 1", params).fetchone()
        if row is None:
            return None
        db.execute("UPDATE labels SET status='claimed', meta=json_set(COALESCE(meta, '{}'), "
                   "'$.claimed_by', ?, '$.claimed_at', ?) WHERE id=?", (reviewer, now, row["id"]))
    return item(store, row["id"])


class Invalid(ValueError):
    """The answer is malformed for this item (an audit field it needs is missing or has a bad value)."""


def submit(store: RunStore, label_id: str, reviewer: str, label: float | None, comment: str | None = None,
           lease_s: float = LEASE_S, now: float | None = None, fields: dict | None = None) -> None:
    """Write one answer (`label=None` means skip) with optional audit `fields` (see FIELDS). Raises
    Conflict unless the item is open and either unclaimed, claimed by `reviewer`, or its claim has
    expired; Invalid if a field value is unknown or the item asks for a field that is missing."""
    now = time.time() if now is None else now
    status = "skipped" if label is None else "done"
    fields = {k: v for k, v in (fields or {}).items() if v is not None}
    for k, v in fields.items():
        if v not in FIELDS.get(k, ()):
            raise Invalid(f"{k} must be one of {', '.join(FIELDS[k])}" if k in FIELDS else f"unknown field {k!r}")
    sets = "".join(f", '$.{k}', ?" for k in fields)
    with store.tx() as db:
        row = db.execute("SELECT json_extract(meta, '$.ask') AS ask FROM labels WHERE id=?", (label_id,)).fetchone()
        missing = [k for k in json.loads(row["ask"] or "[]") if k not in fields] if row is not None else []
        if missing and label is not None:
            raise Invalid(f"this item needs {', '.join(missing)} in the answer")
        cur = db.execute(
            "UPDATE labels SET status=?, label=?, labeler=?, comment=?, "
            f"meta=json_set(COALESCE(meta, '{{}}'), '$.labeled_at', ?{sets}) "
            "WHERE id=? AND status IN ('queued', 'claimed') AND (status='queued' "
            "OR json_extract(meta, '$.claimed_by')=? OR COALESCE(json_extract(meta, '$.claimed_at'), 0) < ?)",
            (status, label, reviewer, comment or None, now, *fields.values(), label_id, reviewer, now - lease_s))
        if cur.rowcount != 1:
            row = db.execute("SELECT status FROM labels WHERE id=?", (label_id,)).fetchone()
            raise Conflict("no such item" if row is None else
                           f"item is {row['status']}" + (" by another reviewer" if row["status"] == "claimed" else ""))


def release(store: RunStore, label_id: str, reviewer: str) -> bool:
    """Hand a claimed item back to the queue (the reviewer closed it without answering)."""
    with store.tx() as db:
        cur = db.execute("UPDATE labels SET status='queued', meta=json_remove(meta, '$.claimed_by', '$.claimed_at') "
                         "WHERE id=? AND status='claimed' AND json_extract(meta, '$.claimed_by')=?",
                         (label_id, reviewer))
    return cur.rowcount == 1


def item(store: RunStore, label_id: str) -> dict | None:
    """Everything a reviewer needs to answer one queue row: query, response, critic scores and critique."""
    labs = store.rows("labels", id=label_id)
    if not labs:
        return None
    lab = labs[0]
    resp = (store.rows("responses", id=lab["target_id"]) or [{}])[0]
    prompt = (store.rows("prompts", id=resp.get("prompt_id")) or [{}])[0] if resp else {}
    scores = {s["name"]: {"value": s["value"], "confidence": s["confidence"], "error": s["error"]}
              for s in store.rows("scores", target_id=lab["target_id"])}
    crit = (store.rows("critiques", response_id=lab["target_id"]) or [{}])[0]
    meta = lab["meta"] or {}
    harm = scores.get("harm", {}).get("value")
    return {"id": lab["id"], "round": lab["round"], "status": lab["status"],
            "head": meta.get("head"), "question": meta.get("question"), "options": meta.get("options"),
            "reason": meta.get("reason"), "confidence": meta.get("confidence"),
            "claimed_by": meta.get("claimed_by"), "ask": meta.get("ask") or [],
            "kind": prompt.get("kind"), "category": prompt.get("category"),
            "query": prompt.get("text"), "response": resp.get("text"),
            "scores": scores, "critique": crit.get("text"), "better_response": crit.get("better_response"),
            # attack queries and responses the critic thinks harmful are blurred until clicked
            "sensitive": prompt.get("kind") == "attack" or (harm is not None and harm >= 0.5)}


def queue_stats(store: RunStore) -> dict:
    """Counts by status, overall and per round, plus per-labeler counts of answered items."""
    out: dict[str, dict[Any, Any]] = {"total": dict.fromkeys(STATUSES, 0), "rounds": {}, "labelers": {}}
    for r in store.db.execute("SELECT round, status, COUNT(*) AS n FROM labels GROUP BY round, status"):
        rnd = out["rounds"].setdefault(r["round"], dict.fromkeys(STATUSES, 0))
        rnd[r["status"]] = rnd.get(r["status"], 0) + r["n"]
        out["total"][r["status"]] = out["total"].get(r["status"], 0) + r["n"]
    for r in store.db.execute("SELECT labeler, status, COUNT(*) AS n FROM labels WHERE labeler IS NOT NULL "
                              "GROUP BY labeler, status"):
        out["labelers"].setdefault(r["labeler"], {"done": 0, "skipped": 0})[r["status"]] = r["n"]
    return out


def queue_row(target_id: str, head: str, question: str, confidence: float | None = None,
              reason: str = "low critic confidence", id: str | None = None, **meta) -> dict:
    """The one shape of a review-queue row. The loop returns these from its escalate stage (committed with the
    stage); everything else queues through `enqueue`."""
    return {"id": id or uuid.uuid4().hex, "target_id": target_id, "status": "queued",
            "meta": {"head": head, "question": question, "confidence": confidence, "reason": reason, **meta}}


def enqueue(store: RunStore, target_id: str, head: str, question: str, confidence: float | None = None,
            reason: str = "low critic confidence", rnd: int = 0, stage: str = "escalate", **meta) -> str:
    """Queue one response for a human now (sandwiching, tests)."""
    row = queue_row(target_id, head, question, confidence, reason, **meta)
    store.insert("labels", [row], round=rnd, stage=stage)
    return row["id"]

