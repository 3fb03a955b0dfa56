"""What a training phase reports (per-step progress and TRL's log), which policy DPO anchors to, and the
learner's KL distance to its base model — on the tiny random Llama with a LoRA adapter."""
import math
from types import SimpleNamespace

import pytest

from superalign.loop.evaluate import drift
from superalign.training import DPOArgs, SFTArgs, attach, dpo, restore, sft, snapshot
from superalign.training.kl import kl_stats, kl_to_base


@pytest.fixture(scope="module")
def lm():
    """Its own tiny learner (the session `tiny` fixture stays unwrapped for other tests)."""
    from superalign.models.local import LocalLM
    m = LocalLM("tiny-random", device="cpu", batch_size=4)
    m.model = attach(m.model)
    m.model.eval()
    return m


def prompts(lm, n=6):
    # different lengths, so batched KL rows carry different amounts of padding
    return [lm.render([{"role": "user", "content": "tell me " + "more " * i + f"about item {i}"}]) for i in range(n)]


def answers(n=6):
    return [f"item {i} is " + "fine " * (1 + i % 3) for i in range(n)]


@pytest.fixture(scope="module")
def trained(lm):
    """The fresh adapter's KL, then one SFT phase (with progress reported), then its KL and the adapter."""
    P, R = prompts(lm), answers()
    fresh = kl_stats(lm.model, lm.tokenizer, P, R)
    steps = []
    info = sft(lm.model, lm.tokenizer, [{"prompt": p, "completion": r} for p, r in zip(P, R)],
               SFTArgs(learning_rate=1e-2, batch_size=2, max_length=96), on_step=lambda a, b: steps.append((a, b)))
    return {"fresh": fresh, "steps": steps, "info": info, "snap": snapshot(lm.model)}


def test_sft_reports_each_step_and_its_log(trained):
    steps, info = trained["steps"], trained["info"]
    assert info["steps"] == 3 and [a for a, _ in steps] == [1, 2, 3] and {b for _, b in steps} == {3}
    log = info["log"]
    assert [h["step"] for h in log] == [1, 2, 3]  # one row per step; the end-of-training summary is left out
    assert all(isinstance(h["loss"], float) and "learning_rate" in h and "grad_norm" in h for h in log)
    assert (info["loss_first"], info["loss_last"]) == (log[0]["loss"], log[-1]["loss"])


def test_kl_is_zero_for_a_fresh_adapter_and_positive_after_training(lm, trained):
    assert trained["fresh"]["tokens"] > 0 and trained["fresh"]["kl"] == pytest.approx(0.0, abs=1e-7)
    restore(lm.model, trained["snap"])
    P, R = prompts(lm), answers()
    after = kl_to_base(lm.model, lm.tokenizer, P, R, batch_size=8)
    assert after > 1e-4
    # padding must not change the answer: row by row gives the same token-pooled mean
    assert kl_to_base(lm.model, lm.tokenizer, P, R, batch_size=1) == pytest.approx(after, rel=1e-4)
    assert math.isnan(kl_to_base(lm.model, lm.tokenizer, P[:2], ["", ""]))  # nothing to score is not "no drift"


def test_kl_of_a_model_without_adapter_is_zero(tiny):
    assert kl_to_base(tiny.model, tiny.tokenizer, ["hi"], ["there"]) == 0.0


def test_eval_drift_row_reads_harmful_and_lookalike_answers(lm, trained):
    restore(lm.model, trained["snap"])
    items = [{"set": s, "text": f"question {i}", "response": f"answer {i} here"}
             for i, s in enumerate(["harmful", "lookalike", "benign_easy", "harmful"])]
    row = drift(SimpleNamespace(learner=lm), items)
    assert row["name"] == "kl_to_base" and row["n"] == 3 and row["meta"]["tokens"] > 0
    assert row["value"] > 1e-4 and "null" not in row["meta"]


def _step1_rewards(lm, snap, pairs, reference):
    restore(lm.model, snap)
    info = dpo(lm.model, lm.tokenizer, pairs, DPOArgs(batch_size=len(pairs), max_length=96, max_steps=1,
                                                      reference=reference))
    assert list(lm.model.peft_config) == ["default"]  # TRL's `ref` copy never outlives the phase
    return info["log"][0]


def test_dpo_reference_base_anchors_to_the_adapter_free_model(lm, trained):
    """After a prior phase moved the adapter, step 1 of DPO (policy = phase-start adapter) logs reward
    beta * (log p_policy - log p_ref): exactly 0 against the phase-start copy, and against `base` the
    log-prob gap to the adapter-disabled model, computed here independently."""
    P = prompts(lm, 4)
    pairs = [{"prompt": p, "chosen": "yes, gladly", "rejected": "no"} for p in P]
    start = _step1_rewards(lm, trained["snap"], pairs, "phase_start")
    base = _step1_rewards(lm, trained["snap"], pairs, "base")
    assert start["rewards/chosen"] == pytest.approx(0.0, abs=1e-6) and start["rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    assert abs(base["rewards/chosen"]) > 1e-3
    restore(lm.model, trained["snap"])
    done = "yes, gladly" + lm.tokenizer.eos_token  # TRL ends each completion with EOS
    pol = lm.token_logprobs(P, [done] * len(P))
    with lm.model.disable_adapter():
        ref = lm.token_logprobs(P, [done] * len(P))
    expected = 0.1 * sum(a - b for a, b in zip(pol, ref)) / len(P)
    assert base["rewards/chosen"] == pytest.approx(expected, rel=1e-3, abs=1e-5)
    assert base["logps/chosen"] == pytest.approx(start["logps/chosen"], rel=1e-5)  # same policy, other anchor


def test_dpo_reports_progress(lm, trained):
    restore(lm.model, trained["snap"])
    steps = []
    pairs = [{"prompt": p, "chosen": "sure", "rejected": "no"} for p in prompts(lm, 4)]
    info = dpo(lm.model, lm.tokenizer, pairs, DPOArgs(batch_size=2, max_length=96), on_step=lambda a, b: steps.append((a, b)))
    assert steps == [(1, 2), (2, 2)] and info["steps"] == 2
    assert all("rewards/margins" in h and "logps/chosen" in h for h in info["log"])


def test_base_reference_refuses_precomputed_log_probs(lm):
    from superalign.errors import SuperalignError
    with pytest.raises(SuperalignError, match="precompute_ref_log_probs"):
        dpo(lm.model, lm.tokenizer, [{"prompt": "a", "chosen": "b", "rejected": "c"}],
            DPOArgs(reference="base", extra={"precompute_ref_log_probs": True}))


def test_phase_config_names_the_reference():
    from superalign.loop.config import Phase
    assert Phase().reference == "phase_start" and Phase(reference="base").reference == "base"
    with pytest.raises(Exception, match="reference"):
        Phase(reference="initial")
