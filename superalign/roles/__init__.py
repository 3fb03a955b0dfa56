"""The roles of the loop (attacker, learner, critic) and `build`, which binds a role's validated config to its
backend: a local transformers model, an OpenAI-compatible endpoint, or a fitted classifier."""
from __future__ import annotations

from superalign.errors import SuperalignError
from superalign.models import config as C
from superalign.models.http import OpenAIChat
from superalign.training.heads import fit_classifier

_LOADED: dict[str, object] = {}


def build(cfg, seed: int = 0, shared: bool = True):
    """Instantiate a role's backend. Identical configs share one loaded model unless `shared=False`
    (a learner that will be trained must not be the attacker's weights)."""
    key = cfg.model_dump_json() + f"|{seed}"
    if shared and key in _LOADED:
        return _LOADED[key]
    b: object
    if isinstance(cfg, C.LocalModel):
        from superalign.models.local import LocalLM  # torch: imported only when a local model is asked for
        b = LocalLM(cfg.model, cfg.device, cfg.dtype, cfg.batch_size, cfg.static_cache, seed=seed, compile=cfg.compile,
                      batch_tokens=cfg.batch_tokens, workers=cfg.workers,
                      merge_lora=cfg.merge_lora)
    elif isinstance(cfg, C.OpenAIEndpoint):
        b = OpenAIChat(**cfg.model_dump(exclude={"backend"}))
    elif isinstance(cfg, C.Classifier):
        b = fit_classifier(cfg, seed=seed)
    elif isinstance(cfg, C.EvalJudge):
        raise SuperalignError("the evaluation judge is fit, not built as a role backend",
                              "use superalign.evaluation.judge_data.fit_judge(cfg) (the loop and `eval` do)")
    else:  # pragma: no cover - the config schema admits nothing else
        raise TypeError(cfg)
    if shared:
        _LOADED[key] = b
    return b
