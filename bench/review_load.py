"""Load test of the review API: concurrent reviewers over one queue, zero lost or duplicated labels.

    python bench/review_load.py [--items 300] [--clients 8] [--servers 2]

Starts `--servers` review apps on 127.0.0.1 (each with its own SQLite connection to the same run
store, as separate `superalign review` processes would have), fills the queue with rows shaped
like the loop's (prompt, response, critic scores, critique, queued label), and lets `--clients`
reviewers label until the queue is empty. Every client also re-submits each answer once (must be
409) and tries to answer an item another reviewer holds (must be 409), and sends abusive requests
(label "1" / true / 0.5, a blank or 81-character name, a 10 MB body, no token, an unknown field)
that must each get a 4xx without echoing the body. The check: every item is labelled exactly once,
by the reviewer whose submit succeeded, and no abusive request got anything but its 4xx. Writes
bench/results/review_load.json.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def fill(store, n: int):
    lin = dict(round=1, role="learner", model="bench", seed=0)
    store.insert("prompts", [{"id": f"p{i}", "kind": "benign", "text": f"question {i}", "category": "bench",
                              "source": "bench", "parent_id": None, "meta": {}} for i in range(n)], stage="attack", **lin)
    store.insert("responses", [{"id": f"r{i}", "prompt_id": f"p{i}", "sample": 0, "text": f"answer {i}"}
                               for i in range(n)], stage="respond", **lin)
    store.insert("scores", [{"target_id": f"r{i}", "name": h, "value": 0.5, "confidence": 0.5, "error": None}
                            for i in range(n) for h in ("refusal", "harm", "helpful")], stage="critique", **lin)
    store.insert("critiques", [{"response_id": f"r{i}", "text": "critique", "better_response": "better"}
                               for i in range(n)], stage="critique", **lin)
    store.insert("labels", [{"id": f"l{i}", "target_id": f"r{i}", "status": "queued",
                             "meta": {"head": "refusal", "question": "Does the response refuse the request?",
                                      "confidence": (i % 17) / 17, "reason": "low critic confidence"}}
                            for i in range(n)], round=1, stage="escalate")


def serve(run_dir, token):
    import uvicorn

    from superalign.review.app import create_app
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(run_dir, token), host="127.0.0.1", port=port,
                                        log_level="warning", access_log=False))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.02)
    return srv, f"http://127.0.0.1:{port}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--deadline-s", type=float, default=300, help="stop the clients after this long regardless")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "review_load.json"))
    a = ap.parse_args()
    import httpx

    from superalign.review import queue_stats
    from superalign.store import RunStore
    run_dir = Path(tempfile.mkdtemp(prefix="review-load-"))
    store = RunStore(run_dir, create=True)
    fill(store, a.items)
    token = "bench-token"
    servers = [serve(run_dir, token) for _ in range(a.servers)]
    ok: dict[str, list[str]] = {}          # label id -> reviewers whose submit returned 200
    lock = threading.Lock()
    stats = Counter()
    lat: list[float] = []
    held: dict[str, str] = {}              # reviewer -> label id currently claimed
    t_end = time.time() + a.deadline_s

    def reviewer(k: int):
        who = f"rev{k}"
        base = servers[k % len(servers)][1]
        with httpx.Client(base_url=base, headers={"X-Review-Token": token}, timeout=30) as c:
            assert c.get("/api/stats", headers={"X-Review-Token": "nope"}).status_code == 401
            while time.time() < t_end:
                t0 = time.perf_counter()
                item = c.get("/api/next", params={"reviewer": who}).json()["item"]
                if item is None:
                    return
                with lock:
                    held[who] = item["id"]
                    other = next((v for r, v in held.items() if r != who and v != item["id"]), None)
                if other:  # answering someone else's claimed item must be refused
                    r = c.post(f"/api/label/{other}", json={"reviewer": who, "label": 0})
                    stats[f"steal_{r.status_code}"] += 1
                label = float(int(item["id"][1:]) % 2)
                r = c.post(f"/api/label/{item['id']}", json={"reviewer": who, "label": label, "comment": who})
                lat.append(time.perf_counter() - t0)
                stats[f"submit_{r.status_code}"] += 1
                if r.status_code == 200:
                    with lock:
                        ok.setdefault(item["id"], []).append(who)
                        held.pop(who, None)
                again = c.post(f"/api/label/{item['id']}", json={"reviewer": who, "label": 1 - label})
                stats[f"resubmit_{again.status_code}"] += 1
                abuse(c, item["id"], who)

    big = b'{"reviewer": "x", "comment": "' + b"z" * (10 << 20) + b'"}'

    def abuse(c, lid: str, who: str):
        probes = [("label_string", lambda: c.post(f"/api/label/{lid}", json={"reviewer": who, "label": "1"}), 422),
                  ("label_true", lambda: c.post(f"/api/label/{lid}", json={"reviewer": who, "label": True}), 422),
                  ("label_half", lambda: c.post(f"/api/label/{lid}", json={"reviewer": who, "label": 0.5}), 422),
                  ("blank_name", lambda: c.get("/api/next", params={"reviewer": "   "}), 422),
                  ("long_name", lambda: c.post(f"/api/release/{lid}", params={"reviewer": "n" * 81}), 422),
                  ("unknown_field", lambda: c.post(f"/api/label/{lid}", json={"reviewer": who, "label": 1, "x": 1}), 422),
                  ("body_10MB", lambda: c.post(f"/api/label/{lid}", content=big,
                                               headers={"Content-Type": "application/json"}), 413),
                  ("no_token", lambda: c.get("/api/stats", headers={"X-Review-Token": ""}), 401)]
        name, call, want = probes[int(lid[1:]) % len(probes)]
        try:
            r = call()
            ok = r.status_code == want and len(r.content) < 3000
        except Exception:  # noqa: BLE001 - a dropped connection counts as a failed probe
            ok = False
        stats[f"abuse_{'ok' if ok else 'bad'}"] += 1
        if not ok:
            stats[f"abuse_bad_{name}"] += 1

    t0 = time.time()
    with ThreadPoolExecutor(a.clients) as pool:
        list(pool.map(reviewer, range(a.clients)))
    wall = time.time() - t0
    for srv, _ in servers:
        srv.should_exit = True
    rows = {r["id"]: r for r in store.rows("labels")}
    lost = [i for i, r in rows.items() if r["status"] != "done"]
    dup = [i for i, w in ok.items() if len(w) > 1]
    wrong_owner = [i for i, w in ok.items() if rows[i]["labeler"] != w[0] or rows[i]["comment"] != w[0]]
    wrong_value = [i for i, r in rows.items() if r["status"] == "done" and r["label"] != float(int(i[1:]) % 2)]
    lat.sort()
    qs = queue_stats(store)["total"]
    print(f"review API load: {a.items} items, {a.clients} concurrent reviewers, {a.servers} server(s) "
          f"on one SQLite store, wall {wall:.1f}s")
    print(f"{'metric':<40}{'value':>10}")
    for k, v in [("labels written (status done)", qs["done"]), ("lost (not done)", len(lost)),
                 ("duplicated (>1 successful submit)", len(dup)), ("labeler/comment not the submitter", len(wrong_owner)),
                 ("label value overwritten", len(wrong_value)), ("submit 200", stats["submit_200"]),
                 ("submit 409 (raced)", stats["submit_409"]), ("re-submit 409 (must equal submits)", stats["resubmit_409"]),
                 ("re-submit 200 (must be 0)", stats["resubmit_200"]), ("steal attempts 409", stats["steal_409"]),
                 ("steal attempts 200 (must be 0)", stats["steal_200"]),
                 ("labels/s", f"{qs['done'] / wall:.1f}"),
                 ("claim+submit p50 ms", f"{1000 * lat[len(lat) // 2]:.1f}" if lat else "-"),
                 ("claim+submit p95 ms", f"{1000 * lat[int(len(lat) * 0.95)]:.1f}" if lat else "-")]:
        print(f"{k:<40}{v:>10}")
    print(f"{'abusive requests with the expected 4xx':<40}{stats['abuse_ok']:>10}")
    print(f"{'abusive requests answered otherwise':<40}{stats['abuse_bad']:>10}")
    bad = lost or dup or wrong_owner or wrong_value or stats["resubmit_200"] or stats["steal_200"] or stats["abuse_bad"]
    print("RESULT:", "FAIL" if bad else "OK: zero lost, zero duplicated, every abusive request refused")
    out = {"items": a.items, "clients": a.clients, "servers": a.servers, "wall_s": round(wall, 2),
           "done": qs["done"], "lost": len(lost), "duplicated": len(dup), "wrong_owner": len(wrong_owner),
           "wrong_value": len(wrong_value), "labels_per_s": qs["done"] / wall,
           "p50_ms": 1000 * lat[len(lat) // 2] if lat else None,
           "p95_ms": 1000 * lat[int(len(lat) * 0.95)] if lat else None, "counts": dict(stats)}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
