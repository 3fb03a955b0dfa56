"""Multi-process training through accelerate: 2 CPU processes over gloo, started by torchrun
(what `accelerate launch` with configs/accelerate/multi_gpu.yaml runs on GPUs; accelerate's own
launcher starts only one process for `--cpu` unless MPI is set up). Also the roofline
arithmetic of bench/throughput.py.

Run as a script (`torchrun --nproc_per_node 2 tests/test_throughput.py --ddp-out DIR`) this file
is the DDP worker: a TRL DPO + LoRA run on tiny-random that writes its LoRA weights per rank."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ddp_worker(out: Path):
    """Returns the trainer so that nothing native is torn down before the caller's `os._exit`."""
    import torch
    from accelerate import PartialState
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer
    from superalign.models import embedded
    torch.set_num_threads(1)
    state = PartialState()
    tok = embedded.tiny_tokenizer()
    model = embedded.tiny_model(tok, seed=0)
    words = "yes no maybe sure never always often".split()
    rows = [{"prompt": f"question {i}: {words[i % 7]}?", "chosen": f" {words[(i + 1) % 7]} indeed",
             "rejected": f" {words[(i + 3) % 7]} not"} for i in range(16)]
    args = DPOConfig(output_dir=str(out / "trainer"), per_device_train_batch_size=2, max_steps=3, learning_rate=5e-2,
                     max_length=64, report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, seed=0,
                     dataloader_num_workers=0)
    tr = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                    peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    tr.train()
    lora = {n: p.detach().flatten()[:8].tolist() for n, p in tr.model.named_parameters() if "lora_" in n}
    (out / f"rank{state.process_index}.json").write_text(json.dumps(
        {"world": state.num_processes, "backend": str(state.backend), "lora": lora}))
    state.wait_for_everyone()
    return tr


def test_accelerate_ddp_dpo_lora_on_two_cpu_processes(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false", ACCELERATE_DISABLE_RICH="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(port),
                           str(Path(__file__).resolve()), "--ddp-out", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["backend"] == "gloo" for r in ranks)
    a, b = ranks[0]["lora"], ranks[1]["lora"]
    assert a.keys() == b.keys() and a
    # each rank saw other pairs; equal weights after the steps means the gradients were all-reduced
    for k in a:
        assert max(abs(x - y) for x, y in zip(a[k], b[k])) < 1e-6, k
    # LoRA B starts at zero: non-zero B means the adapter was trained
    assert any(abs(x) > 0 for k in a if "lora_B" in k for x in a[k])


def test_roofline_bytes_count_weights_and_kv_cache():
    import torch
    sys.path.insert(0, str(ROOT / "bench"))
    import throughput
    from transformers import LlamaConfig
    cfg = LlamaConfig(**throughput.SHAPES["smollm2-135m"])

    class M:  # only parameter counts matter
        def parameters(self):
            return [torch.empty(1000, 1000, device="meta")]
    b = throughput.decode_bytes(M(), cfg, batch=8, seq=100, dtype=torch.bfloat16)
    # 30 layers x (K and V) x 3 kv heads x 64 dims x 100 positions x 8 rows x 2 bytes
    assert b == 1_000_000 * 2 + 30 * 2 * 3 * 64 * 100 * 8 * 2


def test_results_keep_other_runs_and_survive_a_torn_file(tmp_path):
    """Each device / cache mode is one entry: a CPU run must not erase the GPU figures recorded in a lent session,
    and a file torn by a killed run is replaced, not a crash that loses the new row."""
    sys.path.insert(0, str(ROOT / "bench"))
    import throughput
    path = str(tmp_path / "throughput.json")
    throughput.save(path, "cuda-static", {"decode": [{"batch": 1}]})
    throughput.save(path, "cpu-dynamic", {"decode": [{"batch": 8}]})
    runs = json.loads(Path(path).read_text())["runs"]
    assert runs == {"cuda-static": {"decode": [{"batch": 1}]}, "cpu-dynamic": {"decode": [{"batch": 8}]}}
    Path(path).write_text('{"runs": {"cuda-st')
    throughput.save(path, "cpu-dynamic", {"decode": []})
    assert json.loads(Path(path).read_text())["runs"] == {"cpu-dynamic": {"decode": []}}


if __name__ == "__main__":
    trainer = _ddp_worker(Path(sys.argv[sys.argv.index("--ddp-out") + 1]))
    # Leave without running a destructor: under CPU load the DDP/gloo objects sometimes abort
    # ("terminate called without an active exception", CI stop 31) or hang (seen here) while being
    # torn down, after the work is done and written. The barrier above makes leaving safe.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
