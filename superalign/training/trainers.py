"""DPO and SFT phases on a LoRA-wrapped learner, through TRL."""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from superalign.errors import SuperalignError


TRACKERS = ("tensorboard", "mlflow", "wandb")
_TRACKER_PKG = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


@dataclass
class TrainArgs:
    """Settings both phases share; `DPOArgs` / `SFTArgs` add their own."""
    learning_rate: float = 2e-4
    epochs: float = 1.0
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 384
    max_steps: int = -1
    seed: int = 0
    gradient_checkpointing: bool = False  # TRL turns it on; at LoRA-on-small-model sizes it only costs time
    report_to: list[str] = field(default_factory=list)  # TRL's own trackers: tensorboard | mlflow | wandb
    log_dir: str | None = None    # where trackers write (TensorBoard: LOG_DIR/runs/...); None = a temp dir
    run_name: str | None = None   # the name trackers show for this phase
    extra: dict = field(default_factory=dict)  # any other DPOConfig / SFTConfig key, passed through


@dataclass
class DPOArgs(TrainArgs):
    learning_rate: float = 5e-4
    beta: float = 0.1
    loss_type: str | list[str] = "sigmoid"  # TRL's DPO losses: sigmoid, ipo, hinge, robust, apo_zero, ...
    # the policy the DPO loss anchors to: the learner as the phase starts (a KL-anchored step from the last
    # accepted state), or the base model with no adapter (every phase anchored to the same, untrained policy)
    reference: Literal["phase_start", "base"] = "phase_start"


@dataclass
class SFTArgs(TrainArgs):
    pass


def check_trackers(report_to: list[str]) -> None:
    """Unknown tracker names and trackers whose package is missing fail before any training starts."""
    import importlib.util
    for t in report_to:
        if t not in TRACKERS:
            raise SuperalignError(f"unknown tracker {t!r} in run.report_to", f"use any of: {', '.join(TRACKERS)}")
        if importlib.util.find_spec(_TRACKER_PKG[t]) is None:
            raise SuperalignError(f"run.report_to names {t} but the `{_TRACKER_PKG[t]}` package is not installed",
                                  f"pip install 'superalign[{t}]' (or remove {t} from run.report_to)")


def _bf16(model) -> bool:
    """Train under bf16 autocast on a GPU, and on a CPU when the model is held in bf16 (models/local.py picks bf16
    where the CPU has bf16 hardware): there a LoRA step of SmolLM2 ran 1.6x faster than in fp32 (bench/loop_speed.py)."""
    import torch
    return torch.cuda.is_available() or getattr(model, "dtype", None) == torch.bfloat16


def _config(config_cls, a: TrainArgs, out: str, bf16: bool = False, **own):
    """The TRL config: our settings, the phase's own (`own`), then `extra` on top. An `extra` key the
    installed TRL does not know is named instead of failing deep inside TRL."""
    import dataclasses

    import torch
    check_trackers(a.report_to)
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(a.extra) - known)
    if unknown:
        raise SuperalignError(f"{config_cls.__name__} has no field(s) {unknown} (from the phase's `extra:`)",
                              f"use keys of trl.{config_cls.__name__} (trl docs), e.g. warmup_ratio, weight_decay")
    kw = dict(output_dir=out, learning_rate=a.learning_rate, num_train_epochs=a.epochs, max_steps=a.max_steps,
              per_device_train_batch_size=a.batch_size, gradient_accumulation_steps=a.grad_accum,
              max_length=a.max_length, seed=a.seed, data_seed=a.seed, report_to=list(a.report_to),
              run_name=a.run_name, save_strategy="no",
              gradient_checkpointing=a.gradient_checkpointing, train_sampling_strategy="sequential",
              logging_steps=1, disable_tqdm=True, lr_scheduler_type="constant", warmup_steps=0,
              use_cpu=not torch.cuda.is_available(), bf16=bf16,
              dataloader_num_workers=0, remove_unused_columns=True)
    return config_cls(**{**kw, **own, **a.extra})


@contextmanager
def _out_dir(a: TrainArgs):
    """The trainer's output dir: `log_dir` when trackers write there, else a temp dir (nothing is saved)."""
    if a.log_dir:
        Path(a.log_dir).mkdir(parents=True, exist_ok=True)
        yield str(a.log_dir)
    else:
        with tempfile.TemporaryDirectory() as out:
            yield out


def _quiet(trainer):
    """No per-step log dicts or data-prep bars on the console: the loop shows its own progress."""
    import datasets
    from transformers import PrinterCallback
    datasets.disable_progress_bars()
    trainer.remove_callback(PrinterCallback)
    return trainer


def fit_prompt(tokenizer, prompt: str, completions: list[str], max_length: int) -> str:
    """Cut the middle out of a rendered prompt so prompt + longest completion fits `max_length` tokens.
    TRL truncates from the end (`keep_start`), which on a long jailbreak template drops the completions
    and leaves a pair that costs a full step and teaches nothing. The head keeps the chat header, the
    tail the request and the assistant turn."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    longest = max((len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in completions), default=0)
    budget = max_length - min(longest, max_length // 2) - 8  # margin: re-tokenising at the cut can shift a few tokens
    if len(ids) <= budget:
        return prompt
    head = max(1, budget // 4)
    tail = max(1, budget - head - 4)
    return (tokenizer.decode(ids[:head], skip_special_tokens=False) + " [...] "
            + tokenizer.decode(ids[-tail:], skip_special_tokens=False))


def length_batched(rows: list[dict], length, batch_size: int, seed: int) -> list[dict]:
    """Rows ordered so each batch holds rows of similar length, batches in seeded random order.
    Padding to the longest row dominated DPO step time when a few long jailbreak prompts were spread
    over many batches; the trainer then reads this order sequentially."""
    import random
    order = sorted(range(len(rows)), key=lambda i: (length(rows[i]), i))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    random.Random(seed).shuffle(batches)
    return [rows[i] for b in batches for i in b]


OnStep = Callable[[int, int], None]


@contextmanager
def _env(**values: str):
    """Environment variables set for the duration of a block, then restored."""
    import os
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _progress(on_step: OnStep):
    """A transformers callback calling `on_step(steps done, total steps)` after each optimizer step."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            on_step(int(state.global_step), int(state.max_steps))
    return Progress()


def step_log(history: list[dict]) -> list[dict]:
    """TRL's per-step `log_history` as JSON-safe numbers (loss, learning_rate, grad_norm, epoch, step and
    whatever the trainer logs: DPO's rewards/*, logps/*, logits/*, ...). A non-finite value becomes None;
    the end-of-training summary (train_runtime, train_loss, ...) is not a step and is left out."""
    import math
    out = []
    for h in history:
        if "train_runtime" in h:
            continue
        row = {}
        for k, v in h.items():
            if hasattr(v, "item"):  # a tensor or numpy scalar
                v = v.item()
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            row[k] = v if isinstance(v, int) else (float(v) if math.isfinite(v) else None)
        out.append(row)
    return out


def _train(trainer_cls, cfg, model, tokenizer, rows: list[dict], args: TrainArgs, after=None, setup=None,
           on_step: OnStep | None = None) -> dict:
    """Length-batch the rows, run one TRL trainer pass; return its step count, first/last loss and per-step log.
    `setup(trainer)` runs between building the trainer and training; `on_step` reports progress."""
    import datasets
    datasets.disable_progress_bars()
    def length(x):  # prompt + longest completion, in characters
        return len(x["prompt"]) + max(len(x.get(k, "")) for k in ("chosen", "rejected", "completion"))
    ds = datasets.Dataset.from_list(length_batched(rows, length, args.batch_size * args.grad_accum, args.seed))
    model.train()
    try:
        with _env(TQDM_DISABLE="1"):  # TRL's reference-log-prob pass draws a bar of its own otherwise
            tr = _quiet(trainer_cls(model=model, args=cfg, train_dataset=ds, processing_class=tokenizer))
        if on_step is not None:
            tr.add_callback(_progress(on_step))
        if setup:
            setup(tr)
        res = tr.train()
    finally:
        model.eval()
        if after:
            after()
    log = step_log(tr.state.log_history)
    losses = [h["loss"] for h in log if h.get("loss") is not None]
    return {"steps": res.global_step, "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None, "n": len(rows), "log": log,
            "tokens": _tokens(tr.train_dataset, args.max_length)}


def _dpo_trainer(trainer_cls, compact: bool):
    """TRL's DPO trainer, (1) taking reference log-probs already in the data set (`ref_chosen_logps`,
    `ref_rejected_logps`) instead of computing them again: the K candidate updates of one phase start from the same
    adapter, so their reference log-probs are the same and are computed once (`dpo(ref_logps=...)`); and (2) with
    `compact`, scoring tokens with `_compact_lm_head` from the first forward on (the reference pass included, so the
    policy and its reference are always scored the same way)."""
    class DPOTrainer(trainer_cls):
        def _precompute_ref_logps(self, dataset, name, batch_size):
            if compact:
                _compact_lm_head(self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model)
            if "ref_chosen_logps" in dataset.column_names:
                return dataset
            return super()._precompute_ref_logps(dataset, name, batch_size)
    return DPOTrainer


def _compact_lm_head(model) -> None:
    """Replace TRL's fused LM head (patched onto `model.forward` by the DPO trainer) with one that projects only
    the positions whose label counts. TRL's fallback for devices without Triton projects every position, prompt
    included, in fp32 tiles: a third of a DPO step on the project's CPUs (bench/loop_speed.py). This one computes
    the same quantities, also from fp32 logits, for the completion tokens only. Llama-style heads only (no logit
    scale or soft-capping), temperature 1, no MoE router loss; anything else keeps TRL's head."""
    import types

    import torch
    from trl.trainer.utils import FusedCausalLMOutput
    cfg = model.config.get_text_config()
    if any(getattr(cfg, k, None) is not None for k in ("final_logit_softcapping", "logit_scale", "output_multiplier",
                                                         "lm_head_multiplier", "logits_scaling")):
        return
    fused = model.forward  # TRL's: non-fused calls go on to the model's own forward

    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kw):
        if not fused_lm_head or shift_labels is not None or kw.get("output_router_logits"):
            return fused(*args, fused_lm_head=fused_lm_head, labels=labels, shift_labels=shift_labels,
                         num_items_in_batch=num_items_in_batch, **kw)
        kw["use_cache"] = False
        hidden = self.base_model(*args, **kw).last_hidden_state[:, :-1]
        labels = labels[:, 1:].to(hidden.device)
        mask = labels != -100
        weight = self.get_output_embeddings().weight
        with torch.autocast(hidden.device.type, enabled=False):
            logits = hidden[mask].float() @ weight.float().t()
        logp = logits.log_softmax(-1)
        lp = logp.gather(-1, labels[mask][:, None])[:, 0]

        def full(x):
            return x.new_zeros(mask.shape).masked_scatter(mask, x)
        with torch.no_grad():
            p = logp.exp()
            extra = {"entropy": full(-(p * logp).sum(-1)), "log_sum_sq_probs": full(torch.logsumexp(2 * logp, -1)),
                     "mean_logits": full(logits.mean(-1)), "is_top1": full(logits.argmax(-1) == labels[mask])}
        loss = -lp.sum() / (mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch)
        return FusedCausalLMOutput(loss=loss, log_probs=full(lp), label_mask=mask, aux_loss=None, **extra)
    model.forward = types.MethodType(forward, model)


def _ref_key(row: dict) -> str:
    return "\x00".join((row["prompt"], row["chosen"], row["rejected"]))


def _tokens(ds, max_length: int) -> int:
    """Tokens one pass over the tokenized data set feeds the model (per sequence, capped at `max_length`): DPO
    reads prompt + chosen and prompt + rejected, SFT its `input_ids`."""
    cols = set(ds.column_names)
    if {"prompt_ids", "chosen_ids", "rejected_ids"} <= cols:
        return sum(min(max_length, len(p) + len(c)) + min(max_length, len(p) + len(r))
                   for p, c, r in zip(ds["prompt_ids"], ds["chosen_ids"], ds["rejected_ids"]))
    if "input_ids" in cols:
        return sum(min(max_length, len(x)) for x in ds["input_ids"])
    return 0


def dpo(model, tokenizer, pairs: list[dict], args: DPOArgs = DPOArgs(), *, on_step: OnStep | None = None,
        ref_logps: dict | None = None) -> dict:
    """One DPO pass on `pairs` ({prompt, chosen, rejected} raw strings). The reference policy (`args.reference`):
    `phase_start`, the learner as it is when the phase starts (TRL copies the LoRA adapter into a frozen `ref`
    adapter, removed again afterwards), so each phase is a KL-anchored step from the last accepted state; or
    `base`, the model with the adapter disabled. TRL (1.16, installed) has no option for the latter: it always
    adds the `ref` copy to a PeftModel, and computes reference log-probs with the adapter disabled only when no
    `ref` adapter exists, so `base` deletes that copy once the trainer is built (before any log-prob is taken)."""
    from trl import DPOConfig, DPOTrainer
    if not pairs:
        raise SuperalignError("DPO phase got no preference pairs", "the critic produced no (better, worse) pairs")
    logging.getLogger("trl").setLevel(logging.ERROR)

    if args.reference not in ("phase_start", "base"):
        raise SuperalignError(f"unknown DPO reference {args.reference!r}", "use reference: phase_start or base")
    if args.reference == "base" and args.extra.get("precompute_ref_log_probs"):
        raise SuperalignError("reference: base cannot be combined with precompute_ref_log_probs (TRL precomputes "
                              "with the phase-start adapter copy)", "drop precompute_ref_log_probs from `extra`")

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    own_forward = base.__dict__.get("forward")  # TRL patches a fused LM head onto the instance; undone after

    def drop_ref(_trainer=None):
        if "ref" in getattr(model, "peft_config", {}):  # TRL's frozen copy of the adapter at phase start
            model.set_adapter("default")
            model.delete_adapter("ref")

    def after():
        drop_ref()
        if own_forward is None:
            base.__dict__.pop("forward", None)  # otherwise every phase wraps the forward once more
        else:
            base.forward = own_forward
    rows = [{"prompt": fit_prompt(tokenizer, p["prompt"], [p["chosen"], p["rejected"]], args.max_length),
             "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]
    # `ref_logps` (a dict the candidates of one phase share): the phase-start reference is computed once, in one
    # pass before training, by the first candidate; the others read it. `base` needs the adapter switched off at
    # every step, which the precomputation cannot do, so it never shares. On a CPU the reference is always
    # precomputed (so the compact LM head scores it too, see `_dpo_trainer`).
    import torch
    compact = not torch.cuda.is_available() and args.reference == "phase_start"
    share = ref_logps is not None and args.reference == "phase_start"
    own = {"precompute_ref_log_probs": True} if share or compact else {}
    if share and ref_logps is not None and all(_ref_key(r) in ref_logps for r in rows):
        rows = [{**r, "ref_chosen_logps": ref_logps[_ref_key(r)][0], "ref_rejected_logps": ref_logps[_ref_key(r)][1]}
                for r in rows]
    loss: str | list[str] = [args.loss_type] if isinstance(args.loss_type, str) else list(args.loss_type)
    if isinstance(DPOConfig.__dataclass_fields__["loss_type"].default, str):  # older TRL: one loss, a string
        if len(loss) != 1:
            raise SuperalignError(f"this TRL version takes one DPO loss_type, got {loss}", "name a single loss_type")
        loss = loss[0]
    def keep_ref(trainer):
        ds = trainer.train_dataset
        if share and {"prompt", "chosen", "rejected", "ref_chosen_logps"} <= set(ds.column_names):
            eos = tokenizer.eos_token or ""  # TRL appends it to both completions
            for r, c, j in zip(ds.select_columns(["prompt", "chosen", "rejected"]), ds["ref_chosen_logps"],
                               ds["ref_rejected_logps"]):
                r = {"prompt": r["prompt"], **{k: r[k].removesuffix(eos) for k in ("chosen", "rejected")}}
                ref_logps[_ref_key(r)] = (float(c), float(j))
    with _out_dir(args) as out:
        cfg = _config(DPOConfig, args, out, bf16=_bf16(model), beta=args.beta, loss_type=loss, **own)
        return _train(_dpo_trainer(DPOTrainer, compact), cfg, model, tokenizer, rows, args,
                      after=after, on_step=on_step,
                      setup=lambda tr: (keep_ref(tr), drop_ref(tr) if args.reference == "base" else None))


def sft(model, tokenizer, examples: list[dict], args: SFTArgs = SFTArgs(), *, on_step: OnStep | None = None) -> dict:
    """Supervised fine-tuning on {prompt, completion} raw strings; the loss covers the completion only."""
    from trl import SFTConfig, SFTTrainer
    if not examples:
        raise SuperalignError("SFT phase got no examples", "check the competence data sets in `data.competence`")
    logging.getLogger("trl").setLevel(logging.ERROR)
    rows = [{"prompt": fit_prompt(tokenizer, e["prompt"], [e["completion"]], args.max_length),
             "completion": e["completion"]} for e in examples]
    with _out_dir(args) as out:
        cfg = _config(SFTConfig, args, out, bf16=_bf16(model), completion_only_loss=True, packing=False)
        return _train(SFTTrainer, cfg, model, tokenizer, rows, args, on_step=on_step)
