import json
import re

import numpy as np
import pytest
import torch

from superalign.errors import SuperalignError
from superalign.w2s import losses as L
from superalign.w2s import metrics as M
from superalign.w2s.config import HeadCfg, parse_config
from superalign.w2s.probe import fit_head
from superalign.w2s.tasks import load_task


def test_pgr_on_fixed_numbers():
    assert M.pgr(0.6, 0.7, 0.8) == pytest.approx(0.5)
    assert M.pgr(0.6, 0.55, 0.8) == pytest.approx(-0.25)
    assert np.isnan(M.pgr(0.7, 0.6, 0.65))  # a ceiling below the weak model: no gap to recover


def test_logconf_reduces_to_xent_at_aux_coef_zero():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 2), torch.softmax(torch.randn(16, 2), -1)
    ref = L.xent(logits, target)
    assert L.logconf(logits, target, frac=0.9, aux_coef=0.0).item() == pytest.approx(ref.item())
    assert L.bootstrap(logits, target, frac=0.9, beta=0.0).item() == pytest.approx(ref.item())
    assert L.logconf(logits, target, frac=0.0).item() == pytest.approx(ref.item())  # warm-up starts at 0
    hard = L.harden(logits.softmax(-1), target.mean(0))
    # after the warm-up the target is (1 - aux_coef) weak + aux_coef hardened student, as in openai/weak-to-strong
    assert L.logconf(logits, target, frac=0.5, aux_coef=0.5).item() == pytest.approx(
        L.xent(logits, 0.5 * target + 0.5 * hard).item())
    assert L.logconf(logits, target, frac=0.05, aux_coef=0.5, warmup_frac=0.1).item() == pytest.approx(
        L.xent(logits, 0.975 * target + 0.025 * hard).item())
    y = torch.tensor([0, 1, 1])
    lg = torch.tensor([[2.0, -1.0], [0.1, 0.2], [0.3, 0.0]])
    assert L.xent(lg, torch.eye(2)[y]).item() == pytest.approx(torch.nn.functional.cross_entropy(lg, y).item())


def test_harden_keeps_the_weak_class_balance():
    p1 = torch.linspace(0.01, 0.99, 100)
    hard = L.harden(torch.stack([1 - p1, p1], -1), torch.tensor([0.75, 0.25]))
    assert hard.sum(0)[1].item() == pytest.approx(25, abs=1) and hard[-1, 1] == 1 and hard[0, 0] == 1
    assert L.harden(torch.tensor([[0.2, 0.5, 0.3]]), torch.ones(3) / 3).tolist() == [[0.0, 1.0, 0.0]]


def synthetic(n=1200, d=20, noise=0.3, seed=0):
    """Separable gold labels; weak labels = gold flipped at random with prob `noise`, as 0.7-confident soft labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1, d)).astype(np.float32)
    y = (x[:, 0, 0] + 0.3 * x[:, 0, 1] > 0).astype(int)
    weak_y = np.where(rng.random(n) < noise, 1 - y, y)
    return x, y, np.where(weak_y[:, None] == 1, [[0.3, 0.7]], [[0.7, 0.3]]).astype(np.float32)


def test_student_generalises_beyond_noisy_weak_labels():
    x, y, soft = synthetic()
    tr, va, te = np.arange(600), np.arange(600, 900), np.arange(900, 1200)
    head = HeadCfg(max_epochs=20, lr=5e-3, batch_size=64)
    gold = np.eye(2, dtype=np.float32)[y]
    weak = M.accuracy(soft[te], y[te])
    ceil = M.accuracy(fit_head(x, tr, gold[tr], va, soft[va], "xent", head, 0, False)[0][te], y[te])
    for loss in ("xent", "logconf"):
        probs, state = fit_head(x, tr, soft[tr], va, soft[va], loss, head, 0, False, **parse_config({}).loss_kwargs(loss))
        assert 0.6 < weak < 0.8 and ceil > 0.9
        # random flips carry no signal: xent averages them away; the confidence loss locks in the student's early
        # boundary, so it recovers less here, but still well beyond weak
        assert M.pgr(weak, M.accuracy(probs[te], y[te]), ceil) > (0.6 if loss == "xent" else 0.3), loss
        assert state["weight"].shape == (2, 20) and 1 <= state["epoch"] <= 20


def test_early_stopping_reads_only_the_weak_labelled_validation_rows():
    """Gold keeps improving with training; the weak labels of the validation rows are the gold ones flipped, so
    agreement with them is best at the first epoch. Stopping on gold would pick a late epoch."""
    x, y, _ = synthetic(n=900, noise=0.0, seed=3)
    gold = np.eye(2, dtype=np.float32)[y]
    tr, va = np.arange(600), np.arange(600, 900)
    head = HeadCfg(max_epochs=8, patience=8, lr=2e-3, batch_size=16)
    probs, state = fit_head(x, tr, gold[tr], va, 1 - gold[va], "xent", head, 0, False)
    hist = state["val_history"]
    assert state["epoch"] == 1 + int(np.lexsort((hist[:, 1], hist[:, 0]))[-1])
    assert state["epoch"] == 1 and len(hist) == 8
    _, by_gold = fit_head(x, tr, gold[tr], va, gold[va], "xent", head, 0, False)
    assert by_gold["epoch"] > 1
    # the kept weights are those of the chosen epoch: its validation agreement is reproduced
    assert (probs[va].argmax(-1) == (1 - gold[va]).argmax(-1)).mean() == pytest.approx(hist[0, 0], abs=1e-6)


def test_each_head_is_tuned_on_its_own_validation_labels():
    """Few rows, many dimensions: without a penalty a head fits noise (the untuned MiniLM supervisor of sarcasm);
    the swept L2 kept on validation generalises better, and the value kept is the one validation prefers."""
    rng = np.random.default_rng(0)
    n, d = 600, 100
    x = rng.normal(size=(n, 1, d)).astype(np.float32)
    y = (x[:, 0, :5].sum(-1) + 0.5 * rng.normal(size=n) > 0).astype(int)
    gold = np.eye(2, dtype=np.float32)[y]
    tr, va, te = np.arange(60), np.arange(60, 160), np.arange(160, 600)
    grid = [0.0, 0.1, 1.0, 10.0]
    fits = {l2: fit_head(x, tr, gold[tr], va, gold[va], "xent", HeadCfg(l2=[l2]), 0, False) for l2 in grid}
    probs, state = fit_head(x, tr, gold[tr], va, gold[va], "xent", HeadCfg(l2=grid), 0, False)
    val = {l2: M.accuracy(p[va], y[va]) for l2, (p, _) in fits.items()}
    assert val[float(state["l2"])] == max(val.values()) and float(state["l2"]) > 0
    assert np.array_equal(probs, fits[float(state["l2"])][0])
    assert M.accuracy(probs[te], y[te]) > M.accuracy(fits[0.0][0][te], y[te]) + 0.05
    assert len(HeadCfg().l2) > 1  # the default sweeps: the weak supervisor is tuned as well as the students


def test_an_lm_fit_is_redone_when_its_probe_settings_change(tmp_path, monkeypatch):
    """An LM student starts from a probe trained with the `head` settings, so the cached fit's key reads them: a
    changed `head.l2` must not reuse a fit made under another."""
    from superalign.w2s import finetune
    from superalign.w2s.experiment import Trainer
    task = load_task("sarcasm", 40)
    calls = []

    def fake_fit_lm(*a, **kw):
        calls.append(1)
        return np.full((40, 2), 0.5, np.float32), {"epoch": np.int64(0)}
    monkeypatch.setattr(finetune, "fit_lm", fake_fit_lm)
    gold = np.eye(2, dtype=np.float32)[task.labels]
    tr, va = np.arange(16), np.arange(16, 24)
    for l2 in ([0.0], [0.0], [1.0]):
        t = Trainer(parse_config({**TINY, "head": {"l2": l2}}), task, {}, "k")
        t.dir = tmp_path
        t.fit("tiny-random", tr, gold[tr], va, gold[va], "xent", 0)
    assert len(calls) == 2  # the second [0.0] is a cache hit; [1.0] is not


def test_each_trained_lm_fit_says_its_seconds_and_a_cached_one_says_nothing(tmp_path, monkeypatch):
    """A long run prints one line per language-model fit it trains (a seed of the Gemma design holds a dozen fits of
    minutes each); a fit found in the cache and a head on frozen features are silent."""
    from superalign.w2s import finetune
    from superalign.w2s.experiment import Trainer
    task = load_task("sarcasm", 40)
    monkeypatch.setattr(finetune, "fit_lm", lambda *a, **kw: (np.full((40, 2), 0.5, np.float32),
                                                              {"epoch": np.int64(2)}))
    gold = np.eye(2, dtype=np.float32)[task.labels]
    tr, va = np.arange(16), np.arange(16, 24)
    heard: list[str] = []
    t = Trainer(parse_config(TINY), task, {"hashing:256": np.random.default_rng(0).normal(size=(40, 1, 8))}, "k",
                say=heard.append)
    t.dir = tmp_path
    for _ in range(2):
        t.fit("tiny-random", tr, gold[tr], va, gold[va], "xent", 3, tag="ceiling")
    t.fit("hashing:256", tr, gold[tr], va, gold[va], "xent", 3, tag="weak")
    assert len(heard) == 1 and t.hits == 1
    assert re.fullmatch(r"sarcasm seed 3: ceiling tiny-random trained in \d+ s \(epoch 2 kept\)", heard[0])


def test_a_damaged_cache_entry_is_named_and_computed_again(tmp_path, monkeypatch, capsys):
    """A truncated cache file (a disk fault, a copy cut short) costs its recomputation, not the run."""
    from superalign.w2s import features as F
    from superalign.w2s import finetune
    from superalign.w2s.experiment import Trainer
    texts = ["a damaged one", "two words", "third text"]
    good = F.featurize(["tiny-random@1"], texts, max_tokens=16)["tiny-random@1"]
    h0, n0 = F.token_states("tiny-random", 1, texts, 16)
    h0 = np.array(h0)
    key = F.text_key(texts, 16)
    for p in (F._path("tiny-random", 1, key), F._path("tiny-random", 1, key, "tokens")):
        p.write_bytes(p.read_bytes()[:90])  # the header survives, the data does not
    capsys.readouterr()
    np.testing.assert_array_equal(F.featurize(["tiny-random@1"], texts, max_tokens=16)["tiny-random@1"], good)
    h, n = F.token_states("tiny-random", 1, texts, 16)
    np.testing.assert_array_equal(np.array(h), h0)
    np.testing.assert_array_equal(n, n0)
    err = capsys.readouterr().err
    assert err.count("is unreadable") == 2 and "computing it again" in err
    # a fit's cached probabilities
    task = load_task("sarcasm", 40)
    trained: list[int] = []
    monkeypatch.setattr(finetune, "fit_lm", lambda *a, **kw: (trained.append(1), (np.full((40, 2), 0.5, np.float32),
                                                                                  {"epoch": np.int64(1)}))[1])
    gold = np.eye(2, dtype=np.float32)[task.labels]
    tr, va = np.arange(16), np.arange(16, 24)
    t = Trainer(parse_config(TINY), task, {}, "k")
    t.dir = tmp_path
    t.fit("tiny-random", tr, gold[tr], va, gold[va], "xent", 0)
    (fit,) = tmp_path.glob("*.npz")
    fit.write_bytes(fit.read_bytes()[:50])
    probs = t.fit("tiny-random", tr, gold[tr], va, gold[va], "xent", 0)
    assert len(trained) == 2 and t.hits == 0 and probs.shape == (40, 2) and "is unreadable" in capsys.readouterr().err
    t.fit("tiny-random", tr, gold[tr], va, gold[va], "xent", 0)
    assert len(trained) == 2 and t.hits == 1  # the entry written again is read


def test_the_finetuning_schedule_warms_up_and_decays():
    from superalign.w2s.config import FinetuneCfg
    from superalign.w2s.finetune import schedule
    lin = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(lin.parameters(), lr=1e-3)
    assert schedule(opt, FinetuneCfg(), 100) is None  # off by default: constant rates
    sched = schedule(opt, FinetuneCfg(warmup_frac=0.1, decay="linear"), 100)
    rates = []
    for _ in range(100):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[0] == 0 and rates[10] == pytest.approx(1e-3) and rates[5] == pytest.approx(5e-4)
    assert rates[99] < 2e-5


def _correct(acc: float, n: int, rng) -> np.ndarray:
    c = np.zeros(n, int)
    c[rng.choice(n, int(round(acc * n)), replace=False)] = 1
    return c


def test_pgr_is_withheld_when_the_gap_is_not_significant():
    rng = np.random.default_rng(0)
    mk = lambda accs: [_correct(a, 300, rng) for a in accs]  # noqa: E731
    big = M.summarise({"weak": mk([0.65, 0.66, 0.64]), "ceiling": mk([0.85, 0.84, 0.86]),
                       "xent": mk([0.78, 0.75, 0.77])}, chance=0.5, w2s_methods=["xent"], samples=500)
    assert big["pgr_withheld"] is None and big["gap_ci"][0] > 0
    # from seed means, not a mean of per-seed ratios
    assert big["pgr"]["xent"] == pytest.approx((np.mean([.78, .75, .77]) - .65) / (.85 - .65), abs=1e-6)
    assert big["pgr_ci"]["xent"][0] < big["pgr"]["xent"] < big["pgr_ci"]["xent"][1]
    small = M.summarise({"weak": mk([0.70, 0.72, 0.69]), "ceiling": mk([0.72, 0.69, 0.73]),
                         "xent": mk([0.75, 0.70, 0.71])}, chance=0.5, w2s_methods=["xent"], samples=500)
    assert small["pgr"]["xent"] is None and "includes 0" in small["pgr_withheld"]
    chance = M.summarise({"weak": mk([0.51, 0.50, 0.52]), "ceiling": mk([0.80, 0.81, 0.79]),
                          "xent": mk([0.6, 0.6, 0.6])}, chance=0.5, w2s_methods=["xent"], samples=500)
    assert chance["pgr"]["xent"] is None and "chance" in chance["pgr_withheld"]
    # the weak model trained on the ceiling's gold reaches the ceiling: the gap is data, not capacity, and says so
    data = M.summarise({"weak": mk([0.65, 0.66, 0.64]), "ceiling": mk([0.85, 0.84, 0.86]),
                        "control": mk([0.85, 0.85, 0.84]), "xent": mk([0.78, 0.75, 0.77])}, chance=0.5,
                       w2s_methods=["xent"], samples=500)
    assert data["gap_kind"] == "data" and data["capacity_gap_ci"][0] <= 0 < data["gap_ci"][0]
    assert data["pgr"]["xent"] == pytest.approx(big["pgr"]["xent"], abs=0.05)
    capacity = M.summarise({"weak": mk([0.65, 0.66, 0.64]), "ceiling": mk([0.85, 0.84, 0.86]),
                            "control": mk([0.66, 0.64, 0.65]), "xent": mk([0.78, 0.75, 0.77])}, chance=0.5,
                           w2s_methods=["xent"], samples=500)
    assert capacity["gap_kind"] == "capacity" and capacity["capacity_gap_ci"][0] > 0


def test_config_errors_name_the_key():
    with pytest.raises(SuperalignError, match=r"w2s\.head\.epoch: unknown key"):
        parse_config({"head": {"epoch": 3}})
    with pytest.raises(SuperalignError, match=r"w2s\.methods"):
        parse_config({"methods": ["xnet"]})
    cfg = parse_config({"tasks": ["sarcasm", {"name": "quartz", "n_test": 50, "untuned": True}], "n_test": 70})
    assert [(t.name, t.n_test, t.n_weak, t.untuned) for t in cfg.task_specs()] == [
        ("sarcasm", 70, 400, False), ("quartz", 50, 400, True)]


def test_config_module_is_light():
    import subprocess
    import sys
    code = "import sys, superalign.w2s.config; print('torch' in sys.modules, sorted(m for m in sys.modules if " \
           "m.startswith('superalign.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("False") and "superalign.w2s.config" in out and "superalign.models" not in out


def test_tasks_become_classification_examples():
    s = load_task("sarcasm", 30)
    assert not s.choice and s.k == 2 and len(s.texts[0]) == 1 and set(s.labels) <= {0, 1} and 0.5 <= s.chance < 1
    q = load_task("quartz", 30)
    assert q.choice and q.k == 2 and len(q.texts[0]) == 2
    # MMLU: one candidate per option, "question option" (the question alone cannot be answered)
    m = load_task("mmlu", 30)
    assert m.choice and m.k == 4 and len(m.texts[0]) == 4 and len(set(m.texts[0])) == 4
    from superalign import data
    row = next(r for r in data.load("mmlu", "all", seed=0) if r["id"] == m.ids[0])
    assert all(t.startswith(row["question"]) and t[len(row["question"]):].strip() in row["prompt"] for t in m.texts[0])
    h = load_task("harm_labels", 30)
    assert not h.choice and h.texts[0][0].startswith("Request: ") and len(set(h.labels)) == 2
    with pytest.raises(SuperalignError, match="usable examples"):
        load_task("refusal_labels", 10_000)


def test_features_and_token_states_are_cached_by_text():
    from superalign.w2s import features as F
    texts = ["a short one", "another text here", "third"]
    a = F.featurize(["tiny-random", "tiny-random@1", "hashing:64"], texts, max_tokens=16)
    assert a["tiny-random"].shape == (3, 64) and a["hashing:64"].shape == (3, 64)
    assert not np.allclose(a["tiny-random"], a["tiny-random@1"])
    b = F.featurize(["tiny-random@1"], texts, max_tokens=16)
    np.testing.assert_array_equal(a["tiny-random@1"], b["tiny-random@1"])
    h, n = F.token_states("tiny-random", 1, texts, 16)
    assert h.shape == (3, 16, 64) and n.tolist() == [min(16, len(F.load_lm("tiny-random")[0](t)["input_ids"])) for t in texts]
    assert F._path("tiny-random", 1, F.text_key(texts, 16), "tokens").exists()
    with pytest.raises(SuperalignError, match="layer 9"):
        F.featurize(["tiny-random@9"], ["x y z new"], max_tokens=16)


def test_lora_on_top_blocks_trains_only_those_blocks():
    from superalign.w2s.finetune import fit_lm
    cfg = parse_config({**TINY, "finetune": {"mode": "lora", "max_epochs": 2, "batch_size": 8,
                                                    "exit_layer": None}})
    task = load_task("sarcasm", 40)
    gold = np.eye(2, dtype=np.float32)[task.labels]
    tr, va = np.arange(16), np.arange(16, 24)
    probs, state = fit_lm("tiny-random", task, tr, gold[tr], va, gold[va], "logconf", cfg, 0, layers="all",
                          **cfg.loss_kwargs("logconf"))
    assert probs.shape == (40, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    # epoch 0 is the linear-probe warm start; the fine-tuning epochs were all scored against it
    assert "head.weight" in state and 0 <= state["epoch"] <= 2 and state["first_block"] == 0
    assert len(state["val_history"]) >= 2
    # without the probe competing, a fine-tuning epoch is always kept
    no_probe = parse_config({**TINY, "finetune": {**TINY["finetune"], "max_epochs": 2, "batch_size": 8,
                                                   "exit_layer": None, "keep_probe": False}})
    st = fit_lm("tiny-random", task, tr, gold[tr], va, gold[va], "xent", no_probe, 0, layers="all")[1]
    assert st["epoch"] >= 1 and len(st["val_history"]) == 2
    top1 = fit_lm("tiny-random", task, tr, gold[tr], va, gold[va], "xent", cfg, 0, layers=1)[1]
    lora = lambda s: sorted(k for k in s if "lora_" in k)  # noqa: E731
    assert top1["first_block"] == 1 and 0 < len(lora(top1)) < len(lora(state))


TINY = {"tasks": [{"name": "sarcasm", "n_weak": 40, "n_transfer": 80, "n_test": 60}], "seeds": [0, 1],
        "weak": "hashing:256", "ladder": ["tiny-random@1"], "strong": "tiny-random",
        "methods": ["xent", "logconf", "ladder", "iterative"], "iterate": 2, "head": {"max_epochs": 5},
        "max_tokens": 32,
        "finetune": {"mode": "lora", "lora_layers": "all", "exit_layer": None, "max_epochs": 2, "batch_size": 16},
        "bootstrap_samples": 200, "threads": 1}


def test_integration_on_a_sarcasm_slice(tmp_path):
    from superalign.store import RunStore
    from superalign.w2s.experiment import run
    from superalign.w2s.report import SECTIONS
    cfg = parse_config(TINY)
    store = RunStore(tmp_path / "run", create=True)
    store.put("config", {"w2s": cfg.model_dump(mode="json")})
    res = run(cfg, store)["sarcasm"]
    assert set(res["accuracy"]) == {"weak", "control", "xent", "logconf", "ladder", "iterative1", "iterative2",
                                    "ceiling"}
    assert res["seeds"] == 2 and res["untuned"] is False
    lo, hi = res["gap_ci"]
    assert lo <= res["gap"] <= hi
    assert (res["pgr_withheld"] is None) == all(res["pgr"][m] is not None for m in ("xent", "logconf", "ladder",
                                                                                "iterative1"))
    seed0 = {(r["role"], r["meta"]["method"]): r for r in store.rows("metrics", seed=0, name="accuracy")}
    assert all(r["meta"]["epoch"] >= 0 for r in seed0.values())
    rung = seed0[("rung", "ladder")]
    assert rung["meta"]["supervisor"] == "hashing:256" and rung["model"] == "tiny-random@1"
    assert rung["meta"]["gap"] == pytest.approx(rung["meta"]["ceiling"] - rung["meta"]["supervisor_accuracy"])
    assert seed0[("w2s", "ladder")]["meta"]["supervisor"] == "tiny-random@1"
    # a second run in a fresh store trains nothing: every fit comes from the cache
    store2 = RunStore(tmp_path / "run2", create=True)
    run(cfg, store2)
    assert all(json.loads(s["info"])["cache_hits"] > 0 for s in store2.stages() if "seed" in s["name"])
    # a store without a run config (bench/w2s.py writes none) still says what each task ran under (it said "?")
    html2 = "".join(fn(store2) or "" for _, fn in SECTIONS)
    assert f"Strong model <code>{cfg.strong}</code>" in html2 and f"weak supervisor <code>{cfg.weak}</code>" in html2
    assert "not recorded" not in html2 and "; 2 seeds." in html2
    n = len(store.rows("metrics"))
    run(cfg, store)  # resuming redoes no stage
    assert len(store.rows("metrics")) == n
    html = "".join(fn(store) or "" for _, fn in SECTIONS)
    assert "LoRA fine-tuning" in html and "capacity gap" in html and "<svg" in html


GOLD_TRAINED = {"ceiling", "control", "rung ceiling"}


def _seed0(cfg, task):
    from superalign.w2s.experiment import Trainer, features_for, run_seed
    feats, key = features_for(cfg, task)
    tr = Trainer(cfg, task, feats, key)
    rows = run_seed(cfg, cfg.task_specs()[0], task, tr, 0)
    return tr, {(r["role"], r["meta"]["method"]): r for r in rows if r["name"] == "accuracy"}


def test_students_never_see_gold_validation_labels():
    """Flip the gold labels of the transfer-validation rows: only the gold-trained references (ceiling, control,
    rung ceilings) see a change; every student's fit has the same inputs (a cache hit)."""
    from superalign.w2s.experiment import task_splits
    cfg = parse_config({**TINY, "seeds": [0]})
    task = load_task("sarcasm", 180)
    before, _ = _seed0(cfg, task)
    val = task_splits(cfg, cfg.task_specs()[0], 180, 0).val
    task.labels[val] = 1 - task.labels[val]
    after, _ = _seed0(cfg, task)
    changed = {t for (t, _, _, k0), (_, _, _, k1) in zip(before.calls, after.calls) if k0 != k1}
    assert len(before.calls) == len(after.calls) and changed == GOLD_TRAINED
    assert {t for t, *_ in after.calls} - changed >= {"weak", "xent", "logconf", "ladder", "rung", "crossfit",
                                                      "iterative1", "iterative2"}


def test_the_ceiling_never_sees_weak_labels():
    """Swap the weak supervisor for another one (other weak labels): the ceiling's fit has the same inputs (cache hit,
    same key) and the same test predictions, while every student's inputs change."""
    task = load_task("sarcasm", 180)
    a = parse_config({**TINY, "seeds": [0]})
    b = parse_config({**TINY, "seeds": [0], "weak": "hashing:64"})
    tr_a, acc_a = _seed0(a, task)
    tr_b, acc_b = _seed0(b, task)
    keys = lambda tr: {tag: key for tag, _, _, key in tr.calls}  # noqa: E731
    assert keys(tr_a)["ceiling"] == keys(tr_b)["ceiling"]
    assert acc_a[("ceiling", "ceiling")]["meta"]["correct"] == acc_b[("ceiling", "ceiling")]["meta"]["correct"]
    assert acc_a[("weak", "weak")]["meta"]["correct"] != acc_b[("weak", "weak")]["meta"]["correct"]
    for tag in ("xent", "logconf", "ladder", "iterative1"):
        assert keys(tr_a)[tag] != keys(tr_b)[tag], tag
    # the iterative rounds train on alternating halves and each round's student labels the next round's half
    it = [acc_a[("w2s", f"iterative{k}")]["meta"] for k in (1, 2)]
    assert it[0]["supervisor"] == "hashing:256" and it[1]["supervisor"] == "round 1 student"


def test_cli_writes_a_run_and_report(tmp_path):
    import yaml
    from typer.testing import CliRunner
    from superalign.cli.main import app
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"w2s": {**TINY, "seeds": [0], "methods": ["xent"]}}))
    r = CliRunner().invoke(app, ["w2s", "--config", str(cfg), "--out-dir", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    assert "gap ceiling - weak" in r.output and len(list((tmp_path / "runs").glob("w2s-*/report.html"))) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("w2s: {weak_model: hashing}\n")
    r = CliRunner().invoke(app, ["w2s", "--config", str(bad), "--out-dir", str(tmp_path / "runs")])
    assert r.exit_code == 2 and r.stderr.startswith("error:") and "w2s.weak_model: unknown key" in r.stderr


def test_shallow_reader_and_label_budget():
    """TF-IDF + logistic regression learns sarcasm from gold rows (above chance on held-out rows, C chosen on the
    validation rows); `#N` trains the weak model on N gold rows while the control keeps the full architecture."""
    from superalign.w2s.shallow import C_GRID, fit_tfidf
    task = load_task("sarcasm", 600)
    gold = np.eye(2, dtype=np.float32)[task.labels]
    tr, va, te = np.arange(300), np.arange(300, 400), np.arange(400, 600)
    probs, state = fit_tfidf(task, tr, gold[tr], va, gold[va], 0)
    assert probs.shape == (600, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert M.accuracy(probs[te], task.labels[te]) > task.chance + 0.05
    assert state["C"] in C_GRID and len(state["val_history"]) == len(C_GRID)
    q = load_task("quartz", 200)
    qp, _ = fit_tfidf(q, np.arange(100), np.eye(2, dtype=np.float32)[q.labels[:100]], np.arange(100, 150),
                      np.eye(2, dtype=np.float32)[q.labels[100:150]], 0)
    assert qp.shape == (200, 2) and np.allclose(qp.sum(1), 1, atol=1e-5)
    _, acc = _seed0(parse_config({**TINY, "seeds": [0], "weak": "tfidf#20", "methods": []}), load_task("sarcasm", 180))
    assert acc[("weak", "weak")]["meta"]["n_labels"] == 20 and acc[("control", "control")]["model"] == "tfidf"
    with pytest.raises(SuperalignError, match="SPEC#N"):
        _seed0(parse_config({**TINY, "seeds": [0], "weak": "tfidf#x", "methods": []}), load_task("sarcasm", 180))


def test_top_blocks_run_a_gemma3_backbone_as_its_own_forward(tmp_path):
    """Gemma 3 alternates sliding and full attention, each with its own rotary table: the cut-and-cached path the
    LoRA student trains on must reproduce the backbone's own last hidden state (the probe's feature)."""
    from transformers import Gemma3TextConfig, Gemma3TextModel

    from superalign.models import embedded
    from superalign.w2s.features import load_lm
    from superalign.w2s.finetune import TopBlocks
    tok = embedded.tiny_tokenizer()
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=64,
                           layer_types=["sliding_attention", "full_attention"] * 2,
                           rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                                            "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}},
                           pad_token_id=tok.pad_token_id)
    Gemma3TextModel(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    _, model = load_lm(str(tmp_path))
    enc = tok(["ab", "a longer text"], return_tensors="pt", padding=True)
    lens = enc["attention_mask"].sum(1)
    with torch.no_grad():
        hs = model(**enc, output_hidden_states=True).hidden_states
        top = TopBlocks(str(tmp_path), 0, 4, "lora", 4, "cpu", pool="last")
        assert top.kinds == cfg.layer_types
        out = top(hs[0], lens)
        # from block 2 on, fed the states entering it
        mid = TopBlocks(str(tmp_path), 2, 4, "lora", 4, "cpu", pool="last")(hs[2], lens)
    # no mask is passed: the texts fit the sliding window, as every task's texts cut at max_tokens (<= 256) fit
    # Gemma 3's 512; the two kinds' rotary tables differ (theta), so a block given the other kind's table fails this
    ref = hs[-1][torch.arange(2), lens - 1]
    assert torch.allclose(out, ref, atol=1e-5) and torch.allclose(mid, ref, atol=1e-5)
    # a text longer than the window would be read unmasked, i.e. wrongly: refused, naming the fix
    with pytest.raises(SuperalignError, match="sliding attention window") as e:
        top(torch.zeros(1, 65, 64), torch.tensor([65]))
    assert "w2s.max_tokens" in e.value.fix
