"""`superalign serve` as a real subprocess, called through the OpenAI client backend; and the
per-row sampling that lets the server batch requests without changing their outputs."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from superalign.errors import SuperalignError
from superalign.models import GenParams
from superalign.models.http import OpenAIChat, record_to
from superalign.models.local import LocalLM
from superalign.store import RunStore

CHATS = [[{"role": "user", "content": t}] for t in
         ["hi", "a much longer prompt here", "mid", "tell me a story", "x", "yy", "what is 2+2?", "ok then"]]


def test_per_row_sampling_does_not_depend_on_batch_mates(tiny):
    params = [GenParams(max_new_tokens=4 + i % 3, temperature=0.3 * i, top_p=0.9, seed=11 + i) for i in range(6)]
    batched = tiny.generate_full(CHATS[:6], params)
    single = [tiny.generate_full([c], [p])[0] for c, p in zip(CHATS[:6], params)]
    assert [c.ids for c in batched] == [c.ids for c in single]
    assert all(c.completion_tokens <= p.max_new_tokens for c, p in zip(batched, params))
    # row 0 has temperature 0: the per-row path is plain greedy decoding there
    assert batched[0].text == tiny.generate([CHATS[0]], GenParams(max_new_tokens=4, temperature=0.0))[0]
    # the seed matters: another seed gives another sample (random model: near-uniform next tokens)
    other = tiny.generate_full(CHATS[:6], [GenParams(p.max_new_tokens, p.temperature, p.top_p, p.seed + 100)
                                          for p in params])
    assert [c.ids for c in other[1:]] != [c.ids for c in batched[1:]]


def test_static_cache_generates_what_the_dynamic_cache_does(tiny):
    static = LocalLM.wrap(tiny.model, tiny.tokenizer, batch_size=4, static_cache=True, compile=False)
    p = GenParams(max_new_tokens=6, temperature=0.0)
    assert static.generate(CHATS[:5], p) == tiny.generate(CHATS[:5], p)


def test_wrong_number_of_params_is_a_clear_error(tiny):
    with pytest.raises(SuperalignError, match="one per prompt"):
        tiny.generate_full(CHATS[:3], [GenParams()] * 2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python -m superalign serve` on a free port, hosting tiny-random as role `critic`."""
    d = tmp_path_factory.mktemp("serve")
    cfg = d / "cfg.yaml"
    cfg.write_text("roles:\n  critic: {backend: local, model: tiny-random, device: cpu, batch_size: 8}\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), HF_HUB_OFFLINE="1",
               OMP_NUM_THREADS="1", SA_TEST_KEY="sekrit")
    proc = subprocess.Popen([sys.executable, "-m", "superalign", "serve", "--role", "critic", "--config", str(cfg),
                             "--port", "0", "--window-ms", "50", "--api-key-env", "SA_TEST_KEY"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    url, t0, seen = None, time.time(), []
    while url is None and time.time() - t0 < 90:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        m = re.search(r"on (http://127\.0\.0\.1:\d+/v1)", line)
        url = m.group(1) if m else None
    if url is None:
        proc.kill()
        pytest.fail("server did not start:\n" + "".join(seen))
    os.environ["SA_TEST_KEY"] = "sekrit"
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_remote_generation_equals_local_and_is_batched(server, tiny):
    b = OpenAIChat("critic", base_url=server, api_key_env="SA_TEST_KEY", concurrency=4, timeout_s=60)
    p = GenParams(max_new_tokens=5, temperature=0.8, top_p=0.95, seed=3)
    remote = b.generate(CHATS, p)
    # the client sends seed + i for prompt i; the server samples each row on its own
    per_row = [GenParams(5, 0.8, 0.95, 3 + i) for i in range(len(CHATS))]
    local = tiny.generate(CHATS, per_row)
    assert remote == local
    assert b.generate(CHATS[::-1], per_row[::-1]) == local[::-1]  # per-row params go through as given
    import json
    import urllib.request
    req = urllib.request.Request(server.replace("/v1", "/stats"), headers={"Authorization": "Bearer sekrit"})
    stats = json.loads(urllib.request.urlopen(req, timeout=10).read())
    assert stats["max_batch"] > 1  # concurrent requests shared a forward pass
    assert all(c["ok"] and c["usage"]["completion_tokens"] <= 5 for c in b.calls)


def test_remote_logprobs_equal_local(server, tiny):
    b = OpenAIChat("tiny-random", base_url=server, api_key_env="SA_TEST_KEY", concurrency=2)
    prompts, comps = ["Q: 1+1?", "abc", "long-ish prompt"], [" 2", " longer completion", "!"]
    assert b.logprobs(prompts, comps) == pytest.approx(tiny.logprobs(prompts, comps), abs=1e-3)


def test_per_request_latency_tokens_and_cost_land_in_the_store(server, tmp_path):
    store = RunStore(tmp_path / "run", create=True)
    b = OpenAIChat("critic", base_url=server, api_key_env="SA_TEST_KEY", concurrency=3, price_per_1k_tokens=2.0,
                   on_call=record_to(store, round=1, stage="critique", role="critic", seed=0))
    b.generate(CHATS[:5], GenParams(max_new_tokens=3, temperature=0.0))
    rows = store.rows("metrics", name="endpoint_call")
    assert len(rows) == 5 and {r["stage"] for r in rows} == {"critique"} and {r["round"] for r in rows} == {1}
    for r in rows:
        assert r["value"] > 0 and r["n"] == r["meta"]["usage"]["total_tokens"] > 0
        assert r["meta"]["cost"] == pytest.approx(r["n"] / 1000 * 2.0) and r["model"] == "critic"


def test_server_errors_are_clear_and_not_retried(server):
    bad_model = OpenAIChat("no-such-model", base_url=server, api_key_env="SA_TEST_KEY", max_retries=3)
    with pytest.raises(SuperalignError, match="HTTP 404"):
        bad_model.generate(["x"], GenParams(max_new_tokens=2))
    assert bad_model.calls[-1]["attempts"] == 1 and not bad_model.calls[-1]["ok"]
    no_key = OpenAIChat("critic", base_url=server, api_key_env="SA_UNSET_KEY_VAR", max_retries=0)
    with pytest.raises(SuperalignError, match="HTTP 401"):
        no_key.generate(["x"], GenParams(max_new_tokens=2))
