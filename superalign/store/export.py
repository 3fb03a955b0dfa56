"""A run's data out of its SQLite store, as files any tool reads: JSONL, CSV or a Hugging Face
`DatasetDict` saved to disk (one split per non-empty table).

Tables exported (each row keeps its lineage: run_id, round, stage, role, model, seed):
- `prompts`, `responses`, `critiques`, `scores`, `labels`, `metrics`, `checkpoints`: the store's rows;
- `pairs`: the critic's (chosen = better response, rejected = the response) preference pairs with the
  user's request as `prompt`, in TRL's standard preference format;
- `sft`: benign requests with the critic's favourite real answer as `completion` (the loop's own rule,
  `data.boundary.sft_target`: cut after its last full sentence, utility >= 0.5, not a refusal), in TRL's
  prompt-completion format;
- `training`: the rows each learning phase trained on, exactly as its candidates saw them (chat-rendered
  prompts; written refusals and contrast answers included), with the phase, round and whether it was kept.
Prompts are the raw user text, not rendered with a chat template, so the rows fit any model.
Beside the tables, `summary.json` is the run's `RunSummary` (identity, status, held-out metrics per round with
their intervals, stage times, checkpoints): the figures the report shows, without any text.

`meta` columns are JSON text in every format: tables mix rows whose meta keys differ, which Arrow
(and so `datasets`) cannot hold as one struct type without inventing nulls.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from superalign.data import boundary
from superalign.errors import SuperalignError
from superalign.store import TABLES, RunStore
from superalign.store.summary import RunSummary

FORMATS = ("jsonl", "csv", "hf")
DERIVED = ("pairs", "sft", "training")
ALL = tuple(TABLES) + DERIVED


def _flat(row: dict) -> dict:
    return {k: (json.dumps(v, sort_keys=True) if k == "meta" else v) for k, v in row.items()}


def _lineage(row: dict) -> dict:
    return {k: row.get(k) for k in ("run_id", "round", "stage", "role", "model", "seed")}


def pairs(store: RunStore) -> list[dict]:
    prompts = {p["id"]: p for p in store.rows("prompts")}
    resp = {r["id"]: r for r in store.rows("responses")}
    out = []
    for c in store.rows("critiques"):
        if not c["meta"].get("pair") or not c["better_response"]:
            continue
        r = resp.get(c["response_id"])
        p = prompts.get(r["prompt_id"]) if r else None
        if r is None or p is None:
            continue
        out.append({"id": c["id"], "prompt": p["text"], "chosen": c["better_response"], "rejected": r["text"],
                    "kind": p["kind"], "category": p["category"], "prompt_id": p["id"], "response_id": r["id"],
                    "utility_chosen": c["meta"].get("better_utility"), "utility_rejected": c["meta"].get("utility"),
                    **_lineage(c)})
    return out


def sft(store: RunStore) -> list[dict]:
    """One row per benign prompt: its highest-utility real answer (what the loop's competence SFT uses)."""
    prompts = {p["id"]: p for p in store.rows("prompts")}
    resp = {r["id"]: r for r in store.rows("responses")}
    best: dict[str, dict] = {}
    for c in store.rows("critiques"):
        r = resp.get(c["response_id"])
        p = prompts.get(r["prompt_id"]) if r else None
        if r is None or p is None or p["kind"] != "benign":
            continue
        t = boundary.sft_target(c["meta"], c["better_response"], r["text"])
        if t is None:
            continue
        u, text = t
        if p["id"] not in best or u > best[p["id"]]["utility"]:
            best[p["id"]] = {"id": c["id"], "prompt": p["text"], "completion": text, "utility": u,
                             "prompt_id": p["id"], **_lineage(c)}
    return list(best.values())


def training(store: RunStore) -> list[dict]:
    out = []
    for ck in store.rows("checkpoints"):
        path = (ck["meta"] or {}).get("rows")
        if not path or not (store.dir / path).exists():
            continue
        for i, line in enumerate((store.dir / path).read_text().splitlines()):
            out.append({"id": f"{ck['id']}:{i}", "phase": ck["phase"], "kept": ck["accepted"],
                        "method": ck["meta"].get("method"), **json.loads(line), **_lineage(ck)})
    return out


def collect(store: RunStore, tables: list[str] | None = None) -> dict[str, list[dict]]:
    tables = list(tables or ALL)
    bad = [t for t in tables if t not in ALL]
    if bad:
        raise SuperalignError(f"unknown table(s) {bad}", f"export any of: {', '.join(ALL)}")
    out = {}
    for t in tables:
        rows = {"pairs": pairs, "sft": sft, "training": training}.get(t, lambda s: s.rows(t))(store)
        out[t] = [_flat(r) for r in rows]
    return out


def export(run_dir: str | Path, out: str | Path, fmt: str = "jsonl", tables: list[str] | None = None) -> dict[str, int]:
    """Write the run's tables under `out`; returns {table: rows written}. Text goes to files only."""
    if fmt not in FORMATS:
        raise SuperalignError(f"unknown export format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    store = RunStore(run_dir)
    try:
        data = collect(store, tables)
        summary = RunSummary.read(store)
    finally:
        store.close()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "hf":
        import datasets
        datasets.disable_progress_bars()
        # empty tables are left out: `datasets` cannot load back a saved split with no rows
        dd = datasets.DatasetDict({t: datasets.Dataset.from_list(rows) for t, rows in data.items() if rows})
        dd.save_to_disk(str(out))
    for t, rows in data.items():
        if fmt == "jsonl":
            with open(out / f"{t}.jsonl", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        elif fmt == "csv":
            cols = _columns(t, rows)
            with open(out / f"{t}.csv", "w", encoding="utf-8", newline="") as f:
                w = csv.DictWriter(f, fieldnames=cols)
                w.writeheader()
                w.writerows(rows)
    (out / "summary.json").write_text(json.dumps(summary.to_json(), indent=2))
    return {t: len(rows) for t, rows in data.items()}


def _columns(table: str, rows: list[dict]) -> list[str]:
    if rows:
        return list(rows[0])
    if table in TABLES:  # an empty table still gets its header
        from superalign.store import LINEAGE
        return [c.split()[0] for c in (TABLES[table] + ", " + LINEAGE).split(", ")]
    return ["id", "prompt"]
