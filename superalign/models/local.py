"""A local transformers causal LM: batched generation with left padding, log-prob scoring,
and the torch model + tokenizer exposed for training.

CUDA path: the model is loaded straight onto the GPU in bf16 (`dtype: auto`), generation runs
in batches of `batch_size` with a KV cache; `static_cache=True` pre-allocates a fixed-size
cache (prompts padded to a multiple of 64 so few shapes occur), and `compile` controls
`torch.compile` of the static-cache decode step (None = transformers' default, which compiles
on CUDA only; True = compile on any device; False = never).

`generate(chats, params)` takes one `GenParams` for the whole list (transformers' sampler,
seeded per batch) or a list of `GenParams`, one per prompt: then every row has its own
temperature, top-p, token budget and seed, and its output depends only on its own prompt and
params, never on what it was batched with (sampling by the Gumbel-max trick with a generator
per row). The HTTP server (`superalign serve`) relies on that to micro-batch requests.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from superalign.errors import SuperalignError
from superalign.models import embedded
from superalign.models.base import GenParams, Prompt, per_prompt


def _device(pref: str) -> str:
    import torch
    if pref != "auto":
        if pref.startswith("cuda") and not torch.cuda.is_available():
            raise SuperalignError("device 'cuda' asked for but torch sees no GPU",
                                  "set `device: cpu` (or auto) for this role, or install a CUDA build of torch")
        return pref
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX tiles or AVX512-BF16). On the project's 2-core machines
    (AMX) a bf16 matmul ran 10x faster than fp32 (bench/loop_speed.py --part matmul), which is what makes the loop's
    training and evaluation affordable there; on a CPU without it bf16 is emulated and slower than fp32."""
    import torch
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # a torch without these probes: assume the plain fp32 path
        return False


def _dtype(pref: str, device: str):
    """`auto`: bf16 on a GPU and on a CPU with bf16 hardware (`cpu_bf16`), else fp32."""
    import torch
    if pref == "auto":
        return torch.bfloat16 if device.startswith("cuda") or (device == "cpu" and cpu_bf16()) else torch.float32
    return getattr(torch, pref)


@dataclass(frozen=True)
class Completion:
    """One generated completion with its token accounting (what an API reports as `usage`)."""
    text: str                 # decoded, special tokens removed, stripped
    ids: list[int]            # generated token ids, up to and including a stop token
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str        # "stop" (a stop token was generated) or "length" (budget used up)


@dataclass
class Usage:
    """What a LocalLM has computed since it was built: generation (prefill tokens as the batches were padded, and
    the real ones; generated tokens; seconds) and scoring (teacher-forced tokens; seconds). Stages record the
    difference over their work (`delta`), so a run shows where its time went in tokens, not only in seconds."""
    prompt_tokens: int = 0
    padded_prompt_tokens: int = 0
    completion_tokens: int = 0
    generate_s: float = 0.0
    scored_tokens: int = 0
    score_s: float = 0.0

    def delta(self, before: "Usage") -> dict:
        return {k: round(v - getattr(before, k), 3) for k, v in vars(self).items()}

    def copy(self) -> "Usage":
        return Usage(**vars(self))


class _RowSampler:
    """Per-row temperature / top-p / seed, applied as a logits processor under greedy decoding:
    argmax(logits/T + Gumbel noise) over the top-p set is a sample from softmax(logits/T)
    restricted to that set. Each row draws its noise from its own generator, so a row's tokens
    do not depend on the other rows of the batch. Rows with temperature 0 stay greedy."""

    def __init__(self, params: Sequence[GenParams], device):
        import torch
        self.temp = torch.tensor([p.temperature for p in params], dtype=torch.float32, device=device)
        self.top_p = torch.tensor([p.top_p for p in params], dtype=torch.float32, device=device)
        self.rows = [i for i, p in enumerate(params) if p.temperature > 0]
        self.gens = {i: torch.Generator(device=device).manual_seed(int(params[i].seed)) for i in self.rows}

    def __call__(self, input_ids, scores):
        import torch
        if not self.rows:
            return scores
        rows = torch.tensor(self.rows, device=scores.device)
        s = scores[rows].float() / self.temp[rows, None]
        srt, idx = s.sort(dim=-1, descending=True)
        probs = srt.softmax(-1)
        drop = (probs.cumsum(-1) - probs) > self.top_p[rows, None]  # the top token is always kept
        srt = srt.masked_fill(drop, float("-inf"))
        s = torch.full_like(s, float("-inf")).scatter(-1, idx, srt)
        u = torch.stack([torch.rand(s.shape[-1], generator=self.gens[i], device=s.device) for i in self.rows])
        gumbel = -torch.log(-torch.log(u.clamp_(min=1e-20, max=1.0 - 1e-7)))
        out = scores.float().clone()
        out[rows] = s + gumbel
        return out


class _RowBudget:
    """Stop each row at its own `max_new_tokens` (the batch runs to the largest budget)."""

    def __init__(self, start: int, budgets: Sequence[int], device):
        import torch
        self.start = start
        self.budget = torch.tensor(list(budgets), device=device)

    def __call__(self, input_ids, scores, **kw):
        return (input_ids.shape[1] - self.start) >= self.budget


class _RowWatch:
    """After every decoding step, hand each row's newest token to `watch(row, token_id)`; rows for
    which it returns True stop there (the server streams tokens and drops rows whose client left)."""

    def __init__(self, rows: Sequence[int], watch):
        self.rows, self.watch = list(rows), watch

    def __call__(self, input_ids, scores, **kw):
        import torch
        last = input_ids[:, -1].tolist()
        return torch.tensor([bool(self.watch(i, t)) for i, t in zip(self.rows, last)], device=input_ids.device)


class LocalLM:
    def __init__(self, model: str = embedded.SMOLLM2, device: str = "auto", dtype: str = "auto",
                 batch_size: int = 16, static_cache: bool = False, seed: int = 0, compile: bool | None = None,
                 batch_tokens: int = 8192):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        self.name = model
        self.device = _device(device)
        # tiny-random (the 2-layer test model) stays fp32 under `auto`: nothing to gain, and its tests check scores
        torch_dtype = _dtype("float32" if model == embedded.TINY and dtype == "auto" else dtype, self.device)
        if model == embedded.TINY:
            tokenizer = embedded.tiny_tokenizer()
            net = embedded.tiny_model(tokenizer, seed=seed).to(self.device, torch_dtype)
        else:
            path = embedded.resolve(model)
            if embedded.looks_like_path(path):
                path = str(Path(path).expanduser())
                if not Path(path).exists():
                    raise SuperalignError(f"model path {path} does not exist",
                                          "point the role's `model:` at a directory saved by save_pretrained "
                                          "(a name like org/model without ./ or / is looked up on the HF hub)")
            try:
                tokenizer = AutoTokenizer.from_pretrained(path)
                # device_map puts the weights straight onto the GPU (no full copy in host memory first)
                kw = {"device_map": self.device} if self.device.startswith("cuda") else {}
                net = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, **kw).to(self.device)
            except (OSError, ValueError) as e:  # hub lookups fail with OSError, a malformed repo id with ValueError
                offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
                raise SuperalignError(
                    f"cannot load model {model!r}: {str(e).splitlines()[0]}",
                    (f"HF_HUB_OFFLINE is set, so hub names load only from the local HF cache: run once with "
                     f"HF_HUB_OFFLINE=0 to download {model!r}, " if offline else "")
                    + f"or use the built-in '{embedded.SMOLLM2}' or a local directory (./dir, /abs/dir)"
                ) from None
        # peft records this as the adapter's `base_model_name_or_path`: the name the config uses (an alias,
        # hub id or path), not a cache directory or nothing (tiny-random); `superalign adapter` resolves it.
        net.config._name_or_path = net.name_or_path = model
        self._setup(net, tokenizer, batch_size, static_cache, compile, batch_tokens)

    @classmethod
    def wrap(cls, model, tokenizer, name: str = "wrapped", batch_size: int = 16, static_cache: bool = False,
             compile: bool | None = None, batch_tokens: int = 8192) -> "LocalLM":
        """A LocalLM around an already built torch model and tokenizer (benchmarks, trainers)."""
        self = cls.__new__(cls)
        self.name = name
        self.device = str(next(model.parameters()).device)
        self._setup(model, tokenizer, batch_size, static_cache, compile, batch_tokens)
        return self

    def _setup(self, model, tokenizer, batch_size: int, static_cache: bool, compile: bool | None,
               batch_tokens: int = 8192):
        self.model, self.tokenizer = model, tokenizer
        self.usage = Usage()
        self.batch_size, self.static_cache, self.compile = batch_size, static_cache, compile
        self.batch_tokens = batch_tokens
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.model.eval()
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        if self.tokenizer.eos_token_id is not None:
            eos.append(self.tokenizer.eos_token_id)
        self.stop_ids = set(eos)

    # ------------------------------------------------------------------ text helpers
    def render(self, p: Prompt, generation_prompt: bool = True) -> str:
        if isinstance(p, str):
            return p
        return self.tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=generation_prompt)

    # ------------------------------------------------------------------ generation
    def _cache_kwargs(self) -> dict:
        """KV-cache and compile options for `model.generate` (see the module docstring)."""
        kw: dict = {}
        if self.static_cache or self.compile:
            kw["cache_implementation"] = "static"
        if self.compile is False:
            kw["disable_compile"] = True
        elif self.compile and not self.device.startswith("cuda"):
            from transformers import CompileConfig
            cc = CompileConfig()
            cc._compile_all_devices = True  # transformers compiles on CUDA only unless told otherwise
            kw["compile_config"] = cc
        return kw

    def generate(self, chats: list[Prompt], params: GenParams | Sequence[GenParams] = GenParams()) -> list[str]:
        return [c.text for c in self.generate_full(chats, params)]

    def generate_full(self, chats: list[Prompt], params: GenParams | Sequence[GenParams] = GenParams(),
                      watch=None) -> list[Completion]:
        """`generate` with token ids, usage counts and finish reasons. With per-row params, `watch(i, token_id)`
        is called for prompt i's every new token (also after the row has finished: the caller tracks that) and
        returning True stops row i early; the other rows are unaffected."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList
        t0 = time.perf_counter()
        rows_params = per_prompt(params, len(chats))
        per_row = rows_params is not None
        params = rows_params if per_row else params
        texts = [self.render(c) for c in chats]
        out: list[Completion | None] = [None] * len(texts)
        base = dict(pad_token_id=self.tokenizer.pad_token_id, **self._cache_kwargs())
        pad_multiple = 64 if base.get("cache_implementation") == "static" else None  # fewer shapes to compile
        for b, idx in self._batches(texts):
            enc = self.tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                                 pad_to_multiple_of=pad_multiple, add_special_tokens=False).to(self.device)
            start = enc["input_ids"].shape[1]
            if per_row:
                rows = [params[i] for i in idx]
                budgets = [p.max_new_tokens for p in rows]
                kwargs = dict(base, max_new_tokens=max(budgets), do_sample=False,
                              logits_processor=LogitsProcessorList([_RowSampler(rows, self.device)]),
                              stopping_criteria=StoppingCriteriaList([_RowBudget(start, budgets, self.device)] +
                                                                     ([_RowWatch(idx, watch)] if watch else [])))
            else:
                budgets = [params.max_new_tokens] * len(idx)
                kwargs = dict(base, max_new_tokens=params.max_new_tokens)
                if params.temperature > 0:
                    kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
                else:
                    kwargs.update(do_sample=False)
                torch.manual_seed(params.seed + b)
            with torch.inference_mode():
                gen = self.model.generate(**enc, **kwargs)
            new = gen[:, start:].tolist()
            n_prompt = enc["attention_mask"].sum(-1).tolist()
            for j, i in enumerate(idx):
                row = new[j][:budgets[j]]
                stop = next((k for k, t in enumerate(row) if t in self.stop_ids), None)
                ids = row if stop is None else row[:stop + 1]
                out[i] = Completion(self.tokenizer.decode(ids, skip_special_tokens=True).strip(), ids,
                                    int(n_prompt[j]), len(ids), "length" if stop is None else "stop")
                self.usage.completion_tokens += len(ids)
            self.usage.prompt_tokens += int(sum(n_prompt))
            self.usage.padded_prompt_tokens += int(enc["input_ids"].numel())
        self.usage.generate_s += time.perf_counter() - t0
        return out  # type: ignore[return-value]

    def _batches(self, texts: list[str]):
        """(first position, row indices) of each generation batch: rows sorted by token length (a batch pads to
        its longest row) and cut at `batch_size` rows or `batch_tokens` padded prompt tokens, whichever comes
        first. Decoding a 135M model on a CPU costs about the same per step for 16 rows as for 64 (it is bound by
        per-step overhead), so short prompts go in wide batches; one 1,000-token jailbreak template in a batch of
        64 short requests would make its prefill 64,000 tokens, so long prompts go in narrow ones."""
        lens = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []
        order = sorted(range(len(texts)), key=lambda i: (lens[i], i))
        start, idx = 0, []
        for i in order:
            if idx and (len(idx) >= self.batch_size or lens[i] * (len(idx) + 1) > self.batch_tokens):
                yield start, idx
                start, idx = start + len(idx), []
            idx.append(i)
        if idx:
            yield start, idx

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
            t0 = time.perf_counter()
            with torch.inference_mode():
                lp = torch.log_softmax(self.model(**enc, position_ids=pos, logits_to_keep=1).logits[:, -1].float(), -1)
            self.usage.scored_tokens += int(enc["attention_mask"].sum())
            self.usage.score_s += time.perf_counter() - t0
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
            t0 = time.perf_counter()
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                                    logits_to_keep=k).logits.float()
            lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, width - k + 1:, None])[..., 0]
            self.usage.scored_tokens += int(mask.sum())
            self.usage.score_s += time.perf_counter() - t0
            s = (lp * target).sum(-1)
            res += (s / target.sum(-1).clamp(min=1) if reduce == "mean" else s).tolist()
        return res

    def sequence_logprobs(self, seqs: list[list[int]], top: int = 0) -> list[tuple[list, list | None]]:
        """For each token-id sequence: log p(token_t | tokens_<t) for every position (None for the
        first, which has no context) and, with `top` > 0, the `top` most likely tokens at each
        position as [(id, logprob), ...] (None at the first). This is what an OpenAI
        `/v1/completions` call with `echo` and `logprobs` returns for a prompt."""
        import torch
        pad = self.tokenizer.pad_token_id
        res: list[tuple[list, list | None]] = []
        for b in range(0, len(seqs), self.batch_size):
            chunk = seqs[b:b + self.batch_size]
            width = max(1, max(len(s) for s in chunk))
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, s in enumerate(chunk):
                ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
                mask[i, :len(s)] = 1
            ids, mask = ids.to(self.device), mask.to(self.device)
            with torch.inference_mode():
                lsm = torch.log_softmax(self.model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
                lp = lsm.gather(-1, ids[:, 1:, None])[..., 0].tolist()
                tv, ti = lsm.topk(top, dim=-1) if top > 0 else (None, None)
                tv, ti = (tv.tolist(), ti.tolist()) if top > 0 else (None, None)
            for i, s in enumerate(chunk):
                n = len(s)
                lps = ([None] + lp[i][:n - 1]) if n else []
                tops = None
                if top > 0:
                    tops = ([None] + [list(zip(ti[i][k], tv[i][k])) for k in range(n - 1)]) if n else []
                res.append((lps, tops))
        return res
