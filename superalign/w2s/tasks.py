"""Classification tasks for weak-to-strong, and the per-seed splits.

A task is a fixed pool of labelled examples (shuffled once by `pool_seed`); each seed reshuffles the pool into
weak-train / transfer / test, and holds out `val_frac` of the weak-train and of the transfer rows as
early-stopping rows. Transfer-val rows are labelled by the supervisor, never with gold: every student, the
ceiling and the data-matched control stop on them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from superalign.errors import SuperalignError


@dataclass
class Task:
    """m=1: classify the text into k classes; m>1: pick one of m candidate texts (one shared scorer)."""
    name: str
    ids: list[str]
    texts: list[list[str]]
    labels: np.ndarray
    k: int
    choice: bool

    @property
    def chance(self) -> float:
        """Accuracy of always answering the most common class of the pool: the bar a supervisor must clear."""
        return float(np.bincount(self.labels, minlength=self.k).max() / len(self.labels))


@dataclass
class Splits:
    weak_train: np.ndarray
    weak_val: np.ndarray       # gold, the weak model's own supervision, held out of its training rows
    train: np.ndarray          # transfer rows the students / ceiling / control train on
    val: np.ndarray            # transfer rows for early stopping: supervisor labels only
    test: np.ndarray

    @property
    def transfer(self) -> np.ndarray:
        return np.concatenate([self.train, self.val])


def _options(prompt: str) -> list[str]:
    return [ln[3:] for ln in prompt.splitlines() if len(ln) > 3 and ln[0] in "ABCDEFGH" and ln[1:3] == ". "]


def _example(r: dict) -> tuple[list[str], int, int, bool]:
    if "response" in r:  # judge sets: human label in [0, 1]
        return [f"Request: {r['prompt'][:200]}\nResponse: {r['response']}"], int(float(r["label"]) >= 0.5), 2, False
    if "label" not in r:
        raise SuperalignError(f"record {r.get('id')} has no `label`", "w2s needs a labelled task or judge set")
    # multiple choice (QuaRTz, Social IQa, MMLU): one candidate text per option, "question option", scored by one
    # shared head; the options are read from the prompt's "A. ..." lines (MMLU's `text` is the bare question)
    opts = _options(r.get("prompt", "")) if len(r.get("choices") or []) > 1 else []
    if len(opts) > 1:
        q = r.get("question") or r.get("text") or ""
        return [f"{q} {o}" for o in opts], int(r["label"]), len(opts), True
    k = len(r["choices"]) if r.get("choices") else 2
    return [r.get("text") or r["prompt"]], int(r["label"]), k, False


def load_task(name: str, size: int, pool_seed: int = 0) -> Task:
    """The first `size` usable examples of data set `name` (any name `superalign.data.load` accepts)."""
    from superalign import data
    rows = data.load(name, "all", seed=pool_seed)
    ex = [_example(r) for r in rows]
    shape = max({(len(t), k, c) for t, _, k, c in ex}, key=lambda s: sum((len(t), k, c) == s for t, _, k, c in ex))
    keep = [(r, e) for r, e in zip(rows, ex) if (len(e[0]), e[2], e[3]) == shape][:size]
    if len(keep) < size:
        raise SuperalignError(f"task {name!r} has {len(keep)} usable examples; the splits need {size}",
                              "lower w2s.n_weak / n_transfer / n_test for this task")
    labels = np.array([e[1] for _, e in keep])
    k = max(shape[1], int(labels.max()) + 1)
    if len(set(labels.tolist())) < 2:
        raise SuperalignError(f"task {name!r} has a single label in its pool", "use a task with at least two classes")
    return Task(name, [r["id"] for r, _ in keep], [e[0] for _, e in keep], labels, k, shape[2])


def splits(n: int, n_weak: int, n_transfer: int, n_test: int, val_frac: float, seed: int) -> Splits:
    if n_weak + n_transfer + n_test > n:
        raise SuperalignError(f"splits need {n_weak + n_transfer + n_test} examples, the pool has {n}",
                              "lower n_weak / n_transfer / n_test")
    perm = np.random.default_rng(seed).permutation(n)
    w, t, e = perm[:n_weak], perm[n_weak:n_weak + n_transfer], perm[n_weak + n_transfer:n_weak + n_transfer + n_test]
    wv, tv = max(2, int(round(val_frac * n_weak))), max(2, int(round(val_frac * n_transfer)))
    return Splits(w[wv:], w[:wv], t[tv:], t[:tv], e)
