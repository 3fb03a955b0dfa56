"""Issue 24: what the speed work must not change. A cached evaluation is read back only for the very same learner
state, items and judge; generation batches by rows and prompt tokens without changing greedy answers; the DPO
reference log-probs shared by a phase's candidates equal the ones each would compute (tiny models)."""
import sys
from pathlib import Path

import pytest

from superalign.evaluation import suite
from superalign.loop import evaluate as EV

sys.path.insert(0, str(Path(__file__).parent))
import test_loop as T


@pytest.fixture()
def counted(monkeypatch):
    calls = []
    real = suite.run

    def run(*a, **k):
        calls.append(1)
        return real(*a, **k)
    monkeypatch.setattr(suite, "run", run)
    return calls


def test_cached_evaluation_is_reused_only_for_the_same_model_adapter_seed_sets_and_judge(tmp_path, counted,
                                                                                          monkeypatch):
    monkeypatch.setenv("SUPERALIGN_EVAL_CACHE", str(tmp_path / "evals"))  # empty: other tests filled the session's
    ctx = T.make(tmp_path / "a")
    ctx.initial_adapter()
    first, cost = EV.measure(ctx, "val_select")
    again, cost2 = EV.measure(ctx, "val_select")
    assert len(counted) == 1 and not cost["cached"] and cost2["cached"] and again == first
    EV.measure(ctx, "val_guard")                                    # other items
    assert len(counted) == 2
    p = next(p for n, p in ctx.learner.model.named_parameters() if "lora_B" in n)
    p.data.add_(0.01)                                               # another adapter state
    EV.measure(ctx, "val_select")
    assert len(counted) == 3
    p.data.sub_(0.01)
    EV.measure(ctx, "val_select")                                   # back to the first state: read back
    assert len(counted) == 3
    for i, over in enumerate([{"run": {"name": "t", "seed": 1}},   # another seed
                              {"eval": {**T.TINY["eval"], "harmful": 3}},   # other set sizes
                              {"roles": {**T.TINY["roles"], "judge": {"backend": "eval_judge", "C_refusal": 0.5}}},
                              {"roles": {**T.TINY["roles"], "learner": {**T.TINY["roles"]["learner"],
                                                                         "batch_tokens": 128}}},
                              {"roles": {**T.TINY["roles"], "learner": {**T.TINY["roles"]["learner"],  # another model
                                                                         "model": str(tmp_path / "model")}}}]):
        if i == 4:  # the same architecture, saved where a user names a local model: another learner, another key
            from superalign.models.local import LocalLM
            fresh = LocalLM("tiny-random", device="cpu")  # not the session's `tiny`: other tests attach LoRA to it
            fresh.model.save_pretrained(tmp_path / "model")
            fresh.tokenizer.save_pretrained(tmp_path / "model")
        other = T.make(tmp_path / f"o{i}", **over)
        other.initial_adapter()
        EV.measure(other, "val_select")
        assert len(counted) == 4 + i, over
    off = T.make(tmp_path / "off", eval={**T.TINY["eval"], "cache": False})
    off.initial_adapter()
    EV.measure(off, "val_select")
    EV.measure(off, "val_select")
    assert len(counted) == 10


def test_token_budget_batches_keep_greedy_answers(tiny):
    from superalign.models.base import GenParams
    from superalign.models.local import LocalLM
    prompts = [[{"role": "user", "content": "word " * n}] for n in (1, 3, 40, 2, 60, 5)]
    p = GenParams(max_new_tokens=5, temperature=0)
    wide = tiny.generate(prompts, p)
    narrow = LocalLM.wrap(tiny.model, tiny.tokenizer, batch_size=1).generate(prompts, p)
    lm = LocalLM.wrap(tiny.model, tiny.tokenizer, batch_size=64, batch_tokens=100)
    batches = [idx for _, idx in lm._batches([lm.render(x) for x in prompts])]
    assert sorted(i for b in batches for i in b) == list(range(6)) and len(batches) > 1
    assert all(len(b) * max(len(lm.tokenizer(lm.render(prompts[i]))["input_ids"]) for i in b) <= 100 or len(b) == 1
               for b in batches)
    assert lm.generate(prompts, p) == narrow == wide
    assert lm.usage.completion_tokens > 0 and lm.usage.padded_prompt_tokens >= lm.usage.prompt_tokens > 0


def test_candidates_share_reference_logprobs_without_changing_training(tiny):
    from superalign.training import DPOArgs, attach, dpo, restore, snapshot
    m = attach(tiny.model)
    pairs = [{"prompt": f"question {i}", "chosen": f"good answer {i}", "rejected": f"bad {i} no"} for i in range(8)]
    start = snapshot(m)
    plain = dpo(m, tiny.tokenizer, pairs, DPOArgs(max_length=64, seed=1))
    after_plain = snapshot(m)
    shared: dict = {}
    for _ in range(2):  # the first fills the shared reference, the second reads it
        restore(m, start)
        out = dpo(m, tiny.tokenizer, pairs, DPOArgs(max_length=64, seed=1), ref_logps=shared)
        assert out["loss_first"] == pytest.approx(plain["loss_first"], abs=1e-5)
        assert out["loss_last"] == pytest.approx(plain["loss_last"], abs=1e-4)
        assert len(shared) == len(pairs)
    after = snapshot(m)
    assert all((after[k] - after_plain[k]).abs().max() < 1e-4 for k in after)
    restore(m, start)


def test_compact_lm_head_scores_like_trls_fused_head(tiny, monkeypatch):
    from superalign.training import DPOArgs, attach, dpo, restore, snapshot
    from superalign.training import trainers
    m = attach(tiny.model)
    pairs = [{"prompt": f"a longer question number {i} " * 3, "chosen": f"good answer {i}", "rejected": f"bad {i} no"}
             for i in range(8)]
    start = snapshot(m)
    compact = dpo(m, tiny.tokenizer, pairs, DPOArgs(max_length=64, seed=1))
    after_compact = snapshot(m)
    restore(m, start)
    monkeypatch.setattr(trainers, "_compact_lm_head", lambda model: None)  # TRL's own fused head throughout
    trl = dpo(m, tiny.tokenizer, pairs, DPOArgs(max_length=64, seed=1))
    after_trl = snapshot(m)
    assert compact["loss_first"] == pytest.approx(trl["loss_first"], abs=1e-5)
    assert compact["loss_last"] == pytest.approx(trl["loss_last"], abs=1e-4)
    for key in ("rewards/margins", "logps/chosen", "entropy"):
        a = [h.get(key) for h in compact["log"] if key in h]
        b = [h.get(key) for h in trl["log"] if key in h]
        assert a and a == pytest.approx(b, rel=1e-3, abs=1e-4), key
    assert all((after_compact[k] - after_trl[k]).abs().max() < 1e-4 for k in after_trl)
    restore(m, start)
