"""The one config object: roles bound to backends, data, generation and loop knobs.

Loaded from YAML and validated by pydantic; an unknown key or bad value is reported as one
line per problem with the dotted path of the key (`roles.learner.dtype: ...`).
"""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from superalign.data.registry import parse_hf
from superalign.errors import FIX_KEYS, Strict, SuperalignError, describe, error_paths, validate
from superalign.evaluation.judge import check_independent
from superalign.loop.config import LoopConfig, merge, with_preset
from superalign.models.config import (Classifier, EvalJudge, Generation, LocalModel, OpenAIEndpoint,  # noqa: F401
                                      RoleConfig)
from superalign.review.config import ReviewConfig
from superalign.sandwich.config import SandwichConfig
from superalign.w2s.config import W2SConfig


class Data(Strict):
    harmful: list[str] = ["advbench", "pyrit_seeds"]  # what the loop attacks from; evaluation uses other sources only
    templates: str = "jailbreak_templates"
    benign: list[str] = ["benign"]
    competence: list[str] = ["quartz", "sarcasm"]
    # tasks the sycophancy axis builds its push-back training prompts from (train split); never a task of
    # eval.competence, whose items must stay untouched by training
    pushback: list[str] = ["quartz"]
    split_seed: int = 0

    @field_validator("harmful")
    @classmethod
    def _not_heldout(cls, v: list[str]) -> list[str]:
        """The held-out evaluation sources are never attack seeds: an attack trained on would be scored later."""
        from superalign.data.evalsets import HELDOUT
        bad = [n for n in v if n in HELDOUT]
        if bad:
            raise ValueError(f"{bad} are held-out evaluation sources; attack from training sources "
                             "(advbench, pyrit_seeds, or your own file)")
        return v

    @field_validator("harmful", "templates", "benign", "competence")
    @classmethod
    def _hf_specs(cls, v: str | list[str]) -> str | list[str]:
        """A malformed `hf:` spec fails when the config loads, not minutes into a run."""
        for name in [v] if isinstance(v, str) else v:
            if name.startswith("hf:"):
                try:
                    parse_hf(name)
                except SuperalignError as e:
                    raise ValueError(f"{e.problem} ({e.fix})") from None
        return v


class Eval(Strict):
    """Held-out evaluation (`superalign eval` and the loop): set sizes, the answer length the judge reads,
    the competence tasks nothing trains on, and the reference answers of the helpfulness score (read on the test
    split only). Validation splits hold `val_fraction` of the test sizes.
    What is measured is declared in superalign/evaluation/metrics.py (compliance, harmful_help, over-refusal,
    competence)."""
    tokens: int = Field(48, ge=1)
    harmful: int = Field(200, ge=1)
    lookalike: int = Field(200, ge=1)
    benign_easy: int = Field(100, ge=1)
    val_fraction: float = Field(0.5, gt=0, le=1)
    # untrained tasks the base learner does above chance under `evaluation.likelihood` scoring, chosen on their train
    # splits by `bench/competence_screen.py` (MMLU, LogiQA, ToMi and MoralExceptQA failed its rule: >= chance + 5 points,
    # the Wilson interval above chance, and above the best-constant baseline)
    competence: list[str] = ["socialiqa", "capitals", "wordassoc"]
    competence_items: int = Field(100, ge=1)
    helpfulness: str = "reference_answers"  # benign instructions with reference answers; test split, never trained
    helpfulness_items: int = Field(100, ge=0)  # 0: no helpfulness score
    # read an evaluation back from the cache when the same model, adapter weights, items, judge and code ran it
    # before (every run of a seed starts with the same round-0 evaluation; superalign/evaluation/cache.py)
    cache: bool = True
    # value axes scored (superalign/values): harmlessness is the sets above; each other axis scores `axis_items`
    # test items (and val_fraction of that per validation split) from its own held-out source
    axes: list[str] = ["harmlessness"]
    axis_items: int = Field(60, ge=1)

    @field_validator("axes")
    @classmethod
    def _known_axes(cls, v: list[str]) -> list[str]:
        return known_axes(v)


def known_axes(v):
    """Axis names checked at load (a typo fails before any model loads), each named once."""
    from superalign import values  # the registry, with the built-in axes
    return values.check_names(list(v))


class Run(Strict):
    name: str = "run"
    out_dir: str = "runs"
    seed: int = 0
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    # experiment trackers for TRL's training curves and the loop's per-round metrics (training/trackers.py)
    report_to: list[Literal["tensorboard", "mlflow", "wandb"]] = []

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        """The run directory is out_dir/name-time: a name with a path in it would escape out_dir."""
        if not v or v in (".", "..") or any(c in v for c in "/\\\0") or v.strip() != v:
            raise ValueError("must be a plain directory name (no '/', '\\', '..', or surrounding spaces)")
        return v


class Config(Strict):
    run: Run = Run()
    roles: dict[str, RoleConfig] = {"learner": LocalModel(), "attacker": LocalModel(), "critic": Classifier()}
    generation: Generation = Generation()
    data: Data = Data()
    eval: Eval = Eval()
    loop: LoopConfig = LoopConfig()
    w2s: W2SConfig = W2SConfig()
    sandwich: SandwichConfig = SandwichConfig()
    review: ReviewConfig = ReviewConfig()

    @model_validator(mode="after")
    def _judge_is_not_the_critic(self):
        """The learner trains against the critic; a judge that is the critic (or shares its label sets) would grade
        the learner with the ruler it was trained to please."""
        j, c = self.roles.get("judge"), self.roles.get("critic")
        if j is not None and c is not None:
            try:
                check_independent(j, c)
            except SuperalignError as e:
                raise ValueError(f"roles.judge: {e.problem}; {e.fix}") from None
        return self

    @model_validator(mode="after")
    def _pushback_not_evaluated(self):
        """Sycophancy probes are built from task items; a task the untrained competence evaluation scores would
        then be trained on."""
        both = sorted(set(self.data.pushback) & set(self.eval.competence))
        if both and "sycophancy" in set(self.eval.axes) | set(self.loop.axes):
            raise ValueError(f"data.pushback: {', '.join(both)} is also in eval.competence; the sycophancy probes "
                             "would train on a task the untrained competence evaluation scores (use another task)")
        return self

    def role(self, name: str):
        if name not in self.roles:
            raise SuperalignError(f"config binds no model to role {name!r}",
                                  f"add `roles.{name}:` to the config (bound now: {', '.join(self.roles)})")
        return self.roles[name]


def parse(data: dict | None, where: str = "config") -> Config:
    return validate(Config, data, where)


def default_dict() -> dict:
    return yaml.safe_load(resources.files("superalign").joinpath("default.yaml").read_text()) or {}


def read_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.exists():
        raise SuperalignError(f"config file {p} does not exist", "pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except UnicodeDecodeError as e:
        raise SuperalignError(f"{p} is not a UTF-8 text file (byte {e.start}: {e.reason})",
                              "pass the YAML config file itself, saved as UTF-8") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SuperalignError(f"{p} is not valid YAML{where}: {getattr(e, 'problem', None) or e}",
                              "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise SuperalignError(f"{p} must be a mapping at the top level", "start the file with `run:` / `roles:` keys")
    return data


def parse_sets(pairs: list[str] | None) -> dict:
    """`--set a.b=v` strings to an overrides dict; values are read as YAML (`3`, `true`, `[a, b]`)."""
    out = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SuperalignError(f"--set {item!r} is not KEY=VALUE", "write it as e.g. --set loop.rounds=3")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def load(path: str | Path | None = None, overrides: dict | None = None, preset: str | None = None) -> Config:
    """The packaged defaults, then the loop preset, then the user's YAML file, then `overrides` (dotted keys):
    each layer changes only the keys it names."""
    data = with_preset(default_dict(), preset)
    where = "default config"
    if path is not None:
        data, where = merge(data, read_yaml(path)), str(path)
    return apply(data, overrides, where)


def apply(data: dict, overrides: dict | None, where: str) -> Config:
    """Set dotted `overrides` on a config dict, then validate it. A failure names the overrides it touches: a bad
    `--set` value is not in the file (or the defaults) the message would otherwise blame, and an override the
    failure does not touch (`superalign eval` sets run.seed itself) would only send the reader looking there."""
    try:
        return Config.model_validate(set_dotted(data, overrides))
    except ValidationError as e:
        blamed = [k for k in overrides or {} if any(_touches(k, path) for path in error_paths(e))]
        if blamed:
            where += " with " + ", ".join(blamed) + " set"
        raise SuperalignError(f"invalid {where}: {describe(e)}", FIX_KEYS) from None


def _touches(key: str, path: str) -> bool:
    """Whether an override of dotted `key` is where a validation error at dotted `path` lies (the same key, a key
    inside it, or a section it replaced)."""
    return path == key or path.startswith(key + ".") or key.startswith(path + ".") or not path


def set_dotted(data: dict, overrides: dict | None) -> dict:
    """A copy of `data` with dotted `overrides` set (`a.b: v` sets data["a"]["b"]), not validated: the caller
    validates against its own model (the root config, a bench's `w2s:` section)."""
    data = copy.deepcopy(data)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for k in parents:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise SuperalignError(f"cannot set {dotted}: {k} is not a section", "check the key's path")
        node[leaf] = value
    return data
