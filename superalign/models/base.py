"""The one small interface every model role is bound through."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence, Union, runtime_checkable

from superalign.errors import SuperalignError
from superalign.models.config import Generation

_DEFAULT = Generation()

Chat = list[dict]            # [{"role": "user", "content": "..."}, ...]
Prompt = Union[str, Chat]    # raw text (no template) or a chat (template applied)


@dataclass(frozen=True)
class GenParams:
    """One generation's settings; defaults are the config's `generation` defaults (`models.config.Generation`)."""
    max_new_tokens: int = _DEFAULT.max_new_tokens
    temperature: float = _DEFAULT.temperature
    top_p: float = _DEFAULT.top_p
    seed: int = 0

    @classmethod
    def of(cls, kw: dict, seed: int, max_new_tokens: int) -> "GenParams":
        """A stage's GenParams: the sampling settings its caller passed in `kw` (the config's `generation`),
        `max_new_tokens` as the role's budget when the caller names none."""
        return cls(max_new_tokens=kw.get("max_new_tokens", max_new_tokens), seed=seed,
                   **{k: kw[k] for k in ("temperature", "top_p") if k in kw})

    def __post_init__(self):
        if not (isinstance(self.max_new_tokens, int) and self.max_new_tokens >= 0):
            raise SuperalignError(f"max_new_tokens must be an integer >= 0, got {self.max_new_tokens!r}",
                                  "pass a token budget such as 64")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise SuperalignError(f"temperature must be a finite number >= 0, got {self.temperature!r}",
                                  "use 0 for greedy decoding or e.g. 0.7 for sampling")
        if not (math.isfinite(self.top_p) and 0 < self.top_p <= 1):
            raise SuperalignError(f"top_p must be in (0, 1], got {self.top_p!r}", "use e.g. 0.95")


def per_prompt(params: "GenParams | Sequence[GenParams]", n: int) -> list[GenParams] | None:
    """One GenParams for every prompt (None returned: the caller uses it as is) or exactly one per prompt."""
    if isinstance(params, GenParams):
        return None
    params = list(params)
    if len(params) != n:
        raise SuperalignError(f"generate got {len(params)} GenParams for {n} prompts",
                              "pass one GenParams for all prompts or exactly one per prompt")
    return params


@runtime_checkable
class Backend(Protocol):
    name: str

    def generate(self, chats: list[Prompt], params: GenParams) -> list[str]:
        """One completion per prompt, in order; deterministic for a fixed seed where the backend allows."""
        ...

    def logprobs(self, prompts: list[Prompt], completions: list[str]) -> list[float]:
        """Sum of log p(completion tokens | prompt) for each pair."""
        ...
