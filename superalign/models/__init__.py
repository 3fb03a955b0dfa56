"""Model backends behind one interface (`base.Backend`), built from a role's config."""
from __future__ import annotations

from superalign.errors import SuperalignError
from superalign.models import config as C
from superalign.models.base import Backend, GenParams, Prompt  # noqa: F401

_LOADED: dict[str, object] = {}


def build(cfg, seed: int = 0, shared: bool = True):
    """Instantiate a role's backend. Identical configs share one loaded model unless `shared=False`
    (a learner that will be trained must not be the attacker's weights)."""
    key = cfg.model_dump_json() + f"|{seed}"
    if shared and key in _LOADED:
        return _LOADED[key]
    if isinstance(cfg, C.LocalModel):
        from superalign.models.local import LocalLM
        b = LocalLM(cfg.model, cfg.device, cfg.dtype, cfg.batch_size, cfg.static_cache, seed=seed, compile=cfg.compile)
    elif isinstance(cfg, C.OpenAIEndpoint):
        from superalign.models.http import OpenAIChat
        b = OpenAIChat(**cfg.model_dump(exclude={"backend"}))
    elif isinstance(cfg, C.Classifier):
        from superalign.models.classifier import ClassifierJudge
        b = ClassifierJudge(cfg.embedder, cfg.heads, cfg.holdout, seed=seed)
    elif isinstance(cfg, C.EvalJudge):
        raise SuperalignError("the evaluation judge is fit, not built as a role backend",
                              "use superalign.evaluation.judge_data.fit_judge(cfg) (the loop and `eval` do)")
    else:  # pragma: no cover - the config schema admits nothing else
        raise TypeError(cfg)
    if shared:
        _LOADED[key] = b
    return b
