"""`superalign adapter merge|export`: the run's learner outside superalign, token for token."""
import json

import pytest

from superalign import config as C
from superalign.errors import SuperalignError
from superalign.models import GenParams
from superalign.roles import build
from superalign.store import RunStore

CHATS = [[{"role": "user", "content": t}] for t in ("hello there", "what is two plus two?")]
GREEDY = GenParams(max_new_tokens=8, temperature=0.0)


def _ids(model, tok):
    from superalign.models.local import LocalLM
    lm = LocalLM.wrap(model, tok)
    return [c.ids for c in lm.generate_full(CHATS, GREEDY)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory as the loop leaves it: config in the store, one accepted LoRA checkpoint."""
    import torch
    from superalign.training import attach, save_adapter, LoraSpec
    d = tmp_path_factory.mktemp("run")
    cfg = C.parse({"run": {"seed": 3}, "roles": {"learner": {"backend": "local", "model": "tiny-random", "device": "cpu"}}})
    s = RunStore(d, create=True)
    s.put("config", cfg.model_dump(mode="json"))
    lm = build(cfg.role("learner"), seed=3, shared=False)
    base_ids = [c.ids for c in lm.generate_full(CHATS, GREEDY)]
    lm.model = attach(lm.model, LoraSpec(r=4, alpha=8), seed=3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a trained-looking adapter: B != 0, so the adapter changes the outputs
        for n, p in lm.model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    lm.model.eval()
    tuned_ids = [c.ids for c in lm.generate_full(CHATS, GREEDY)]
    path = save_adapter(lm.model, d / "checkpoints" / "r1-conformity")
    s.insert("checkpoints", [{"id": "r1:conformity", "path": path, "phase": "conformity", "accepted": 1}],
             round=1, stage="learn", role="learner", model="tiny-random", seed=3)
    s.close()
    assert tuned_ids != base_ids
    return d, tuned_ids, path


def test_saved_adapter_names_its_base(run):
    _, _, path = run
    assert json.loads(open(f"{path}/adapter_config.json").read())["base_model_name_or_path"] == "tiny-random"


def test_merged_model_generates_what_base_plus_adapter_does(run, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from superalign.training.merge import merge
    d, tuned_ids, _ = run
    out = merge(d, tmp_path / "merged")
    assert not (out / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert _ids(model, AutoTokenizer.from_pretrained(out)) == tuned_ids
    assert json.loads((out / "superalign.json").read_text())["checkpoint"] == "r1:conformity"


def test_exported_adapter_loads_with_plain_peft(run, tmp_path):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer
    from superalign.training.merge import export
    d, tuned_ids, _ = run
    out = export(d, tmp_path / "adapter")
    base = json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert base == str((out / "base-model").resolve())
    model = AutoPeftModelForCausalLM.from_pretrained(str(out))
    assert _ids(model, AutoTokenizer.from_pretrained(out)) == tuned_ids


def test_run_without_checkpoint_is_a_clear_error(tmp_path):
    RunStore(tmp_path, create=True).close()
    from superalign.training.merge import merge
    with pytest.raises(SuperalignError, match="no accepted adapter checkpoint"):
        merge(tmp_path, tmp_path / "m")


def test_cli_adapter_merge(run, tmp_path):
    from typer.testing import CliRunner
    from superalign.cli.main import app
    d, _, _ = run
    r = CliRunner().invoke(app, ["adapter", "merge", str(d), "--out", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "m" / "config.json").exists()
