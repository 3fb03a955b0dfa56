"""The one small interface every model role is bound through."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Union, runtime_checkable

Chat = list[dict]            # [{"role": "user", "content": "..."}, ...]
Prompt = Union[str, Chat]    # raw text (no template) or a chat (template applied)


@dataclass(frozen=True)
class GenParams:
    max_new_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0


@runtime_checkable
class Backend(Protocol):
    name: str

    def generate(self, chats: list[Prompt], params: GenParams) -> list[str]:
        """One completion per prompt, in order; deterministic for a fixed seed where the backend allows."""
        ...

    def logprobs(self, prompts: list[Prompt], completions: list[str]) -> list[float]:
        """Sum of log p(completion tokens | prompt) for each pair."""
        ...


@runtime_checkable
class Trainable(Protocol):
    """A backend whose torch model and tokenizer a trainer may update in place."""
    model: object
    tokenizer: object
