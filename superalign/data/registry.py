"""The data-set registry, the JSONL cache of parsed builtin sets, and `load`/`load_all`.

Builders live in `sources.py`/`tasks.py` and register here with `@dataset`; this module
imports neither, so there is no cycle. A set whose records carry a fixed `split` field
(`dev`/`test`, e.g. the hand-written look-alike set) keeps that split for every seed.
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

from superalign import assets
from superalign.errors import SuperalignError
from superalign.models.embedded import looks_like_path

Record = dict
SPLITS = {"train": (0.0, 0.6), "val": (0.6, 0.8), "test": (0.8, 1.0), "all": (0.0, 1.0)}
FIXED_SPLITS = {"val": "dev", "test": "test"}  # load() split -> the split field of a fixed-split set
PARSE_VERSION = 4  # bump when a builder changes, so cached JSONL is rebuilt
_BUILDERS: dict[str, tuple[Callable[[], list[Record]], str]] = {}
ALIASES = {"benign": "benign_easy"}  # old name -> current name; configs written before issue 13 keep working


def dataset(name: str, kind: str):
    """Register a builder; `kind` is harmful | template | judge | benign | lookalike | task | reference | facts |
    claims | pushback | privacy."""
    def deco(fn):
        _BUILDERS[name] = (fn, kind)
        return fn
    return deco


def names(kind: str | None = None) -> list[str]:
    return [n for n, (_, k) in _BUILDERS.items() if kind in (None, k)]


def kind_of(name: str) -> str | None:
    name = ALIASES.get(name, name)
    return _BUILDERS[name][1] if name in _BUILDERS else None


def rid(source: str, text: str) -> str:
    return source + ":" + hashlib.sha1(text.encode()).hexdigest()[:12]


def csv_rows(blob: bytes) -> list[dict]:
    lines = blob.decode("utf-8").splitlines(keepends=True)
    lines = [ln for ln in lines if not ln.startswith("# ")] if lines[0].startswith("#") else lines
    return list(csv.DictReader(io.StringIO("".join(lines))))


def jsonl(blob: bytes) -> list[dict]:
    return [json.loads(ln) for ln in blob.decode("utf-8").splitlines() if ln.strip()]


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
    tmp = assets.tmp_sibling(path)
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)
    return rows


def _jsonl_rows(path: Path) -> list[dict]:
    """One JSON object per line, a bad line named by its line in the file (json.loads, given one line, says
    `line 1` of every line)."""
    rows = []
    for i, ln in enumerate(path.read_text().splitlines(), 1):
        if not ln.strip():
            continue
        try:
            r = json.loads(ln)
        except json.JSONDecodeError as e:
            raise SuperalignError(f"data file {path} is corrupt: line {i}, column {e.colno}: {e.msg}",
                                  "fix that line (each line must be one JSON object)") from None
        if not isinstance(r, dict):
            raise SuperalignError(f"line {i} of data file {path} is a JSON {type(r).__name__}, not an object",
                                  'write one object per line, e.g. {"prompt": "..."} (a JSON array is not JSONL)')
        rows.append(r)
    return rows


def _load_file(path: Path) -> list[Record]:
    try:
        if path.suffix == ".jsonl":
            rows = _jsonl_rows(path)
        elif path.suffix == ".csv":
            rows = list(csv.DictReader(path.open()))
        else:
            raise SuperalignError(f"unsupported data file {path}", "use .jsonl or .csv")
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as e:
        raise SuperalignError(f"data file {path} is corrupt: {e}", "fix or regenerate the file") from None
    return normalise(rows, str(path))


def normalise(rows: list[dict], source: str) -> list[Record]:
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
        r.setdefault("id", rid(source, json.dumps(r, sort_keys=True, default=str)))
        out.append(r)
    return out


HF_KEYS = ("split", "prompt", "response", "label", "category", "id")


def parse_hf(spec: str) -> tuple[str, str | None, dict]:
    """`hf:NAME[:CONFIG][?split=S&prompt=COL&response=COL&label=COL&category=COL&id=COL]` ->
    (name, config, options). NAME is a hub id, or a local directory when written as a path."""
    from urllib.parse import parse_qsl
    body, _, query = spec[3:].partition("?")
    name, _, config = body.partition(":") if not body.startswith(("/", "./", "~")) else (body, "", "")
    try:
        opts = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
        bad = sorted(set(opts) - set(HF_KEYS))
        why = f": unknown option(s) {bad}" if bad else (": no data set name" if not name else "")
    except ValueError as e:  # a field without `=`, or an empty one (`?&`)
        opts, why = {}, f": {e}"
    if why:
        raise SuperalignError(f"bad data set spec {spec!r}{why}",
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
    return normalise(rows, spec)


def load_all(name: str) -> list[Record]:
    name = ALIASES.get(name, name)
    if name in _BUILDERS:
        return _cached_builtin(name)
    if name.startswith("hf:"):
        return _load_hf(name)
    p = Path(name).expanduser()
    if p.exists():
        return _load_file(p)
    if looks_like_path(name):
        raise SuperalignError(f"data file {p} does not exist", "point the data set at an existing .jsonl/.csv file")
    raise SuperalignError(f"unknown data set {name!r}",
                          f"use a built-in ({', '.join(_BUILDERS)}), hf:NAME, or a path to .jsonl/.csv")


def load(name: str, split: str = "all", seed: int = 0, limit: int | None = None) -> list[Record]:
    """Rows of `name` in `split`; the shuffle (and so the split) depends only on `seed`.

    A fixed-split set (records with `split` = dev/test) maps `val` to dev and `test` to test for
    every seed (the seed only reorders); it has no `train` part, which is an error to ask for.

    Records that share a `group` (questions on one passage, say) land in one split together: a model
    tuned on one question of a passage must not be scored on its sibling. A group sits where its first
    member fell in the shuffle, so a set without shared groups splits exactly as without the field."""
    if split not in SPLITS:
        raise SuperalignError(f"unknown split {split!r}", f"use one of {', '.join(SPLITS)}")
    rows = sorted(load_all(name), key=lambda r: r["id"])
    random.Random(seed).shuffle(rows)
    if rows and all(r.get("split") in ("dev", "test") for r in rows):
        if split == "train":
            raise SuperalignError(f"data set {name!r} has a fixed dev/test split and no train part",
                                  "train on another set (e.g. benign_easy); use split 'val' or 'test' here")
        part = rows if split == "all" else [r for r in rows if r["split"] == FIXED_SPLITS[split]]
    else:
        lo, hi = SPLITS[split]
        groups: dict = {}
        for r in rows:
            groups.setdefault(r.get("group", r["id"]), []).append(r)
        start, part = 0, []
        for g in groups.values():  # first-seen order: the shuffle's
            if int(lo * len(rows)) <= start < int(hi * len(rows)):
                part += g
            start += len(g)
    return part[:limit] if limit else part
