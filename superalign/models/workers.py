"""Independent batches of one model call run on forked CPU processes (`LocalModel.workers`).

Why: decoding a 135M model on a CPU is bound by per-step overhead and memory traffic, not arithmetic, so two
processes at 1 thread each, decoding different batches at once, get more done than one process at 2 threads
(the test prompts' generation: 52.3 s against 60.9 s on the 2-core machine, `bench/loop_speed.py --part workers`).
Training stays in the parent at every thread. Two 1-thread processes do train 1.33x faster together than one 2-thread
process (`--part train_procs`), but a phase's candidates trained that way (commit c453c47) finished the whole phase
only 1.06x sooner and changed which of two near-tied candidates was kept (docs/performance.md): not adopted.

How: the parent forks `workers - 1` children at the moment of the call, so every child holds the model exactly as
it is then (the adapter being evaluated, LoRA weights in the inference dtype) with nothing to send. Parent and
children take job indices from one shared counter, so a slow batch does not hold the others back, and each runs
with `threads // workers` torch threads. A job's result depends only on the job: the same batches at the same
thread count give the same numbers however many processes share them (tests/test_workers.py). Children return
their results through a pipe and leave with `os._exit` (no atexit hooks, no flushed parent buffers, no store
writes). A child that dies or fails returns nothing for the jobs it held: the parent runs those again itself, so a
transient failure (a child killed for memory) costs time, not results, and a real bug raises in the parent with
its own traceback.
CPU only, and only where the caller allows it: a CUDA context does not survive a fork, and a caller that streams
tokens to a client (`watch`) needs them in its own process. A child that hangs on a lock another thread of the parent
held at the fork would hang the call, which is why a child runs only the model's forward passes: the parent
tokenizes before the fork and decodes after, and a child never touches the store, the display or the tokenizer.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def run(jobs: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """`[job() for job in jobs]`, on `workers` processes (this one included) when there are 2 or more jobs. Never
    more processes than this one's torch threads: a run limited to one thread (OMP_NUM_THREADS=1, docs/scale.md)
    stays on one core."""
    import torch
    threads = torch.get_num_threads()
    n = min(workers, len(jobs), threads)
    if n <= 1 or not hasattr(os, "fork"):  # Windows has no fork: one process
        return [job() for job in jobs]
    counter = multiprocessing.get_context("fork").Value("i", 0)  # shared memory, inherited by the children
    children: list[tuple[int, int]] = []
    done: dict[int, T] = {}
    torch.set_num_threads(max(1, threads // n))
    try:
        for _ in range(n - 1):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: take jobs until none are left, send what it did, leave without cleanup
                code = 0
                try:
                    os.close(r)
                    out = _take(jobs, counter, {})
                    with os.fdopen(w, "wb") as f:
                        pickle.dump(out, f, protocol=pickle.HIGHEST_PROTOCOL)
                except BaseException:  # noqa: BLE001 - the parent reruns whatever this child did not return
                    code = 1
                finally:
                    os._exit(code)
            os.close(w)
            children.append((pid, r))
        _take(jobs, counter, done)
    finally:
        for pid, r in children:  # read before waiting: a child blocks on a full pipe until it is read
            try:
                with os.fdopen(r, "rb") as f:
                    data = f.read()
                os.waitpid(pid, 0)
                if data:
                    done.update(pickle.loads(data))
            except (OSError, EOFError, pickle.UnpicklingError):
                pass  # nothing usable came back: its jobs are run again below
        torch.set_num_threads(threads)
    return [done[i] if i in done else jobs[i]() for i in range(len(jobs))]


def _take(jobs: Sequence[Callable[[], T]], counter, out: dict[int, T]) -> dict[int, T]:
    """Run the next unclaimed job until none is left; {job index: result}."""
    while True:
        with counter.get_lock():
            i = counter.value
            counter.value += 1
        if i >= len(jobs):
            return out
        out[i] = jobs[i]()
