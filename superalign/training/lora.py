"""LoRA adapters on the learner, with in-memory snapshots so a phase can be rolled back."""
from __future__ import annotations

from pathlib import Path


def attach(model, r: int = 16, alpha: int = 32, dropout: float = 0.0, target_modules="all-linear", seed: int = 0):
    """Wrap `model` in a peft LoRA adapter (once; a model already wrapped is returned as is).
    The adapter starts as the identity (B = 0), so attaching never changes the learner's outputs."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    if isinstance(model, PeftModel):
        return model
    torch.manual_seed(seed)
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                     task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def snapshot(model) -> dict:
    from peft import get_peft_model_state_dict
    state = get_peft_model_state_dict(model, save_embedding_layers=False)  # see save_adapter
    return {k: v.detach().clone() for k, v in state.items()}


def restore(model, snap: dict) -> None:
    from peft import set_peft_model_state_dict
    set_peft_model_state_dict(model, snap)


def save_adapter(model, path: str | Path) -> str:
    # The vocabulary is never resized, so embeddings are not saved; peft's "auto" would instead look the
    # base name up (on the hub, for a hub id) on every save.
    model.save_pretrained(str(path), save_embedding_layers=False)
    return str(path)


def load_adapter(model, path: str | Path) -> None:
    """Load adapter weights saved by `save_adapter` into an already attached model."""
    from peft.utils import load_peft_weights
    restore(model, load_peft_weights(str(path), device=str(next(model.parameters()).device)))
