"""Weak-to-strong generalization (Burns et al. 2023) and gap annealing, per task and seed.

Each seed reshuffles a task's pool into weak-train / transfer / test (`tasks.splits`). The weak supervisor is
trained on gold weak-train labels and labels the transfer rows with its soft predictions. Every strong model is
trained on the transfer-train rows and early-stopped on the transfer-val rows: the students (one per loss) on
those rows labelled by their supervisor, as a user without gold would; the ceiling on their gold labels, so it
never sees a weak label. The data-matched control (the weak model trained and stopped on the ceiling's gold rows)
makes ceiling - control the capacity gap, free of the amount of gold.

Gap annealing, two ways, both spending only the weak model's gold:
- ladder: weak -> rung_1 -> ... -> strong, each rung trained on the previous supervisor's labels and then labelling
  the transfer rows for the next one (2-fold cross-fitting: no rung labels rows it trained on); each rung's own
  gold ceiling shows it is genuinely intermediate (bench/w2s.py picks the rung by the share of the gap it closes);
- iterative teacher-student (Kim et al.): the transfer-train rows are cut in two halves; the student of round k
  (the strong model) is trained on one half labelled by the round k-1 teacher (round 1: the weak model) and labels
  the other half and the validation rows for round k+1, so no student labels rows it trained on. PGR per round.

Every fit is cached on disk (`Trainer`) by a hash of what determines it, so weak labels, ceilings and controls
are computed once and shared by all losses, runs and experiments.
"""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np

from superalign import assets
from superalign.errors import SuperalignError
from superalign.w2s.config import LOSS_NAMES, W2SConfig
from superalign.w2s.metrics import auroc, summarise
from superalign.w2s.tasks import Splits, Task, load_task, splits


def base(spec: str) -> str:
    """The model of a spec without its label budget (`minilm-l6#100` -> `minilm-l6`)."""
    return spec.split("#", 1)[0]


def label_budget(spec: str) -> int | None:
    """`SPEC#N`: the weak model is trained on the first N of its gold rows only (a few-label weak supervisor)."""
    _, sep, n = spec.partition("#")
    if sep and not n.isdigit():
        raise SuperalignError(f"bad model spec {spec!r}", "write SPEC#N with N the number of gold labels, e.g. tfidf#100")
    return int(n) if sep else None


def lora_spec(spec: str, cfg: W2SConfig) -> tuple[str, object, str] | None:
    """(name, layers, mode) when `spec` is trained end to end, None when it is a probe on frozen features."""
    name, plus, tail = spec.partition("+lora")
    if plus:
        k = tail.lstrip(":") or "all"
        if k != "all" and not k.isdigit():
            raise SuperalignError(f"bad model spec {spec!r}", "write NAME+lora:K (K blocks from the top) or NAME+lora:all")
        return name, k if k == "all" else int(k), "lora"
    if spec == cfg.strong and cfg.finetune.mode != "linear":
        return spec, cfg.finetune.lora_layers if cfg.finetune.mode == "lora" else "all", cfg.finetune.mode
    return None


SHALLOW = "tfidf"  # TF-IDF + logistic regression (superalign/w2s/shallow.py)
FIT_VERSION = 4  # bump when training changes, so cached fits are redone


def _key(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.tobytes() if isinstance(p, np.ndarray) else json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:24]


class Trainer:
    """Trains (spec, rows, labels, validation rows + their labels, loss, seed) once; probabilities and weights are
    cached in `<cache>/w2s/fits/`. `say`, when given, hears one line per language-model fit it trains (its seconds
    and kept epoch): on a CPU one such fit takes minutes and a seed holds a dozen, so a long run without these lines
    looks hung (fits found in the cache take no time and say nothing; `hits` counts them)."""

    def __init__(self, cfg: W2SConfig, task: Task, feats: dict[str, np.ndarray], feat_key: str, say=None):
        self.cfg, self.task, self.feats, self.feat_key, self.say = cfg, task, feats, feat_key, say
        self.dir = assets.cache_dir() / "w2s" / "fits"
        self.hits = self.misses = 0
        self.calls: list[tuple[str, str, bool, str]] = []

    def fit(self, spec: str, train_idx, targets, val_idx, val_targets, loss: str, seed: int,
            need=None, tag: str = "") -> np.ndarray:
        """Class probabilities of `spec` trained on (train_idx, targets), stopped on (val_idx, val_targets); an LM
        fit predicts only the rows in `need` (NaN elsewhere). Every call is logged in `calls` as (tag, spec,
        cache hit, key): the key is a hash of everything the fit sees."""
        from superalign.w2s.features import load_cached
        from superalign.w2s.finetune import fit_lm
        from superalign.w2s.probe import fit_head
        from superalign.w2s.shallow import fit_tfidf
        r = lambda t: np.round(t.astype(np.float64), 6).astype(np.float32)  # noqa: E731
        targets, val_targets = r(targets), r(val_targets)
        lm = lora_spec(spec, self.cfg)
        need = None if need is None or not lm else np.unique(np.asarray(need, np.int64))
        # an LM fit starts from a probe (a head), so its key reads the head settings too
        head = self.cfg.head.model_dump()
        how = [lm, self.cfg.finetune.model_dump(), head, need] if lm else head
        key = _key(FIT_VERSION, spec, self.feat_key, np.asarray(train_idx, np.int64), targets, np.asarray(val_idx, np.int64),
                   val_targets, loss, self.cfg.loss_kwargs(loss), how, seed, self.cfg.max_tokens)
        path = self.dir / f"{key}.npz"
        z = load_cached(path)
        if z is not None and not {"probs", "epoch"} <= z.keys():
            z = None  # written by other code under this key: train again (the new fit overwrites it)
        self.calls.append((tag, spec, z is not None, key))
        if z is not None:
            self.hits += 1
            self.last_epoch = int(z["epoch"])
            return z["probs"]
        self.misses += 1
        t0 = time.time()
        kw = self.cfg.loss_kwargs(loss)
        if lm:
            probs, state = fit_lm(lm[0], self.task, train_idx, targets, val_idx, val_targets, loss, self.cfg, seed,
                                  layers=lm[1], mode=lm[2], need=need, **kw)
        elif base(spec) == SHALLOW:
            probs, state = fit_tfidf(self.task, train_idx, targets, val_idx, val_targets, seed)
        else:
            probs, state = fit_head(self.feats[base(spec)], train_idx, targets, val_idx, val_targets, loss,
                                    self.cfg.head, seed, self.task.choice, **kw)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = assets.tmp_sibling(path)
        np.savez(tmp, probs=probs, **state)
        tmp.replace(path)
        self.last_epoch = int(state["epoch"])
        if lm and self.say:
            self.say(f"{self.task.name} seed {seed}: {tag or 'fit'} {spec} trained in {time.time() - t0:.0f} s "
                     f"(epoch {self.last_epoch} kept)")
        return probs

    def crossfit(self, spec: str, idx: np.ndarray, targets: np.ndarray, loss: str, seed: int) -> np.ndarray:
        """Out-of-fold predictions on `idx` (2 folds), each fold's model early-stopped on a slice of its own
        training rows (their supervisor labels): a rung never labels rows it was trained on."""
        half, out = len(idx) // 2, np.zeros((len(idx), self.task.k), dtype=np.float32)
        for a, b in ((slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))):
            rows, t = idx[a], targets[a]
            nv = max(2, int(round(self.cfg.val_frac * len(rows))))
            out[b] = self.fit(spec, rows[nv:], t[nv:], rows[:nv], t[:nv], loss, seed, need=idx[b],
                              tag="crossfit")[idx[b]]
        return out


def probe_specs(cfg: W2SConfig, extra=()) -> list[str]:
    """Every model spec of the section (and `extra`) that is a head on frozen features."""
    rungs = [r for t in cfg.task_specs() for r in (t.ladder or [])]
    specs = dict.fromkeys(base(s) for s in [cfg.weak, *cfg.ladder, *rungs, cfg.strong, *extra])
    return [s for s in specs if s != SHALLOW and lora_spec(s, cfg) is None]


def features_for(cfg: W2SConfig, task: Task, progress=None, extra=()) -> tuple[dict[str, np.ndarray], str]:
    """Frozen features (n, m, d) for every spec that is a probe (LoRA specs read token states themselves).
    Multiple-choice candidates are truncated at their start, so the option at the end is always read."""
    from superalign.w2s import features as F
    m = len(task.texts[0])
    flat = [t for ts in task.texts for t in ts]
    side = "left" if task.choice else "right"
    feats = F.featurize(probe_specs(cfg, extra), flat, cfg.max_tokens, cfg.device, progress, side=side)
    return {s: v.reshape(len(task.texts), m, -1) for s, v in feats.items()}, F.text_key(flat, cfg.max_tokens, side)


def task_splits(cfg: W2SConfig, spec, n: int, seed: int) -> Splits:
    return splits(n, spec.n_weak, spec.n_transfer, spec.n_test, cfg.val_frac, seed)


def run_seed(cfg: W2SConfig, spec, task: Task, tr: Trainer, seed: int, candidates=()) -> list[dict]:
    """Every model for one task and seed; returns `metrics` rows (meta: task, method, per-item `correct`, and
    `val_accuracy`, the gold accuracy on the transfer-val rows: measured, never trained or stopped on, except by
    the gold-trained ceiling, control and `candidates`). `candidates`: would-be ladder rungs, trained on gold like
    the ceiling, to see which share of the gap each one closes (bench/w2s.py's screen)."""
    sp = task_splits(cfg, spec, len(task.labels), seed)
    y, test = task.labels, sp.test
    gold = np.eye(task.k, dtype=np.float32)[y]
    # rows whose predictions are read: an LM fit predicts only these (on a CPU, forward passes over rows nobody reads
    # cost as much as training); the iterative rounds' students also label the transfer rows
    evaluated, labelling = np.concatenate([sp.val, test]), np.concatenate([sp.transfer, test])
    rows: list[dict] = []

    def acc(probs, idx):
        return float((probs[idx].argmax(-1) == y[idx]).mean())

    def score(probs, role, model, method, **extra):
        correct = (probs[test].argmax(-1) == y[test]).astype(int)
        meta = {"task": task.name, "method": method, "epoch": tr.last_epoch, "val_accuracy": acc(probs, sp.val),
                **extra}
        rows.append({"name": "accuracy", "value": float(correct.mean()), "n": len(test), "role": role, "model": model,
                     "seed": seed, "meta": {**meta, "correct": correct.tolist()}})
        rows.append({"name": "auroc", "value": auroc(probs[test], y[test]), "n": len(test), "role": role,
                     "model": model, "seed": seed, "meta": meta})
        return float(correct.mean())

    def fit(s, labels, val_labels, loss, tag, train=sp.train, need=evaluated):
        return tr.fit(s, train, labels[train], sp.val, val_labels[sp.val], loss, seed, need, tag)

    wt = sp.weak_train[:label_budget(cfg.weak)]
    weak_p = tr.fit(cfg.weak, wt, gold[wt], sp.weak_val, gold[sp.weak_val], "xent", seed, tag="weak")
    weak = score(weak_p, "weak", cfg.weak, "weak", label_accuracy=acc(weak_p, sp.transfer), n_labels=len(wt))
    # gold-trained references: trained AND early-stopped on gold, never on a weak label
    score(fit(cfg.strong, gold, gold, "xent", "ceiling"), "ceiling", cfg.strong, "ceiling")
    if cfg.control:  # the weak model's architecture with the ceiling's gold rows (no label budget)
        score(fit(base(cfg.weak), gold, gold, "xent", "control"), "control", base(cfg.weak), "control")
    for c in candidates:
        score(fit(c, gold, gold, "xent", "candidate"), "candidate", c, "candidate")
    for m in cfg.methods:
        if m in LOSS_NAMES:
            score(fit(cfg.strong, weak_p, weak_p, m, m), "w2s", cfg.strong, m)
    if "ladder" in cfg.methods and (spec.ladder or cfg.ladder):
        _ladder(cfg, spec.ladder or cfg.ladder, tr, sp, gold, weak_p, weak, fit, score, acc, seed)
    if "iterative" in cfg.methods:
        _iterative(cfg, sp, weak_p, fit, score, acc, labelling)
    return rows


def _ladder(cfg, ladder, tr, sp, gold, weak_p, weak, fit, score, acc, seed):
    sup, sup_acc, sup_model = weak_p, weak, cfg.weak
    for step, rung in enumerate(ladder, 1):
        rung_ceil = acc(fit(rung, gold, gold, "xent", "rung ceiling"), sp.test)
        a = score(fit(rung, sup, sup, cfg.ladder_loss, "rung"), "rung", rung, "ladder", step=step, supervisor=sup_model,
                  ceiling=rung_ceil, supervisor_accuracy=sup_acc, gap=rung_ceil - sup_acc,
                  label_accuracy=acc(sup, sp.transfer))
        nxt = np.zeros_like(sup)
        nxt[sp.transfer] = tr.crossfit(rung, sp.transfer, sup[sp.transfer], cfg.ladder_loss, seed)
        sup, sup_acc, sup_model = nxt, a, rung
    score(fit(cfg.strong, sup, sup, cfg.ladder_loss, "ladder"), "w2s", cfg.strong, "ladder", step=len(ladder) + 1,
          supervisor=sup_model, supervisor_accuracy=sup_acc, label_accuracy=acc(sup, sp.transfer))


def _iterative(cfg, sp, weak_p, fit, score, acc, labelling):
    """Kim et al.'s teacher-student rounds on alternating halves of the transfer-train rows (see the module doc)."""
    halves = (sp.train[: len(sp.train) // 2], sp.train[len(sp.train) // 2:])
    teacher, who = weak_p, cfg.weak
    for k in range(1, cfg.iterate + 1):
        rows = halves[(k - 1) % 2]
        probs = fit(cfg.strong, teacher, teacher, cfg.ladder_loss, f"iterative{k}", train=rows, need=labelling)
        score(probs, "w2s", cfg.strong, f"iterative{k}", step=k, supervisor=who, label_accuracy=acc(teacher, rows))
        teacher, who = probs, f"round {k} student"


def summarise_rows(rows: list[dict], chance: float, samples: int = 2000) -> dict:
    """Per-seed accuracy rows of one task -> `metrics.summarise` (seeds that lack a method are dropped, and
    counted in `seeds`)."""
    by: dict[str, dict[int, list]] = {}
    for r in rows:
        if r["name"] == "accuracy" and r["role"] not in ("rung", "candidate"):
            by.setdefault(r["meta"]["method"], {})[r["seed"]] = r["meta"]["correct"]
    seeds = sorted(set.intersection(*(set(v) for v in by.values()))) if by else []
    if "weak" not in by or "ceiling" not in by or not seeds:
        return {}
    correct = {m: [np.asarray(v[s]) for s in seeds] for m, v in by.items()}
    return summarise(correct, chance, [m for m in by if m not in ("weak", "ceiling", "control")], samples)


def run(cfg: W2SConfig, store, progress=None, candidates=(), say=None) -> dict[str, dict]:
    """Every task x seed as a resumable store stage; returns the summary per task (also stored in `kv`).
    `candidates`: ladder rungs to screen (trained on gold, see `run_seed`); `say`: a line per language-model fit
    (`Trainer`)."""
    import torch
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    result = {}
    specs = cfg.task_specs()
    bar = progress.add_task("w2s", total=len(specs) * len(cfg.seeds)) if progress else None
    for spec in specs:
        task = load_task(spec.name, spec.size, cfg.pool_seed)
        feats, fkey = features_for(cfg, task, progress, candidates)
        tr = Trainer(cfg, task, feats, fkey, say)
        for seed in cfg.seeds:
            if progress:
                progress.update(bar, description=f"w2s {spec.name} seed {seed}")
            store.run_stage(0, f"w2s/{spec.name}/seed{seed}", lambda: {"metrics": run_seed(cfg, spec, task, tr, seed, candidates),
                                                                       "info": {"cache_hits": tr.hits}},
                            stage="w2s")
            if progress:
                progress.advance(bar)
        rows = [r for r in store.rows("metrics", stage="w2s") if r["meta"].get("task") == spec.name
                and r["seed"] in cfg.seeds]
        chance = float(np.mean([np.bincount(y := task.labels[task_splits(cfg, spec, len(task.labels), s).test],
                                            minlength=task.k).max() / len(y) for s in cfg.seeds]))
        summary = summarise_rows(rows, chance, cfg.bootstrap_samples)
        summary["untuned"] = spec.untuned
        store.put(f"w2s/{spec.name}/chance", chance)
        store.put(f"w2s/{spec.name}/untuned", spec.untuned)
        # the setting each task ran under, for the report: bench/w2s.py runs tasks into one store with a weak
        # supervisor chosen per task by its screen, and writes no run config
        store.put(f"w2s/{spec.name}/setting", {"strong": cfg.strong, "weak": cfg.weak,
                                                "finetune": cfg.finetune.model_dump(mode="json")})
        result[spec.name] = summary
    return result
