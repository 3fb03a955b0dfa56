"""The attacker's harm taxonomy (issue 23): ten top-level categories in the HarmBench style, and the rule that puts
every training seed in one of them.

Why our own categories: AdvBench's own labels name who is hurt (`Financial and Business`, `Physical`, ...), not
what is asked for, so an archive over them cannot say "the learner still writes hate speech" or "still gives
drug recipes". The evaluation's sources use categories like these, so per-category compliance in training and in
evaluation speak the same language.

The rule, in order: the first keyword pattern (`KEYWORDS`) that matches the request decides; otherwise the category
whose description (`CATEGORIES`, a few short phrases each) is nearest by MiniLM cosine (the highest cosine to any of
its phrases). `files/attack_seeds_v1.jsonl` (datasheet `files/attack_seeds_v1.md`) is this rule's output for every
seed of the training sources, written by `python bench/attack_taxonomy.py --write`, with each seed's closest
evaluation prompt: a seed of a source the evaluation sets are not de-duplicated against (`pyrit_seeds`) is excluded
when it is within cosine `NEAR` of an evaluation prompt. Seeds of other data sets (a user's file) get the same rule
at run time.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Callable

import numpy as np

FILE = "attack_seeds_v1.jsonl"
NEAR = 0.85  # MiniLM cosine at which a training prompt counts as a copy of an evaluation prompt (as in evalsets)
SOURCES = ("advbench", "pyrit_seeds")  # the training sources the file covers, every split
DEDUPED_BY_EVALSETS = ("advbench",)  # evalsets drops held-out prompts near these, so their seeds need no exclusion

CATEGORIES: dict[str, tuple[str, ...]] = {
    "illegal_goods": ("buying, selling, making or smuggling illegal drugs",
                      "synthesising drugs like methamphetamine at home", "a website that sells drugs or weapons",
                      "selling counterfeit goods on the black market", "smuggling contraband across a border",
                      "human trafficking or organ trafficking", "buying a gun illegally without a background check"),
    "nonviolent_crime": ("committing fraud, scams or theft", "insider trading, tax evasion or money laundering",
                         "manipulating stock prices or financial markets", "shoplifting or stealing a car",
                         "breaking into a house or picking a lock", "identity theft or credit card fraud",
                         "counterfeiting money", "making a fake ID, passport or forged documents",
                         "evading the police or getting away with a crime", "vandalising public property or street signs",
                         "pirating software or copyrighted material", "cheating on an exam",
                         "extortion or blackmail"),
    "cyber": ("hacking into a computer, network, database or account", "writing malware, a computer virus or ransomware",
              "exploiting a software vulnerability", "a phishing website that steals login credentials",
              "a denial of service attack or a botnet", "a script that steals data from a computer system",
              "sending spam from automated accounts"),
    "violence": ("killing, assaulting or physically attacking other people",
                 "planning a terrorist attack or a mass shooting", "inciting violence against a group or a riot",
                 "torturing, abusing or kidnapping someone", "hurting or killing animals", "poisoning someone",
                 "robbing a bank", "arson: starting a fire to destroy property",
                 "sabotaging transport or infrastructure to hurt people"),
    "weapons": ("making a bomb or explosives", "building or modifying a gun or other weapon",
                "making chemical, biological, nuclear or radiological weapons",
                "producing a nerve agent or a toxin in a lab", "a weapon of mass destruction"),
    "hate_harassment": ("hate speech or racist content", "discrimination against a group of people",
                        "harassing, bullying or threatening a person", "cyberbullying or humiliating someone online",
                        "promoting intolerance against a religion or ethnicity",
                        "manipulating or psychologically abusing a person"),
    "sexual_content": ("sexually explicit content or pornography", "sexual exploitation of a person",
                       "sexual content involving minors or grooming a child", "sex trafficking"),
    "disinformation": ("writing fake news or propaganda", "spreading a conspiracy theory or a hoax",
                       "false health claims about vaccines or medicine", "misinformation about an election",
                       "fake reviews or deceiving the public", "defaming a person or a company with false claims"),
    "privacy": ("exposing someone's personal information online", "doxxing a person: finding their home address",
                "tracking someone's location without consent", "secretly spying on or recording a person",
                "collecting users' personal data without consent"),
    "self_harm": ("committing suicide", "hurting or cutting yourself", "self-injury",
                  "eating disorders like anorexia or bulimia", "starving yourself to lose weight",
                  "doing dangerous stunts that could injure you"),
}

# First match wins. Words whose meaning is unambiguous inside a harmful request; the order resolves overlaps
# ("kill yourself" is self-harm before violence, "steal personal information" privacy before crime).
KEYWORDS: tuple[tuple[str, re.Pattern], ...] = tuple((c, re.compile(p, re.I)) for c, p in (
    ("self_harm", r"\b(suicid\w*|self[- ]?harm\w*|(kill|hang|hurt|harm|cut|starve) (yourself|themselves|myself|oneself)|"
                  r"anorexi\w*|bulimi\w*|eating disorders?)\b"),
    ("sexual_content", r"\b(porn\w*|sexual\w*|sexually|sex traffick\w*|erotic\w*|nudes?)\b"),
    ("cyber", r"\b(hack\w*|malware|ransomware|computer virus\w*|keylogger\w*|botnets?|ddos|zip bomb|spam\w*|"
              r"sql injection|exploits? (a |the )?(software )?vulnerabilit\w*|root privileges|spyware|"
              r"social engineering)\b"),
    ("weapons", r"\b(bombs?|explosives?|chemical weapons?|biological weapons?|bioweapons?|nerve agents?|"
                r"molotov|firearms?|guns?|nuclear weapons?|ricin|sarin|anthrax)\b"),
    ("privacy", r"\b(dox\w*|personal (information|data|details)|private (information|data)|"
                r"track (someone|a person)|spy on|surveil\w*)\b"),
    ("nonviolent_crime", r"\b(fraud\w*|launder\w*|insider trading|shoplift\w*|tax evasion|evade taxes|"
                         r"counterfeit money|scam\w*|embezzl\w*|identity theft|steal\w*|stole|stolen|theft|"
                         r"extort\w*|blackmail\w*|pirat\w*|copyright\w*|fake ids?|forg(e|ed|ery|ing)|"
                         r"vandal\w*|pick a lock|lock ?pick\w*)\b"),
    ("hate_harassment", r"\b(racis\w*|hate speech|hatred|discriminat\w*|antisemit\w*|xenophob\w*|"
                        r"religious intolerance|bully\w*|harass\w*|cyberstalk\w*|threat\w*)\b"),
    ("disinformation", r"\b(fake news|misinformation|disinformation|propaganda|conspiracy theor\w*|hoax|"
                       r"false information|fake reviews?|defam\w*)\b"),
    ("illegal_goods", r"\b(illegal drugs?|cocaine|heroin|methamphetamine|meth|fentanyl|black market|"
                      r"traffick\w*|smuggl\w*)\b"),
    ("violence", r"\b(murder\w*|assassinat\w*|terroris\w*|mass shooting|kidnap\w*|tortur\w*|"
                 r"incite violence|poison\w*)\b"),
))

Embed = Callable[[list[str]], np.ndarray]  # texts -> L2-normalised rows


def minilm() -> Embed:
    from superalign.models.embedder import Embedder
    return Embedder("minilm-l6").encode


def keyword(text: str) -> str | None:
    return next((c for c, pat in KEYWORDS if pat.search(text)), None)


def assign(texts: list[str], embed: Embed | None = None) -> list[dict]:
    """Per text: {category, rule ("keyword" or "cosine"), cos (its cosine to the nearest category, which is the
    one chosen under the cosine rule)}."""
    if not texts:
        return []
    names, phrases = zip(*[(c, p) for c, ps in CATEGORIES.items() for p in ps])
    emb = embed or minilm()
    sim = emb(list(texts)) @ emb(list(phrases)).T
    per_cat = np.stack([sim[:, [i for i, n in enumerate(names) if n == c]].max(1) for c in CATEGORIES], 1)
    cats = list(CATEGORIES)
    out = []
    for t, row in zip(texts, per_cat):
        kw = keyword(t)
        best = cats[int(np.argmax(row))]
        out.append({"category": kw or best, "rule": "keyword" if kw else "cosine",
                    "cos": round(float(row[cats.index(kw or best)]), 4)})
    return out


@lru_cache(maxsize=1)
def mapping() -> dict[str, dict]:
    """The versioned file: seed id -> {source, category, rule, cos, near_eval, excluded}."""
    text = resources.files("superalign.data").joinpath("files", FILE).read_text()
    return {r["id"]: r for r in map(json.loads, text.splitlines()) if r}


def categorise(seeds: list[dict], embed: Embed | None = None) -> list[dict]:
    """`seeds` with `category` set by the taxonomy (from the file, else by the rule now), minus the seeds the
    file excludes as near copies of an evaluation prompt. AdvBench's own label is kept as `source_category`."""
    known = mapping()
    todo = [s for s in seeds if s["id"] not in known]
    fresh = dict(zip((s["id"] for s in todo), assign([s["prompt"] for s in todo], embed))) if todo else {}
    out = []
    for s in seeds:
        m = known.get(s["id"]) or fresh[s["id"]]
        if not m.get("excluded"):
            out.append({**s, "source_category": s.get("category"), "category": m["category"],
                        "category_rule": m["rule"]})
    return out


def build_rows(records: list[dict], eval_prompts: list[str], embed: Embed | None = None) -> list[dict]:
    """The file's rows for `records` (the training seeds): the rule's category, and the closest evaluation prompt
    by cosine; a seed whose source the evaluation sets are not de-duplicated against is excluded at `NEAR`."""
    emb = embed or minilm()
    cats = assign([r["prompt"] for r in records], emb)
    ev = emb(eval_prompts)
    near = (emb([r["prompt"] for r in records]) @ ev.T).max(1) if len(eval_prompts) else np.zeros(len(records))
    return [{"id": r["id"], "source": r["set"], **c, "near_eval": round(float(n), 4),
             "excluded": bool(r["set"] not in DEDUPED_BY_EVALSETS and n >= NEAR)}
            for r, c, n in zip(records, cats, near)]
