"""Training the learner: LoRA adapters (peft) updated by TRL's DPO and SFT trainers.

Each trainer is a config + function pair in the TRL manner: `dpo(model, tokenizer, pairs, DPOArgs())`,
`sft(model, tokenizer, examples, SFTArgs())`. Data are raw strings (chat prompts are rendered with
the learner's template first), so conversational and plain-text tasks share one format.
"""
from superalign.training.lora import LoraSpec, attach, load_adapter, restore, save_adapter, snapshot  # noqa: F401
from superalign.training.trainers import DPOArgs, SFTArgs, dpo, sft  # noqa: F401
