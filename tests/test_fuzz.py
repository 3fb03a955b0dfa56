"""Fuzzing the three places that take untrusted input: the model server, the review API and configs.

The contract: every input gets a 2xx, or a 4xx whose body says what is wrong - never a 500, a hang
(every request has a timeout) or unbounded memory (the server's RSS is read from /proc before and
after). Hypothesis runs derandomized (the same examples every run, no example database) with bounded
example counts and no per-example deadline, so the suite is fast and does not flake under CPU load.
Request bodies mix valid OpenAI requests with wrong types, NaN/Infinity literals, huge integers,
unknown keys, raw bytes and nesting; generation budgets are kept small so valid ones finish quickly.
"""
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                suppress_health_check=list(HealthCheck))

LEAF = (st.none() | st.booleans() | st.integers(-2 ** 80, 2 ** 80) | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=16))
JUNK = st.recursive(LEAF, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                    max_leaves=8)
SMALL = st.integers(-2, 6)
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", "developer"]),
                                 "content": TEXT | st.lists(st.fixed_dictionaries(
                                     {"type": st.just("text"), "text": TEXT}), max_size=2)})
# each parameter: mostly valid values, sometimes its edges and beyond (hypothesis favours the extremes)
SAMPLING = {"max_tokens": st.integers(1, 6) | st.sampled_from([0, 2048, 2049, 10 ** 7]),
            "temperature": st.floats(0, 2) | st.floats(), "top_p": st.floats(0.01, 1) | st.floats(),
            "seed": st.integers(0, 2 ** 63) | st.integers(-(2 ** 70), 2 ** 70), "stream": st.booleans(), "model": st.sampled_from(["critic", "tiny-random"]),
            "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}), "n": st.just(1),
            "stop": st.none(), "user": TEXT}
VALID_CHAT = st.fixed_dictionaries({"messages": st.lists(MESSAGE, min_size=1, max_size=3)}, optional={
    **SAMPLING, "logprobs": st.booleans(), "top_logprobs": st.integers(0, 5)})
VALID_COMPLETION = st.fixed_dictionaries({"prompt": TEXT.filter(bool) | st.lists(TEXT.filter(bool), min_size=1,
                                                                                 max_size=4)},
                                         optional={**SAMPLING, "echo": st.booleans(), "logprobs": st.integers(0, 5)})
# a mutation sets a key (known or not) to a wrong or boundary value, or drops one
BOUNDARY_VALUES = (0, -1, 1, 2048, 2049, 10 ** 7, 2 ** 64, 2 ** 70, -(2 ** 70), math.nan, math.inf, -math.inf,
                   1e308, 1e-300, "1", "", True, False, None, [], {}, [1, 2], [""], "x" * 2000)
BOUNDARY = st.sampled_from(BOUNDARY_VALUES)
KEYS = ["messages", "prompt", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stream",
        "stream_options", "logprobs", "top_logprobs", "echo", "model", "n", "stop", "presence_penalty", "suffix",
        "logit_bias", "frobnicate", "tools"]
MUTATIONS = st.lists(st.tuples(st.sampled_from(KEYS), BOUNDARY | JUNK | st.just(KeyError)), max_size=2)


def _mutate(body: dict, muts) -> dict:
    body = dict(body)
    for k, v in muts:
        if v is KeyError:
            body.pop(k, None)
        else:
            body[k] = v
    return body


CHAT = st.builds(_mutate, VALID_CHAT, MUTATIONS)
COMPLETION = st.builds(_mutate, VALID_COMPLETION, MUTATIONS)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from superalign.serve.spawn import Spawned
    cfg = tmp_path_factory.mktemp("fuzz") / "cfg.yaml"
    cfg.write_text("roles:\n  critic: {backend: local, model: tiny-random, device: cpu, batch_size: 8}\n"
                   "generation: {max_new_tokens: 8}\n")
    srv = Spawned(cfg, args=("--window-ms", "2", "--api-key-env", "SA_FUZZ_KEY"), env={"SA_FUZZ_KEY": "k"})
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def http(server):
    import httpx
    with httpx.Client(base_url=server.base, headers={"Authorization": "Bearer k"}, timeout=60) as c:
        r = c.post("/v1/completions", json={"prompt": "warm", "max_tokens": 2})  # load everything once
        assert r.status_code == 200
        yield c


def _check(r, path: str):
    """2xx with a well-formed body, or 4xx with an OpenAI error message; never 5xx."""
    assert r.status_code < 500, (path, r.status_code, r.text[:300])
    if r.status_code >= 400:
        err = r.json()["error"]
        assert isinstance(err["message"], str) and err["message"] and isinstance(err["code"], str)
    elif r.headers["content-type"].startswith("text/event-stream"):
        assert r.text.rstrip().endswith("data: [DONE]") and '"error"' not in r.text
    else:
        assert r.json()["choices"]


@settings(FUZZ, max_examples=80)
@given(kind=st.sampled_from(["chat", "completions"]), data=st.data())
def test_server_requests(http, kind, data):
    body = data.draw(CHAT if kind == "chat" else COMPLETION)
    path = "/v1/chat/completions" if kind == "chat" else "/v1/completions"
    raw = json.dumps(body, allow_nan=True).encode()  # NaN / Infinity literals included on purpose
    _check(http.post(path, content=raw, headers={"Content-Type": "application/json"}), path)


def test_server_every_parameter_at_every_edge(http):
    """The hand-written corpus: each parameter set to each edge value in an otherwise valid request."""
    from concurrent.futures import ThreadPoolExecutor
    bases = {"/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
             "/v1/completions": {"prompt": "hi", "max_tokens": 2}}
    cases = [(path, dict(base, **{k: v})) for path, base in bases.items() for k in KEYS
             for v in list(BOUNDARY_VALUES) + [2 ** 64 - 1, -(2 ** 63), 0.5, 2, 5, 6, "text", ["a"], {"type": "text"}]]

    def one(case):
        path, body = case
        r = http.post(path, content=json.dumps(body, allow_nan=True).encode(),
                      headers={"Content-Type": "application/json"})
        _check(r, path)
        return r.status_code
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(one, cases))
    assert codes.count(200) > 30 and len(codes) == len(cases)  # plenty of the edges are valid requests


@settings(FUZZ, max_examples=50)
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode) | JUNK.map(
           lambda j: json.dumps(j, allow_nan=True).encode()),
       path=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/nope", "/stats"]),
       ctype=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]),
       auth=st.sampled_from(["Bearer k", "Bearer wrong", "", "k"]))
def test_server_raw_bytes_headers_and_keys(http, raw, path, ctype, auth):
    r = http.post(path, content=raw, headers={"Content-Type": ctype, "Authorization": auth})
    assert r.status_code < 500, (path, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.json()["error"]["message"]
    if auth != "Bearer k" and path != "/health":
        assert r.status_code == 401


def test_server_memory_is_bounded_and_it_stays_healthy(server, http):
    """Near-cap bodies (1 MB prompts, 40k-message lists) in parallel: 4xx each, and RSS stays bounded."""
    from concurrent.futures import ThreadPoolExecutor
    before = server.rss_mb()
    big = [{"prompt": "a" * 1_000_000, "max_tokens": 1},
           {"messages": [{"role": "user", "content": "x"}] * 256, "max_tokens": 1},
           {"messages": [{"role": "user", "content": "y" * 900_000}], "max_tokens": 1},
           {"prompt": ["z" * 30_000] * 32, "max_tokens": 1}]
    paths = ["/v1/completions" if "prompt" in b else "/v1/chat/completions" for b in big]
    with ThreadPoolExecutor(8) as pool:
        rs = list(pool.map(lambda i: http.post(paths[i % 4], json=big[i % 4]), range(8)))
    assert all(400 <= r.status_code < 500 for r in rs), [r.status_code for r in rs]
    grown = server.rss_mb() - before
    assert grown < 1500, f"server RSS grew by {grown:.0f} MiB"
    assert server.rss_mb(peak=True) < 6000
    assert http.get("/health").status_code == 200 and server.alive()
    assert http.post("/v1/completions", json={"prompt": "ok", "max_tokens": 2}).status_code == 200


# ---------------------------------------------------------------------- review API (in process)
@pytest.fixture(scope="module")
def review_client(tmp_path_factory):
    from fastapi.testclient import TestClient
    from superalign import review
    from superalign.review.app import create_app
    from test_review import make_queue
    run = tmp_path_factory.mktemp("rev") / "run"
    s, _ = make_queue(run, n=30)
    review.enqueue(s, "r0", head="judge_audit", question="q", confidence=0.0, ask=["refusal", "harmful"])
    s.close()
    with TestClient(create_app(run, token="tok")) as c:
        yield c


NAME = st.text(max_size=90) | st.sampled_from(["alice", " bob ", "", "   "])
ANSWER = st.fixed_dictionaries({}, optional={
    "reviewer": NAME | JUNK, "label": st.sampled_from([0, 1, 0.0, 1.0, 0.5, "1", True, None]) | JUNK,
    "comment": st.text(max_size=50) | JUNK, "refusal": st.sampled_from(["full", "partial", "none", "x"]) | JUNK,
    "harmful": st.sampled_from(["yes", "no", True]) | JUNK, "extra": JUNK})


@settings(FUZZ, max_examples=150)
@given(method=st.sampled_from(["GET", "POST", "PUT"]),
       path=st.sampled_from(["/", "/api/next", "/api/stats", "/api/label/l0", "/api/label/l1", "/api/release/l2",
                             "/api/label/", "/nope"]) | st.text(alphabet="abcl0123456789-_.~", max_size=30).map(
           lambda t: "/api/label/" + t),
       reviewer=st.none() | NAME, token=st.sampled_from(["tok", "tok", "tok", "bad", ""]),
       body=st.none() | ANSWER.map(lambda a: json.dumps(a, allow_nan=True).encode()) | st.binary(max_size=200))
def test_review_requests(review_client, method, path, reviewer, token, body):
    params = {} if reviewer is None else {"reviewer": reviewer}
    r = review_client.request(method, path, params=params, content=body, headers={
        "X-Review-Token": token, "Content-Type": "application/json"})
    assert r.status_code < 500, (method, path, r.status_code, r.text[:300])
    if token != "tok":
        assert r.status_code == 401
    if r.status_code >= 400:
        assert r.json()["detail"] and len(r.content) < 3000  # a message, never an echo of the input
    assert r.headers["x-frame-options"] == "DENY"


# ---------------------------------------------------------------------- configs
KEYS = ["run", "roles", "generation", "data", "loop", "w2s", "oversight", "learner", "critic", "backend", "model",
        "batch_size", "max_new_tokens", "seed", "seeds", "executor", "top_p", "temperature", "local", "openai"]
CONFIG = st.recursive(LEAF | st.sampled_from(["local", "openai", "classifier", "cpu", "tiny-random"]),
                      lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6),
                                                                          c, max_size=4), max_leaves=12)


@settings(FUZZ, max_examples=300)
@given(data=CONFIG)
def test_config_parse(data):
    from superalign import config as C
    from superalign.errors import SuperalignError
    try:
        cfg = C.parse(data if isinstance(data, dict) else {"roles": data})
    except SuperalignError as e:
        assert e.problem
    else:
        assert isinstance(cfg, C.Config)


@settings(FUZZ, max_examples=100)
@given(text=st.text(max_size=200) | CONFIG.map(lambda d: __import__("yaml").safe_dump(d)))
def test_config_load_yaml_text(tmp_path_factory, text):
    from superalign import config as C
    from superalign.errors import SuperalignError
    p = tmp_path_factory.mktemp("cfg") / "c.yaml"
    p.write_text(text)
    try:
        C.load(p)
    except SuperalignError as e:
        assert e.problem

