import pytest

from superalign import config as C
from superalign.errors import SuperalignError


def test_default_config_loads_and_binds_roles():
    cfg = C.load()
    assert cfg.role("learner").backend == "local"
    assert cfg.role("critic").backend == "classifier"


def test_unknown_key_names_its_path(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("roles:\n  learner: {backend: local, modle: x}\n")
    with pytest.raises(SuperalignError) as e:
        C.load(p)
    assert "roles.learner.modle: unknown key" in str(e.value)


def test_bad_value_is_one_line_with_path(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("generation: {max_new_tokens: -3}\nrun: {executor: spark}\n")
    with pytest.raises(SuperalignError) as e:
        C.load(p)
    msg = str(e.value).splitlines()[0]
    assert "generation.max_new_tokens" in msg and "run.executor" in msg


def test_missing_role_and_missing_file(tmp_path):
    with pytest.raises(SuperalignError, match="no model to role 'judge'"):
        C.load().role("judge")
    with pytest.raises(SuperalignError, match="does not exist"):
        C.load(tmp_path / "nope.yaml")


def test_overrides_and_openai_backend():
    cfg = C.load(overrides={"roles.critic": {"backend": "openai", "model": "m", "base_url": "http://x/v1"},
                            "run.seed": 7})
    assert cfg.run.seed == 7 and cfg.role("critic").base_url == "http://x/v1"
