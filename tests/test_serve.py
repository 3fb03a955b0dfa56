"""`superalign serve` as a real subprocess, called through the OpenAI client backend; and the
per-row sampling that lets the server batch requests without changing their outputs."""
import os
import time

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
    from superalign.serve.spawn import Spawned
    cfg = tmp_path_factory.mktemp("serve") / "cfg.yaml"
    cfg.write_text("roles:\n  critic: {backend: local, model: tiny-random, device: cpu, batch_size: 8}\n")
    srv = Spawned(cfg, args=("--window-ms", "50", "--api-key-env", "SA_TEST_KEY"), env={"SA_TEST_KEY": "sekrit"})
    os.environ["SA_TEST_KEY"] = "sekrit"
    yield srv.url
    srv.close()


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


# ---------------------------------------------------------------------- hardening (issue 16): the probes
AUTH = {"Authorization": "Bearer sekrit"}


def _raw(base: str, head: str, body: bytes = b"", timeout: float = 20.0) -> tuple[int, bytes]:
    """Send a hand-made HTTP request (headers a client library would refuse to send); status and body back."""
    import socket
    host, port = base.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as so:
        so.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _clen(data):
            chunk = so.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.split(b"\r\n\r\n", 1)[-1]


def _clen(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def _post(base, path, body, headers=AUTH):
    import json
    import httpx
    raw = json.dumps(body).encode()  # allows NaN, which httpx's json= refuses to send
    return httpx.post(base.replace("/v1", "") + path, content=raw, timeout=60,
                      headers={**headers, "Content-Type": "application/json"})


def test_abusive_requests_get_a_4xx_with_an_openai_error(server):
    chat = "/v1/chat/completions"
    msgs = [{"role": "user", "content": "hi"}]
    cases = [  # (path, body, status, param)
        (chat, {"messages": msgs, "max_tokens": 10_000_000}, 400, "max_tokens"),
        (chat, {"messages": msgs, "temperature": float("nan")}, 400, None),       # NaN literal: not JSON
        (chat, {"messages": msgs, "temperature": "1"}, 400, "temperature"),
        (chat, {"messages": msgs, "seed": 2 ** 70}, 400, "seed"),
        (chat, {"messages": []}, 400, "messages"),
        (chat, {"messages": msgs, "frobnicate": 1}, 400, "frobnicate"),
        (chat, {"messages": msgs, "stop": ["\n"]}, 400, "stop"),
        (chat, {"messages": msgs, "stream": True, "logprobs": True}, 400, "logprobs"),
        (chat, {"messages": msgs, "model": "nope"}, 404, "model"),
        ("/v1/completions", {"prompt": ""}, 400, "prompt"),
        ("/v1/completions", {"prompt": "x", "logprobs": True}, 400, "logprobs"),
        ("/v1/completions", {"prompt": "ab" * 1100, "max_tokens": 10}, 400, "prompt"),  # 2200 tokens > 2048
    ]
    for path, body, status, param in cases:
        r = _post(server, path, body)
        err = r.json()["error"]
        assert r.status_code == status, (body, r.text)
        assert err["param"] == param and isinstance(err["code"], str) and err["message"], (body, err)
    assert "2048" in _post(server, chat, cases[0][1]).json()["error"]["message"]  # the limit is named
    # the server is still healthy and answering
    r = _post(server, chat, {"messages": msgs, "max_tokens": 2})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 2


def test_body_and_headers_are_guarded_before_the_body_is_read(server):
    base = server.replace("/v1", "")
    req = "POST /v1/completions HTTP/1.1\nHost: x\nContent-Type: application/json\n"
    # no key: 401 at once although the announced 10 MB body never comes
    st, body = _raw(base, req + "Content-Length: 10000000\n", timeout=10)
    assert st == 401 and b"invalid_api_key" in body
    st, body = _raw(base, req + "Authorization: Bearer sekrit\nContent-Length: 10000000\n", timeout=10)
    assert st == 413 and b"request_too_large" in body
    for bad in ("-1", "abc", "1e3"):
        st, _ = _raw(base, req + f"Authorization: Bearer sekrit\nContent-Length: {bad}\n", b"{}", timeout=10)
        assert st == 400, bad
    # chunked upload past the cap without a Content-Length: cut at 1 MiB
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    st, _ = _raw(base, req + "Authorization: Bearer sekrit\nTransfer-Encoding: chunked\n", chunks)
    assert st == 413
    st, _ = _raw(base, req.replace("application/json", "text/plain") + "Authorization: Bearer sekrit\n"
                 "Content-Length: 2\n", b"{}")
    assert st == 415


def test_concurrent_completions_never_fail(server):
    """Handler threads used to tokenize while the batcher padded: 3-7% of 20 concurrent calls failed."""
    from concurrent.futures import ThreadPoolExecutor
    bodies = [{"prompt": "p" * (1 + i % 13), "max_tokens": 1 + i % 4, "seed": i, "echo": i % 2 == 0,
               "logprobs": i % 3 if i % 2 == 0 else None} for i in range(60)]
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda b: _post(server, "/v1/completions", b).status_code, bodies))
    assert codes == [200] * len(bodies)


def test_streaming_is_sse_and_matches_the_whole_response(server):
    import json
    import httpx
    body = {"messages": [{"role": "user", "content": "tell me"}], "max_tokens": 8, "seed": 5, "temperature": 0.7}
    whole = _post(server, "/v1/chat/completions", body).json()
    with httpx.stream("POST", server + "/chat/completions", headers=AUTH, timeout=60,
                      json=dict(body, stream=True, stream_options={"include_usage": True})) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]" and all(ln.startswith("data: ") for ln in lines)
    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text.strip() == whole["choices"][0]["message"]["content"]
    assert chunks[-2]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert chunks[-1]["usage"] == whole["usage"]
    with httpx.stream("POST", server + "/completions", headers=AUTH, timeout=60,
                      json={"prompt": ["a", "bc"], "max_tokens": 3, "seed": 1, "stream": True}) as r:
        lines = [ln for ln in r.iter_lines() if ln]
    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert {c["object"] for c in chunks} == {"text_completion"} and lines[-1] == "data: [DONE]"
    assert sorted(c["choices"][0]["index"] for c in chunks if c["choices"][0]["finish_reason"]) == [0, 1]
    # a too-long prompt is refused before the stream starts: a plain 400, not a 200 with an error inside
    r = _post(server, "/v1/completions", {"prompt": "ab" * 1100, "max_tokens": 5, "stream": True})
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def test_chat_logprobs_are_the_models_own(server, tiny):
    r = _post(server, "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4,
                                               "temperature": 0, "logprobs": True, "top_logprobs": 3}).json()
    content = r["choices"][0]["logprobs"]["content"]
    assert len(content) == r["usage"]["completion_tokens"] and all(len(c["top_logprobs"]) == 3 for c in content)
    p_ids = tiny.tokenizer(tiny.render([{"role": "user", "content": "hi"}]), add_special_tokens=False)["input_ids"]
    g_ids = tiny.generate_full([[{"role": "user", "content": "hi"}]], [GenParams(4, 0.0, 1.0, 0)])[0].ids
    lps, _ = tiny.sequence_logprobs([p_ids + g_ids])[0]
    assert [c["logprob"] for c in content] == pytest.approx(lps[len(p_ids):], abs=1e-4)
    assert all(c["top_logprobs"][0]["logprob"] >= c["logprob"] - 1e-6 for c in content)  # greedy: top-1 chosen


# ---------------------------------------------------------------------- in-process: isolation, cancellation, health
class _Proxy:
    """The tiny model with `generate_full` replaced (to fail, block or record)."""

    def __init__(self, lm, generate_full):
        self._lm, self.generate_full = lm, generate_full

    def __getattr__(self, k):
        return getattr(self._lm, k)


@pytest.fixture()
def inproc(tiny):
    from superalign.serve import Server
    made = []

    def make(generate_full=None, **kw):
        lm = _Proxy(tiny, generate_full or tiny.generate_full)
        srv = Server(lm, ["tiny-random"], port=0, **kw).start()
        made.append(srv)
        return f"http://127.0.0.1:{srv.port}", srv
    yield make
    for s in made:
        s.close()


def test_a_failing_request_does_not_fail_its_batch_mates(inproc, tiny):
    from concurrent.futures import ThreadPoolExecutor

    def gen(chats, params, watch=None):
        if "BOOM" in chats:
            raise RuntimeError("model blew up")
        return tiny.generate_full(chats, params, watch=watch)
    base, srv = inproc(gen, window_ms=300, max_batch=4)
    prompts = ["one", "BOOM", "three", "four"]
    with ThreadPoolExecutor(4) as pool:
        rs = list(pool.map(lambda p: _post(base, "/v1/completions", {"prompt": p, "max_tokens": 2}, {}), prompts))
    assert [r.status_code for r in rs] == [200, 500, 200, 200]
    assert rs[1].json()["error"]["type"] == "server_error" and "blew up" in rs[1].json()["error"]["message"]
    assert srv.service.batcher.stats["isolated_retries"] >= 1


def test_jobs_of_gone_clients_are_dropped_and_health_sees_a_stuck_model(inproc, tiny):
    import socket
    import threading
    import httpx
    release, seen = threading.Event(), []

    def gen(chats, params, watch=None):
        seen.extend(chats)
        if "HOLD" in chats:
            release.wait(30)
        return tiny.generate_full(chats, params, watch=watch)
    base, srv = inproc(gen, window_ms=1, stall_s=0.5)
    held = threading.Thread(target=_post, args=(base, "/v1/completions", {"prompt": "HOLD", "max_tokens": 1}, {}))
    held.start()
    while "HOLD" not in seen:
        time.sleep(0.02)
    # a client that queues a job behind the stuck one and leaves
    body = b'{"prompt": "GONE", "max_tokens": 3}'
    so = socket.create_connection(("127.0.0.1", srv.port))
    so.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(1.0)
    h = httpx.get(base + "/health", timeout=10)
    assert h.status_code == 503 and "no progress" in h.json()["detail"]
    so.close()
    time.sleep(0.6)  # the handler polls its client every 0.25 s
    release.set()
    held.join(30)
    assert httpx.get(base + "/health", timeout=10).status_code == 200
    deadline = time.time() + 10
    while srv.service.batcher.stats["cancelled"] < 1 and time.time() < deadline:
        time.sleep(0.05)
    assert srv.service.batcher.stats["cancelled"] == 1 and "GONE" not in seen  # never started


def test_a_running_generation_stops_when_its_client_leaves(inproc, tiny):
    import socket
    steps = []

    def gen(chats, params, watch=None):
        def counting(i, t):
            steps.append(t)
            time.sleep(0.005)  # ~2000 tokens would take >10 s
            return watch(i, t)
        return tiny.generate_full(chats, params, watch=counting)
    base, srv = inproc(gen, window_ms=1)
    body = b'{"prompt": "a", "max_tokens": 2000, "temperature": 0}'
    so = socket.create_connection(("127.0.0.1", srv.port))
    so.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body) + body)
    while len(steps) < 20:
        time.sleep(0.01)
    so.close()
    t0 = time.time()
    r = _post(base, "/v1/completions", {"prompt": "b", "max_tokens": 2}, {})
    assert r.status_code == 200 and time.time() - t0 < 8
    assert srv.service.batcher.stats["cancelled"] == 1 and len(steps) < 1500


def test_a_body_that_never_arrives_times_out(inproc):
    base, srv = inproc(body_timeout_s=1.0)
    t0 = time.time()
    st, body = _raw(base, "POST /v1/completions HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                          "Content-Length: 100\n", b'{"prompt"', timeout=20)
    assert st == 408 and time.time() - t0 < 10


def test_connections_without_a_request_head_are_closed_but_slow_answers_are_not(inproc, tiny):
    import socket

    def slow(chats, params, watch=None):
        time.sleep(2.0)
        return tiny.generate_full(chats, params, watch=watch)
    base, srv = inproc(slow, head_timeout_s=1.0)
    idle, half = (socket.create_connection(("127.0.0.1", srv.port), timeout=15) for _ in range(2))
    half.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")  # slowloris: the head never ends
    t0 = time.time()
    assert idle.recv(100) == b"" and half.recv(100) == b"" and time.time() - t0 < 10
    r = _post(base, "/v1/completions", {"prompt": "slow", "max_tokens": 1}, {})  # 2 s > head timeout: still 200
    assert r.status_code == 200


def test_a_stream_whose_reader_leaves_stops_generating(inproc, tiny):
    import httpx
    steps = []

    def gen(chats, params, watch=None):
        def counting(i, t):
            steps.append(t)
            time.sleep(0.005)
            return watch(i, t)
        return tiny.generate_full(chats, params, watch=counting)
    base, srv = inproc(gen, window_ms=1)
    with httpx.stream("POST", base + "/v1/completions", timeout=30,
                      json={"prompt": "a", "max_tokens": 2000, "temperature": 0, "stream": True}) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        while len(steps) < 20:
            next(lines)
    deadline = time.time() + 10
    while srv.service.batcher.stats["cancelled"] < 1 and time.time() < deadline:
        time.sleep(0.05)
    assert srv.service.batcher.stats["cancelled"] == 1 and len(steps) < 1500
