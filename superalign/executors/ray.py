"""Run a stage's chunks on Ray actors that hold the role's model (`run.executor: ray`).

Contract (the same stage functions as `LocalExecutor`, see base.py):

- `map(fn, role, records, chunk, on_chunk, **kw)` cuts the records into the same fixed chunks as the local
  executor, sends chunk i to replica i mod `replicas` of the role's actor, and returns the
  results in record order. Each actor builds the role's backend once from the config (same
  seed as the driver would use), reserving `num_gpus` / `num_cpus` of the role's config; an
  actor runs one chunk at a time, so a chunk is one batch on its model.
- Only the driver writes to the run store: actors return records and never open it.
- `backend(role)` builds the role's weights *in the driver* too. Call it only where the driver
  needs the weights - the trainer updating the learner, the critic's calibration. Once built,
  the driver's copy is the source of truth for what the trainer changes: before each `map`, its
  trainable state - the LoRA adapter weights of a peft-wrapped model, a classifier's heads - is
  shipped to the role's actors if it changed since the last `map` (fingerprinted; LoRA weights
  and sklearn heads are small). Full fine-tuning of the base weights in the driver is *not*
  shipped (gigabytes): save the model and call `sync(role, model_dir)`.
- `sync(role, adapter_dir)` makes every actor load a saved LoRA adapter with peft over the
  role's base weights (the adapter must hold the whole change since the base, as a LoRA that is
  trained on across rounds does); `sync(role, None)` drops it; a directory with a full
  `save_pretrained` model (no adapter_config.json) replaces the weights. Use it for a role the
  driver does not hold; for a driver-held role the shipped state above wins.
- Backends handed to the constructor are used in the driver and shipped (pickled) to the
  actors, so tests and callers can bind a role to an object that is not in the config.
- `openai` roles are not put on actors: the endpoint is already the remote worker, and its
  per-request rows (`models.http.record_to`) must be written by the driver. Their stages run in
  the driver, bounded by the endpoint's `concurrency`.

Address: `run.ray_address`, else `$RAY_ADDRESS`, else a local Ray started here. On a cluster
every node needs superalign installed (or a Ray `runtime_env`), the same as any Ray program.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

from superalign.models import config as C
from superalign.errors import SuperalignError
from superalign.executors.base import OnChunk, StageFn, chunks, shares_weights
from superalign.roles import build
from superalign.models.http import OpenAIChat


class _RoleWorker:
    """One replica of a role's model. Wrapped by `ray.remote` at first use (ray imports lazily)."""

    def __init__(self, role_cfg, seed: int, backend=None, checkpoint: str | None = None):
        import torch
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))
        if backend is None:
            backend = build(role_cfg, seed=seed, shared=False)
        self.role_cfg, self.seed, self.b = role_cfg, seed, backend
        self._base: Any = None
        self._adapter: str | None = None
        self._n = 0
        if checkpoint is not None:
            self.sync(checkpoint)

    def run(self, fn: StageFn, records: list[dict], kw: dict) -> list[dict]:
        return fn(self.b, records, kw)

    def apply_state(self, state: dict) -> None:
        """Take the driver's trainable state (see `_trainable_state`)."""
        if "heads" in state:
            self.b.heads = state["heads"]
        if "lora" in state:
            from peft import PeftModel, get_peft_model, set_peft_model_state_dict
            if not isinstance(self.b.model, PeftModel):
                self.b.model = get_peft_model(self.b.model, state["lora_config"])
            set_peft_model_state_dict(self.b.model, state["lora"])
            self.b.model.eval()

    def sync(self, checkpoint: str | None) -> str:
        model = getattr(self.b, "model", None)
        if model is None:
            raise SuperalignError(f"backend {type(self.b).__name__} has no weights to update",
                                  "sync only roles bound to a local model")
        if checkpoint is not None and not (Path(checkpoint) / "adapter_config.json").exists():
            from superalign.models.local import LocalLM  # a full model directory: load it as the role
            self.b = LocalLM(str(checkpoint), self.b.device, "auto", self.b.batch_size, self.b.static_cache,
                             seed=self.seed, compile=self.b.compile, workers=self.b.workers,
                             merge_lora=self.b.merge_lora)
            self._base = self._adapter = None
            return "full"
        from peft import PeftModel
        if self._base is None:
            self._base = model
        if checkpoint is None:
            if self._adapter is not None:
                self.b.model = self.b.model.unload()  # LoRA layers out, base weights untouched
                self._adapter = None
            return "base"
        self._n += 1
        name = f"sync{self._n}"
        if self._adapter is None:
            self.b.model = PeftModel.from_pretrained(self._base, checkpoint, adapter_name=name).eval()
        else:
            self.b.model.load_adapter(checkpoint, adapter_name=name)
            self.b.model.set_adapter(name)
            self.b.model.delete_adapter(self._adapter)
            self.b.model.eval()
        self._adapter = name
        return "adapter"


class RayExecutor:
    def __init__(self, cfg, backends: dict | None = None):
        try:
            import ray
        except ImportError:
            raise SuperalignError("`run.executor: ray` needs the ray package",
                                  "pip install 'ray>=2.9' (or set run.executor: local)") from None
        self.cfg, self.ray = cfg, ray
        self._given: dict[str, object] = dict(backends or {})
        self._driver: dict[str, object] = dict(self._given)
        self._actors: dict[str, list] = {}
        self._checkpoints: dict[str, str | None] = {}
        self._shipped: dict[str, str] = {}  # role -> fingerprint of the driver state its actors hold
        if not ray.is_initialized():
            address = cfg.run.ray_address or os.environ.get("RAY_ADDRESS")
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         ignore_reinit_error=True)
            except ConnectionError as e:
                raise SuperalignError(f"cannot connect to the Ray cluster at {address!r}: {e}",
                                      "start it (`ray start --head`), fix run.ray_address / $RAY_ADDRESS, "
                                      "or leave both unset for a local Ray") from None
        self._remote = ray.remote(_RoleWorker)

    # ------------------------------------------------------------------ backends
    def backend(self, role: str):
        """The role's backend in the driver (for the trainer). See the module docstring."""
        if role not in self._driver:
            self._driver[role] = build(self.cfg.role(role), seed=self.cfg.run.seed, shared=shares_weights(role))
        return self._driver[role]

    def set_backend(self, role: str, backend) -> None:
        self._given[role] = self._driver[role] = backend
        self._drop(role)

    def _is_remote_endpoint(self, role: str) -> bool:
        if role in self._given:
            return isinstance(self._given[role], OpenAIChat)
        return isinstance(self.cfg.role(role), C.OpenAIEndpoint)

    def _workers(self, role: str) -> list:
        if role not in self._actors:
            rc = self.cfg.role(role)
            n, gpus, cpus = (getattr(rc, k, d) for k, d in (("replicas", 1), ("num_gpus", 0), ("num_cpus", 1)))
            self._check_fits(role, n * cpus, n * gpus)
            given = self.ray.put(self._given[role]) if role in self._given else None
            opts = dict(num_gpus=gpus, num_cpus=cpus, max_restarts=0)
            self._actors[role] = [self._remote.options(**opts).remote(rc, self.cfg.run.seed, given,
                                                                      self._checkpoints.get(role))
                                  for _ in range(n)]
        return self._actors[role]

    def _check_fits(self, role: str, cpus: float, gpus: float) -> None:
        """Actors that cannot be placed would leave `map` waiting forever: say so instead."""
        free = self.ray.available_resources()
        for kind, want in (("CPU", cpus), ("GPU", gpus)):
            have = free.get(kind, 0)
            if want and want > have + 1e-9:
                raise SuperalignError(
                    f"role {role!r} asks Ray for {want:g} {kind}s (replicas x num_{kind.lower()}s) but the cluster "
                    f"has {have:g} free",
                    f"lower roles.{role}.replicas or num_{kind.lower()}s (fractions such as 0.5 share a device), "
                    "close other executors (`.close()`), or add nodes to the Ray cluster")

    # ------------------------------------------------------------------ the executor interface
    def map(self, fn: StageFn, role: str, records: list[dict], chunk: int = 64, on_chunk: OnChunk = None,
            **kw) -> list[dict]:
        parts_in = chunks(records, chunk)
        if self._is_remote_endpoint(role):
            b = self.backend(role)
            out = []
            for i, c in enumerate(parts_in):
                out += fn(b, c, dict(kw, chunk_index=i))
                if on_chunk:
                    on_chunk(len(c))
            return out
        workers = self._workers(role)
        self._ship_driver_state(role, workers)
        refs = [workers[i % len(workers)].run.remote(fn, c, dict(kw, chunk_index=i)) for i, c in enumerate(parts_in)]
        try:
            parts: list[list[dict]] = [[] for _ in refs]
            index = {r: i for i, r in enumerate(refs)}
            pending = list(refs)
            while pending:  # progress as chunks finish, results kept in record order
                done, pending = self.ray.wait(pending, num_returns=1)
                parts[index[done[0]]] = self.ray.get(done[0])
                if on_chunk:
                    on_chunk(len(parts_in[index[done[0]]]))
        except self.ray.exceptions.RayTaskError as e:
            raise e.as_instanceof_cause() from None  # the stage's own exception, as the local executor raises it
        except self.ray.exceptions.RayActorError as e:
            self._drop(role)
            raise SuperalignError(f"the Ray actor holding role {role!r} died: {str(e).splitlines()[0]}",
                                  "check its memory/GPU (num_gpus, batch_size) and the Ray logs; re-run to resume") \
                from None
        return [r for part in parts for r in part]

    def _ship_driver_state(self, role: str, workers: list) -> None:
        state = _trainable_state(self._driver.get(role))
        if state is None:
            return
        fp = _fingerprint(state)
        if self._shipped.get(role) != fp:
            ref = self.ray.put(state)
            self.ray.get([a.apply_state.remote(ref) for a in workers])
            self._shipped[role] = fp

    def sync(self, role: str, checkpoint: str | None) -> None:
        if checkpoint is not None and not Path(checkpoint).exists():
            raise SuperalignError(f"checkpoint {checkpoint} does not exist",
                                  "save the adapter (model.save_pretrained(dir)) before calling sync")
        self._checkpoints[role] = None if checkpoint is None else str(Path(checkpoint).resolve())
        if role in self._actors:  # actors made later load it when they start
            self.ray.get([a.sync.remote(self._checkpoints[role]) for a in self._actors[role]])

    def _drop(self, role: str) -> None:
        self._shipped.pop(role, None)
        for a in self._actors.pop(role, []):
            self.ray.kill(a)

    def close(self) -> None:
        """Stop this executor's actors (Ray itself stays up for the caller to shut down)."""
        for role in list(self._actors):
            self._drop(role)


def _trainable_state(b) -> dict | None:
    """What a trainer in the driver changes on a backend: LoRA weights and classifier heads."""
    if b is None:
        return None
    state: dict = {}
    if isinstance(getattr(b, "heads", None), dict):
        state["heads"] = b.heads
    model = getattr(b, "model", None)
    if model is not None and hasattr(model, "peft_config"):
        from peft import get_peft_model_state_dict
        name = model.active_adapter
        state["lora"] = {k: v.detach().cpu() for k, v in get_peft_model_state_dict(model, adapter_name=name).items()}
        state["lora_config"] = model.peft_config[name]
    return state or None


def _fingerprint(state: dict) -> str:
    h = hashlib.sha1()
    for k, v in sorted(state.get("lora", {}).items()):
        import torch  # torch stays lazy: this module is imported by the CLI
        h.update(k.encode())
        h.update(v.contiguous().view(-1).view(dtype=torch.uint8).numpy().tobytes())
    if "heads" in state:
        h.update(pickle.dumps(state["heads"]))
    return h.hexdigest()
