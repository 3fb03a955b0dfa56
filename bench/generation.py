"""Tokens/s of the local backend: batched generation vs one prompt at a time.

    python bench/generation.py [--model smollm2-135m-instruct] [--batches 1 8 32] [--new 32]

Counts generated tokens (up to EOS) per second of wall time; prompts are benign requests.
"""
from __future__ import annotations

import argparse
import time

import torch

from superalign import data
from superalign.models import GenParams
from superalign.models.local import LocalLM


def run(m: LocalLM, chats, bs: int, new: int) -> tuple[float, int]:
    m.batch_size = bs
    t0 = time.perf_counter()
    outs = m.generate(chats, GenParams(max_new_tokens=new, temperature=0.0))
    dt = time.perf_counter() - t0
    toks = sum(len(m.tokenizer(o, add_special_tokens=False)["input_ids"]) for o in outs)
    return toks / dt, toks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--new", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    m = LocalLM(a.model, device=a.device)
    rows = data.load("benign", "test", limit=a.prompts)
    chats = [[{"role": "user", "content": r["prompt"]}] for r in rows]
    run(m, chats[:2], 2, 4)  # warm-up
    print(f"model={a.model} device={a.device} threads={torch.get_num_threads()} prompts={len(chats)} "
          f"max_new_tokens={a.new} greedy")
    print(f"{'mode':<22}{'tokens':>8}{'tok/s':>10}{'speed-up':>10}")
    base = None
    for bs in a.batches:
        tps, n = run(m, chats, bs, a.new)
        base = base or tps
        mode = "one at a time" if bs == 1 else f"batched ({bs})"
        print(f"{mode:<22}{n:>8}{tps:>10.1f}{tps / base:>9.2f}x")


if __name__ == "__main__":
    main()
