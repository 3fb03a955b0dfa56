"""Weak-to-strong generalization (Burns et al. 2023) and gap annealing (Kim et al.).

Protocol, per task and seed: a fixed pool of labelled examples is shuffled by the seed into
weak-train / transfer / test. The weak supervisor is trained on gold weak-train labels and labels
the transfer split with its soft predictions; the strong student is trained on those weak labels
(plain cross-entropy, the auxiliary confidence loss, or soft bootstrapping); the strong ceiling is
trained on gold transfer labels. PGR = (w2s - weak) / (ceiling - weak) on the test split.

Gap annealing: a ladder weak -> rung_1 -> ... -> strong, where each rung is trained on the previous
supervisor's labels and then labels the transfer split for the next one (2-fold cross-fitting, so
no rung labels examples it was trained on). Every rung has its own ceiling, so the capability gap
of each step is measured, and the ladder's PGR is compared with direct supervision on the same data.

Models are featurizers (see `w2s_features`) with a linear head trained by one small loop; that is
Burns et al.'s linear-probe setting. `finetune.mode: lora|full` trains the strong LM end to end
instead (`w2s_finetune`). Every trained head is cached on disk by a hash of what determines it
(features, training rows, labels, loss, seed), so weak labels and ceilings are computed once and
shared by all methods, runs and experiments.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from superalign import assets
from superalign.errors import SuperalignError

METHODS = ("xent", "aux_conf", "bootstrap", "ladder")
LABELS = {"weak": "weak", "xent": "w2s (xent)", "aux_conf": "w2s (aux conf)", "bootstrap": "w2s (bootstrap)",
          "ladder": "w2s (ladder)", "ceiling": "ceiling"}


# ---------------------------------------------------------------------------------- config
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TaskSpec(_Strict):
    """A task with its own split sizes (None: the section-wide sizes)."""
    name: str
    n_weak: int | None = Field(None, ge=4)
    n_transfer: int | None = Field(None, ge=8)
    n_test: int | None = Field(None, ge=4)


class HeadCfg(_Strict):
    epochs: int = Field(20, ge=1)
    lr: float = Field(5e-3, gt=0)
    batch_size: int = Field(32, ge=2)
    weight_decay: float = Field(1e-3, ge=0)


class AuxConfCfg(_Strict):
    """Burns et al.'s auxiliary confidence loss: target = (1-a) weak + a hardened(student)."""
    alpha: float = Field(0.75, ge=0, le=1)
    warmup: float = Field(0.2, ge=0, le=1)   # fraction of training over which a ramps up from 0


class BootstrapCfg(_Strict):
    """Soft bootstrapping (Reed et al. 2014): target = (1-b) weak + b student probabilities."""
    beta: float = Field(0.5, ge=0, le=1)
    warmup: float = Field(0.2, ge=0, le=1)


class FinetuneCfg(_Strict):
    """How the strong LM is trained: a linear head on frozen pooled states, or LoRA / full fine-tuning."""
    mode: Literal["linear", "lora", "full"] = "linear"
    epochs: int = Field(2, ge=1)
    lr: float = Field(2e-4, gt=0)
    batch_size: int = Field(8, ge=1)
    lora_r: int = Field(8, ge=1)


class W2SConfig(_Strict):
    tasks: list[Union[str, TaskSpec]] = ["sarcasm", "quartz", "harm_labels"]
    seeds: list[int] = Field([0, 1, 2], min_length=1)
    # Default pair: MiniLM + head on few gold labels (data-limited) -> SmolLM2 layer 12 probe; the
    # rung in between is SmolLM2's last layer (its gold-trained ceiling lies between the two).
    weak: str = "minilm-l6"
    strong: str = "smollm2-135m-instruct@12"
    ladder: list[str] = ["smollm2-135m-instruct"]   # intermediate supervisors, weakest first
    methods: list[Literal["xent", "aux_conf", "bootstrap", "ladder"]] = ["xent", "aux_conf", "ladder"]
    ladder_loss: Literal["xent", "aux_conf", "bootstrap"] = "xent"
    n_weak: int = Field(200, ge=4)
    n_transfer: int = Field(800, ge=8)
    n_test: int = Field(500, ge=4)
    pool_seed: int = 0
    max_tokens: int = Field(96, ge=4)
    device: Literal["auto", "cpu", "cuda", "mps"] = "cpu"
    head: HeadCfg = HeadCfg()
    aux_conf: AuxConfCfg = AuxConfCfg()
    bootstrap: BootstrapCfg = BootstrapCfg()
    finetune: FinetuneCfg = FinetuneCfg()

    def task_specs(self) -> list[TaskSpec]:
        out = []
        for t in self.tasks:
            t = TaskSpec(name=t) if isinstance(t, str) else t
            out.append(t.model_copy(update={k: getattr(t, k) or getattr(self, k)
                                            for k in ("n_weak", "n_transfer", "n_test")}))
        return out


def parse_config(section: dict | None) -> W2SConfig:
    try:
        return W2SConfig.model_validate(section or {})
    except ValidationError as e:
        errs = ["w2s." + ".".join(str(p) for p in err["loc"] if p not in ("str", "TaskSpec")) + ": "
                + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"]) for err in e.errors()]
        raise SuperalignError("invalid w2s config: " + "; ".join(dict.fromkeys(errs)),
                              "fix the key(s) named above; see the W2SConfig fields in superalign/paradigms/w2s.py") from None


# ---------------------------------------------------------------------------------- tasks
@dataclass
class Task:
    """A pool of classification examples: each has m candidate texts (m=1: classify the text into k
    classes; m>1: pick one of m candidates, scored by one shared linear head)."""
    name: str
    ids: list[str]
    texts: list[list[str]]
    labels: np.ndarray
    k: int
    choice: bool


def _options(prompt: str) -> list[str]:
    return [ln[3:] for ln in prompt.splitlines() if len(ln) > 3 and ln[0] in "ABCDEFGH" and ln[1:3] == ". "]


def _example(r: dict) -> tuple[list[str], int, int, bool]:
    if "response" in r:  # judge sets: human label in [0, 1]
        return [f"Request: {r['prompt'][:200]}\nResponse: {r['response']}"], int(float(r["label"]) >= 0.5), 2, False
    if "label" not in r:
        raise SuperalignError(f"record {r.get('id')} has no `label`", "w2s needs a labelled task or judge set")
    opts = _options(r.get("prompt", "")) if r.get("question") else []
    if len(opts) > 1:
        return [f"{r['question']} {o}" for o in opts], int(r["label"]), len(opts), True
    k = len(r["choices"]) if r.get("choices") else 2
    return [r.get("text") or r["prompt"]], int(r["label"]), k, False


def load_task(name: str, size: int, pool_seed: int = 0) -> Task:
    from superalign import data
    rows = data.load(name, "all", seed=pool_seed)
    ex = [_example(r) for r in rows]
    shape = max({(len(t), k, c) for t, _, k, c in ex}, key=lambda s: sum((len(t), k, c) == s for t, _, k, c in ex))
    keep = [(r, e) for r, e in zip(rows, ex) if (len(e[0]), e[2], e[3]) == shape][:size]
    if len(keep) < size:
        raise SuperalignError(f"task {name!r} has {len(keep)} usable examples; the splits need {size}",
                              "lower w2s.n_weak / n_transfer / n_test for this task")
    labels = np.array([e[1] for _, e in keep])
    k = max(shape[1], int(labels.max()) + 1)
    if len(set(labels.tolist())) < 2:
        raise SuperalignError(f"task {name!r} has a single label in its pool", "use a task with at least two classes")
    return Task(name, [r["id"] for r, _ in keep], [e[0] for _, e in keep], labels, k, shape[2])


# ---------------------------------------------------------------------------------- losses
def xent(logits, target, frac: float = 1.0, **_):
    """Cross-entropy against soft labels."""
    return -(target * logits.log_softmax(-1)).sum(-1).mean()


def harden(probs, prior):
    """The student's hardened predictions. Binary: threshold at the quantile that gives the weak
    labels' class balance (Burns et al.); more classes: one-hot argmax."""
    import torch
    if probs.shape[-1] == 2:
        t = torch.quantile(probs[:, 0], prior[1].clamp(0, 1))
        pos = (probs[:, 0] < t).float()
        return torch.stack([1 - pos, pos], -1)
    return torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).float()


def _ramp(weight: float, warmup: float, frac: float) -> float:
    return weight * (min(1.0, frac / warmup) if warmup > 0 else 1.0)


def aux_conf(logits, target, frac: float = 1.0, alpha: float = 0.75, warmup: float = 0.2, **_):
    """Auxiliary confidence loss: cross-entropy against a mix of weak labels and the student's own
    hardened predictions; the mix weight ramps from 0 to `alpha` over the first `warmup` of training."""
    a = _ramp(alpha, warmup, frac)
    hard = harden(logits.detach().softmax(-1), target.mean(0))
    return xent(logits, (1 - a) * target + a * hard)


def bootstrap(logits, target, frac: float = 1.0, beta: float = 0.5, warmup: float = 0.2, **_):
    """Soft bootstrapping: weak labels mixed with the student's own (soft) predictions."""
    b = _ramp(beta, warmup, frac)
    return xent(logits, (1 - b) * target + b * logits.detach().softmax(-1))


LOSSES = {"xent": xent, "aux_conf": aux_conf, "bootstrap": bootstrap}


def loss_kwargs(cfg: W2SConfig, loss: str) -> dict:
    return {"aux_conf": cfg.aux_conf.model_dump(), "bootstrap": cfg.bootstrap.model_dump()}.get(loss, {})


# ---------------------------------------------------------------------------------- metrics
def pgr(weak: float, w2s: float, ceiling: float) -> float:
    """Performance gap recovered; NaN when there is no gap to recover (ceiling <= weak: the ratio's
    sign would flip and its size explode, so it is left out of means rather than reported)."""
    gap = ceiling - weak
    return float("nan") if gap < 1e-9 else (w2s - weak) / gap


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float((probs.argmax(-1) == y).mean())


def auroc(probs: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score
    if len(set(y.tolist())) < 2:
        return float("nan")
    if probs.shape[1] == 2:
        return float(roc_auc_score(y, probs[:, 1]))
    p = probs / probs.sum(1, keepdims=True)
    try:
        return float(roc_auc_score(y, p, multi_class="ovr", labels=list(range(probs.shape[1]))))
    except ValueError:  # a class absent from this test split
        return float("nan")


# ---------------------------------------------------------------------------------- training
def fit_head(x: np.ndarray, train_idx: np.ndarray, targets: np.ndarray, loss: str, head: HeadCfg, seed: int,
             choice: bool, **loss_kw) -> tuple[np.ndarray, dict]:
    """Train a linear head on features x (n, m, d) of `train_idx` against soft `targets`;
    return class probabilities for all n examples and the head's weights."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: more threads only add spin-wait on a busy machine
    try:
        return _fit_head(x, train_idx, targets, loss, head, seed, choice, **loss_kw)
    finally:
        torch.set_num_threads(threads)


def _fit_head(x, train_idx, targets, loss, head, seed, choice, **loss_kw):
    import torch
    torch.manual_seed(seed)
    xt = torch.from_numpy(x).float()
    flat = xt[torch.as_tensor(train_idx)].reshape(-1, x.shape[-1])
    mu, sd = flat.mean(0), flat.std(0).clamp(min=1e-6)
    xt = (xt - mu) / sd
    k = targets.shape[1]
    lin = torch.nn.Linear(x.shape[-1], 1 if choice else k)
    torch.nn.init.zeros_(lin.weight)  # start uninformed, so the first direction comes from the labels

    def logits(xb):
        return lin(xb).squeeze(-1) if choice else lin(xb[:, 0])

    opt = torch.optim.AdamW(lin.parameters(), lr=head.lr, weight_decay=head.weight_decay)
    xtr, ytr = xt[torch.as_tensor(train_idx)], torch.from_numpy(targets).float()
    g = torch.Generator().manual_seed(seed)
    steps_per = -(-len(train_idx) // head.batch_size)
    total, step, fn = head.epochs * steps_per, 0, LOSSES[loss]
    for _ in range(head.epochs):
        perm = torch.randperm(len(train_idx), generator=g)
        for b in range(0, len(perm), head.batch_size):
            i = perm[b:b + head.batch_size]
            out = fn(logits(xtr[i]), ytr[i], frac=step / total, **loss_kw)
            opt.zero_grad()
            out.backward()
            opt.step()
            step += 1
    with torch.no_grad():
        probs = logits(xt).softmax(-1).numpy()
    return probs, {"weight": lin.weight.detach().numpy(), "bias": lin.bias.detach().numpy(),
                   "mu": mu.numpy(), "sd": sd.numpy()}


def _key(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.tobytes() if isinstance(p, np.ndarray) else json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:24]


class Trainer:
    """Trains (spec, rows, labels, loss, seed) once; the probabilities and head weights are cached
    in `<cache>/w2s/heads/` so every experiment that needs the same weak labels or ceiling reuses them."""

    def __init__(self, cfg: W2SConfig, task: Task, feats: dict[str, np.ndarray], feat_key: str):
        self.cfg, self.task, self.feats, self.feat_key = cfg, task, feats, feat_key
        self.dir = assets.cache_dir() / "w2s" / "heads"
        self.hits = self.misses = 0

    def fit(self, spec: str, train_idx: np.ndarray, targets: np.ndarray, loss: str, seed: int) -> np.ndarray:
        targets = np.round(targets.astype(np.float64), 6).astype(np.float32)
        finetune = spec == self.cfg.strong and self.cfg.finetune.mode != "linear"
        how = self.cfg.finetune.model_dump() if finetune else self.cfg.head.model_dump()
        key = _key(spec, self.feat_key, np.asarray(train_idx, dtype=np.int64), targets, loss,
                   loss_kwargs(self.cfg, loss), how, seed, self.cfg.max_tokens)
        path = self.dir / f"{key}.npz"
        if path.exists():
            self.hits += 1
            return np.load(path)["probs"]
        self.misses += 1
        if finetune:
            from superalign.paradigms.w2s_finetune import fit_lm
            probs, state = fit_lm(spec, self.task, train_idx, targets, loss, self.cfg, seed,
                                  **loss_kwargs(self.cfg, loss))
        else:
            probs, state = fit_head(self.feats[spec], train_idx, targets, loss, self.cfg.head, seed,
                                    self.task.choice, **loss_kwargs(self.cfg, loss))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, probs=probs, **state)
        tmp.replace(path)
        return probs

    def crossfit(self, spec: str, idx: np.ndarray, targets: np.ndarray, loss: str, seed: int) -> np.ndarray:
        """Out-of-fold predictions on `idx` (2 folds): a rung never labels rows it was trained on."""
        half = len(idx) // 2
        out = np.zeros((len(idx), self.task.k), dtype=np.float32)
        for a, b in ((slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))):
            out[b] = self.fit(spec, idx[a], targets[a], loss, seed)[idx[b]]
        return out


# ---------------------------------------------------------------------------------- experiment
def features_for(cfg: W2SConfig, task: Task, progress=None) -> tuple[dict[str, np.ndarray], str]:
    from superalign.paradigms import w2s_features as F
    m = len(task.texts[0])
    flat = [t for ts in task.texts for t in ts]
    specs = [cfg.weak, *cfg.ladder, cfg.strong]
    if cfg.finetune.mode != "linear":
        specs = specs[:-1]  # the strong LM is trained end to end on the texts
    feats = F.featurize(specs, flat, cfg.max_tokens, cfg.device, progress)
    return {s: v.reshape(len(task.texts), m, -1) for s, v in feats.items()}, F.text_key(flat, cfg.max_tokens)


def splits(n: int, t: TaskSpec, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    a, b = t.n_weak, t.n_weak + t.n_transfer
    return perm[:a], perm[a:b], perm[b:b + t.n_test]


def run_seed(cfg: W2SConfig, spec: TaskSpec, task: Task, tr: Trainer, seed: int) -> list[dict]:
    """All methods for one task and seed; returns `metrics` rows (lineage in each row, meta = task/method)."""
    w_idx, t_idx, e_idx = splits(len(task.labels), spec, seed)
    y = task.labels
    gold = np.eye(task.k, dtype=np.float32)[y]
    rows: list[dict] = []

    def score(probs, role, model, method, **extra):
        acc, auc = accuracy(probs[e_idx], y[e_idx]), auroc(probs[e_idx], y[e_idx])
        for name, v in (("accuracy", acc), ("auroc", auc)):
            rows.append({"name": name, "value": v, "n": len(e_idx), "role": role, "model": model, "seed": seed,
                         "meta": {"task": task.name, "method": method, **extra}})
        return acc

    weak_p = tr.fit(cfg.weak, w_idx, gold[w_idx], "xent", seed)
    weak = score(weak_p, "weak", cfg.weak, "weak")
    ceil = score(tr.fit(cfg.strong, t_idx, gold[t_idx], "xent", seed), "ceiling", cfg.strong, "ceiling")
    for m in cfg.methods:
        if m == "ladder":
            continue
        acc = score(tr.fit(cfg.strong, t_idx, weak_p[t_idx], m, seed), "w2s", cfg.strong, m)
        rows.append({"name": "pgr", "value": pgr(weak, acc, ceil), "n": len(e_idx), "role": "w2s",
                     "model": cfg.strong, "seed": seed, "meta": {"task": task.name, "method": m}})
    if "ladder" in cfg.methods:
        sup_labels, sup_acc, sup_model = weak_p[t_idx], weak, cfg.weak
        for step, rung in enumerate([*cfg.ladder, cfg.strong], 1):
            last = step == len(cfg.ladder) + 1
            student = tr.fit(rung, t_idx, sup_labels, cfg.ladder_loss, seed)
            rung_ceil = ceil if last else accuracy(tr.fit(rung, t_idx, gold[t_idx], "xent", seed)[e_idx], y[e_idx])
            acc = score(student, "rung", rung, "ladder", step=step, supervisor=sup_model, ceiling=rung_ceil,
                        supervisor_accuracy=sup_acc, gap=rung_ceil - sup_acc,
                        label_accuracy=float((sup_labels.argmax(-1) == y[t_idx]).mean()),
                        step_pgr=pgr(sup_acc, accuracy(student[e_idx], y[e_idx]), rung_ceil))
            if last:
                rows.append({"name": "pgr", "value": pgr(weak, acc, ceil), "n": len(e_idx), "role": "w2s",
                             "model": cfg.strong, "seed": seed, "meta": {"task": task.name, "method": "ladder"}})
                # the ladder's final student, under the same name as the direct methods
                rows += [dict(r, role="w2s", meta={"task": task.name, "method": "ladder"}) for r in rows[-3:-1]]
            else:
                sup_labels = tr.crossfit(rung, t_idx, sup_labels, cfg.ladder_loss, seed)
                sup_acc, sup_model = acc, rung
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and t-interval across seeds for every (task, role, method, metric); rows have seed=None."""
    from superalign.evaluation.stats import mean_ci_t
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        if r["role"] == "rung":
            continue
        groups.setdefault((r["meta"]["task"], r["role"], r["model"], r["meta"]["method"], r["name"]), []).append(r["value"])
    out = []
    for (task, role, model, method, name), vals in groups.items():
        v = [x for x in vals if x == x]
        m, lo, hi = mean_ci_t(v) if v else (float("nan"),) * 3
        out.append({"name": name, "value": m, "lo": lo, "hi": hi, "n": len(v), "role": role, "model": model,
                    "seed": None, "meta": {"task": task, "method": method, "aggregate": True, "seeds": len(vals)}})
    return out


def run(cfg: W2SConfig, store, progress=None) -> dict[str, list[dict]]:
    """Run every task x seed as a resumable store stage; returns the aggregate rows per task."""
    import torch
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    result = {}
    specs = cfg.task_specs()
    bar = progress.add_task("w2s", total=len(specs) * len(cfg.seeds)) if progress else None
    for spec in specs:
        size = spec.n_weak + spec.n_transfer + spec.n_test
        task = load_task(spec.name, size, cfg.pool_seed)
        feats, fkey = features_for(cfg, task, progress)
        tr = Trainer(cfg, task, feats, fkey)
        for seed in cfg.seeds:
            if progress:
                progress.update(bar, description=f"w2s {spec.name} seed {seed}")
            store.run_stage(0, f"w2s/{spec.name}/seed{seed}", lambda: {"metrics": run_seed(cfg, spec, task, tr, seed),
                                                                       "info": {"cache_hits": tr.hits}},
                            stage="w2s")
            if progress:
                progress.advance(bar)
        per_seed = [r for r in store.rows("metrics", stage="w2s") if r["meta"].get("task") == spec.name
                    and r["seed"] in cfg.seeds and not r["meta"].get("aggregate")]
        agg = summarise(per_seed)
        tag = _key(sorted(cfg.seeds), cfg.model_dump())[:8]
        store.run_stage(0, f"w2s/{spec.name}/summary-{tag}", lambda: {"metrics": agg}, stage="w2s")
        result[spec.name] = agg
    return result
