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
    with pytest.raises(SuperalignError, match="no model to role 'referee'"):
        C.load().role("referee")
    with pytest.raises(SuperalignError, match="does not exist"):
        C.load(tmp_path / "nope.yaml")


def test_a_config_that_is_not_utf8_text_names_the_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_bytes(b"\xff\xfe\x00r\x00u\x00n\x00:")  # UTF-16, or any binary file passed by mistake
    with pytest.raises(SuperalignError) as e:
        C.load(p)
    assert str(p) in e.value.problem and "UTF-8" in e.value.problem and e.value.fix


def test_a_bad_override_is_blamed_on_the_override_not_on_the_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("run: {seed: 3}\n")
    with pytest.raises(SuperalignError) as e:
        C.load(p, C.parse_sets(["loop.rounds=abc"]))
    assert f"invalid {p} with loop.rounds set: loop.rounds:" in e.value.problem
    with pytest.raises(SuperalignError) as e:
        C.load(None, {"eval.harmful": 0})
    assert "invalid default config with eval.harmful set: eval.harmful:" in e.value.problem
    # an override the failure does not touch is not named (`superalign eval` sets run.seed on every config)
    p.write_text("loop: {roundz: 3}\n")
    with pytest.raises(SuperalignError) as e:
        C.load(p, {"run.seed": 4})
    assert e.value.problem == f"invalid {p}: loop.roundz: unknown key"
    with pytest.raises(SuperalignError) as e:
        C.load(p, {"run.seed": 4, "loop.roundz": 2})
    assert f"invalid {p} with loop.roundz set: loop.roundz: unknown key" == e.value.problem


def test_overrides_and_openai_backend():
    cfg = C.load(overrides={"roles.critic": {"backend": "openai", "model": "m", "base_url": "http://x/v1"},
                            "run.seed": 7})
    assert cfg.run.seed == 7 and cfg.role("critic").base_url == "http://x/v1"


def test_user_file_layers_on_the_defaults(tmp_path):
    """A user YAML changes only the keys it names; a role rebound to another backend is replaced whole."""
    p = tmp_path / "c.yaml"
    p.write_text("run: {seed: 5}\nloop: {rounds: 7, guard: {compliance_rise: 0.2}}\n"
                 "roles:\n  attacker: {backend: openai, model: m}\n  learner: {batch_size: 3}\n")
    cfg = C.load(p)
    default = C.load()
    assert cfg.run.seed == 5 and cfg.run.name == default.run.name
    assert cfg.loop.rounds == 7 and cfg.loop.guard.compliance_rise == 0.2
    assert cfg.loop.guard.competence_drop == default.loop.guard.competence_drop
    assert cfg.role("attacker").backend == "openai" and cfg.role("critic") == default.role("critic")
    assert cfg.role("learner").batch_size == 3 and cfg.role("learner").model == default.role("learner").model


def test_layers_in_order_defaults_preset_file_set(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("loop: {sizes: {attacks: 5}}\n")
    cfg = C.load(p, C.parse_sets(["loop.sizes.benign=2", "run.name=x"]), preset="quick")
    assert cfg.loop.rounds == 1                      # from the preset
    assert cfg.loop.sizes.attacks == 5 and cfg.loop.sizes.benign == 2 and cfg.run.name == "x"
    with pytest.raises(SuperalignError, match="KEY=VALUE"):
        C.parse_sets(["loop.rounds"])


def test_every_section_is_typed_and_in_the_schema():
    schema = C.Config.model_json_schema()
    for key in ("run", "roles", "generation", "data", "loop"):
        assert key in schema["properties"]
    dumped = C.load().model_dump()
    assert dumped["loop"]["guard"]["compliance_rise"] is not None and "lora" in dumped["loop"]
    assert "seeds" not in dumped["run"] and "samples_per_query" not in dumped["generation"]  # dead keys are gone


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "", " x"])
def test_run_name_stays_inside_out_dir(name):
    with pytest.raises(SuperalignError, match="run.name"):
        C.parse({"run": {"name": name}})
