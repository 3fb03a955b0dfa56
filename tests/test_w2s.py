import math

import numpy as np
import pytest
import torch

from superalign.errors import SuperalignError
from superalign.paradigms import w2s


def test_pgr_on_fixed_numbers():
    assert w2s.pgr(0.6, 0.7, 0.8) == pytest.approx(0.5)
    assert w2s.pgr(0.6, 0.8, 0.8) == pytest.approx(1.0)
    assert w2s.pgr(0.6, 0.55, 0.8) == pytest.approx(-0.25)
    assert math.isnan(w2s.pgr(0.7, 0.9, 0.7))
    assert math.isnan(w2s.pgr(0.7, 0.6, 0.65))  # a strong ceiling below the weak model: no gap to recover


def test_aux_conf_and_bootstrap_reduce_to_xent_at_weight_zero():
    torch.manual_seed(0)
    logits = torch.randn(16, 2)
    target = torch.softmax(torch.randn(16, 2), -1)
    ref = w2s.xent(logits, target)
    assert w2s.aux_conf(logits, target, frac=0.9, alpha=0.0).item() == pytest.approx(ref.item())
    assert w2s.bootstrap(logits, target, frac=0.9, beta=0.0).item() == pytest.approx(ref.item())
    # at the start of warm-up the mix weight is 0 whatever alpha is
    assert w2s.aux_conf(logits, target, frac=0.0, alpha=0.75, warmup=0.2).item() == pytest.approx(ref.item())
    # after warm-up with alpha=1 the target is the student's own hardened predictions
    hard = w2s.harden(logits.softmax(-1), target.mean(0))
    assert w2s.aux_conf(logits, target, frac=0.5, alpha=1.0, warmup=0.2).item() == pytest.approx(
        w2s.xent(logits, hard).item())
    assert w2s.aux_conf(logits, target, frac=0.5, alpha=0.75).item() != pytest.approx(ref.item())


def test_xent_is_cross_entropy_on_hard_labels():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]])
    y = torch.tensor([0, 2])
    assert w2s.xent(logits, torch.eye(3)[y]).item() == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item())


def test_harden_keeps_the_weak_class_balance():
    p1 = torch.linspace(0.01, 0.99, 100)
    probs = torch.stack([1 - p1, p1], -1)
    hard = w2s.harden(probs, torch.tensor([0.75, 0.25]))
    assert hard.sum(0)[1].item() == pytest.approx(25, abs=1)
    assert hard[-1, 1] == 1 and hard[0, 0] == 1  # the most confident positives are the ones kept
    three = w2s.harden(torch.tensor([[0.2, 0.5, 0.3]]), torch.ones(3) / 3)
    assert three.tolist() == [[0.0, 1.0, 0.0]]


def synthetic(n=1200, d=20, noise=0.3, seed=0):
    """Linearly separable gold labels; weak labels are gold flipped at random with prob `noise`,
    given as 0.7-confident soft labels. The right answer is known: a student that generalises
    (rather than imitates) recovers most of the gap, since the flips carry no signal."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1, d)).astype(np.float32)
    y = (x[:, 0, 0] + 0.3 * x[:, 0, 1] > 0).astype(int)
    flip = rng.random(n) < noise
    weak_y = np.where(flip, 1 - y, y)
    soft = np.where(weak_y[:, None] == 1, [[0.3, 0.7]], [[0.7, 0.3]]).astype(np.float32)
    return x, y, soft


def test_student_generalises_beyond_noisy_weak_labels():
    x, y, soft = synthetic()
    tr, te = np.arange(800), np.arange(800, 1200)
    head = w2s.HeadCfg(epochs=20, lr=5e-3, batch_size=64)
    weak_acc = w2s.accuracy(soft[te], y[te])
    ceil = w2s.accuracy(w2s.fit_head(x, tr, np.eye(2, dtype=np.float32)[y[tr]], "xent", head, 0, False)[0][te], y[te])
    for loss in ("xent", "aux_conf"):
        probs, state = w2s.fit_head(x, tr, soft[tr], loss, head, 0, False, **w2s.loss_kwargs(w2s.W2SConfig(), loss))
        acc = w2s.accuracy(probs[te], y[te])
        assert 0.6 < weak_acc < 0.8 and ceil > 0.9
        # random flips carry no signal: plain xent averages them away; the confidence loss locks in
        # the student's early (less trained) boundary, so it recovers less here, but still beats weak
        assert w2s.pgr(weak_acc, acc, ceil) > (0.7 if loss == "xent" else 0.2), loss
        assert state["weight"].shape == (2, 20)
    assert 0.5 <= w2s.auroc(probs[te], y[te]) <= 1


def test_choice_head_scores_each_candidate():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 3, 8)).astype(np.float32)
    y = x[:, :, 0].argmax(1)  # the right candidate has the largest first feature
    probs, _ = w2s.fit_head(x, np.arange(400), np.eye(3, dtype=np.float32)[y[:400]], "xent",
                            w2s.HeadCfg(epochs=30), 0, True)
    assert probs.shape == (600, 3) and w2s.accuracy(probs[400:], y[400:]) > 0.9


def test_config_errors_name_the_key():
    with pytest.raises(SuperalignError, match=r"w2s\.head\.epoch: unknown key"):
        w2s.parse_config({"head": {"epoch": 3}})
    with pytest.raises(SuperalignError, match=r"w2s\.methods"):
        w2s.parse_config({"methods": ["xnet"]})
    cfg = w2s.parse_config({"tasks": ["sarcasm", {"name": "quartz", "n_test": 50}], "n_test": 70})
    assert [(t.name, t.n_test, t.n_weak) for t in cfg.task_specs()] == [("sarcasm", 70, 200), ("quartz", 50, 200)]


def test_tasks_become_classification_examples():
    s = w2s.load_task("sarcasm", 30)
    assert not s.choice and s.k == 2 and len(s.texts[0]) == 1 and set(s.labels) <= {0, 1}
    q = w2s.load_task("quartz", 30)
    assert q.choice and q.k == 2 and len(q.texts[0]) == 2
    h = w2s.load_task("harm_labels", 30)
    assert not h.choice and h.texts[0][0].startswith("Request: ") and len(set(h.labels)) == 2
    with pytest.raises(SuperalignError, match="usable examples"):
        w2s.load_task("refusal_labels", 10_000)


def test_features_are_cached_by_text():
    from superalign.paradigms import w2s_features as F
    texts = ["a short one", "another text here", "third"]
    a = F.featurize(["tiny-random", "tiny-random@1", "hashing:64"], texts, max_tokens=16)
    assert a["tiny-random"].shape == (3, 64) and a["hashing:64"].shape == (3, 64)
    assert not np.allclose(a["tiny-random"], a["tiny-random@1"])
    key = F.text_key(texts, 16)
    assert F._path("tiny-random", 1, key).exists()
    b = F.featurize(["tiny-random@1"], texts, max_tokens=16)
    np.testing.assert_array_equal(a["tiny-random@1"], b["tiny-random@1"])
    with pytest.raises(SuperalignError, match="layer 9"):
        F.featurize(["tiny-random@9"], ["x y z new"], max_tokens=16)


TINY = {"tasks": [{"name": "sarcasm", "n_weak": 30, "n_transfer": 80, "n_test": 60}], "seeds": [0, 1],
        "weak": "hashing:256", "ladder": ["tiny-random@1"], "strong": "tiny-random",
        "methods": ["xent", "aux_conf", "bootstrap", "ladder"], "head": {"epochs": 5}, "max_tokens": 32}


def test_integration_on_a_sarcasm_slice(tmp_path):
    from superalign.experiments import build_report as build
    from superalign.store import RunStore
    cfg = w2s.parse_config(TINY)
    store = RunStore(tmp_path / "run", create=True)
    res = w2s.run(cfg, store)["sarcasm"]
    get = {(r["role"], r["meta"]["method"], r["name"]): r for r in res}
    for method in ("xent", "aux_conf", "bootstrap", "ladder"):
        r = get[("w2s", method, "accuracy")]
        assert r["n"] == 2 and 0 <= r["value"] <= 1 and r["lo"] <= r["value"] <= r["hi"]
        assert ("w2s", method, "pgr") in get
    # PGR rows agree with the accuracies they come from
    seed0 = {(r["role"], r["meta"]["method"], r["name"]): r["value"]
             for r in store.rows("metrics", stage="w2s", seed=0) if r["role"] != "rung"}
    assert seed0[("w2s", "xent", "pgr")] == pytest.approx(w2s.pgr(
        seed0[("weak", "weak", "accuracy")], seed0[("w2s", "xent", "accuracy")], seed0[("ceiling", "ceiling", "accuracy")]),
        nan_ok=True)
    rungs = store.rows("metrics", role="rung", seed=0, name="accuracy")
    assert [r["meta"]["step"] for r in rungs] == [1, 2]
    assert rungs[0]["meta"]["supervisor"] == "hashing:256" and rungs[1]["model"] == "tiny-random"
    assert all(r["meta"]["gap"] == pytest.approx(r["meta"]["ceiling"] - r["meta"]["supervisor_accuracy"]) for r in rungs)
    # a second run in a fresh store trains nothing: every head comes from the cache
    store2 = RunStore(tmp_path / "run2", create=True)
    w2s.run(cfg, store2)
    assert all(__import__("json").loads(s["info"])["cache_hits"] > 0 for s in store2.stages() if "seed" in s["name"])
    # resuming the first store redoes no stage
    n = len(store.rows("metrics"))
    w2s.run(cfg, store)
    assert len(store.rows("metrics")) == n
    html = build(tmp_path / "run").read_text()
    assert "Weak-to-strong generalization" in html and "PGR by task and method" in html and "<svg" in html


def test_cache_shares_weak_labels_and_ceilings(tmp_path):
    cfg = w2s.parse_config(TINY)
    task = w2s.load_task("sarcasm", 170)
    feats, key = w2s.features_for(cfg, task)
    tr = w2s.Trainer(cfg, task, feats, key)
    idx, y = np.arange(30), np.eye(2, dtype=np.float32)[task.labels[:30]]
    a = tr.fit("hashing:256", idx, y, "xent", 0)
    b = tr.fit("hashing:256", idx, y, "xent", 0)
    c = tr.fit("hashing:256", idx, y, "xent", 1)
    assert tr.hits >= 1 and np.array_equal(a, b) and a.shape == (170, 2)
    assert not np.array_equal(a, c)
    oof = tr.crossfit("hashing:256", np.arange(40), np.eye(2, dtype=np.float32)[task.labels[:40]], "xent", 0)
    assert oof.shape == (40, 2) and np.allclose(oof.sum(1), 1, atol=1e-5)


def test_lora_mode_trains_the_strong_lm_end_to_end():
    cfg = w2s.parse_config({**TINY, "finetune": {"mode": "lora", "epochs": 1, "batch_size": 8}})
    task = w2s.load_task("sarcasm", 40)
    from superalign.paradigms.w2s_finetune import fit_lm
    probs, state = fit_lm("tiny-random", task, np.arange(16), np.eye(2, dtype=np.float32)[task.labels[:16]],
                          "aux_conf", cfg, 0, **w2s.loss_kwargs(cfg, "aux_conf"))
    assert probs.shape == (40, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert any("lora" in k for k in state) and "head.weight" in state


def test_cli_writes_a_run_and_report(tmp_path):
    import yaml
    from typer.testing import CliRunner
    from superalign.cli.main import app
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"w2s": {**TINY, "seeds": [0], "methods": ["xent"]}}))
    r = CliRunner().invoke(app, ["w2s", "--config", str(cfg), "--out-dir", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "runs").glob("w2s-*/report.html"))) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("w2s: {weak_model: hashing}\n")
    r = CliRunner().invoke(app, ["w2s", "--config", str(bad), "--out-dir", str(tmp_path / "runs")])
    assert isinstance(r.exception, SuperalignError) and "w2s.weak_model: unknown key" in str(r.exception)
