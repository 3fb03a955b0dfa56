"""Which multiple-choice tasks the base learner does above chance, scored so that a letter prior cannot pass
(issue 22): the screen, the chosen set at the CPU preset's size, the cost per item, and the leak check.

    nice -n 15 python bench/competence_screen.py [--n 100] [--seeds 0 1 2] [--parts screen cost target leaks]

1. Screen. Per candidate task, on its *train* split (the evaluation reads only test and validation items, so the
   choice is never made on what is then reported): the base learner's accuracy under `evaluation.likelihood`
   (cloze = length-normalised log-likelihood of each option's text; `letters` = the lettered list averaged over
   cyclic rotations) with its 95% Wilson interval, chance (mean 1/options), and the best-constant baseline (the
   share of the most common gold position: "always answer the same option"; for yes/no tasks the majority class).
   A task passes when accuracy >= chance + 0.05, the interval's lower end is above chance, and accuracy beats the
   best constant. The old next-token letter scoring is shown for MMLU and Social IQa, where issue 22 found "A" on
   every item. QuaRTz and sarcasm are trained by the loop's competence SFT: shown, never eligible.
2. Target. The default untrained set (`eval.competence`) at the CPU preset's size (`competence_items` per task,
   the test split, per seed): accuracy against chance; the target is >= chance + 0.10.
3. Cost. Seconds per item for each task (the machine is shared: the load average is printed beside), and the
   shared-prefix path (`LocalLM.continuation_logprobs`) against scoring (question, answer) pairs one by one.
4. Leaks. Every item of the chosen tasks and of the helpfulness reference set against everything the loop trains
   on (benign pool, contrast look-alikes, AdvBench seeds, the competence SFT tasks' train splits): exact matches
   after normalising, and the MiniLM cosine (near-duplicate at >= 0.85, the project's threshold).

Writes bench/results/competence_screen.json after every task (a killed run keeps what it measured).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

from superalign import config, data, stats
from superalign.data import dedup
from superalign.evaluation import likelihood, suite

# (row name, data set, format override or None). Chosen before any measurement from the shipped MC data sets
# (docs: offline-assets.md section 5): QA and reasoning tasks with 2-6 answer options and a gold label.
CANDIDATES = [("socialiqa", "socialiqa", None), ("mmlu", "mmlu", None), ("mmlu:letters", "mmlu", "letters"),
              ("capitals", "capitals", None), ("wordassoc", "wordassoc", None), ("logiqa", "logiqa", None),
              ("tomi", "tomi", None), ("moral_exceptqa", "moral_exceptqa", None),
              ("socialiqa:old_letter", "socialiqa", "old"), ("mmlu:old_letter", "mmlu", "old")]
TRAINED = ("quartz", "sarcasm")
MARGIN, TARGET = 0.05, 0.10


def items(task: str, fmt: str | None, split: str, n: int, seed: int) -> list[dict]:
    rows = data.load(task, split, seed=seed)[:n]
    if fmt == "old":  # the pre-issue-22 scoring: next-token letter after the lettered prompt
        return [{k: v for k, v in r.items() if k != "options"} for r in rows]
    return [dict(r, format=fmt) for r in rows] if fmt else rows


def baselines(rows: list[dict]) -> dict:
    k = [len(r.get("options") or r["choices"]) for r in rows]
    gold = Counter(int(r["label"]) for r in rows)
    return {"chance": float(np.mean([1 / x for x in k])), "best_constant": max(gold.values()) / len(rows),
            "best_constant_position": max(gold, key=gold.get), "gold_positions": dict(sorted(gold.items()))}


def score(lm, rows: list[dict]) -> tuple[list[dict], float]:
    t0 = time.perf_counter()
    res = [x for i in range(0, len(rows), 16) for x in likelihood.score_choices(lm, rows[i:i + 16])]
    return res, (time.perf_counter() - t0) / max(1, len(rows))


def screen_row(lm, name: str, task: str, fmt: str | None, n: int, seed: int) -> dict:
    rows = items(task, fmt, "train", n, seed)
    res, spi = score(lm, rows)
    acc, lo, hi = stats.rate_ci([x["correct"] for x in res])
    b = baselines(rows)
    ok = acc >= b["chance"] + MARGIN and lo > b["chance"] and acc > b["best_constant"]
    return {"task": task, "format": fmt or rows[0].get("format", "cloze"), "split": "train", "n": len(rows),
            "accuracy": acc, "lo": lo, "hi": hi, **b, "margin_over_chance": acc - b["chance"],
            "pred_positions": dict(sorted(Counter(x["pred"] for x in res).items())),
            "passes": bool(ok) and task not in TRAINED and fmt != "old", "seconds_per_item": spi,
            "trained_by_loop": task in TRAINED, "load_avg_1min": os.getloadavg()[0]}


def target(lm, cfg, seeds: list[int]) -> dict:
    """The default untrained set on the test split at the CPU preset's size, per seed and pooled."""
    out, pooled, chances = {}, [], []
    for seed in seeds:
        sets = suite.task_items(cfg.eval, seed, "test")
        per, allc, ch = {}, [], []
        for t, rows in sets.items():
            res, spi = score(lm, rows)
            c = [x["correct"] for x in res]
            per[t] = {"n": len(c), "accuracy": float(np.mean(c)), "chance": baselines(rows)["chance"],
                      "seconds_per_item": spi}
            allc += c
            ch += [1 / len(r["options"]) for r in rows]
        acc, lo, hi = stats.rate_ci(allc)
        out[seed] = {"tasks": per, "n": len(allc), "accuracy": acc, "lo": lo, "hi": hi,
                     "chance": float(np.mean(ch)), "margin": acc - float(np.mean(ch))}
        pooled += allc
        chances += ch
    acc, lo, hi = stats.rate_ci(pooled)
    return {"competence": list(cfg.eval.competence), "items_per_task": cfg.eval.competence_items, "per_seed": out,
            "pooled": {"n": len(pooled), "accuracy": acc, "lo": lo, "hi": hi, "chance": float(np.mean(chances)),
                       "margin": acc - float(np.mean(chances)), "meets_target": acc - float(np.mean(chances)) >= TARGET}}


class _PairsOnly:
    """The learner seen through `logprobs` alone: what an HTTP backend offers, and what the pairs path costs."""

    def __init__(self, lm):
        self.logprobs = lm.logprobs


def cost(lm, n: int, seed: int) -> dict:
    rows = items("socialiqa", None, "train", n, seed)
    shared, t_shared = score(lm, rows)
    pairs, t_pairs = score(_PairsOnly(lm), rows)
    return {"task": "socialiqa", "n": len(rows), "seconds_per_item_shared_prefix": t_shared,
            "seconds_per_item_pairs": t_pairs, "same_predictions": [x["pred"] for x in shared] == [x["pred"] for x in pairs],
            "max_abs_score_diff": float(max(abs(a - b) for x, y in zip(shared, pairs) for a, b in zip(x["scores"], y["scores"]))),
            "load_avg_1min": os.getloadavg()[0]}


def leaks(tasks: list[str], threshold: float = 0.85) -> dict:
    """Each evaluation item's closest text among everything the loop trains on (exact and MiniLM cosine)."""
    from superalign.data import boundary
    train = {"benign_pool": [r["prompt"] for r in data.load_all("benign_easy")],
             "contrast_lookalikes": [r["prompt"] for r in boundary.contrast_prompts()],
             "advbench_seeds": [r["prompt"] for r in data.load_all("advbench")]}
    for t in TRAINED:  # the competence SFT's pool: the task's train split
        train[f"{t}_train"] = [r.get("question") or r["text"] for r in data.load(t, "train", seed=0)]
    embed = dedup.minilm()
    tv = {k: embed(v) for k, v in train.items()}
    tn = {k: {dedup.normalise(x) for x in v} for k, v in train.items()}
    out = {}
    for t in tasks:
        rows = data.load_all(t)
        texts = [r.get("question") or r["prompt"] for r in rows]
        ev = embed(texts)
        per = {}
        for k in train:
            cos = dedup.max_cosine(ev, tv[k])
            per[k] = {"exact": int(sum(dedup.normalise(x) in tn[k] for x in texts)), "max_cosine": float(cos.max()),
                      "near_duplicates": int((cos >= threshold).sum())}
        out[t] = {"items": len(rows), "against": per}
    return out


def screen(lm, n: int, out: dict, save) -> None:
    out.update(n=n, screen_seed=0, screen={})
    print(f"screen: {n} train-split items per task; pass = acc >= chance + {MARGIN}, Wilson lo > chance, acc > best constant")
    print(f"{'task':22} {'fmt':8} {'n':>4} {'acc':>6} {'95% CI':>14} {'chance':>7} {'const':>6} {'pass':>5} {'s/item':>7}")
    for name, task, fmt in CANDIDATES + [(t, t, None) for t in TRAINED]:
        r = screen_row(lm, name, task, fmt, n, seed=0)
        out["screen"][name] = r
        flag = "train" if r["trained_by_loop"] else ("yes" if r["passes"] else "no")
        print(f"{name:22} {r['format'] if fmt != 'old' else 'letter':8} {r['n']:>4} {r['accuracy']:6.3f} "
              f"[{r['lo']:.3f}, {r['hi']:.3f}] {r['chance']:7.3f} {r['best_constant']:6.3f} {flag:>5} "
              f"{r['seconds_per_item']:7.2f}   preds {r['pred_positions']}", flush=True)
        save()


def print_target(t: dict) -> None:
    print(f"\ntarget: eval.competence={t['competence']}, {t['items_per_task']} test items per task per seed")
    for seed, s in t["per_seed"].items():
        print(f"  seed {seed}: acc {s['accuracy']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}] chance {s['chance']:.3f} "
              f"margin {s['margin']:+.3f}  " + ", ".join(f"{k} {v['accuracy']:.3f}/{v['chance']:.2f} "
                                                       f"({v['seconds_per_item']:.2f} s/item)" for k, v in s["tasks"].items()))
    p = t["pooled"]
    print(f"  pooled: acc {p['accuracy']:.3f} [{p['lo']:.3f}, {p['hi']:.3f}] chance {p['chance']:.3f} margin "
          f"{p['margin']:+.3f} (target +{TARGET}: {'met' if p['meets_target'] else 'NOT met'})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="screen items per task (train split)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--parts", nargs="+", default=["screen", "cost", "target", "leaks"],
                    help="what to run; the others are kept from an existing results file")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "competence_screen.json"))
    a = ap.parse_args()
    from superalign.models.local import LocalLM
    lm = LocalLM(a.model, device="cpu")
    cfg = config.load(preset="default")
    path = Path(a.out)
    out = json.loads(path.read_text()) if path.exists() and set(a.parts) != {"screen", "cost", "target", "leaks"} else {}
    out.update({"model": a.model, "dtype": str(lm.model.dtype), "margin": MARGIN, "target_margin": TARGET})
    path.parent.mkdir(parents=True, exist_ok=True)
    save = lambda: path.write_text(json.dumps(out, indent=1) + "\n")  # noqa: E731
    if "screen" in a.parts:
        screen(lm, a.n, out, save)
    if "cost" in a.parts:
        out["cost"] = c = cost(lm, 30, seed=0)
        print(f"\ncost on {c['n']} socialiqa items: shared prefix {c['seconds_per_item_shared_prefix']:.3f} s/item, "
              f"(question, answer) pairs {c['seconds_per_item_pairs']:.3f} s/item; same predictions: "
              f"{c['same_predictions']} (max |score diff| {c['max_abs_score_diff']:.1e}); load {c['load_avg_1min']:.1f}")
        save()
    if "target" in a.parts:
        out["target"] = target(lm, cfg, a.seeds)
        print_target(out["target"])
        save()
    if "leaks" in a.parts:
        out["leaks"] = lk = leaks(list(cfg.eval.competence) + [cfg.eval.helpfulness])
        print("\nleaks (exact / near-duplicates at cos >= 0.85 / max cosine), per evaluation set against training:")
        for name, v in lk.items():
            print(f"  {name} ({v['items']} items): " + "; ".join(
                f"{k} {x['exact']}/{x['near_duplicates']}/{x['max_cosine']:.2f}" for k, x in v["against"].items()))
        save()
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
