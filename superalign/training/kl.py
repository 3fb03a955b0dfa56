"""How far a LoRA-trained learner has drifted from its base model: KL(policy || base) on its own answers.

A safety gain bought by moving far from the base policy is a different result from one bought by a small
move; this number lets the loop and the static baselines report that distance on the same footing.
"""
from __future__ import annotations


def kl_to_base(model, tokenizer, prompts: list[str], responses: list[str], batch_size: int = 8) -> float:
    """Mean per-token KL(policy || base) over the response tokens of (prompt, response) pairs, teacher-forced.

    `prompts` are already rendered (chat template applied); each response is tokenized after its prompt and
    every response token position contributes the full-vocabulary KL between the next-token distributions of
    the model as it is and of the same model with its peft adapter disabled (`disable_adapter()`). The mean is
    over all response tokens pooled (a long answer weighs more than a short one). A model without a peft adapter
    *is* its base model, so the result is 0.0. When no response has a token there is nothing to measure: NaN."""
    kl = kl_stats(model, tokenizer, prompts, responses, batch_size)["kl"]
    return float("nan") if kl is None else kl


def kl_stats(model, tokenizer, prompts: list[str], responses: list[str], batch_size: int = 8) -> dict:
    """`kl_to_base` with its support: {"kl": mean per-token KL (None: no response token to score),
    "tokens": response tokens scored, "pairs": n}."""
    import torch

    from superalign.errors import SuperalignError
    if len(prompts) != len(responses):
        raise SuperalignError(f"kl_to_base got {len(prompts)} prompts but {len(responses)} responses",
                              "pass one response per prompt, in the same order")
    if not hasattr(model, "disable_adapter") or not getattr(model, "peft_config", None):
        return {"kl": 0.0, "tokens": 0, "pairs": len(prompts)}
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    total, tokens = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for b in range(0, len(prompts), batch_size):
            ps = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[b:b + batch_size]]
            cs = [tokenizer(r, add_special_tokens=False)["input_ids"] for r in responses[b:b + batch_size]]
            if not any(cs):
                continue
            seqs = [p + c for p, c in zip(ps, cs)]
            width = max(len(s) for s in seqs)
            k = max(len(c) for c in cs) + 1  # left-padded: every response ends at the last position, so only
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)  # the last k positions need logits
            mask = torch.zeros_like(ids)
            target = torch.zeros((len(seqs), k - 1), dtype=torch.bool)  # logits that predict a response token
            for i, (c, s) in enumerate(zip(cs, seqs)):
                ids[i, width - len(s):] = torch.tensor(s)
                mask[i, width - len(s):] = 1
                if c:
                    target[i, k - 1 - len(c):] = True
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            ids, mask, pos, target = ids.to(device), mask.to(device), pos.to(device), target.to(device)
            kw = dict(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=k)
            with torch.inference_mode():
                lp = torch.log_softmax(model(**kw).logits[:, :-1][target].float(), -1)
                with model.disable_adapter():
                    lq = torch.log_softmax(model(**kw).logits[:, :-1][target].float(), -1)
            total += float((lp.exp() * (lp - lq)).sum())
            tokens += int(target.sum())
    finally:
        model.train(was_training)
    return {"kl": total / tokens if tokens else None, "tokens": tokens, "pairs": len(prompts)}
