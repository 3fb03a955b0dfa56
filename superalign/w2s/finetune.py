"""The strong LM trained end to end for w2s: LoRA adapters (or every weight) on its top K blocks plus a
classification head on the pooled final states, early-stopped like every other model.

The frozen blocks below the top K never change, so their output (`features.token_states`) is computed once per
task and reused by every fit; K = `all` starts from the token embeddings, i.e. the whole transformer is adapted.
The frozen network's pooled output (the linear-probe warm start) is the same for every fit of a task, so it is
cached too. Predictions are made only for the rows a caller needs (`need`): on a CPU the forward passes over
rows nobody reads cost as much as an epoch. `finetune.dtype: bfloat16` keeps the frozen weights in bfloat16 and
runs the blocks under autocast (LoRA weights and the head stay float32): about 2x faster forward passes on CPUs
with AMX/AVX512-BF16 and on GPUs.
"""
from __future__ import annotations

import inspect

import numpy as np

from superalign.errors import SuperalignError
from superalign.w2s.features import _path, _save, load_cached, load_lm, parse, text_key, token_states
from superalign.w2s.losses import LOSSES
from superalign.w2s.probe import EarlyStop, fit_head, train_epochs, val_score

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def n_blocks(name: str, layers, exit_layer: int | None = None) -> tuple[int, int]:
    """(exit: blocks used, index of the first trained block) for `layers` = K or 'all' below `exit_layer`."""
    from superalign.w2s.features import lm_depth
    depth = lm_depth(name)
    end = depth if exit_layer is None else exit_layer
    if not 1 <= end <= depth:
        raise SuperalignError(f"{name} has {depth} blocks; finetune.exit_layer {exit_layer} does not exist",
                              f"use 1 <= exit_layer <= {depth}, or null for the whole network")
    k = end if layers == "all" else min(int(layers), end)
    return end, end - k


class TopBlocks:
    """The top blocks, final norm and rotary embedding of a Llama-style backbone, fed cached hidden states."""

    def __init__(self, name: str, first: int, end: int, mode: str, lora_r: int, device: str,
                 pool: str = "last", dtype: str = "float32"):
        import torch
        _, model = load_lm(name, device)  # the pretrained backbone: seeds vary only the training (LoRA init, order)
        self.blocks = torch.nn.ModuleList(list(model.layers)[first:end])
        self.rotary, self.pool = model.rotary_emb, pool
        # Gemma 3 alternates sliding and full attention with a rotary table per kind (`layer_types`, and a rotary
        # module that takes the kind); Llama-style backbones have one table for every block
        per_kind = "layer_type" in inspect.signature(model.rotary_emb.forward).parameters
        self.kinds = list(model.config.layer_types[first:end]) if per_kind else None
        # no attention mask is passed (right padding, causal): exact only while a text fits the sliding window
        self.window = getattr(model.config, "sliding_window", None) if per_kind else None
        # hidden_states[depth] (what the probes read) is the final norm's output; a cut network has none
        self.norm = model.norm if end == len(model.layers) else torch.nn.Identity()
        for p in self.blocks.parameters():
            p.requires_grad_(mode == "full")
        for p in self.norm.parameters():
            p.requires_grad_(False)
        if mode == "lora":
            from peft import LoraConfig, inject_adapter_in_model
            inject_adapter_in_model(LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0,
                                               target_modules=TARGETS), self.blocks)
            for n, p in self.blocks.named_parameters():
                p.requires_grad_("lora_" in n)
        self.bf16 = dtype == "bfloat16"
        if self.bf16:  # frozen weights only: what is trained keeps float32 precision for its updates
            for p in [*self.blocks.parameters(), *self.norm.parameters()]:
                if not p.requires_grad:
                    p.data = p.data.to(torch.bfloat16)
        self.device = next(model.parameters()).device

    def __call__(self, h, lengths):
        """h (b, t, d) right-padded states entering the first trained block -> (b, d) pooled output states (last
        token or masked mean). No attention mask is needed: with right padding and causal attention real tokens
        never see pads."""
        import torch
        if self.window and h.shape[1] > self.window:
            raise SuperalignError(f"texts of {h.shape[1]} tokens are longer than the model's sliding attention window "
                                  f"({self.window}), which the w2s student does not mask",
                                  f"set w2s.max_tokens to at most {self.window}")
        pos = torch.arange(h.shape[1], device=h.device)[None]
        with torch.autocast(h.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            if self.kinds:
                tables = {k: self.rotary(h, pos, k) for k in set(self.kinds)}
                embs = [tables[k] for k in self.kinds]
            else:
                embs = [self.rotary(h, position_ids=pos)] * len(self.blocks)
            for blk, emb in zip(self.blocks, embs):
                h = blk(h, attention_mask=None, position_embeddings=emb, position_ids=pos)
                h = h[0] if isinstance(h, tuple) else h
            h = self.norm(h)
        h = h.float()
        lengths = torch.as_tensor(lengths, device=h.device)
        if self.pool == "mean":
            mask = (torch.arange(h.shape[1], device=h.device)[None] < lengths[:, None]).to(h.dtype)
            return (h * mask[..., None]).sum(1) / lengths[:, None].to(h.dtype)
        return h[torch.arange(h.shape[0], device=h.device), torch.as_tensor(lengths, device=h.device) - 1]

    def trainable(self):
        return [p for p in self.blocks.parameters() if p.requires_grad]


def fit_lm(spec: str, task, train_idx: np.ndarray, targets: np.ndarray, val_idx: np.ndarray, val_targets: np.ndarray,
           loss: str, cfg, seed: int, layers="all", mode: str = "lora", need=None, **loss_kw) -> tuple[np.ndarray, dict]:
    """Train the top `layers` blocks of LM `spec` (LoRA or full) + a head; return class probabilities at the
    epoch whose validation predictions best match `val_targets` (for the rows in `need`, default all; NaN
    elsewhere), and the trained weights."""
    import torch
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _fit_lm(spec, task, train_idx, targets, val_idx, val_targets, loss, cfg, seed, layers, mode, need,
                       **loss_kw)
    finally:
        torch.set_num_threads(threads)


def frozen_pooled(pooled, name: str, first: int, end: int, flat: list[str], n: int, cfg, side: str) -> np.ndarray:
    """The untrained network's pooled output for every example (the probe's features), cached per task."""
    import torch
    key = text_key(flat, cfg.max_tokens, side)
    p = _path(name, f"pooled{first}-{end}-{cfg.finetune.pool}-{cfg.finetune.dtype}", key)
    if (cached := load_cached(p)) is not None:
        return cached
    every = np.arange(n)
    with torch.no_grad():
        out = torch.cat([pooled(every[b:b + 64]) for b in range(0, n, 64)]).cpu().numpy()
    return _save(p, out)


def schedule(opt, ft, total_steps: int):
    """transformers' warm-up + decay schedule for `ft` (None when both are off: constant rates). Tried because
    fine-tuning starts from a converged probe head and its first epoch dipped below it; on development seed 0 it did
    not raise the ceiling (bench/w2s.py's docstring), so it is off by default."""
    if ft.warmup_frac == 0 and ft.decay == "constant":
        return None
    from transformers import get_scheduler
    name = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}[ft.decay]
    return get_scheduler(name, opt, num_warmup_steps=int(round(ft.warmup_frac * total_steps)),
                         num_training_steps=total_steps)


def _fit_lm(spec, task, train_idx, targets, val_idx, val_targets, loss, cfg, seed, layers, mode, need, **loss_kw):
    import torch
    _, name, _ = parse(spec)
    ft = cfg.finetune
    end, first = n_blocks(name, layers, ft.exit_layer)
    m = len(task.texts[0])
    flat = [t for ts in task.texts for t in ts]
    side = "left" if task.choice else "right"
    states, lengths = token_states(name, first, flat, cfg.max_tokens, cfg.device, side=side)
    torch.manual_seed(seed)
    top = TopBlocks(name, first, end, mode, ft.lora_r, cfg.device, ft.pool, ft.dtype)
    d = states.shape[-1]
    head = torch.nn.Linear(d, 1 if task.choice else task.k).to(top.device)

    def pooled(idx):
        rows = np.array([i * m + j for i in idx for j in range(m)])
        t = int(lengths[rows].max())
        h = torch.from_numpy(np.asarray(states[rows, :t], dtype=np.float32)).to(top.device)
        return top(h, lengths[rows])

    # LP-FT (Kumar et al. 2022): first a linear probe on the frozen output (same targets, loss and early stopping;
    # LoRA starts as the identity), then adapters and head are trained together from there. Epoch 0 (the probe)
    # competes in early stopping, so fine-tuning is kept only where the supervisor's labels say it helps.
    every = np.arange(len(task.texts))
    need = every if need is None else np.asarray(need)
    frozen = frozen_pooled(pooled, name, first, end, flat, len(every), cfg, side)
    probs0, lp = fit_head(frozen.reshape(len(every), m, d), train_idx, targets, val_idx, val_targets, loss, cfg.head,
                          seed, task.choice, **loss_kw)
    mu, sd = torch.from_numpy(lp["mu"]).to(top.device), torch.from_numpy(lp["sd"]).to(top.device)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(lp["weight"]))
        head.bias.copy_(torch.from_numpy(lp["bias"]))
    opt = torch.optim.AdamW([{"params": top.trainable(), "lr": ft.lr},
                             {"params": head.parameters(), "lr": ft.head_lr}], weight_decay=0.0)
    sched = schedule(opt, ft, ft.max_epochs * -(-len(train_idx) // ft.batch_size))

    def logits(idx):
        out = head((pooled(idx) - mu) / sd).view(len(idx), m, -1)
        return out[..., 0] if task.choice else out[:, 0]

    def predict(idx, bs=64):
        top.blocks.eval()
        with torch.no_grad():
            out = [logits(idx[b:b + bs]).float().softmax(-1).cpu().numpy() for b in range(0, len(idx), bs)]
        top.blocks.train()
        return np.concatenate(out)

    def snapshot():
        return ({k: v.detach().clone() for k, v in top.blocks.state_dict().items() if "lora_" in k or mode == "full"},
                {k: v.detach().clone() for k, v in head.state_dict().items()})

    # sort each batch's rows by length so padding stays small; batches themselves are shuffled
    y = torch.from_numpy(targets).float().to(top.device)
    g = np.random.default_rng(seed)
    fn = LOSSES[loss]
    stop = EarlyStop(ft.patience)
    if ft.keep_probe:
        stop.step(0, val_score(probs0[val_idx], val_targets), snapshot)
    top.blocks.train()
    train_epochs(opt, lambda j, frac: fn(logits([int(train_idx[i]) for i in j]), y[j], frac=frac, **loss_kw),
                 len(train_idx), ft.batch_size, ft.max_epochs, g.permutation, stop,
                 lambda: val_score(predict(np.asarray(val_idx)), val_targets), snapshot, sched)
    blocks_sd, head_sd = stop.state
    top.blocks.load_state_dict(blocks_sd, strict=False)
    head.load_state_dict(head_sd)
    if stop.epoch == 0:
        probs = probs0
    else:
        probs = np.full_like(probs0, np.nan)
        probs[need] = predict(need)
    state = {f"head.{k}": v.cpu().numpy() for k, v in head_sd.items()}
    if mode == "lora":
        state.update({k: v.cpu().numpy() for k, v in blocks_sd.items()})
    state.update(epoch=np.int64(stop.epoch), val_history=np.array(stop.history), first_block=np.int64(first),
                 mu=lp["mu"], sd=lp["sd"], probe_epoch=lp["epoch"])
    return probs, state
