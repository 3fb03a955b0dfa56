"""The learner: answers queries, k samples each. Seeds come from the record ids, so a query's
samples do not depend on which chunk or executor produced them."""
from __future__ import annotations

import zlib

from superalign.models.base import GenParams


def chat(query: str, system: str | None = None) -> list[dict]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": query}]


def respond_stage(backend, records: list[dict], kw: dict) -> list[dict]:
    """Executor stage: one response per (record, sample). Records carry `prompt_id`, `text`, `sample`."""
    base = kw.get("seed", 0)
    seed = (base * 7919 + zlib.crc32("".join(r["prompt_id"] + str(r["sample"]) for r in records).encode())) % 2**31
    p = GenParams.of(kw, seed, max_new_tokens=48)
    outs = backend.generate([chat(r["text"], kw.get("system")) for r in records], p)
    return [{**r, "response": o} for r, o in zip(records, outs)]
