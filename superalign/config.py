"""The one config object: roles bound to backends, data, generation and loop knobs.

Loaded from YAML and validated by pydantic; an unknown key or bad value is reported as one
line per problem with the dotted path of the key (`roles.learner.dtype: ...`).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field

from superalign.errors import Strict, SuperalignError, validate


class LocalModel(Strict):
    """A transformers causal LM: a built-in alias, any HF hub name, a local path, or `tiny-random`."""
    backend: Literal["local"] = "local"
    model: str = "smollm2-135m-instruct"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: int = Field(16, ge=1)
    static_cache: bool = False  # pre-allocated KV cache (CUDA decode; see models/local.py)
    compile: bool | None = None  # torch.compile the static-cache decode step (None: CUDA only)
    # executor: ray - one actor per replica, each reserving these resources
    num_gpus: float = Field(0, ge=0)
    num_cpus: float = Field(1, ge=0)
    replicas: int = Field(1, ge=1)


class OpenAIEndpoint(Strict):
    """Any OpenAI-compatible chat endpoint (vLLM, TGI, llama.cpp server, a hosted API)."""
    backend: Literal["openai"] = "openai"
    model: str
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
    concurrency: int = Field(4, ge=1)
    price_per_1k_tokens: float = Field(0.0, ge=0)  # cost written beside each request's latency


class Classifier(Strict):
    """Sentence embedder + scikit-learn heads trained on human-labelled judge data."""
    backend: Literal["classifier"] = "classifier"
    embedder: str = "minilm-l6"
    heads: list[str] = ["refusal_labels", "harm_labels", "objective_labels"]
    holdout: float = Field(0.25, gt=0, lt=1)


RoleConfig = Annotated[Union[LocalModel, OpenAIEndpoint, Classifier], Field(discriminator="backend")]


class Generation(Strict):
    max_new_tokens: int = Field(64, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    samples_per_query: int = Field(1, ge=1)


class Data(Strict):
    harmful: list[str] = ["advbench", "harmbench"]
    templates: str = "jailbreak_templates"
    benign: list[str] = ["benign"]
    competence: list[str] = ["quartz", "sarcasm"]
    split_seed: int = 0


class Run(Strict):
    name: str = "run"
    out_dir: str = "runs"
    seed: int = 0
    seeds: list[int] = [0]
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    # experiment trackers for TRL's training curves and the loop's per-round metrics (training/trackers.py)
    report_to: list[Literal["tensorboard", "mlflow", "wandb"]] = []


class Config(Strict):
    run: Run = Run()
    roles: dict[str, RoleConfig] = {"learner": LocalModel(), "attacker": LocalModel(), "critic": Classifier()}
    generation: Generation = Generation()
    data: Data = Data()
    # Sections owned by later parts (loop, w2s, oversight) validate themselves.
    loop: dict[str, Any] = {}
    w2s: dict[str, Any] = {}
    oversight: dict[str, Any] = {}

    def role(self, name: str):
        if name not in self.roles:
            raise SuperalignError(f"config binds no model to role {name!r}",
                                  f"add `roles.{name}:` to the config (bound now: {', '.join(self.roles)})")
        return self.roles[name]


def parse(data: dict | None, where: str = "config") -> Config:
    return validate(Config, data, where)


def load(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Load a YAML config (the packaged default when `path` is None) and apply overrides."""
    if path is None:
        text, where = resources.files("superalign").joinpath("default.yaml").read_text(), "default config"
    else:
        p = Path(path)
        if not p.exists():
            raise SuperalignError(f"config file {p} does not exist", "pass an existing YAML file to --config")
        text, where = p.read_text(), str(p)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise SuperalignError(f"{where} is not valid YAML: {e}", "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise SuperalignError(f"{where} must be a mapping at the top level", "start the file with `run:` / `roles:` keys")
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = value
    return parse(data, where)
