"""A run's trained learner as files other tools load: `superalign adapter merge|export RUN`.

- merge: base model + the run's LoRA checkpoint folded into the weights (peft `merge_and_unload`),
  saved with the tokenizer as a standalone transformers directory (no peft, no superalign needed).
- export: the LoRA adapter alone, its `base_model_name_or_path` rewritten to something plain peft can
  load: the hub id for hub models, an absolute directory for local and built-in ones (the converted
  SmolLM2 in the cache); tiny-random, whose weights exist only as a seed, gets its base saved beside it.
Both write `superalign.json` with the provenance: run id, checkpoint, base name, seed.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from superalign.errors import SuperalignError


def checkpoint(store, which: str | None = None) -> dict:
    """The run's last accepted learner checkpoint, or the one whose id (`r2:conformity`) or dir name matches."""
    cks = []
    for c in store.rows("checkpoints", where="accepted=1 AND path IS NOT NULL"):
        p = Path(c["path"])
        if not p.is_absolute():  # stored relative to the run directory, so a moved run still finds it
            p = Path(store.dir) / p
        if p.exists():
            cks.append({**c, "path": str(p)})
    if which:
        cks = [c for c in cks if which in (c["id"], Path(c["path"]).name)]
    if not cks:
        raise SuperalignError(f"run {store.dir} has no accepted adapter checkpoint" + (f" {which!r}" if which else ""),
                              "use a run whose `learn` stage kept an update (`superalign runs show RUN` lists them)")
    return cks[-1]


def learner(store):
    """(RunInfo, learner backend) as the run built them: same model name, same seed."""
    from superalign.models.local import LocalLM  # torch: only when an adapter is merged
    from superalign.errors import validate
    from superalign.models.config import LocalModel
    saved = store.get("config") or {}
    if (saved.get("roles", {}).get("learner") or {}).get("backend", "local") != "local":
        raise SuperalignError("the run's learner is not a local model", "only `backend: local` learners have adapters")
    role = validate(LocalModel, saved.get("roles", {}).get("learner"), f"{store.dir} config", "roles.learner")
    seed = (saved.get("run") or {}).get("seed", 0)
    return RunInfo(role, seed), LocalLM(role.model, role.device, role.dtype, role.batch_size, seed=seed)


@dataclass(frozen=True)
class RunInfo:
    """What merge/export need of a run's config: its learner role and seed."""
    learner: object
    seed: int


def _provenance(store, ck: dict, cfg, out: Path, kind: str, base_ref: str) -> None:
    info = {"kind": kind, "run_id": store.run_id, "run_dir": str(Path(store.dir).resolve()), "checkpoint": ck["id"],
            "checkpoint_path": ck["path"], "round": ck["round"], "base_model": cfg.learner.model,
            "base_model_ref": base_ref, "seed": cfg.seed}
    (out / "superalign.json").write_text(json.dumps(info, indent=2))


def merge(run_dir: str | Path, out: str | Path, which: str | None = None) -> Path:
    from peft import PeftModel
    from superalign.store import RunStore
    store = RunStore(run_dir)
    ck = checkpoint(store, which)
    cfg, lm = learner(store)
    merged = PeftModel.from_pretrained(lm.model, ck["path"]).merge_and_unload()
    merged.config._name_or_path = str(Path(out).resolve())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    lm.tokenizer.save_pretrained(out)
    _provenance(store, ck, cfg, out, "merged", str(out.resolve()))
    store.close()
    return out


def base_ref(name: str, lm, out: Path) -> str:
    """What plain peft should load as the base: see the module docstring."""
    from superalign.models import embedded
    if name == embedded.TINY:
        base = out / "base-model"
        lm.model.save_pretrained(base)
        lm.tokenizer.save_pretrained(base)
        return str(base.resolve())
    if name in (embedded.SMOLLM2, embedded.MINILM):
        return str(Path(embedded.resolve(name)).resolve())
    if embedded.looks_like_path(name):
        return str(Path(name).expanduser().resolve())
    return name  # a hub id


def export(run_dir: str | Path, out: str | Path, which: str | None = None) -> Path:
    from superalign.store import RunStore
    store = RunStore(run_dir)
    ck = checkpoint(store, which)
    cfg, lm = learner(store)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for f in Path(ck["path"]).iterdir():
        if f.is_file():
            shutil.copy2(f, out / f.name)
    ref = base_ref(cfg.learner.model, lm, out)
    acfg = json.loads((out / "adapter_config.json").read_text())
    acfg["base_model_name_or_path"] = ref
    (out / "adapter_config.json").write_text(json.dumps(acfg, indent=2, sort_keys=True))
    lm.tokenizer.save_pretrained(out)
    _provenance(store, ck, cfg, out, "adapter", ref)
    store.close()
    return out
