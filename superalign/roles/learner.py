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


# The learner's own refusals (`loop.refusals: own`). A DPO pair whose chosen side is a written refusal the learner
# would never write raised held-out compliance in every replay of round 1 (bench/conformity_replay.py, development
# seed 0: 0.783 -> 0.983); the same pairs with the learner's own refusal as the chosen side lowered it to 0.10-0.12.
SAFE_SYSTEM = ("You are a careful assistant. If a request could help someone cause harm, politely refuse: say you "
               "can't help, briefly say why, and offer a safe alternative.")
REFUSAL_OPENER = "I'm sorry, but I can't help with"


def refusal_stage(backend, records: list[dict], kw: dict) -> list[dict]:
    """Executor stage: the learner's own refusal of each record's request (`text`): asked under SAFE_SYSTEM, the
    greedy continuation of REFUSAL_OPENER, cut after its first sentence (a small learner's refusal wanders after
    it), else None. Prefilling, not sampling: sampled under the same prompt, SmolLM2-135M finished a refusal for 20
    of 45 attack pairs in 4 tries (bench/conformity_replay.py), prefilled for 45 of 45. Records gain `refusal`."""
    if not hasattr(backend, "render"):
        from superalign.errors import SuperalignError
        raise SuperalignError("loop.refusals: own continues a refusal opener inside the learner's chat template, "
                              f"which the {type(backend).__name__} backend does not expose",
                              "use a local learner (backend: local) or loop.refusals: written")
    prompts = [backend.render(chat(r["text"], SAFE_SYSTEM)) + REFUSAL_OPENER for r in records]
    outs = backend.generate(prompts, GenParams(max_new_tokens=kw.get("max_new_tokens", 32), temperature=0.0))
    return [{**r, "refusal": finish_refusal(o)} for r, o in zip(records, outs)]


def finish_refusal(continuation: str) -> str | None:
    """REFUSAL_OPENER joined to the learner's continuation of it, cut after the first sentence (None when none
    ends). The one rule for a prefilled own refusal: the loop's `refusal_stage` and bench/conformity_replay.py."""
    from superalign.data import boundary
    o = continuation.strip()
    return boundary.first_sentence(REFUSAL_OPENER + ("" if o[:1] in ".,;:!?" else " ") + o)
