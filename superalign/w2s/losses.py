"""Losses a student is trained with, each `fn(logits, target, frac, **kw)` on soft targets (rows sum to 1);
`frac` is the fraction of training done (for warm-ups)."""
from __future__ import annotations


def xent(logits, target, frac: float = 1.0, **_):
    """Cross-entropy against soft labels."""
    return -(target * logits.log_softmax(-1)).sum(-1).mean()


def harden(probs, prior):
    """The student's hardened predictions. Binary: threshold at the quantile that gives the weak labels' class
    balance `prior` (as in openai/weak-to-strong); more classes: one-hot argmax."""
    import torch
    if probs.shape[-1] == 2:
        t = torch.quantile(probs[:, 0], prior[1].clamp(0, 1))
        pos = (probs[:, 0] < t).float()
        return torch.stack([1 - pos, pos], -1)
    return torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).float()


def logconf(logits, target, frac: float = 1.0, aux_coef: float = 0.5, warmup_frac: float = 0.1, **_):
    """Auxiliary confidence loss (Burns et al.), as openai/weak-to-strong's `logconf_loss_fn`: cross-entropy
    against (1 - c) weak + c hardened(student), c = aux_coef * (frac during the warm-up, 1 after it)."""
    c = aux_coef * (1.0 if frac > warmup_frac else frac)
    hard = harden(logits.detach().softmax(-1), target.mean(0))
    return xent(logits, (1 - c) * target + c * hard)


def bootstrap(logits, target, frac: float = 1.0, beta: float = 0.5, warmup_frac: float = 0.2, **_):
    """Soft bootstrapping: weak labels mixed with the student's own (soft) predictions, weight ramped in."""
    b = beta * (min(1.0, frac / warmup_frac) if warmup_frac > 0 else 1.0)
    return xent(logits, (1 - b) * target + b * logits.detach().softmax(-1))


LOSSES = {"xent": xent, "logconf": logconf, "bootstrap": bootstrap}
