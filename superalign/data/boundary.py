"""Training targets for the safety boundary (issue 14): written refusals that name the concern and offer a safe
alternative, and benign look-alike prompts on the same topics (contrast pairs).

Why: a 135M learner trained on the critic's best-of-k samples learns from its own weak, cut-off answers, and one
trained on a fixed "I can't help with that" learns the trigger words: it refuses anything that sounds alarming.
The refusal says *what* is declined and *why*, so the refusal is tied to the harmful goal, not to the words;
the contrast prompts (same topic, harmless request) are answered, so the model sees both sides of the line.

`files/boundary_v1.jsonl` (datasheet: `files/boundary_v1.md`): 25 risk topics, each with a concern, a harm, a safe
alternative and 4 harmless prompts on the topic, plus 40 word-play prompts (harmful words, harmless tasks). Written
for this project by a different pass than the evaluation's look-alike set; `contrast_prompts()` drops any prompt
within MiniLM cosine 0.85 of a look-alike evaluation prompt (`bench/loop_efficacy.py` prints the closest).
"""
from __future__ import annotations

import json
import re
import zlib
from functools import lru_cache
from importlib import resources

import numpy as np

FILE = "boundary_v1.jsonl"
GENERIC_REFUSAL = "I'm sorry, but I can't help with that request."
NEAR = 0.85  # MiniLM cosine at which a training prompt counts as a copy of an evaluation prompt

_OPEN = ("I can't help with {concern}.", "I won't help with {concern}.", "Sorry, I can't assist with {concern}.",
         "I'm not able to help with {concern}.")
_WHY = ("That {harm}.", "Doing this {harm}.", "This {harm}.")


@lru_cache(maxsize=1)
def _rows() -> tuple[dict, ...]:
    text = resources.files("superalign.data").joinpath("files", FILE).read_text()
    return tuple(json.loads(ln) for ln in text.splitlines() if ln.strip())


def topics() -> dict[str, dict]:
    return {r["topic"]: r for r in _rows() if r["kind"] == "topic"}


@lru_cache(maxsize=1)
def contrast_prompts() -> tuple[dict, ...]:
    """The harmless look-alike training prompts, minus any near copy of an evaluation look-alike prompt."""
    from superalign.data.registry import load_all
    from superalign.models.embedder import Embedder
    rows = [r for r in _rows() if r["kind"] == "lookalike"]
    ev = [r["prompt"] for r in load_all("lookalike")]
    emb = Embedder("minilm-l6")
    sim = emb.encode([r["prompt"] for r in rows]) @ emb.encode(ev).T
    return tuple({**r, "max_cos_eval": float(s)} for r, s in zip(rows, sim.max(1)) if s < NEAR)


class TopicMatcher:
    """Nearest risk topic of a harmful request, by MiniLM cosine to each topic's description."""

    def __init__(self):
        from superalign.models.embedder import Embedder
        self.emb = Embedder("minilm-l6")
        self.names = list(topics())
        self.vec = self.emb.encode([topics()[t]["match"] for t in self.names])

    def __call__(self, texts: list[str]) -> list[str]:
        if not texts:
            return []
        sim = self.emb.encode(list(texts)) @ self.vec.T
        return [self.names[i] for i in np.argmax(sim, 1)]


def refusal(prompt: str, topic: str) -> str:
    """A complete refusal that names the concern and the harm and offers a safe alternative; the phrasing is
    picked by a hash of the prompt, so the same prompt always gets the same target. A prompt without a risk topic
    (the word-play look-alikes, topic `wordplay`) gets a plain refusal: there is no concern to name."""
    if topic not in topics():
        return GENERIC_REFUSAL
    t = topics()[topic]
    h = zlib.crc32(prompt.encode())
    return " ".join([_OPEN[h % len(_OPEN)].format(concern=t["concern"]),
                     _WHY[(h >> 4) % len(_WHY)].format(harm=t["harm"]), t["alternative"]])


def written_form(text: str) -> bool:
    """Whether `text` opens like one of `refusal()`'s targets (or is the plain refusal). It reads the form only: a
    learner that has imitated the targets writes them too. Used to count preference pairs whose losing side is a
    refusal of this form (bench/conformity_replay.py)."""
    t = text.strip()
    return t == GENERIC_REFUSAL or any(t.startswith(o.split("{")[0]) for o in _OPEN)


_END = re.compile(r"(?<![\d\s])[.!?](?=[\s\"')]|$)")  # a sentence end; not "1." of a list, not a bare "."


def sft_target(meta: dict, better: str | None, response: str) -> tuple[float, str] | None:
    """The one rule for what SFT imitates of a benign prompt's critiqued answer (the loop's competence phase and
    `export`'s `sft` table): the critic's better response when it formed a pair, else the answer itself, cut after
    its last full sentence (`complete`), kept when the critic's utility for it is >= 0.5 and it is not a refusal.
    (utility, text), or None."""
    from superalign.models.classifier import refusal_phrase
    pair = meta.get("pair")
    u = meta.get("better_utility") if pair else meta.get("utility")
    text = complete((better if pair else response) or "")
    if u is None or u < 0.5 or not text or refusal_phrase(text):
        return None
    return u, text


def first_sentence(text: str) -> str | None:
    """The text up to its first finished sentence (by `complete`'s rule), or None when no sentence ends. A small
    learner's refusal tends to wander after its first sentence (bench/conformity_replay.py keeps only that)."""
    m = _END.search(text.strip())
    return text.strip()[:m.end()] if m else None


def complete(text: str, min_chars: int = 20) -> str | None:
    """The answer cut after its last finished sentence, or None when no sentence ends (a target that stops
    mid-word teaches the model to stop mid-word; the trainer appends EOS after the cut). A list number
    ("...include:\n\n1.") is not a sentence end."""
    t = text.strip()
    ends = [m.end() for m in _END.finditer(t)]
    if not ends:
        return None
    t = t[:ends[-1]].strip()
    return t if len(t) >= min_chars else None
