"""Near-duplicate groups, so that no group of look-alike prompts straddles a train/evaluation split.

Three links put two texts in one group: the same text after `normalise` (case, punctuation, spacing),
embedding cosine >= a threshold (MiniLM, 0.85 by default), or the same explicit key (a template name).
Groups are the connected components of those links (union-find), so a chain a~b~c is one group.
Templates are compared by word 3-gram Jaccard instead: they are long and share boilerplate, which
an embedding of the first 256 tokens misses.
"""
from __future__ import annotations

import hashlib
import re
from typing import Callable, Sequence

import numpy as np

Embed = Callable[[list[str]], np.ndarray]  # texts -> L2-normalised rows


def normalise(text: str) -> str:
    """Lower case, letters and digits only, single spaces: 'Write a guide!' == 'write a  guide'."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def ngrams(text: str, n: int = 3) -> frozenset:
    w = normalise(text).split()
    return frozenset(tuple(w[i:i + n]) for i in range(max(0, len(w) - n + 1)))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def jaccard_matrix(texts: Sequence[str], others: Sequence[str], n: int = 3) -> np.ndarray:
    """Word n-gram Jaccard of every text with every other (sparse set intersections: 100 x 650
    templates of ~500 words take milliseconds instead of seconds)."""
    from scipy import sparse
    ga, gb = [ngrams(t, n) for t in texts], [ngrams(t, n) for t in others]
    vocab: dict = {}
    def mat(gs):
        rows, cols = [], []
        for i, g in enumerate(gs):
            for x in g:
                rows.append(i)
                cols.append(vocab.setdefault(x, len(vocab)))
        return rows, cols
    (ra, ca), (rb, cb) = mat(ga), mat(gb)
    shape = len(vocab)
    a = sparse.csr_matrix((np.ones(len(ra)), (ra, ca)), shape=(len(ga), shape))
    b = sparse.csr_matrix((np.ones(len(rb)), (rb, cb)), shape=(len(gb), shape))
    inter = (a @ b.T).toarray()
    union = np.add.outer(np.array([len(g) for g in ga]), np.array([len(g) for g in gb])) - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def max_jaccard(texts: Sequence[str], others: Sequence[str], n: int = 3) -> np.ndarray:
    """For each text, its highest word n-gram Jaccard with any of `others` (0 when `others` is empty)."""
    if not len(others) or not len(texts):
        return np.zeros(len(texts))
    return jaccard_matrix(texts, others, n).max(axis=1)


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int):
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def minilm(name: str = "minilm-l6") -> Embed:
    """The project's MiniLM embedder with a per-text disk cache: embedding a few thousand prompts costs
    about a minute on 2 CPU cores, and every seed and every test needs the same vectors."""
    def embed(texts: list[str]) -> np.ndarray:
        from superalign.assets import cache_dir, tmp_sibling
        from superalign.models.embedder import Embedder
        path = cache_dir() / "dedup" / f"{name}.npz"
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        have: dict[str, np.ndarray] = {}
        if path.exists():
            try:
                with np.load(path) as z:
                    have = dict(zip(z["keys"].tolist(), z["vecs"]))
            except (OSError, ValueError, KeyError):
                have = {}  # a corrupt cache is rebuilt
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in have}.items())
        if todo:
            vecs = Embedder(name).encode([t for _, t in todo])
            have.update(zip([k for k, _ in todo], vecs))
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = tmp_sibling(path)
            np.savez(tmp, keys=np.array(list(have)), vecs=np.stack(list(have.values())).astype(np.float32))
            tmp.replace(path)
        return np.stack([have[k] for k in keys]).astype(np.float32)
    return embed


def hashed(dim: int = 2048) -> Embed:
    """A fast stand-in embedder (character 3-5-gram hashing, L2-normalised): no model, for unit tests."""
    def embed(texts: list[str]) -> np.ndarray:
        from sklearn.feature_extraction.text import HashingVectorizer
        v = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=dim, norm="l2")
        return v.transform([normalise(t) for t in texts]).toarray().astype(np.float32)
    return embed


def groups(texts: Sequence[str], embed: Embed | None = None, threshold: float = 0.85,
           keys: Sequence[str | None] | None = None, vectors: np.ndarray | None = None) -> np.ndarray:
    """Group label per text (the smallest index in its group): linked by normalised match, cosine >=
    `threshold` between embeddings, or an equal non-empty key."""
    n = len(texts)
    uf = _UnionFind(n)
    first: dict[str, int] = {}
    for i, t in enumerate(texts):
        uf.union(i, first.setdefault(normalise(t), i))
    for i, k in enumerate(keys or []):
        if k:
            uf.union(i, first.setdefault("\x00key:" + k, i))
    if n and (embed is not None or vectors is not None):
        v = vectors if vectors is not None else embed(list(texts)) if embed is not None else None
        assert v is not None
        for start in range(0, n, 1024):  # blocks keep the n x n similarity matrix out of memory
            sim = v[start:start + 1024] @ v.T
            for a, b in zip(*np.nonzero(sim >= threshold)):
                if start + a < b:
                    uf.union(int(start + a), int(b))
    return np.array([uf.find(i) for i in range(n)])


def max_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row of `a`, the highest cosine with any row of `b` (rows L2-normalised); -1 when `b` is empty."""
    if len(a) == 0:
        return np.zeros(0)
    if len(b) == 0:
        return -np.ones(len(a))
    return np.max(a @ b.T, axis=1)
