"""Frozen features for weak-to-strong heads, cached on disk by content.

A model spec names a featurizer:
- `hashing[:N]`: hashed word uni+bigram counts (N buckets, default 4096), the classical weak model;
- `minilm-l6` or `st:NAME`: sentence-transformer embeddings;
- anything else is a causal/encoder LM (`smollm2-135m-instruct`, `tiny-random`, an HF name or a
  local directory), optionally `@LAYER` (negative counts from the top, default -1): the masked mean
  of that layer's hidden states.

LM features are the expensive part on a CPU, so one forward pass fills every layer an experiment
asks for, and each (model, layer, texts) array is saved under `<cache>/w2s/features/` keyed by a
hash of the texts: every later method, seed and experiment reuses it. For LoRA on the top K blocks the same
pass also saves the token states entering block L-K (`token_states`, float16): the frozen blocks below run
once per task, and every fine-tuning run (all seeds, losses, rungs) starts from that cache.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

from superalign import assets
from superalign.errors import SuperalignError
from superalign.models import embedded

FEATURE_VERSION = 2  # bump when pooling or truncation changes, so cached arrays are rebuilt


def parse(spec: str) -> tuple[str, str, int | None]:
    """(kind, name, layer) of a model spec; kind is hashing | st | lm."""
    if spec == "hashing" or spec.startswith("hashing:"):
        n = spec.partition(":")[2] or "4096"
        if not n.isdigit() or int(n) < 2:
            raise SuperalignError(f"bad hashing spec {spec!r}", "write `hashing` or `hashing:N` with N buckets, e.g. hashing:4096")
        return "hashing", n, None
    if spec == embedded.MINILM or spec.startswith("st:"):
        return "st", spec.removeprefix("st:"), None
    m = re.fullmatch(r"(.+?)(?:@(-?\d+))?", spec)
    if m is None:
        raise SuperalignError("an empty model spec", "name a model: hashing[:N], st:NAME, or NAME[@LAYER]")
    return "lm", m.group(1), int(m.group(2)) if m.group(2) is not None else -1


def text_key(texts: list[str], max_tokens: int, side: str = "right") -> str:
    """Content key of a text list as an LM reads it (`side`: which end truncation cuts)."""
    h = hashlib.sha1(json.dumps([FEATURE_VERSION, max_tokens, texts] + ([side] if side != "right" else [])).encode())
    return h.hexdigest()[:16]


def _path(spec_name: str, layer, key: str, kind: str = "features") -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec_name)
    return assets.cache_dir() / "w2s" / kind / safe / f"L{layer}-{key}.npy"


def token_states(name: str, layer: int, texts: list[str], max_tokens: int, device: str = "cpu",
                 progress=None, side: str = "right") -> tuple[np.ndarray, np.ndarray]:
    """(states (n, max_tokens, d) float16, lengths (n,)) entering block `layer` (0 = the embeddings), cached.
    `side="left"` truncates a long text at its start (multiple-choice candidates end with their option)."""
    key = text_key(texts, max_tokens, side)
    p, pl = _path(name, layer, key, "tokens"), _path(name, "len", key, "tokens")
    states, lengths = load_cached(p, mmap_mode="r"), load_cached(pl)
    if states is None or lengths is None:
        res = _lm_layers(name, [], texts, max_tokens, device, progress, token_layers=(layer,), side=side)
        _save(pl, res["lengths"])
        _save(p, res[("tokens", layer)])
        states, lengths = np.load(p, mmap_mode="r"), np.load(pl)
    return states, lengths


def featurize(specs: list[str], texts: list[str], max_tokens: int = 96, device: str = "cpu",
              progress=None, side: str = "right") -> dict[str, np.ndarray]:
    """Features (len(texts), d) for every spec; cached arrays are loaded, missing LM layers of one
    model are filled by a single pass."""
    key = text_key(texts, max_tokens, side)
    out: dict[str, np.ndarray] = {}
    lm_need: dict[str, dict[int, str]] = {}
    for spec in dict.fromkeys(specs):
        kind, name, layer = parse(spec)
        if kind == "hashing":
            from sklearn.feature_extraction.text import HashingVectorizer
            hv = HashingVectorizer(n_features=int(name), ngram_range=(1, 2), alternate_sign=False, norm="l2")
            out[spec] = hv.transform(texts).toarray().astype(np.float32)
            continue
        p = _path(name, layer if kind == "lm" else "st", key)
        if (cached := load_cached(p)) is not None:
            out[spec] = cached
        elif kind == "st":
            from superalign.models.embedder import Embedder
            out[spec] = _save(p, Embedder(name, device=_dev(device)).encode(texts).astype(np.float32))
        elif layer is not None:  # parse gives every `lm` spec a layer
            lm_need.setdefault(name, {})[layer] = spec
    for name, layers in lm_need.items():
        arrays = _lm_layers(name, list(layers), texts, max_tokens, device, progress, side=side)
        for layer, spec in layers.items():
            out[spec] = _save(_path(name, layer, key), arrays[layer])
    return out


def load_cached(p: Path, **kw):
    """The array at `p` (an .npz as a dict of arrays, every member read now), or None when it is absent or
    unreadable. A cache entry is derived data, so a damaged one (a disk fault, a copy cut short) is named on stderr,
    removed and computed again, where it used to stop a run of hours with a numpy traceback."""
    if not p.exists():
        return None
    try:
        x = np.load(p, **kw)
        if isinstance(x, np.lib.npyio.NpzFile):
            with x:
                return {k: x[k] for k in x.files}
        return x
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        print(f"superalign: the cache file {p} is unreadable ({type(e).__name__}: {e}); computing it again",
              file=sys.stderr)
        p.unlink(missing_ok=True)
        return None


def _save(p: Path, x: np.ndarray) -> np.ndarray:
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = assets.tmp_sibling(p)
    np.save(tmp, x)
    tmp.replace(p)
    return x


def _dev(pref: str) -> str:
    from superalign.models.local import _device
    return _device(pref)


def load_lm(name: str, device: str = "cpu", seed: int = 0):
    """(tokenizer, backbone) of a causal LM without its LM head, right-padded for pooling."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    if name == embedded.TINY:
        tok = embedded.tiny_tokenizer()
        model = embedded.tiny_model(tok, seed=seed).model
    else:
        try:
            path = embedded.resolve(name)
            tok = AutoTokenizer.from_pretrained(path)
            model = AutoModel.from_pretrained(path, dtype=torch.float32)
        except OSError as e:
            raise SuperalignError(f"cannot load model {name!r} for w2s features: {str(e).splitlines()[0]}",
                                  f"use '{embedded.SMOLLM2}', '{embedded.MINILM}', 'hashing', a local directory, "
                                  "or an HF name with network access") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok, model.to(_dev(device)).eval()


def pool(hidden, mask):
    """Masked mean over tokens: (b, t, d) x (b, t) -> (b, d)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


def _lm_layers(name: str, layers: list[int], texts: list[str], max_tokens: int, device: str,
               progress=None, batch_size: int = 32, token_layers: tuple = (), side: str = "right") -> dict:
    """Pooled states of `layers` (keys: layer) and padded token states of `token_layers` (keys: ("tokens", l),
    plus "lengths"), from one forward pass."""
    import torch
    tok, model = load_lm(name, device)
    tok.truncation_side = side
    n_layers = model.config.num_hidden_layers
    for layer in [*layers, *token_layers]:
        if not -n_layers - 1 <= layer <= n_layers:
            raise SuperalignError(f"{name} has {n_layers} layers; layer {layer} does not exist",
                                  f"use {name}@L with -{n_layers} <= L <= {n_layers} (0 = embeddings)")
    res: dict = {l: [] for l in layers}
    toks = {l: np.zeros((len(texts), max_tokens, model.config.hidden_size), np.float16) for l in token_layers}
    lengths = np.zeros(len(texts), np.int64)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
    bar = progress.add_task(f"features {name}", total=len(texts)) if progress else None
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                      max_length=max_tokens).to(model.device)
            if layers or any(token_layers):
                hs = model(**enc, output_hidden_states=True).hidden_states
            else:  # only the token embeddings (LoRA on every block): no block needs to run
                hs = [model.get_input_embeddings()(enc["input_ids"])]
            for l in layers:
                res[l].append(pool(hs[l], enc["attention_mask"]).float().cpu().numpy())
            lens = enc["attention_mask"].sum(1).cpu().numpy()
            lengths[idx] = lens
            for l in token_layers:
                h = hs[l].to(torch.float16).cpu().numpy()
                toks[l][idx, :h.shape[1]] = h
            if progress:
                progress.advance(bar, len(idx))
    inv = np.argsort(order)
    out: dict = {l: np.concatenate(v)[inv].astype(np.float32) for l, v in res.items()}
    out.update({("tokens", l): v for l, v in toks.items()}, lengths=lengths)
    return out


def lm_depth(name: str) -> int:
    """Number of transformer blocks of LM `name`, from its config (no weights loaded)."""
    if name == embedded.TINY:
        return embedded.tiny_model(embedded.tiny_tokenizer()).model.config.num_hidden_layers
    from transformers import AutoConfig
    return AutoConfig.from_pretrained(embedded.resolve(name)).num_hidden_layers
