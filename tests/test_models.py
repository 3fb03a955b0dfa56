import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from superalign.errors import SuperalignError
from superalign.models import GenParams
from superalign.models.http import OpenAIChat


def test_batched_greedy_equals_one_at_a_time(tiny):
    chats = [[{"role": "user", "content": t}] for t in ["hi", "a much longer prompt here", "mid length"]]
    p = GenParams(max_new_tokens=6, temperature=0.0)
    batched = tiny.generate(chats, p)
    single = [tiny.generate([c], p)[0] for c in chats]
    assert batched == single and len(batched) == 3


def test_sampling_is_seeded(tiny):
    chats = [[{"role": "user", "content": "x"}]] * 2
    a = tiny.generate(chats, GenParams(max_new_tokens=8, temperature=1.0, seed=5))
    b = tiny.generate(chats, GenParams(max_new_tokens=8, temperature=1.0, seed=5))
    assert a == b


def test_logprobs_match_a_manual_forward_pass(tiny):
    import torch
    lp = tiny.logprobs(["Q: 1+1?", "abc"], [" 2", " longer completion"])
    ids = tiny.tokenizer("Q: 1+1? 2", add_special_tokens=False, return_tensors="pt")["input_ids"]
    n_prompt = len(tiny.tokenizer("Q: 1+1?", add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logits = tiny.model(ids).logits.log_softmax(-1)[0]
    manual = sum(logits[i - 1, ids[0, i]].item() for i in range(n_prompt, ids.shape[1]))
    assert lp[0] == pytest.approx(manual, abs=1e-4)
    assert lp[1] < lp[0] < 0


def test_missing_model_is_a_clear_error():
    from superalign.models.local import LocalLM
    with pytest.raises(SuperalignError, match="does not exist"):
        LocalLM("./no/such/model")


class _Handler(BaseHTTPRequestHandler):
    fails = 1

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Handler.fails > 0:
            _Handler.fails -= 1
            self.send_response(503)
            self.end_headers()
            return
        reply = {"choices": [{"message": {"content": "echo:" + body["messages"][-1]["content"]}}],
                 "usage": {"total_tokens": 3}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def test_openai_backend_retries_and_records_calls():
    srv = HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        b = OpenAIChat("m", base_url=f"http://127.0.0.1:{srv.server_port}/v1", max_retries=2, concurrency=2)
        out = b.generate([[{"role": "user", "content": "a"}], "b"], GenParams())
        assert out == ["echo:a", "echo:b"]
        assert any(c["attempts"] == 2 for c in b.calls) and all(c["latency_s"] >= 0 for c in b.calls)
    finally:
        srv.shutdown()


def test_openai_backend_unreachable_is_clear():
    b = OpenAIChat("m", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout_s=2)
    with pytest.raises(SuperalignError, match="server is running"):
        b.generate(["x"], GenParams())
