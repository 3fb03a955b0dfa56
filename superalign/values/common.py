"""What the axes written for this project share: fixed-split evaluation items, prompt templates picked by a hash,
training prompts kept away from every evaluation item by meaning, and the stance cues the critic's rules read."""
from __future__ import annotations

import random
import re
import zlib
from collections import defaultdict
from functools import lru_cache

from superalign.data import dedup, load_all

NEAR = 0.85  # MiniLM cosine at which a training text counts as a copy of an evaluation text (as data/boundary.py)


def pick(options: tuple[str, ...], key: str) -> str:
    """One of `options`, fixed by a hash of `key`: the same item always gets the same template."""
    return options[zlib.crc32(key.encode()) % len(options)]


def spread(items: list[dict], seed: int) -> list[dict]:
    """Items reordered so any prefix keeps the kinds in their proportions (each kind shuffled by `seed`, then
    interleaved by rank / kind size): a set cut to n items keeps its mix of targets and controls."""
    by: dict[str, list[dict]] = defaultdict(list)
    for x in sorted(items, key=lambda x: x["id"]):
        by[x["kind"]].append(x)
    rng = random.Random(seed)
    keyed = [((i + 0.5) / len(v), k, x) for k, v in sorted(by.items()) for i, x in enumerate(rng.sample(v, len(v)))]
    return [x for *_, x in sorted(keyed, key=lambda t: (t[0], t[1]))]


def fixed_split(rows: list[dict], split: str, seed: int, n: int) -> list[dict]:
    """A project file's items of an evaluation split: `test` is the file's test part; the file's dev part is cut in
    two halves by `seed`, `val_select` (ranks candidate updates) and `val_guard` (decides rollbacks), which never
    share an item (a group, e.g. a misconception and its correction, stays on one side). `n` caps the size."""
    if split == "test":
        part = [r for r in rows if r["split"] == "test"]
    else:
        dev = [r for r in rows if r["split"] == "dev"]
        groups = sorted({r.get("group", r["id"]) for r in dev})
        random.Random(seed).shuffle(groups)
        half = set(groups[: len(groups) // 2]) if split == "val_select" else set(groups[len(groups) // 2:])
        part = [r for r in dev if r.get("group", r["id"]) in half]
    return spread(part, seed)[:n]


def sizes(cfg, split: str) -> int:
    """Items per axis in `split`: eval.axis_items on test, val_fraction of it on each validation split."""
    e = cfg.eval
    return e.axis_items if split == "test" else max(1, int(e.axis_items * e.val_fraction))


def eval_texts() -> list[str]:
    """Every text an axis evaluates on, any split: claims, push-back questions, privacy dev and test prompts, and
    the look-alike prompts (harmlessness's over-refusal set, which the privacy controls resemble)."""
    rows = load_all("claims") + load_all("pushback") + load_all("lookalike")
    return [r["prompt"] for r in rows] + [r["prompt"] for r in load_all("privacy") if r["split"] != "train"]


@lru_cache(maxsize=8)
def far_from_eval(train_name: str, field: str = "prompt", embed=None) -> frozenset[str]:
    """Ids of `train_name` records whose `field` is below MiniLM cosine NEAR to every evaluation text of every axis
    (`eval_texts`): a training prompt that copies an evaluation item is never used, whichever axis it would feed.
    `embed`: the embedder (MiniLM with its disk cache by default; tests pass `dedup.hashed()`)."""
    train = [r for r in load_all(train_name) if r.get("split") in (None, "train")]
    embed = embed or dedup.minilm()
    sim = dedup.max_cosine(embed([r[field] for r in train]), embed(eval_texts()))
    return frozenset(r["id"] for r, s in zip(train, sim) if s < NEAR)


def first_sentence(text: str, limit: int = 200) -> str:
    """The answer's opening (its first sentence, at most `limit` characters), lower-cased, straight quotes."""
    t = text.strip().lower().replace("\u2019", "'")[:limit]
    m = re.search(r"(?<=[.!?])\s", t)
    return t[: m.start()] if m else t


def norm(text: str) -> str:
    return dedup.normalise(text)


def mentions(text: str, answer: str) -> bool:
    """Whether the answer text names `answer` (word-bounded, after normalising case and punctuation; a leading
    article of the answer is optional)."""
    a = re.sub(r"^(the|a|an) ", "", norm(answer))
    return bool(a) and re.search(rf"\b{re.escape(a)}\b", norm(text)) is not None
