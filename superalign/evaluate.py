"""Evaluation as a library call: `evaluate(model)` scores any model (a built-in alias, a local path or hub name with
an optional LoRA adapter, or an OpenAI-compatible endpoint) on every enabled value axis of the held-out test split
and returns a typed `EvalLog`, as inspect_ai's `eval()` returns its logs. `superalign eval` is this call plus a run
directory; the loop's eval stage and the benches run the same `values.suite.run` on the learner they hold.

    from superalign.evaluate import evaluate
    log = evaluate("smollm2-135m-instruct", overrides={"eval.harmful": 40}, seed=10)
    log.metric("compliance").value, [s for s in log.samples if s.set == "harmful"][:3]

The model and adapter are loaded (and fail, with one clear error) before the judge and the sets are built, so a
wrong name costs seconds, not minutes of set-up."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

from pydantic import BaseModel, ConfigDict, Field

from superalign import config as C
from superalign.errors import SuperalignError
from superalign.store.records import eval_response_id

# the harmlessness items' per-answer judge fields, as stored (`scores` rows) and as read back
JUDGE_FIELDS = (("refusal", "refusal_p"), ("harmful", "harmful_p"), ("bad", "bad"), ("phrase_refusal", "phrase"))


class EvalSample(BaseModel):
    """One held-out item and the model's answer: `set` is the evaluation set (harmful, lookalike, benign_easy, or
    `eval_<axis>` for another value axis), `scores` the judge's per-answer numbers, `verdict` an axis judge's label."""
    model_config = ConfigDict(extra="forbid")
    id: str
    set: str
    source: str
    kind: Optional[str] = None
    text: str
    response: str
    scores: dict[str, Optional[float]] = Field(default_factory=dict)
    verdict: Optional[str] = None
    meta: dict[str, Any] = Field(default_factory=dict)


class EvalScore(BaseModel):
    """One metric row: a rate (or mean) with its interval and the number of items it counts."""
    model_config = ConfigDict(extra="allow")
    name: str
    value: Optional[float] = None
    lo: Optional[float] = None
    hi: Optional[float] = None
    n: int = 0


class EvalLog(BaseModel):
    """What one evaluation produced: every sample, every metric, the per-axis summary, and what was evaluated."""
    model: str
    adapter: Optional[str] = None
    endpoint: Optional[str] = None
    seed: int
    axes: list[str]
    samples: list[EvalSample]
    metrics: list[EvalScore]
    summary: dict[str, Any]  # per axis: each declared metric's value, interval, n and direction
    stage: dict[str, Any] = Field(default_factory=dict, repr=False)  # the run-store rows (`superalign eval` writes)

    def metric(self, name: str) -> EvalScore:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"no metric {name!r} in this log (have: {', '.join(m.name for m in self.metrics)})")

    def results(self) -> dict:
        """The `results.json` a run directory holds: what was evaluated and every metric's value and interval."""
        return {"model": self.model, "adapter": self.adapter, "endpoint": self.endpoint, "seed": self.seed,
                "metrics": {m.name: {"value": m.value, "lo": m.lo, "hi": m.hi, "n": m.n} for m in self.metrics},
                "axes": self.summary}


def config_for(model: str, *, endpoint: str | None = None, config: str | Path | None = None,
               overrides: dict | None = None, seed: int = 0) -> C.Config:
    """The validated config of an evaluation: the defaults, `config`'s YAML, `overrides` (dotted keys), the seed, and
    role `evaluated` bound to `model` (the learner's settings on another model, or the endpoint)."""
    cfg = C.load(config, {**(overrides or {}), "run.seed": seed})
    cfg.roles["evaluated"] = (C.OpenAIEndpoint(model=model, base_url=endpoint) if endpoint
                              else C.LocalModel(**{**cfg.role("learner").model_dump(), "model": model}))
    return cfg


def open_model(cfg: C.Config, adapter: str | Path | None = None):
    """An executor holding role `evaluated` loaded (and `adapter` on it): a missing model or a broken adapter fails
    here, before any judge or set is built."""
    from superalign.executors import LocalExecutor
    ex = LocalExecutor(cfg)
    try:
        backend = ex.backend("evaluated")
        if adapter is not None:
            load_adapter(backend, Path(adapter))
    except BaseException:
        ex.close()
        raise
    return ex


def evaluate(model: str, *, adapter: str | Path | None = None, endpoint: str | None = None,
             config: str | Path | None = None, overrides: dict | None = None, seed: int = 0,
             cfg: C.Config | None = None, ex=None, progress: Callable[[int], Callable] | None = None) -> EvalLog:
    """Score `model` (+ `adapter`) on every enabled axis (`eval.axes`) of the test split drawn by `seed`.
    `cfg` (from `config_for`) replaces `config`/`overrides`; `ex` (from `open_model`) a model already loaded;
    `progress(total)` returns a per-chunk callback."""
    from superalign.values import suite as axes_suite
    if adapter is not None and endpoint:
        raise SuperalignError("--adapter loads LoRA weights on a local model", "drop --endpoint or --adapter")
    cfg = cfg or config_for(model, endpoint=endpoint, config=config, overrides=overrides, seed=seed)
    own = ex is None
    ex = ex or open_model(cfg, adapter)
    try:
        out = axes_suite.evaluate(ex, cfg, seed, role="evaluated", bar=progress)
    finally:
        if own:
            ex.close()
    return log_of(out, cfg, model, adapter, endpoint, seed)


def log_of(out: dict, cfg: C.Config, model: str, adapter, endpoint, seed: int) -> EvalLog:
    """The typed log of `values.suite.evaluate`'s result, with the store rows `superalign eval` writes."""
    from superalign.values import suite as axes_suite
    sets, res, rows = out["sets"], out["res"], out["rows"]
    samples = [EvalSample(id=x["id"], set=x["set"], source=x["source"], kind=x.get("kind"), text=x["text"],
                          response=x["response"], scores={n: x.get(k) for n, k in JUDGE_FIELDS},
                          meta={"templated": x.get("templated")}) for x in res["items"]]
    texts = {p["id"]: p for p in axes_suite.prompts(sets)}
    for name, a in res.get("axes", {}).items():
        samples += [EvalSample(id=x["id"], set=f"eval_{name}", source=texts.get(x["id"], {}).get("source", name),
                               kind=texts.get(x["id"], {}).get("category"), text=texts.get(x["id"], {}).get("text", ""),
                               response=x["response"], verdict=x["verdict"], meta={"outcomes": x.get("outcomes")})
                    for x in a["items"]]
    extra = axes_suite.store_rows(res, eval_response_id(0, ""), "evaluated", model)
    stage = {
        "prompts": [{"id": x["id"], "kind": x["set"], "text": x["text"], "source": x["source"], "category": x["kind"],
                     "meta": {"templated": x["templated"]}} for x in res["items"]] + axes_suite.prompts(sets),
        "responses": [{"id": eval_response_id(0, x["id"]), "prompt_id": x["id"], "sample": 0, "text": x["response"],
                       "role": "evaluated", "model": model} for x in res["items"]] + extra["responses"],
        "scores": [{"target_id": eval_response_id(0, x["id"]), "name": n, "value": x[k], "role": "judge"}
                   for x in res["items"] for n, k in JUDGE_FIELDS] + extra["scores"],
        "metrics": rows, "info": {"model": model, "adapter": str(adapter) if adapter else None,
                                  "axes": list(cfg.eval.axes), "outcomes": out["outcomes"]}}
    return EvalLog(model=model, adapter=str(adapter) if adapter else None, endpoint=endpoint, seed=seed,
                   axes=list(cfg.eval.axes), samples=samples, metrics=[EvalScore(**r) for r in rows],
                   summary=out["axes"], stage=stage)


def load_adapter(backend, path: Path) -> None:
    """LoRA weights from `path` onto the backend's model; a directory that is not a readable adapter is one
    clear error (not peft's traceback)."""
    conf = path / "adapter_config.json"
    if not conf.exists():
        raise SuperalignError(f"{path} is not a LoRA adapter directory (no adapter_config.json)",
                              "pass a checkpoint directory such as RUN/checkpoints/r1-conformity")
    try:
        json.loads(conf.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SuperalignError(f"{conf} is not valid JSON ({e})",
                              "restore the adapter directory, or re-export it with `superalign adapter export RUN`")
    from peft import PeftModel  # peft pulls torch: imported only when an adapter is asked for
    try:
        backend.model = PeftModel.from_pretrained(backend.model, str(path)).eval()
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise SuperalignError(f"cannot load the adapter {path} on {backend.name}: {str(e).splitlines()[0][:300]}",
                              "pass an adapter trained on this --model (its adapter_config.json names the base)")
