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

import functools
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, cast

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


@contextmanager
def adapters_in_model_dtype(model):
    """For the duration, LoRA weights in the dtype of the model they adapt. peft keeps an adapter in fp32 for
    training; on a bf16 model that puts every adapted projection's LoRA path, and a cast of its input, in fp32,
    which made prefill 1.9x slower on the project's CPUs (bench/loop_speed.py --part lora). The fp32 tensors are
    put back afterwards, untouched, so training never sees the bf16 copies."""
    import torch
    dt = getattr(model, "dtype", None)
    swapped = []
    if dt in (torch.bfloat16, torch.float16):
        for name, p in model.named_parameters():
            if "lora_" in name and p.dtype != dt:
                swapped.append((p, p.data))
                p.data = p.data.to(dt)
    try:
        yield
    finally:
        for p, data in swapped:
            p.data = data


@contextmanager
def merged_lora(model, trained: bool = True):
    """For the duration, each LoRA-adapted linear layer runs as one plain linear layer whose weight is the base
    weight plus its adapters' scaling * B @ A (summed in float32, stored in the base weight's dtype); where every B is
    zero (an untrained adapter adds exactly 0) the base weight is used as it is. `trained=False` (the default
    `merge_lora: false`) does only the latter: layers with a trained adapter keep peft's path, and an untrained one
    runs as its base layer, which gives peft's numbers exactly (its low-rank term is exactly 0) without the two
    small products per layer (the round-0 evaluation and the first round's answers run on an untrained adapter;
    1.18x on that evaluation, docs/performance.md). Why merge at all: the two rank-r products peft adds to each of
    SmolLM2's 210 adapted layers cost more than their arithmetic on a CPU (each small product has its own fixed
    cost): generation with a trained adapter took 1.15x as long unmerged as merged (`bench/loop_speed.py --part
    lora`, two development adapters, 2 workers). The merged weight is the adapted
    model rounded once to bf16, as a merged export is: it changes the text of many 32-token answers (108 and 123 of
    294) but few verdicts (5 and 6 of 438 item outcomes, none of 60 compliance verdicts; the same bench). Unlike
    peft's `merge_adapter()` / `unmerge_adapter()`, which add the delta in place and subtract it again (leaving bf16
    rounding in the base weights after every call), the base weights are swapped back untouched. Layers in any other state
    (disabled, already merged, a LoRA variant, dropout while training) keep peft's forward."""
    import torch
    try:
        from peft.tuners.lora.layer import Linear as LoraLinear
    except ImportError:  # no peft: nothing is adapted
        yield
        return
    if getattr(model, "_superalign_merged", False):  # a nested call (choice_logprobs -> logprobs): merged already
        yield
        return
    patched = []
    with torch.no_grad():
        for m in model.modules():
            if (not isinstance(m, LoraLinear) or type(m.base_layer) is not torch.nn.Linear or m.merged
                    or m.disable_adapters):
                continue
            names = [a for a in m.active_adapters if a in m.lora_A]
            if any(a in m.lora_variant for a in names) or (m.training and any(
                    not isinstance(m.lora_dropout[a], torch.nn.Identity) for a in names)):
                continue
            live = [a for a in names if bool(cast("torch.Tensor", m.lora_B[a].weight).any())]
            if live and not trained:
                continue
            w = m.base_layer.weight
            # peft's own delta (scaling * B @ A, transposed for fan-in-fan-out layers), summed in fp32
            delta = [m.get_delta_weight(a).float() for a in live]
            old = w.data
            if delta:
                w.data = (old.float() + sum(delta)).to(old.dtype)
            setattr(m, "forward", functools.partial(_merged_forward, m, old))  # an instance attribute: undone below
            patched.append((m, old))
    object.__setattr__(model, "_superalign_merged", True)  # a plain attribute, not a torch buffer or module
    try:
        yield
    finally:
        object.__setattr__(model, "_superalign_merged", False)
        for m, old in patched:
            m.base_layer.weight.data = old
            del m.forward


def _merged_forward(m, base_weight, x, *args, **kwargs):
    """A merged layer's forward: the base layer holding the merged weight, or the base weight alone while the
    adapters are switched off (`with model.disable_adapter():` inside the merged span)."""
    import torch
    if args or kwargs:
        raise TypeError(f"a merged LoRA layer takes one input, got {len(args) + 1} arguments and {sorted(kwargs)}")
    if m.disable_adapters:
        return torch.nn.functional.linear(x, base_weight, m.base_layer.bias)
    return m.base_layer(x)


def _inference(method):
    """A LocalLM method that runs the model for inference: LoRA adapters merged into their layers (with
    `merge_lora=False`, only untrained ones, exactly: see merged_lora) and any left unmerged in the model's dtype."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with merged_lora(self.model, trained=self.merge_lora), adapters_in_model_dtype(self.model):
            return method(self, *args, **kwargs)
    return run


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
                 batch_tokens: int = 8192, workers: int = 1, merge_lora: bool = False):
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
                loaded: Any = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, **kw)
                net = loaded.to(self.device)
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
        self._setup(net, tokenizer, batch_size, static_cache, compile, batch_tokens, workers, merge_lora)

    @classmethod
    def wrap(cls, model, tokenizer, name: str = "wrapped", batch_size: int = 16, static_cache: bool = False,
             compile: bool | None = None, batch_tokens: int = 8192, workers: int = 1,
             merge_lora: bool = False) -> "LocalLM":
        """A LocalLM around an already built torch model and tokenizer (benchmarks, trainers)."""
        self = cls.__new__(cls)
        self.name = name
        self.device = str(next(model.parameters()).device)
        self._setup(model, tokenizer, batch_size, static_cache, compile, batch_tokens, workers, merge_lora)
        return self

    def _setup(self, model, tokenizer, batch_size: int, static_cache: bool, compile: bool | None,
               batch_tokens: int = 8192, workers: int = 1, merge_lora: bool = False):
        self.model, self.tokenizer = model, tokenizer
        self.workers = workers  # forked CPU processes a generation or scoring call may use (models/workers.py)
        self.merge_lora = merge_lora  # LoRA adapters merged into their layers while generating or scoring
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
            cc: Any = CompileConfig()
            cc._compile_all_devices = True  # transformers compiles on CUDA only unless told otherwise
            kw["compile_config"] = cc
        return kw

    def generate(self, chats: list[Prompt], params: GenParams | Sequence[GenParams] = GenParams()) -> list[str]:
        return [c.text for c in self.generate_full(chats, params)]

    @_inference
    def generate_full(self, chats: list[Prompt], params: GenParams | Sequence[GenParams] = GenParams(),
                      watch=None) -> list[Completion]:
        """`generate` with token ids, usage counts and finish reasons. With per-row params, `watch(i, token_id)`
        is called for prompt i's every new token (also after the row has finished: the caller tracks that) and
        returning True stops row i early; the other rows are unaffected."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList
        t0 = time.perf_counter()
        rows_params = per_prompt(params, len(chats))
        one = params if isinstance(params, GenParams) else None  # one GenParams for every prompt
        texts = [self.render(c) for c in chats]
        out: list[Completion | None] = [None] * len(texts)
        base = dict(pad_token_id=self.tokenizer.pad_token_id, **self._cache_kwargs())
        pad_multiple = 64 if base.get("cache_implementation") == "static" else None  # fewer shapes to compile
        jobs, meta = [], []
        for b, idx in self._batches(texts):  # tokenized here, before any fork (see models/workers.py)
            enc = self.tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                                 pad_to_multiple_of=pad_multiple, add_special_tokens=False).to(self.device)
            start = enc["input_ids"].shape[1]
            seed = None
            if rows_params is not None:
                rows = [rows_params[i] for i in idx]
                budgets = [p.max_new_tokens for p in rows]
                kwargs = dict(base, max_new_tokens=max(budgets), do_sample=False,
                              logits_processor=LogitsProcessorList([_RowSampler(rows, self.device)]),
                              stopping_criteria=StoppingCriteriaList([_RowBudget(start, budgets, self.device)] +
                                                                     ([_RowWatch(idx, watch)] if watch else [])))
            elif one is not None:
                budgets = [one.max_new_tokens] * len(idx)
                kwargs = dict(base, max_new_tokens=one.max_new_tokens)
                if one.temperature > 0:
                    kwargs.update(do_sample=True, temperature=one.temperature, top_p=one.top_p)
                else:
                    kwargs.update(do_sample=False)
                seed = one.seed + b
            jobs.append(functools.partial(self._generate_batch, enc, kwargs, seed))
            meta.append((idx, budgets, enc["attention_mask"].sum(-1).tolist(), int(enc["input_ids"].numel())))
        # a watched generation streams tokens to a caller in this process: it never leaves it
        for (idx, budgets, n_prompt, padded), new in zip(meta, self._run(jobs, parallel=watch is None)):
            for j, i in enumerate(idx):
                row = new[j][:budgets[j]]
                stop = next((k for k, t in enumerate(row) if t in self.stop_ids), None)
                ids = row if stop is None else row[:stop + 1]
                out[i] = Completion(self.tokenizer.decode(ids, skip_special_tokens=True).strip(), ids,
                                    int(n_prompt[j]), len(ids), "length" if stop is None else "stop")
                self.usage.completion_tokens += len(ids)
            self.usage.prompt_tokens += int(sum(n_prompt))
            self.usage.padded_prompt_tokens += padded
        self.usage.generate_s += time.perf_counter() - t0
        return out  # type: ignore[return-value]

    def _generate_batch(self, enc, kwargs: dict, seed: int | None) -> list[list[int]]:
        """One generation batch: the new token ids of each row (padding and all)."""
        import torch
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            gen = self.model.generate(**enc, **kwargs)
        return gen[:, enc["input_ids"].shape[1]:].tolist()

    def _run(self, jobs: list, parallel: bool = True) -> list:
        """Run a call's batches, on `workers` forked processes when this LocalLM may (see models/workers.py)."""
        from superalign.models import workers
        return workers.run(jobs, self.workers if parallel and self.device == "cpu" else 1)

    def _batches(self, texts: list[str]):
        """(first position, row indices) of each generation batch: rows sorted by token length (a batch pads to
        its longest row) and cut at `batch_size` rows or `batch_tokens` padded prompt tokens, whichever comes
        first. Decoding a 135M model on a CPU costs about the same per step for 16 rows as for 64 (it is bound by
        per-step overhead), so short prompts go in wide batches; one 1,000-token jailbreak template in a batch of
        64 short requests would make its prefill 64,000 tokens, so long prompts go in narrow ones."""
        lens = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []
        order = sorted(range(len(texts)), key=lambda i: (lens[i], i))
        start, idx = 0, list[int]()
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

    @_inference
    def choice_logprobs(self, prompts: list[Prompt], choices: list[list[str]]) -> list[list[float]]:
        """Log-prob of each choice after its prompt. When every choice is one token (" A", " Yes"),
        one forward pass per prompt scores all of them; otherwise each (prompt, choice) pair is scored."""
        tok = self.tokenizer
        cids = [[tok(c, add_special_tokens=False)["input_ids"] for c in cs] for cs in choices]
        if not all(len(c) == 1 for cs in cids for c in cs):
            flat = self.logprobs([p for p, cs in zip(prompts, choices) for _ in cs], [c for cs in choices for c in cs])
            out, k = [], 0
            for cs in choices:
                out.append(flat[k:k + len(cs)])
                k += len(cs)
            return out
        encs = [tok([self.render(p) for p in prompts[b:b + self.batch_size]], return_tensors="pt", padding=True,
                    add_special_tokens=False).to(self.device)  # left-padded: the next token is at the end
                for b in range(0, len(prompts), self.batch_size)]
        t0 = time.perf_counter()
        want = [[[int(c[0]) for c in cs] for cs in cids[b:b + self.batch_size]]
                for b in range(0, len(prompts), self.batch_size)]
        batches = self._run([functools.partial(self._next_token_logprobs, enc, w) for enc, w in zip(encs, want)])
        self.usage.score_s += time.perf_counter() - t0
        self.usage.scored_tokens += sum(int(enc["attention_mask"].sum()) for enc in encs)
        return [row for batch in batches for row in batch]

    def _next_token_logprobs(self, enc, want: list[list[int]]) -> list[list[float]]:
        """For each (left-padded) row of one batch, the log-probs of the token ids `want[row]` coming next."""
        import torch
        pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            lp = torch.log_softmax(self.model(**enc, position_ids=pos, logits_to_keep=1).logits[:, -1].float(), -1)
        return [[float(lp[i, c]) for c in w] for i, w in enumerate(want)]

    @_inference
    def token_logprobs(self, prompts: list[Prompt], completions: list[str], reduce: str = "sum"):
        """Per-pair sum (or mean) of completion-token log-probs. Rows are left-padded so every
        completion ends at the last position, and only the last (longest completion + 1) positions
        get logits: scoring a choice costs one forward pass, not a vocabulary-sized softmax per token."""
        import torch
        tok = self.tokenizer
        jobs, scored = [], 0
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
            scored += int(mask.sum())
            jobs.append(functools.partial(self._completion_logprobs, ids, mask, target, k, reduce))
        t0 = time.perf_counter()
        res = [x for batch in self._run(jobs) for x in batch]
        self.usage.scored_tokens += scored
        self.usage.score_s += time.perf_counter() - t0
        return res

    def _completion_logprobs(self, ids, mask, target, k: int, reduce: str) -> list[float]:
        """`token_logprobs` of one left-padded batch whose completions lie in its last k positions."""
        import torch
        width = ids.shape[1]
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        ids, mask, pos, target = (x.to(self.device) for x in (ids, mask, pos, target))
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=k).logits.float()
        lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, width - k + 1:, None])[..., 0]
        s = (lp * target).sum(-1)
        return (s / target.sum(-1).clamp(min=1) if reduce == "mean" else s).tolist()

    @_inference
    def continuation_logprobs(self, prefixes: list[Prompt], continuations: list[list[str]]) -> list[list[float]]:
        """Sum of log p(continuation tokens | prefix) for every continuation of every prefix, the prefix run once.

        Multiple choice scores k answers after one question; `token_logprobs` on the k (question, answer) pairs
        runs the question k times. Here a batch of prefixes (left-padded) runs once with a KV cache, the cache is
        repeated once per continuation, and the continuations (right-padded) run on it: the cost is the
        prefixes plus the answers, not k times the prefixes. Prefix and continuation are tokenized apart, as in
        `token_logprobs`, so both give the same numbers (tests/test_competence.py checks it)."""
        tok = self.tokenizer
        out: list[list[float]] = []
        batches = [([tok(self.render(p), add_special_tokens=False)["input_ids"] for p in prefixes[b:b + self.batch_size]],
                    [[tok(c, add_special_tokens=False)["input_ids"] for c in cc]
                     for cc in continuations[b:b + self.batch_size]])
                   for b in range(0, len(prefixes), self.batch_size)]
        t0 = time.perf_counter()
        res = self._run([functools.partial(self._continuations_on_prefixes, ps, cs) for ps, cs in batches])
        self.usage.score_s += time.perf_counter() - t0
        for (ps, cs), vals in zip(batches, res):
            self.usage.scored_tokens += sum(len(p) for p in ps) + sum(max(len(c) - 1, 0) for cc in cs for c in cc)
            for cc in cs:
                out.append(vals[:len(cc)])
                vals = vals[len(cc):]
        return out

    def _continuations_on_prefixes(self, ps: list[list[int]], cs: list[list[list[int]]]) -> list[float]:
        """`continuation_logprobs` for one batch of token ids: the flat list of sums, prefix by prefix."""
        import torch
        pad, dev = self.tokenizer.pad_token_id, self.device
        width = max(len(p) for p in ps)
        ids = torch.full((len(ps), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(ps):
            ids[i, width - len(p):], mask[i, width - len(p):] = torch.tensor(p, dtype=torch.long), 1
        row = torch.tensor([i for i, cc in enumerate(cs) for _ in cc], dtype=torch.long)
        flat = [c for cc in cs for c in cc]
        n, longest = len(flat), max((len(c) for c in flat), default=0)
        # teacher forcing: input tokens c[:-1] after the prefix, targets c[1:]; the first target comes from the prefix
        cont = torch.full((n, max(longest - 1, 0)), pad, dtype=torch.long)
        target = torch.zeros((n, longest), dtype=torch.long)
        tmask = torch.zeros((n, longest), dtype=torch.float)
        for j, c in enumerate(flat):
            if c:
                cont[j, :len(c) - 1], target[j, :len(c)], tmask[j, :len(c)] = torch.tensor(c[:-1]), torch.tensor(c), 1
        with torch.inference_mode():
            pre = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), use_cache=True, logits_to_keep=1,
                             position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(dev))
            logits = pre.logits[:, -1:][row.to(dev)].float()  # (n, 1, vocab): the first continuation token
            if longest > 1:
                cache = pre["cache"] if "cache" in pre else pre.past_key_values  # renamed in transformers 5.2x
                cache.reorder_cache(row.to(dev))  # one copy of its prefix's cache per continuation
                cmask = tmask[:, 1:]  # input position k is real iff the token after it is a target
                more = self.model(input_ids=cont.to(dev), attention_mask=torch.cat([mask[row], cmask.long()], -1).to(dev),
                                  position_ids=(mask.sum(-1)[row][:, None] + torch.arange(longest - 1)).to(dev),
                                  **{self._cache_kwarg(): cache}).logits.float()
                logits = torch.cat([logits, more], 1)
            lp = torch.log_softmax(logits, -1).gather(-1, target.to(dev)[..., None])[..., 0]
        return (lp * tmask.to(dev)).sum(-1).tolist()

    def _cache_kwarg(self) -> str:
        """The forward argument a KV cache is passed by: `cache` in recent transformers, `past_key_values` before."""
        import inspect
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"

    @_inference
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
                best = lsm.topk(top, dim=-1) if top > 0 else None
                tv, ti = (best.values.tolist(), best.indices.tolist()) if best is not None else ([], [])
            for i, s in enumerate(chunk):
                n = len(s)
                lps = ([None] + lp[i][:n - 1]) if n else []
                tops = None
                if top > 0:
                    tops = ([None] + [list(zip(ti[i][k], tv[i][k])) for k in range(n - 1)]) if n else []
                res.append((lps, tops))
        return res
