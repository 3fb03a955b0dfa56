"""Sentence embeddings (MiniLM by default): used by judges, the attacker's rewrite check and the near-duplicate
grouping of data sets, so it depends on nothing but the model assets."""
from __future__ import annotations

import hashlib

import numpy as np

from superalign.errors import SuperalignError
from superalign.models import embedded


class Embedder:
    """Sentence embeddings; `minilm-l6` is the shipped all-MiniLM-L6-v2, anything else an ST/HF name."""
    _cache: dict[str, object] = {}
    _memo: dict[str, dict[str, np.ndarray]] = {}  # per embedder: sha1(text) -> vector

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
        """Unit-norm embeddings, one row per text. Texts seen before (in this process or, through the on-disk
        cache, by any earlier run) are not embedded again: every run fits its critic and judge heads on the same
        few thousand label rows, which cost ~10% of a CPU run's setup and round-0 evaluation."""
        texts = list(texts)
        keys = [hashlib.sha1(t.encode("utf-8", "surrogatepass")).hexdigest() for t in texts]
        memo = Embedder._memo.setdefault(self.name, {})
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in memo}.items())
        if todo:
            disk = _disk_cache(self.name)
            if disk is not None:
                memo.update(disk.get([k for k, _ in todo]))
                todo = [(k, t) for k, t in todo if k not in memo]
            if todo:
                vecs = np.asarray(self.model.encode([t for _, t in todo], batch_size=64, normalize_embeddings=True,
                                                    show_progress_bar=False), dtype=np.float32)
                memo.update(zip([k for k, _ in todo], vecs))
                if disk is not None:
                    disk.put([k for k, _ in todo], vecs)
        dim = self.model.get_sentence_embedding_dimension() or 0
        return np.stack([memo[k] for k in keys]) if keys else np.zeros((0, dim), dtype=np.float32)


class _DiskCache:
    """sha1(text) -> float32 vector in one SQLite file per embedder under the asset cache. A cache that cannot be
    opened or written (read-only home, a full disk, a corrupt file) is skipped: embeddings are recomputed."""

    def __init__(self, path):
        import sqlite3
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            rows = self.db.execute(f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})", part)
            out.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return out

    def put(self, keys: list[str], vecs: np.ndarray) -> None:
        import sqlite3
        try:
            with self.db:
                self.db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)",
                                    [(k, v.astype(np.float32).tobytes()) for k, v in zip(keys, vecs)])
        except sqlite3.Error:
            pass  # best effort: the vectors are in the process memo already


def _disk_cache(name: str) -> "_DiskCache | None":
    import sqlite3

    from superalign.assets import cache_dir
    path = cache_dir() / "embeddings" / f"{hashlib.sha1(name.encode()).hexdigest()[:16]}.sqlite"
    if str(path) not in _DISK:
        try:
            _DISK[str(path)] = _DiskCache(path)
        except (OSError, sqlite3.Error):
            _DISK[str(path)] = None
    return _DISK[str(path)]


_DISK: dict[str, "_DiskCache | None"] = {}
