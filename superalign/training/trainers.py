"""DPO and SFT phases on a LoRA-wrapped learner, through TRL."""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field

from superalign.errors import SuperalignError


@dataclass
class DPOArgs:
    learning_rate: float = 5e-4
    beta: float = 0.1
    epochs: float = 1.0
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 384
    max_steps: int = -1
    seed: int = 0


@dataclass
class SFTArgs:
    learning_rate: float = 2e-4
    epochs: float = 1.0
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 384
    max_steps: int = -1
    seed: int = 0
    extra: dict = field(default_factory=dict)


def _common(a, out: str) -> dict:
    import torch
    return dict(output_dir=out, learning_rate=a.learning_rate, num_train_epochs=a.epochs, max_steps=a.max_steps,
                per_device_train_batch_size=a.batch_size, gradient_accumulation_steps=a.grad_accum,
                max_length=a.max_length, seed=a.seed, data_seed=a.seed, report_to=[], save_strategy="no",
                logging_steps=1, disable_tqdm=True, lr_scheduler_type="constant", warmup_steps=0,
                use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available(),
                dataloader_num_workers=0, remove_unused_columns=True)


def _quiet(trainer):
    """No per-step log dicts or data-prep bars on the console: the loop shows its own progress."""
    import datasets
    from transformers import PrinterCallback
    datasets.disable_progress_bars()
    trainer.remove_callback(PrinterCallback)
    return trainer


def _losses(trainer) -> list[float]:
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def dpo(model, tokenizer, pairs: list[dict], args: DPOArgs = DPOArgs()) -> dict:
    """One DPO pass on `pairs` ({prompt, chosen, rejected} raw strings). The reference policy is the
    learner as it is when the phase starts (TRL copies the LoRA adapter into a frozen `ref` adapter,
    removed again afterwards), so each phase is a KL-anchored step from the last accepted state."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer
    if not pairs:
        raise SuperalignError("DPO phase got no preference pairs", "the critic produced no (better, worse) pairs")
    logging.getLogger("trl").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as out:
        cfg = DPOConfig(beta=args.beta, **_common(args, out))
        import datasets
        datasets.disable_progress_bars()
        ds = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
        model.train()
        tr = _quiet(DPOTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tokenizer))
        try:
            res = tr.train()
        finally:
            model.eval()
            if "ref" in getattr(model, "peft_config", {}):  # TRL's frozen copy of the adapter at phase start
                model.set_adapter("default")
                model.delete_adapter("ref")
    losses = _losses(tr)
    return {"steps": res.global_step, "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None, "n": len(pairs)}


def sft(model, tokenizer, examples: list[dict], args: SFTArgs = SFTArgs()) -> dict:
    """Supervised fine-tuning on {prompt, completion} raw strings; the loss covers the completion only."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer
    if not examples:
        raise SuperalignError("SFT phase got no examples", "check the competence data sets in `data.competence`")
    logging.getLogger("trl").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as out:
        cfg = SFTConfig(completion_only_loss=True, packing=False, **_common(args, out), **args.extra)
        import datasets
        datasets.disable_progress_bars()
        ds = Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples])
        model.train()
        tr = _quiet(SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tokenizer))
        res = tr.train()
        model.eval()
    losses = _losses(tr)
    return {"steps": res.global_step, "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None, "n": len(examples)}
