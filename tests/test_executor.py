"""The Ray executor gives the same records as the local one for a fixed seed, and carries
trained LoRA weights to its actors (`sync`)."""
import sys
from pathlib import Path

import pytest

from superalign import config as C
from superalign.executors import LocalExecutor, make_executor
from superalign.models import GenParams

ray = pytest.importorskip("ray")
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/

PROMPTS = [{"id": f"p{i}", "prompt": t} for i, t in enumerate(
    ["hi", "how do I bake bread?", "x", "a much longer prompt than the others", "why?", "ok", "name a colour"])]


def respond(backend, records, kw):
    """A stage function: seeds come from the chunk index and the row, never from global state."""
    params = [GenParams(max_new_tokens=kw["max_new_tokens"], temperature=0.9, top_p=0.95,
                        seed=kw["seed"] * 10_000 + kw["chunk_index"] * 100 + j) for j in range(len(records))]
    out = backend.generate([[{"role": "user", "content": r["prompt"]}] for r in records], params)
    return [dict(r, response=o, chunk=kw["chunk_index"]) for r, o in zip(records, out)]


def fails(backend, records, kw):
    raise ValueError("stage exploded")


def _cfg(executor):
    return C.parse({"run": {"executor": executor, "seed": 0},
                    "roles": {"learner": {"backend": "local", "model": "tiny-random", "device": "cpu",
                                          "batch_size": 4, "replicas": 2, "num_cpus": 0.5}}})


@pytest.fixture(scope="module")
def ray_exec():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ex = make_executor(_cfg("ray"))
    yield ex
    ex.close()
    ray.shutdown()


def test_ray_and_local_give_identical_records(ray_exec):
    local = LocalExecutor(_cfg("local"))
    kw = dict(max_new_tokens=6, seed=7)
    a = local.map(respond, "learner", PROMPTS, chunk=3, **kw)
    b = ray_exec.map(respond, "learner", PROMPTS, chunk=3, **kw)
    assert a == b and [r["id"] for r in b] == [p["id"] for p in PROMPTS] and {r["chunk"] for r in b} == {0, 1, 2}
    assert len({r["response"] for r in b}) > 1


def test_stage_errors_surface_as_themselves(ray_exec):
    with pytest.raises(ValueError, match="stage exploded"):
        ray_exec.map(fails, "learner", PROMPTS, chunk=4)


def test_sync_loads_saved_adapters_on_the_actors(ray_exec, tmp_path):
    """A role the driver does not hold: adapters saved elsewhere reach the actors through `sync`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from superalign.models.local import LocalLM
    kw = dict(max_new_tokens=6, seed=1)
    base_records = ray_exec.map(respond, "learner", PROMPTS, chunk=4, **kw)
    other = LocalLM("tiny-random", device="cpu", batch_size=4)  # a trainer elsewhere, same base weights
    peft_model = get_peft_model(other.model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                        init_lora_weights=False))  # random B: changes outputs
    peft_model.save_pretrained(tmp_path / "adapter")
    trained = LocalLM.wrap(peft_model, other.tokenizer, batch_size=4)
    want = LocalExecutor(_cfg("local"), {"learner": trained}).map(respond, "learner", PROMPTS, chunk=4, **kw)
    assert want != base_records
    ray_exec.sync("learner", str(tmp_path / "adapter"))
    assert ray_exec.map(respond, "learner", PROMPTS, chunk=4, **kw) == want
    # a later round: the same LoRA trained further replaces the first adapter on the actors
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.mul_(3.0)
    peft_model.save_pretrained(tmp_path / "adapter2")
    want2 = LocalExecutor(_cfg("local"), {"learner": trained}).map(respond, "learner", PROMPTS, chunk=4, **kw)
    assert want2 != want
    ray_exec.sync("learner", str(tmp_path / "adapter2"))
    assert ray_exec.map(respond, "learner", PROMPTS, chunk=4, **kw) == want2
    ray_exec.sync("learner", None)
    assert ray_exec.map(respond, "learner", PROMPTS, chunk=4, **kw) == base_records


def test_lora_trained_in_the_driver_reaches_the_actors(ray_exec):
    """The trainer changes the driver's copy in place (as the loop does); the next map ships it."""
    import torch
    from superalign.training import attach, LoraSpec
    kw = dict(max_new_tokens=6, seed=2)
    ex = make_executor(_cfg("ray"))
    local = LocalExecutor(_cfg("local"))
    try:
        for e in (ex, local):
            b = e.backend("learner")
            b.model = attach(b.model, LoraSpec(r=4), seed=0).eval()
        assert ex.map(respond, "learner", PROMPTS, chunk=3, **kw) == local.map(respond, "learner", PROMPTS, chunk=3, **kw)
        for e in (ex, local):  # "training": the same update on both sides
            with torch.no_grad():
                for n, p in e.backend("learner").model.named_parameters():
                    if "lora_B" in n:
                        p.copy_(torch.linspace(-0.5, 0.5, p.numel()).view_as(p))
        a = local.map(respond, "learner", PROMPTS, chunk=3, **kw)
        assert ex.map(respond, "learner", PROMPTS, chunk=3, **kw) == a
        assert a != LocalExecutor(_cfg("local")).map(respond, "learner", PROMPTS, chunk=3, **kw)
    finally:
        ex.close()


def echo(backend, records, kw):
    out = backend.generate([r["prompt"] for r in records], GenParams(max_new_tokens=4, seed=kw["chunk_index"]))
    return [dict(r, response=o) for r, o in zip(records, out)]


def test_endpoint_roles_run_in_the_driver_and_log_calls_there(ray_exec, tmp_path):
    """An openai role is not put on an actor: its per-request rows are written by the driver."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from superalign.models.http import OpenAIChat, record_to
    from superalign.store import RunStore

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            data = json.dumps({"choices": [{"message": {"content": body["messages"][-1]["content"][::-1]}}],
                               "usage": {"total_tokens": 7}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    store = RunStore(tmp_path / "run", create=True)
    try:
        b = OpenAIChat("m", base_url=f"http://127.0.0.1:{srv.server_port}/v1", concurrency=3,
                       on_call=record_to(store, round=0, stage="attack", role="attacker"))
        ray_exec.set_backend("attacker", b)
        out = ray_exec.map(echo, "attacker", PROMPTS, chunk=3)
    finally:
        srv.shutdown()
    assert [r["response"] for r in out] == [p["prompt"][::-1] for p in PROMPTS]
    assert len(store.rows("metrics", name="endpoint_call", stage="attack")) == len(PROMPTS)


def test_actors_that_cannot_be_placed_are_a_clear_error(ray_exec):
    from superalign.errors import SuperalignError
    ex = make_executor(C.parse({"run": {"executor": "ray"}, "roles": {
        "attacker": {"backend": "local", "model": "tiny-random", "device": "cpu", "replicas": 3, "num_cpus": 1}}}))
    with pytest.raises(SuperalignError, match=r"3 CPUs .* but the cluster has [0-9.]+ free"):
        ex.map(respond, "attacker", PROMPTS, chunk=4, max_new_tokens=2, seed=0)


@pytest.mark.slow
def test_a_loop_round_gives_identical_records_on_ray_and_locally(ray_exec, tmp_path):
    """One quick round of the attacker -> learner -> critic loop (tiny models, MiniLM critic) both ways."""
    import time
    sys.path.insert(0, str(Path(__file__).parent))
    import test_loop as T
    from superalign.loop import config as LC
    from superalign.loop import run as R
    from superalign.store import TABLES, RunStore
    ray_exec.close()  # free the fixture's CPUs for this run's three actors
    t0 = time.time()
    while ray.available_resources().get("CPU", 0) < 2 and time.time() - t0 < 30:
        time.sleep(0.2)
    roles = {k: dict(v, **({"num_cpus": 0.5} if v["backend"] == "local" else {})) for k, v in T.TINY["roles"].items()}
    out = {}
    for ex in ("local", "ray"):
        cfg = C.parse({**T.TINY, "roles": roles, "run": {"name": "t", "seed": 0, "executor": ex},
                       "loop": LC.merge(T.LOOP, {"rounds": 1})})
        ctx = R.open_run(cfg, tmp_path / ex)
        R.run(ctx)
        ctx.ex.close()
        s = RunStore(tmp_path / ex)
        # ids of critiques/scores/metrics are uuids; paths name the run dir; the rest must match exactly
        out[ex] = {t: [{k: (v.replace(str(tmp_path / ex), "RUN") if isinstance(v, str) else v)
                        for k, v in r.items() if k not in ("id", "run_id", "created_at")} for r in s.rows(t)]
                   for t in TABLES}
        done = {(x["round"], x["name"]) for x in s.stages() if x["status"] == "done"}
        assert {(1, "respond"), (1, "critique"), (1, "learn"), (1, "eval")} <= done
    assert out["ray"]["responses"] and out["ray"]["checkpoints"]
    for t in TABLES:  # floats may differ in the last bits (thread scheduling under load): compare with a tolerance
        assert _close(out["local"][t], out["ray"][t]), t


def _close(a, b, tol=1e-5) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (a != a and b != b) or abs(a - b) <= tol * max(1.0, abs(a), abs(b))  # NaN (no estimate) matches NaN
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    return a == b
