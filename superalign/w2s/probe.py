"""Linear heads on frozen features, with early stopping on the supervisor's labels of held-out rows.

Used for the weak model, probe rungs of the ladder and the fast `finetune.mode: linear` strong model
(Burns et al.'s linear-probe setting). Also the shared early-stopping rule of every trained model.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from superalign.w2s.losses import LOSSES


def val_score(probs: np.ndarray, val_targets: np.ndarray) -> tuple[float, float]:
    """How well predictions on the validation rows match the labels given for them: (agreement of the argmaxes,
    minus cross-entropy as the tie-break). The labels are whatever the caller passes: for students and the
    ceiling, the supervisor's labels; gold never reaches this function from the experiment."""
    agree = float((probs.argmax(-1) == val_targets.argmax(-1)).mean())
    ce = float(-(val_targets * np.log(np.clip(probs, 1e-7, 1))).sum(-1).mean())
    return agree, -ce


class EarlyStop:
    """Keeps the best epoch by `val_score`; `step` returns True when `patience` epochs brought no improvement."""

    def __init__(self, patience: int):
        self.patience, self.epoch = patience, 0
        self.best: tuple[float, float] | None = None
        self.history: list[list[float]] = []
        self.state: Any = None

    def step(self, epoch: int, score: tuple[float, float], state_fn) -> bool:
        self.history.append([round(score[0], 6), round(score[1], 6)])
        if self.best is None or score > self.best:
            self.best, self.epoch, self.state = score, epoch, state_fn()
        return epoch - self.epoch >= self.patience


def train_epochs(opt, loss_of, n_train: int, batch_size: int, max_epochs: int, permute, stop: EarlyStop,
                 evaluate, snapshot, scheduler=None) -> None:
    """The one training loop of every W2S model (linear heads here, LoRA students in finetune.py): minibatches of
    a fresh permutation each epoch, `loss_of(batch_positions, frac)` with `frac` the share of steps done (the
    losses warm up on it), then early stopping on `evaluate()` — the supervisor-labelled validation rows.
    `scheduler`: a torch LR scheduler stepped after every optimizer step (None: constant rates)."""
    total, step = max_epochs * -(-n_train // batch_size), 0
    for epoch in range(1, max_epochs + 1):
        perm = permute(n_train)
        for b in range(0, len(perm), batch_size):
            out = loss_of(perm[b:b + batch_size], step / total)
            opt.zero_grad()
            out.backward()
            opt.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
        if stop.step(epoch, evaluate(), snapshot):
            break


def fit_head(x: np.ndarray, train_idx: np.ndarray, targets: np.ndarray, val_idx: np.ndarray,
             val_targets: np.ndarray, loss: str, head, seed: int, choice: bool, **loss_kw) -> tuple[np.ndarray, dict]:
    """Train a linear head on features x (n, m, d) of `train_idx` against soft `targets`, one epoch at a time,
    keeping the epoch whose predictions on `val_idx` best match `val_targets`; return that epoch's class
    probabilities for all n examples and its weights (+ `epoch`, `val_history`)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: more threads only add spin-wait on a busy machine
    try:
        return _fit_head(x, train_idx, targets, val_idx, val_targets, loss, head, seed, choice, **loss_kw)
    finally:
        torch.set_num_threads(threads)


def _fit_head(x, train_idx, targets, val_idx, val_targets, loss, head, seed, choice, **loss_kw):
    """One head per value of the `head.l2` grid, each early-stopped; the one whose validation rows best match
    `val_targets` is kept (ties: the earlier value). Every model is tuned the same way, on its own supervisor's
    labels: the weak model and the ceiling on gold, a student on its supervisor's."""
    import torch
    xt = torch.from_numpy(np.ascontiguousarray(x)).float()
    flat = xt[torch.as_tensor(train_idx)].reshape(-1, x.shape[-1])
    mu, sd = flat.mean(0), flat.std(0).clamp(min=1e-6)
    xt = (xt - mu) / sd
    best = None
    for l2 in head.l2:
        fit = _fit_one_head(xt, train_idx, targets, val_idx, val_targets, loss, head, seed, choice, l2, **loss_kw)
        if best is None or fit[2] > best[2]:
            best = fit
    probs, state, _ = best
    state.update(mu=mu.numpy(), sd=sd.numpy())
    return probs, state


def _fit_one_head(xt, train_idx, targets, val_idx, val_targets, loss, head, seed, choice, l2, **loss_kw):
    import torch
    torch.manual_seed(seed)
    k = targets.shape[1]
    lin = torch.nn.Linear(xt.shape[-1], 1 if choice else k)
    torch.nn.init.zeros_(lin.weight)  # start uninformed, so the first direction comes from the labels

    def logits(xb):
        return lin(xb).squeeze(-1) if choice else lin(xb[:, 0])

    opt = torch.optim.AdamW(lin.parameters(), lr=head.lr, weight_decay=head.weight_decay)
    xtr, ytr = xt[torch.as_tensor(train_idx)], torch.from_numpy(targets).float()
    xval = xt[torch.as_tensor(val_idx)]
    g = torch.Generator().manual_seed(seed)
    fn = LOSSES[loss]
    stop = EarlyStop(head.patience)

    def evaluate():
        with torch.no_grad():
            return val_score(logits(xval).softmax(-1).numpy(), val_targets)
    # an L2 penalty on the weights (not the bias), added to the mean loss: at this strength the head keeps the
    # labels' main direction and leaves the supervisor's idiosyncratic errors (dev seed 0 of sarcasm: a MiniLM head
    # at 0.647 test without it, 0.701 tuned; bench/results/w2s/dev_sarcasm_tuned.json)
    train_epochs(opt, lambda i, frac: fn(logits(xtr[i]), ytr[i], frac=frac, **loss_kw)
                 + 0.5 * l2 * lin.weight.square().sum(), len(train_idx),
                 head.batch_size, head.max_epochs, lambda n: torch.randperm(n, generator=g), stop, evaluate,
                 lambda: {k: v.clone() for k, v in lin.state_dict().items()})
    lin.load_state_dict(stop.state)
    with torch.no_grad():
        probs = logits(xt).softmax(-1).numpy()
    return probs, {"weight": lin.weight.detach().numpy(), "bias": lin.bias.detach().numpy(),
                   "epoch": np.int64(stop.epoch), "val_history": np.array(stop.history), "l2": np.float64(l2)}, \
        stop.best
