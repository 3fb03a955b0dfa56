"""Experiment trackers and pass-through TRL settings for the DPO / SFT phases."""
from pathlib import Path

import pytest

from superalign import config as C
from superalign.errors import SuperalignError

PAIRS = [{"prompt": f"Question {i}?", "chosen": "A good answer.", "rejected": "bad"} for i in range(4)]
ROWS = [{"prompt": f"Say {i}.", "completion": f"{i}"} for i in range(4)]


def _learner(seed=0):
    from superalign.models import embedded
    from superalign.training import attach, LoraSpec
    tok = embedded.tiny_tokenizer()
    return attach(embedded.tiny_model(tok, seed=seed), LoraSpec(r=4, alpha=8)), tok


def _scalars(log_dir: Path) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = sorted(log_dir.rglob("events.out.tfevents.*"))
    assert events, f"no TensorBoard event file under {log_dir}"
    out = {}
    for d in sorted({ev.parent for ev in events}):
        acc = EventAccumulator(str(d))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend(acc.Scalars(tag))
    return out


def test_dpo_phase_writes_tensorboard_loss_curve_with_chosen_loss_type(tmp_path):
    from superalign.training import DPOArgs, dpo
    model, tok = _learner()
    info = dpo(model, tok, PAIRS, DPOArgs(batch_size=2, max_steps=2, max_length=64, loss_type="ipo",
                                          report_to=["tensorboard"], log_dir=str(tmp_path / "tb"),
                                          extra={"weight_decay": 0.01}))
    assert info["steps"] == 2
    sc = _scalars(tmp_path / "tb")
    assert len(sc["train/loss"]) == 2 and all(s.value == s.value for s in sc["train/loss"])


def test_sft_extra_reaches_trl_and_unknown_keys_are_named(tmp_path):
    from superalign.training import SFTArgs, sft
    model, tok = _learner(1)
    info = sft(model, tok, ROWS, SFTArgs(batch_size=2, max_steps=1, max_length=64, report_to=["tensorboard"],
                                         log_dir=str(tmp_path / "tb"), extra={"max_grad_norm": 0.5}))
    assert info["steps"] == 1 and "train/loss" in _scalars(tmp_path / "tb")
    with pytest.raises(SuperalignError, match="no field.*not_a_trl_key"):
        sft(model, tok, ROWS, SFTArgs(max_steps=1, extra={"not_a_trl_key": 1}))


def test_report_to_config_key_and_loop_metrics_helper(tmp_path):
    from superalign.training.trackers import log_metrics, tracker_dir
    cfg = C.parse({"run": {"report_to": ["tensorboard"], "name": "t"}})
    assert log_metrics(tmp_path, cfg, 1, {"compliance": 0.5, "competence": 0.25, "over_refusal": None}) == ["tensorboard"]
    log_metrics(tmp_path, cfg, 2, {"compliance": 0.25, "competence": 0.5})
    sc = _scalars(tracker_dir(tmp_path))
    assert [(s.step, s.value) for s in sc["compliance"]] == [(1, 0.5), (2, 0.25)] and "over_refusal" not in sc
    assert log_metrics(tmp_path, C.parse({}), 1, {"compliance": 1.0}) == []
    with pytest.raises(SuperalignError, match="run.report_to"):
        C.parse({"run": {"report_to": ["neptune"]}})


def test_loop_phase_yaml_keys_validate():
    lc = C.parse({"loop": {"conformity": {"loss_type": "hinge", "extra": {"warmup_ratio": 0.1}}}}).loop
    assert lc.conformity.loss_type == "hinge" and lc.conformity.extra == {"warmup_ratio": 0.1}
