"""LoRA adapters on the learner, with in-memory snapshots so a phase can be rolled back.

`LoraSpec` is the one description of an adapter: the learner, the attacker, W2S and the benchmarks all build
theirs from it, so a rank or target change means the same thing everywhere.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from pydantic import Field

from superalign.errors import Strict, SuperalignError


class LoraSpec(Strict):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: Union[str, list[str]] = "all-linear"

    def peft_config(self, task_type: str = "CAUSAL_LM"):
        from peft import LoraConfig
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, task_type=task_type)


def attach(model, spec: LoraSpec | None = None, seed: int = 0):
    """Wrap `model` in a peft LoRA adapter (once; a model already wrapped is returned as is).
    The adapter starts as the identity (B = 0), so attaching never changes the learner's outputs."""
    import torch
    from peft import PeftModel, get_peft_model
    if isinstance(model, PeftModel):
        return model
    torch.manual_seed(seed)
    return get_peft_model(model, (spec or LoraSpec()).peft_config())


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
    if not Path(path).is_dir():
        raise SuperalignError(f"checkpoint {path} is missing",
                              "restore the run directory's checkpoints/ folder, or start a new run")
    restore(model, load_peft_weights(str(path), device=str(next(model.parameters()).device)))
