"""Load test of `superalign serve`: concurrent clients sending a mix of valid and abusive requests.

    python bench/serve_load.py [--clients 20] [--requests 50] [--invalid-share 0.4] [--seed 0]

Starts `superalign serve` (tiny-random, CPU, API key required) as a child process on 127.0.0.1. Each
client sends `--requests` requests drawn (seeded) from a fixed menu: valid chat / completions /
echo+logprobs / streaming calls with small budgets, and invalid ones (bad JSON, NaN, max_tokens 10^7,
seed 2^70, empty or too-long prompt, unknown parameter, wrong key, 2 MB body, wrong Content-Type,
malformed Content-Length). Checks: no valid request fails (Wilson 95% upper bound on the failure rate
printed), every invalid one gets the 4xx it should. Prints peak server RSS and p50/p99 latency, and
writes bench/results/serve_load.json. Exit status 1 if a check fails.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KEY = "bench-key"
CHAT, COMP = "/v1/chat/completions", "/v1/completions"
MSG = [{"role": "user", "content": "Say something short."}]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p, d = k / n, 1 + z * z / n
    c, h = (p + z * z / (2 * n)) / d, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def valid(rng: random.Random) -> tuple[str, str, dict]:
    n = rng.randint(1, 8)
    return rng.choice([
        ("chat", CHAT, {"messages": MSG, "max_tokens": n, "seed": rng.randrange(1 << 31), "temperature": 0.7}),
        ("chat_greedy", CHAT, {"messages": MSG, "max_tokens": n, "temperature": 0}),
        ("chat_logprobs", CHAT, {"messages": MSG, "max_tokens": n, "logprobs": True, "top_logprobs": 2}),
        ("completion", COMP, {"prompt": "Once upon a time", "max_tokens": n, "seed": rng.randrange(1 << 31)}),
        ("completion_batch", COMP, {"prompt": ["a", "bb", "ccc"], "max_tokens": n}),
        ("echo_logprobs", COMP, {"prompt": "Q: 1+1? A: 2", "max_tokens": 0, "echo": True, "logprobs": 1}),
        ("chat_stream", CHAT, {"messages": MSG, "max_tokens": n, "stream": True}),
        ("completion_stream", COMP, {"prompt": "Hello", "max_tokens": n, "stream": True}),
    ])


INVALID = [  # (name, path, raw body, extra headers, expected status)
    ("bad_json", COMP, b'{"prompt": ', {}, 400),
    ("nan_temperature", CHAT, b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}', {}, 400),
    ("max_tokens_1e7", CHAT, json.dumps({"messages": MSG, "max_tokens": 10 ** 7}).encode(), {}, 400),
    ("seed_2^70", COMP, json.dumps({"prompt": "x", "seed": 2 ** 70}).encode(), {}, 400),
    ("empty_prompt", COMP, json.dumps({"prompt": "", "max_tokens": 2}).encode(), {}, 400),
    ("prompt_over_context", COMP, json.dumps({"prompt": "ab" * 1100, "max_tokens": 4}).encode(), {}, 400),
    ("unknown_param", CHAT, json.dumps({"messages": MSG, "logit_bias": {"5": 10}}).encode(), {}, 400),
    ("string_number", CHAT, json.dumps({"messages": MSG, "temperature": "0.5"}).encode(), {}, 400),
    ("wrong_key", CHAT, json.dumps({"messages": MSG}).encode(), {"Authorization": "Bearer nope"}, 401),
    ("body_2MB", COMP, json.dumps({"prompt": "x" * (2 << 20)}).encode(), {}, 413),
    ("text_plain", COMP, json.dumps({"prompt": "x"}).encode(), {"Content-Type": "text/plain"}, 415),
    ("unknown_model", CHAT, json.dumps({"messages": MSG, "model": "gpt-9"}).encode(), {}, 404),
]


def raw_bad_length(host: str, port: int) -> int:
    """Content-Length: -1 (no client library sends it): the status line's code."""
    with socket.create_connection((host, port), timeout=30) as so:
        so.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
                   b"\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}")
        data = so.recv(4096)
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


def probes(srv) -> dict:
    """The issue-16 probes, one at a time, each with what it gets now (status, timing, memory)."""
    import httpx
    h = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    c = httpx.Client(base_url=srv.base, timeout=120, headers=h)
    stats = lambda: c.get("/stats").json()  # noqa: E731
    out = {}

    def post(path, body=None, raw=None):
        r = c.post(path, content=raw if raw is not None else json.dumps(body, allow_nan=True).encode())
        err = r.json().get("error") if r.headers.get("content-type", "").startswith("application/json") else None
        return r, err

    r, e = post(CHAT, {"messages": MSG, "max_tokens": 10 ** 7})
    out["max_tokens_1e7"] = {"status": r.status_code, "message": e["message"]}
    # a client that asks for 2000 tokens and leaves after 0.5 s; then an ordinary request
    before = stats()["cancelled"]
    body = json.dumps({"prompt": "a", "max_tokens": 2000, "temperature": 0}).encode()
    so = socket.create_connection((srv.host, srv.port))
    so.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
               b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(0.5)
    so.close()
    t0 = time.perf_counter()
    r, _ = post(COMP, {"prompt": "next", "max_tokens": 2})
    time.sleep(0.5)
    out["client_leaves_mid_generation"] = {"next_request_status": r.status_code,
                                           "next_request_s": round(time.perf_counter() - t0, 3),
                                           "jobs_cancelled": stats()["cancelled"] - before,
                                           "health": c.get("/health").status_code}
    rss = srv.rss_mb()
    r, e = post(COMP, raw=json.dumps({"prompt": "x" * (10 << 20)}).encode())
    out["prompt_10MB"] = {"status": r.status_code, "code": e["code"], "rss_growth_mb": round(srv.rss_mb() - rss, 1)}
    r, e = post(COMP, {"prompt": "y" * 1_000_000, "max_tokens": 1})
    out["prompt_1MB_under_body_cap"] = {"status": r.status_code, "code": e["code"],
                                        "rss_growth_mb": round(srv.rss_mb() - rss, 1)}
    t0 = time.perf_counter()
    with socket.create_connection((srv.host, srv.port), timeout=30) as so:  # no key, 10 MB announced, none sent
        so.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 10000000\r\n\r\n")
        st = int(so.recv(4096).split(b" ", 2)[1])
    out["no_key_10MB_announced"] = {"status": st, "answered_s": round(time.perf_counter() - t0, 3)}
    for bad in ("-1", "abc"):
        with socket.create_connection((srv.host, srv.port), timeout=30) as so:
            so.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
                       b"\r\nContent-Type: application/json\r\nContent-Length: " + bad.encode() + b"\r\n\r\n{}")
            out[f"content_length_{bad}"] = {"status": int(so.recv(4096).split(b" ", 2)[1])}
    for name, path, raw in [("temperature_NaN", CHAT, b'{"messages": [{"role": "user", "content": "x"}], '
                                                      b'"temperature": NaN}'),
                            ("seed_2^70", COMP, json.dumps({"prompt": "x", "seed": 2 ** 70}).encode()),
                            ("empty_prompt", COMP, b'{"prompt": ""}'),
                            ("unknown_param_logit_bias", CHAT, json.dumps({"messages": MSG, "logit_bias": {"1": 5}}).encode())]:
        r, e = post(path, raw=raw)
        out[name] = {"status": r.status_code, "param": e["param"], "code": e["code"],
                     "code_is_string": isinstance(e["code"], str)}
    # 10 valid requests batched with invalid ones (empty prompt, seed 2^70): the valid ones all succeed
    bodies = [{"prompt": f"p{i}", "max_tokens": 3, "seed": i} for i in range(10)] + [{"prompt": ""},
                                                                                   {"prompt": "x", "seed": 2 ** 70}]
    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda b: post(COMP, b)[0].status_code, bodies))
    out["10_valid_with_2_invalid_concurrently"] = {"valid_200": codes[:10].count(200), "invalid": codes[10:]}
    r = c.post(CHAT, json={"messages": MSG, "max_tokens": 4, "stream": True})
    out["stream_true"] = {"status": r.status_code, "content_type": r.headers["content-type"].split(";")[0],
                          "ends_with_done": r.text.rstrip().endswith("data: [DONE]")}
    r = c.post(CHAT, json={"messages": MSG, "max_tokens": 4, "logprobs": True, "top_logprobs": 2}).json()
    out["chat_logprobs_true"] = {"tokens_with_logprobs": len(r["choices"][0]["logprobs"]["content"])}
    c.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--invalid-share", type=float, default=0.4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "serve_load.json"))
    a = ap.parse_args()
    import httpx

    from superalign.serve.spawn import Spawned
    cfg = Path(tempfile.mkdtemp(prefix="serve-load-")) / "cfg.yaml"
    cfg.write_text("roles:\n  critic: {backend: local, model: tiny-random, device: cpu, batch_size: 8}\n"
                   "generation: {max_new_tokens: 8}\n")
    srv = Spawned(cfg, args=("--api-key-env", "SA_BENCH_KEY"), env={"SA_BENCH_KEY": KEY})
    probe = probes(srv)
    rss0 = srv.rss_mb()
    results: list[dict] = []
    lock = threading.Lock()
    rss_seen = [rss0]
    stop = threading.Event()

    def sample_rss():
        while not stop.wait(0.1):
            try:
                rss_seen.append(srv.rss_mb())
            except (OSError, RuntimeError):
                return

    def client(k: int):
        rng = random.Random(a.seed * 1000 + k)
        base_h = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        with httpx.Client(base_url=srv.base, timeout=120) as c:
            for _ in range(a.requests):
                t0 = time.perf_counter()
                if rng.random() < a.invalid_share:
                    if rng.random() < 1 / (len(INVALID) + 1):
                        name, want, status, ok_body = "content_length_-1", 400, raw_bad_length(srv.host, srv.port), True
                    else:
                        name, path, raw, extra, want = rng.choice(INVALID)
                        try:
                            r = c.post(path, content=raw, headers={**base_h, **extra})
                            status, ok_body = r.status_code, bool(r.json()["error"]["message"])
                        except (httpx.HTTPError, ValueError, KeyError):
                            status, ok_body = 0, False
                    rec = {"kind": "invalid", "name": name, "status": status, "ok": status == want and ok_body}
                else:
                    name, path, body = valid(rng)
                    try:
                        r = c.post(path, json=body, headers=base_h)
                        good = r.status_code == 200 and (r.text.rstrip().endswith("data: [DONE]")
                                                         if body.get("stream") else bool(r.json()["choices"]))
                        status = r.status_code
                    except (httpx.HTTPError, ValueError, KeyError):
                        status, good = 0, False
                    rec = {"kind": "valid", "name": name, "status": status, "ok": good}
                rec["latency_s"] = time.perf_counter() - t0
                with lock:
                    results.append(rec)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    t0 = time.time()
    with ThreadPoolExecutor(a.clients) as pool:
        list(pool.map(client, range(a.clients)))
    wall = time.time() - t0
    stop.set()
    health = httpx.get(srv.base + "/health", timeout=10).status_code
    stats = httpx.get(srv.base + "/stats", headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()
    peak = srv.rss_mb(peak=True)
    srv.close()

    val = [r for r in results if r["kind"] == "valid"]
    inv = [r for r in results if r["kind"] == "invalid"]
    v_fail = sum(not r["ok"] for r in val)
    i_bad = [r for r in inv if not r["ok"]]
    lo, hi = wilson(v_fail, len(val))

    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")
    lat_v = [r["latency_s"] for r in val]
    by_name: dict[str, dict] = {}
    for r in results:
        d = by_name.setdefault(r["name"], {"n": 0, "ok": 0, "statuses": {}})
        d["n"] += 1
        d["ok"] += r["ok"]
        d["statuses"][str(r["status"])] = d["statuses"].get(str(r["status"]), 0) + 1
    out = {"clients": a.clients, "requests_per_client": a.requests, "seed": a.seed, "wall_s": round(wall, 2),
           "valid": len(val), "valid_failures": v_fail, "valid_failure_rate_wilson95": [lo, hi],
           "invalid": len(inv), "invalid_not_expected_4xx": len(i_bad),
           "latency_valid_p50_ms": 1000 * pct(lat_v, 0.5), "latency_valid_p99_ms": 1000 * pct(lat_v, 0.99),
           "latency_all_p50_ms": 1000 * pct([r["latency_s"] for r in results], 0.5),
           "latency_all_p99_ms": 1000 * pct([r["latency_s"] for r in results], 0.99),
           "rss_start_mb": round(rss0, 1), "rss_peak_sampled_mb": round(max(rss_seen), 1),
           "rss_peak_vmhwm_mb": round(peak, 1), "health_after": health,
           "server_stats": {k: stats[k] for k in ("requests", "batches", "max_batch", "failed", "cancelled",
                                                  "isolated_retries")},
           "by_request": by_name, "probes": probe}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"superalign serve load: {a.clients} clients x {a.requests} requests (tiny-random, CPU), wall {wall:.1f}s")
    print(f"{'metric':<44}{'value':>14}")
    for k, v in [("valid requests", len(val)), ("valid failures", v_fail),
                 ("valid failure rate, Wilson 95% CI", f"[{lo:.3f}, {hi:.3f}]"),
                 ("invalid requests", len(inv)), ("invalid not answered with expected 4xx", len(i_bad)),
                 ("latency valid p50 / p99 ms", f"{out['latency_valid_p50_ms']:.0f} / {out['latency_valid_p99_ms']:.0f}"),
                 ("latency all p50 / p99 ms", f"{out['latency_all_p50_ms']:.0f} / {out['latency_all_p99_ms']:.0f}"),
                 ("server RSS start MiB", f"{rss0:.0f}"), ("server RSS peak (VmHWM) MiB", f"{peak:.0f}"),
                 ("largest micro-batch", stats["max_batch"]), ("/health after", health)]:
        print(f"{k:<44}{v:>14}")
    for name, d in sorted(by_name.items()):
        print(f"  {name:<24} n={d['n']:<4} ok={d['ok']:<4} statuses={d['statuses']}")
    print("issue-16 probes (one at a time, before the load):")
    for k, v in probe.items():
        print(f"  {k:<38} {json.dumps(v)[:150]}")
    bad = v_fail or i_bad or health != 200
    print("RESULT:", "FAIL" if bad else "OK: 0 valid failures, every invalid request got its 4xx")
    print(f"wrote {a.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
