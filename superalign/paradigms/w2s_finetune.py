"""End-to-end training of the strong LM for w2s (`finetune.mode: lora | full`).

The slower alternative to the linear probe on frozen features: the backbone (LoRA adapters via
peft, or every weight) and the same linear head on the masked-mean pooled layer are trained with the
same loss functions. The Trainer caches the resulting probabilities and the trained adapter + head
weights (for `full`, only the head: the backbone would be hundreds of MB per fit).
"""
from __future__ import annotations

import numpy as np


def fit_lm(spec: str, task, train_idx: np.ndarray, targets: np.ndarray, loss: str, cfg, seed: int,
           **loss_kw) -> tuple[np.ndarray, dict]:
    import torch
    from superalign.paradigms.w2s import LOSSES
    from superalign.paradigms.w2s_features import load_lm, parse, pool
    _, name, layer = parse(spec)
    ft = cfg.finetune
    torch.manual_seed(seed)
    tok, model = load_lm(name, cfg.device, seed)
    if ft.mode == "lora":
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=ft.lora_r, lora_alpha=2 * ft.lora_r, lora_dropout=0.0,
                                                 target_modules="all-linear"))
    dev = next(model.parameters()).device
    head = torch.nn.Linear(model.config.hidden_size, 1 if task.choice else task.k).to(dev)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=ft.lr, weight_decay=0.0)
    m = len(task.texts[0])

    def logits(idx):
        enc = tok([t for i in idx for t in task.texts[i]], return_tensors="pt", padding=True, truncation=True,
                  max_length=cfg.max_tokens).to(dev)
        h = pool(model(**enc, output_hidden_states=True).hidden_states[layer], enc["attention_mask"])
        h = h.view(len(idx), m, -1)
        return head(h).squeeze(-1) if task.choice else head(h[:, 0])

    y = torch.from_numpy(targets).float().to(dev)
    g = torch.Generator().manual_seed(seed)
    total = ft.epochs * -(-len(train_idx) // ft.batch_size)
    step, fn = 0, LOSSES[loss]
    model.train()
    for _ in range(ft.epochs):
        perm = torch.randperm(len(train_idx), generator=g).tolist()
        for b in range(0, len(perm), ft.batch_size):
            j = perm[b:b + ft.batch_size]
            out = fn(logits([int(train_idx[i]) for i in j]), y[j], frac=step / total, **loss_kw)
            opt.zero_grad()
            out.backward()
            opt.step()
            step += 1
    model.eval()
    probs = []
    with torch.no_grad():
        for b in range(0, len(task.texts), 32):
            probs.append(logits(list(range(b, min(b + 32, len(task.texts))))).float().softmax(-1).cpu().numpy())
    state = {f"head.{k}": v.detach().cpu().numpy() for k, v in head.state_dict().items()}
    if ft.mode == "lora":
        state.update({k: p.detach().cpu().numpy() for k, p in model.named_parameters() if p.requires_grad})
    return np.concatenate(probs), state
