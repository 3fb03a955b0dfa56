"""A local transformers causal LM: batched generation with left padding, log-prob scoring,
and the torch model + tokenizer exposed for training."""
from __future__ import annotations

import os
from pathlib import Path

from superalign.errors import SuperalignError
from superalign.models import embedded
from superalign.models.base import GenParams, Prompt


def _device(pref: str) -> str:
    import torch
    if pref != "auto":
        if pref == "cuda" and not torch.cuda.is_available():
            raise SuperalignError("device 'cuda' asked for but torch sees no GPU",
                                  "set `device: cpu` (or auto) for this role, or install a CUDA build of torch")
        return pref
    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype(pref: str, device: str):
    import torch
    if pref == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, pref)


class LocalLM:
    def __init__(self, model: str = embedded.SMOLLM2, device: str = "auto", dtype: str = "auto",
                 batch_size: int = 16, static_cache: bool = False, seed: int = 0):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        self.name, self.batch_size, self.static_cache = model, batch_size, static_cache
        self.device = _device(device)
        torch_dtype = _dtype(dtype, self.device)
        if model == embedded.TINY:
            self.tokenizer = embedded.tiny_tokenizer()
            self.model = embedded.tiny_model(self.tokenizer, seed=seed).to(self.device, torch_dtype)
        else:
            path = embedded.resolve(model)
            if os.sep in model or model.startswith("."):
                if not Path(path).exists():
                    raise SuperalignError(f"model path {path} does not exist",
                                          "point the role's `model:` at a directory saved by save_pretrained")
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(path)
                self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(self.device)
            except OSError as e:
                raise SuperalignError(
                    f"cannot load model {model!r}: {str(e).splitlines()[0]}",
                    f"use the built-in '{embedded.SMOLLM2}', a local directory, or an HF name with network access"
                ) from None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.model.eval()

    # ------------------------------------------------------------------ text helpers
    def render(self, p: Prompt, generation_prompt: bool = True) -> str:
        if isinstance(p, str):
            return p
        return self.tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=generation_prompt)

    # ------------------------------------------------------------------ generation
    def generate(self, chats: list[Prompt], params: GenParams = GenParams()) -> list[str]:
        import torch
        texts = [self.render(c) for c in chats]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
        out: list[str] = [""] * len(texts)
        kwargs = dict(max_new_tokens=params.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:
            kwargs.update(do_sample=False)
        if self.static_cache and self.device == "cuda":
            kwargs["cache_implementation"] = "static"
        for b in range(0, len(order), self.batch_size):
            idx = order[b:b + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                                 add_special_tokens=False).to(self.device)
            torch.manual_seed(params.seed + b)
            with torch.inference_mode():
                gen = self.model.generate(**enc, **kwargs)
            for i, row in zip(idx, gen[:, enc["input_ids"].shape[1]:]):
                out[i] = self.tokenizer.decode(row, skip_special_tokens=True).strip()
        return out

    # ------------------------------------------------------------------ scoring
    def logprobs(self, prompts: list[Prompt], completions: list[str]) -> list[float]:
        return [float(x) for x in self.token_logprobs(prompts, completions, reduce="sum")]

    def choice_logprobs(self, prompts: list[Prompt], choices: list[list[str]]) -> list[list[float]]:
        """Log-prob of each choice after its prompt. When every choice is one token (" A", " Yes"),
        one forward pass per prompt scores all of them; otherwise each (prompt, choice) pair is scored."""
        import torch
        tok = self.tokenizer
        cids = [[tok(c, add_special_tokens=False)["input_ids"] for c in cs] for cs in choices]
        if not all(len(c) == 1 for cs in cids for c in cs):
            flat = self.logprobs([p for p, cs in zip(prompts, choices) for _ in cs], [c for cs in choices for c in cs])
            out, k = [], 0
            for cs in choices:
                out.append(flat[k:k + len(cs)])
                k += len(cs)
            return out
        out = []
        for b in range(0, len(prompts), self.batch_size):
            enc = tok([self.render(p) for p in prompts[b:b + self.batch_size]], return_tensors="pt", padding=True,
                      add_special_tokens=False).to(self.device)  # left-padded: the next token is at the end
            pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                lp = torch.log_softmax(self.model(**enc, position_ids=pos, logits_to_keep=1).logits[:, -1].float(), -1)
            for i, cs in enumerate(cids[b:b + self.batch_size]):
                out.append([float(lp[i, c[0]]) for c in cs])
        return out

    def token_logprobs(self, prompts: list[Prompt], completions: list[str], reduce: str = "sum"):
        """Per-pair sum (or mean) of completion-token log-probs. Rows are left-padded so every
        completion ends at the last position, and only the last (longest completion + 1) positions
        get logits: scoring a choice costs one forward pass, not a vocabulary-sized softmax per token."""
        import torch
        tok = self.tokenizer
        res = []
        for b in range(0, len(prompts), self.batch_size):
            ps = [tok(self.render(p), add_special_tokens=False)["input_ids"] for p in prompts[b:b + self.batch_size]]
            cs = [tok(c, add_special_tokens=False)["input_ids"] for c in completions[b:b + self.batch_size]]
            seqs = [p + c for p, c in zip(ps, cs)]
            width = max(len(s) for s in seqs)
            k = min(width, max(len(c) for c in cs) + 1)
            ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            target = torch.zeros((len(seqs), k - 1), dtype=torch.bool)
            for i, (c, s) in enumerate(zip(cs, seqs)):
                ids[i, width - len(s):] = torch.tensor(s)
                mask[i, width - len(s):] = 1
                if c:
                    target[i, k - 1 - len(c):] = True
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            ids, mask, pos, target = (x.to(self.device) for x in (ids, mask, pos, target))
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                                    logits_to_keep=k).logits.float()
            lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, width - k + 1:, None])[..., 0]
            s = (lp * target).sum(-1)
            res += (s / target.sum(-1).clamp(min=1) if reduce == "mean" else s).tolist()
        return res
