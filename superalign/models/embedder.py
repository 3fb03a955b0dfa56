"""Sentence embeddings (MiniLM by default): used by judges, the attacker's rewrite check and the near-duplicate
grouping of data sets, so it depends on nothing but the model assets."""
from __future__ import annotations

from typing import Any

import numpy as np

from superalign.errors import SuperalignError
from superalign.models import embedded


class Embedder:
    """Sentence embeddings; `minilm-l6` is the shipped all-MiniLM-L6-v2, anything else an ST/HF name."""
    _cache: dict[str, Any] = {}

    def __init__(self, name: str = embedded.MINILM, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer
        self.name = name
        if name not in Embedder._cache:
            try:
                Embedder._cache[name] = SentenceTransformer(embedded.resolve(name), device=device)
            except OSError as e:
                raise SuperalignError(f"cannot load embedder {name!r}: {e}", f"use '{embedded.MINILM}'") from None
        self.model = Embedder._cache[name]

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                            show_progress_bar=False))
