"""Batches split across forked CPU processes (`LocalModel.workers`, superalign/models/workers.py): the same numbers
as one process running the same batches at the same thread count, and no result lost when a child dies."""
import multiprocessing
import os
import time

import pytest
import torch

from superalign.models import workers


@pytest.fixture
def two_threads():
    """Two torch threads for the test (an earlier test may have left the process at one): two workers need two."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("two workers need two cores")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_jobs_come_back_in_order_from_every_process(two_threads):
    parent, threads = os.getpid(), torch.get_num_threads()

    def job(i):
        time.sleep(0.2)  # long enough that the child, forked at the start, takes some of the 12
        return i * i, os.getpid()
    out = workers.run([lambda i=i: job(i) for i in range(12)], workers=2)
    assert [x for x, _ in out] == [i * i for i in range(12)]
    assert {pid for _, pid in out} - {parent}, "no job ran in the child"
    assert torch.get_num_threads() == threads  # the parent's threads are given back


def test_a_child_that_dies_loses_no_result(two_threads):
    """A child killed mid-job (here: it exits inside the job) returns nothing; the parent runs its jobs again."""
    parent, died = os.getpid(), multiprocessing.get_context("fork").Value("i", 0)

    def job(i):
        time.sleep(0.2)  # slow enough that the child, forked first, takes one
        if os.getpid() != parent:
            died.value = 1
            os._exit(9)  # as if killed for memory
        return i + 100
    assert workers.run([lambda i=i: job(i) for i in range(6)], workers=2) == [i + 100 for i in range(6)]
    assert died.value == 1  # the child did take a job, and its loss was made good


def test_a_failing_job_raises_in_the_parent(two_threads):
    def bad():
        raise ValueError("broken batch")
    with pytest.raises(ValueError, match="broken batch"):
        workers.run([lambda: 1, bad, lambda: 3], workers=2)


def test_two_workers_give_the_numbers_of_one_process(tiny, monkeypatch, two_threads):
    """Greedy and sampled generation and every scoring path: two workers (1 thread each, on 2 threads) give what
    one process gives at 1 thread, and the children did some of the batches."""
    from superalign.models.base import GenParams
    from superalign.models.local import LocalLM
    threads = torch.get_num_threads()
    prompts = [[{"role": "user", "content": "word " * n}] for n in (1, 3, 40, 2, 60, 5, 7, 11)]
    comps = ["yes", "no no", "", "a b c", "x", "word", "z z z z", "q"]
    choices = [["A", "B"]] * 8
    conts = [["one", "two words"], ["three"]] * 4
    params = (GenParams(max_new_tokens=6, temperature=0), GenParams(max_new_tokens=6, temperature=1.0, seed=3),
              [GenParams(max_new_tokens=2 + i % 3, temperature=0.7 * (i % 2), seed=i) for i in range(8)])

    def everything(lm):
        gens = [[(x.text, x.ids, x.finish_reason) for x in lm.generate_full(prompts, p)] for p in params]
        return (gens, lm.token_logprobs(prompts, comps), lm.choice_logprobs(prompts, choices),
                lm.continuation_logprobs(prompts, conts), lm.usage.scored_tokens, lm.usage.completion_tokens)
    torch.set_num_threads(threads // 2)
    try:
        serial = everything(LocalLM.wrap(tiny.model, tiny.tokenizer, batch_size=2))
    finally:
        torch.set_num_threads(threads)
    parent, in_children = os.getpid(), multiprocessing.get_context("fork").Value("i", 0)
    slow = LocalLM._generate_batch

    def spy(self, *a):  # slow enough that the child, forked first, takes some batches; counted where it runs
        time.sleep(0.1)
        if os.getpid() != parent:
            with in_children.get_lock():
                in_children.value += 1
        return slow(self, *a)
    monkeypatch.setattr(LocalLM, "_generate_batch", spy)
    forked = everything(LocalLM.wrap(tiny.model, tiny.tokenizer, batch_size=2, workers=2))
    assert forked == serial
    assert in_children.value > 0


@pytest.fixture
def adapted(tiny):
    """A LoRA on a copy of the tiny model, its B matrices non-zero as after training."""
    import copy
    from superalign.models.local import LocalLM
    from superalign.training.lora import attach
    model = attach(copy.deepcopy(tiny.model))
    model.eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return (LocalLM.wrap(model, tiny.tokenizer, batch_size=3, merge_lora=True),
            LocalLM.wrap(model, tiny.tokenizer, batch_size=3))


def test_merged_lora_scores_as_the_adapter_and_puts_the_base_back(adapted):
    """Merged while scoring, the adapted model gives peft's numbers (fp32: to rounding) and the same greedy
    answers; the base weights are bit-for-bit what they were; switching adapters off inside the span gives
    the base model."""
    from superalign.models.base import GenParams
    from superalign.models.local import merged_lora
    merged, peft = adapted
    prompts = [[{"role": "user", "content": "word " * n}] for n in (1, 4, 9, 2, 30)]
    comps = ["yes", "no no", "a b c", "x", "z z"]
    before = {n: p.detach().clone() for n, p in merged.model.named_parameters()}
    a, b = merged.token_logprobs(prompts, comps), peft.token_logprobs(prompts, comps)
    assert a == pytest.approx(b, abs=1e-4) and a != pytest.approx(b, abs=0)  # merged, not bypassed
    with merged.model.disable_adapter():
        bare = peft.token_logprobs(prompts, comps)
    assert bare != pytest.approx(b, abs=1e-3)  # the adapter changes the scores
    g = GenParams(max_new_tokens=6, temperature=0)
    assert merged.generate(prompts, g) == peft.generate(prompts, g)
    assert all(torch.equal(p, before[n]) for n, p in merged.model.named_parameters())
    ids = merged.tokenizer(["word word"], return_tensors="pt")
    with torch.no_grad(), merged_lora(merged.model), merged.model.disable_adapter():
        off = merged.model(**ids).logits
    with torch.no_grad(), merged.model.disable_adapter():
        assert torch.equal(off, merged.model(**ids).logits)


@pytest.mark.parametrize("merge", [True, False])
def test_an_untrained_adapter_is_exactly_the_base_model(tiny, merge):
    import copy
    from superalign.models.local import LocalLM
    from superalign.training.lora import attach
    model = attach(copy.deepcopy(tiny.model))
    model.eval()
    prompts = [[{"role": "user", "content": "word " * n}] for n in (1, 4, 9)]
    comps = ["yes", "no no", "a b c"]
    assert (LocalLM.wrap(model, tiny.tokenizer, merge_lora=merge).token_logprobs(prompts, comps)
            == LocalLM.wrap(tiny.model, tiny.tokenizer).token_logprobs(prompts, comps))


def test_unmerged_inference_skips_only_untrained_adapters_exactly(tiny):
    """With merge_lora off, a layer whose adapter is untrained runs as its base layer (its low-rank term is exactly
    0, so the logits are peft's bit for bit), and a trained one keeps peft's path; nothing stays patched."""
    import copy
    from peft.tuners.lora.layer import Linear as LoraLinear
    from superalign.models.local import merged_lora
    from superalign.training.lora import attach
    model = attach(copy.deepcopy(tiny.model))
    model.eval()
    layers = [m for m in model.modules() if isinstance(m, LoraLinear)]
    with torch.no_grad():
        for m in layers[::2]:  # half the layers trained
            m.lora_B["default"].weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(0))
    ids = tiny.tokenizer(["word word word"], return_tensors="pt")
    with torch.no_grad():
        ref = model(**ids).logits
        with merged_lora(model, trained=False):
            patched = [("forward" in vars(m)) for m in layers]
            out = model(**ids).logits
    assert patched == [i % 2 == 1 for i in range(len(layers))]
    assert torch.equal(out, ref)
    assert not any("forward" in vars(m) for m in layers)


def test_the_default_roles_keep_peft_s_lora_path():
    """Merged LoRA rounds the adapted weights once to bf16 and changes answers; the loop with it was not shown
    non-inferior on over-refusal (3 development seeds), so the shipped config leaves it off and a user opts in."""
    from superalign import config as C
    cfg = C.load()
    assert cfg.roles["learner"].merge_lora is False and cfg.roles["attacker"].merge_lora is False


def test_a_run_held_to_one_thread_stays_in_one_process():
    before = torch.get_num_threads()
    torch.set_num_threads(1)

    def job():
        time.sleep(0.2)  # slow enough that a child, had one been forked, would take some
        return os.getpid()
    try:
        assert set(workers.run([job] * 4, workers=2)) == {os.getpid()}
    finally:
        torch.set_num_threads(before)


def test_a_nested_inference_call_merges_once(adapted):
    """choice_logprobs with multi-token choices calls logprobs inside its own merged span: merged once, the
    numbers are the unmerged adapter's (to rounding), and the base weights come back."""
    merged, peft = adapted
    prompts = [[{"role": "user", "content": "word " * n}] for n in (1, 4, 9)]
    choices = [["a b", "c d e"]] * 3
    before = {n: p.detach().clone() for n, p in merged.model.named_parameters()}
    flat = [x for row in merged.choice_logprobs(prompts, choices) for x in row]
    assert flat == pytest.approx([x for row in peft.choice_logprobs(prompts, choices) for x in row], abs=1e-4)
    assert all(torch.equal(p, before[n]) for n, p in merged.model.named_parameters())
