"""Stage `respond`: the learner answers every attack and benign prompt of the round, k samples each."""
from __future__ import annotations

from superalign.loop.context import Context
from superalign.roles.learner import respond_stage
from superalign.executors.base import GEN_CHUNK


def respond(ctx: Context, r: int) -> dict:
    prompts = ctx.store.rows("prompts", round=r, stage="attack")
    recs = [{"prompt_id": p["id"], "text": p["text"], "kind": p["kind"], "sample": s}
            for p in sorted(prompts, key=lambda p: len(p["text"])) for s in range(ctx.lc.samples_per_query)]
    g = ctx.cfg.generation
    out = ctx.map(respond_stage, "learner", recs, GEN_CHUNK, f"round {r} respond", seed=ctx.seed * 100 + r,
                  max_new_tokens=ctx.lc.response_tokens, temperature=g.temperature, top_p=g.top_p)
    return {"responses": [{"id": f"{x['prompt_id']}:s{x['sample']}", "prompt_id": x["prompt_id"],
                           "sample": x["sample"], "text": x["response"], "role": "learner",
                           "model": ctx.cfg.role("learner").model} for x in out]}
