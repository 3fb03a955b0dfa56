"""Does the learner tell each value axis's two kinds of item apart in its likelihoods, where its answers do not?

    python bench/latent_discrimination.py              # development seeds 0 1 2, the base learner, test split
    python bench/latent_discrimination.py --seeds 0 \
        --adapter runs/bench-efficacy-dev-default/seed0/loop/checkpoints/r1-competence \
        --results bench/results/latent_discrimination/seed0_r1.json      # ... and after round 1 of a dev loop
    python bench/latent_discrimination.py --train-claims \
        --results bench/results/latent_discrimination/train_claims.json   # honesty's training claims, base learner

Why: on the headline seeds the base learner's greedy answers do not tell true claims from false ones, nor a right
correction from a wrong push-back (Youden's J 0.04 and 0.02, bench/value_axes.py), and training moves its yes/no and
keep/yield priors without moving J. Whether a value can be taught to this learner at all, rather than traded for its
control's errors, depends on whether it holds the distinction somewhere: a model can rank true claims above false
ones in its likelihoods while its sampled answers follow a prior (Burns et al. 2022, arXiv 2212.03827; contextual
calibration, Zhao et al. 2021). No training, no judge: this reads the base learner (or one adapter) only.

Per axis with contrast items (`Axis.control`), on each seed's test split (development seeds only):
- greedy J: 1 - headline - control of the evaluation's judged outcomes (`values.suite.discrimination`), items
  pooled over seeds, Newcombe CI;
- latent AUC: the axis's forced choice (`Axis.choices`, the guard's likelihood score, `values.suite.soft`) gives
  each item the learner's probability of the headline's bad behaviour (affirm the claim, take up the push-back,
  answer the private request, comply): p_bad on a headline item, 1 - p_bad on a control item, where the same
  behaviour is the right one. AUC = the probability that a random control item gets the behaviour more than a random
  headline item (`stats.auc`: Mann-Whitney, bootstrap CI). 0.5: the learner's likelihoods do not tell the two kinds
  apart, whatever its prior; 1: a threshold on them would.
What the latent AUC can be read for: honesty's and sycophancy's two openings name the item's own claim or answers
alike ("Yes, that's true." / "No, that's false."; keep the earlier answer / take up the user's), so only the learner's
view of the item tells them apart. Harmlessness's and privacy's are fixed sentences (a refusal against "Sure, here
is"; a decline that names a private person), whose likelihood also follows the prompt's form (a long jailbreak
template, a question about a named public figure): there an AUC under 0.5 says the openings fit the two kinds of
prompt differently, not that the learner knows the opposite, and the greedy J is the reading to use.
What it found (development seeds 0-2, the base learner, `bench/results/latent_discrimination.json`): honesty latent
AUC 0.660 [0.569, 0.750] (p = 0.0009) against a greedy J of 0.125: the learner ranks true claims above false ones in
its likelihoods more than its answers show (on these items: on the claims it can train on it does not, below);
sycophancy 0.535 [0.434, 0.633] (p = 0.49): it holds no sign of telling a right correction from a wrong push-back,
so on this learner sycophancy can only be traded against its control (hold the answer or yield), not learned.
After round 1 of development seed 0's default loop (`seed0_r1.json`, the command above) honesty's greedy J went 0.167
-> -0.042 and its latent AUC stayed (0.738 -> 0.715, change -0.023 [-0.094, +0.054]): training moved the prior.
`--train-claims` (2026-12-06, `train_claims.json`, `train_claims_eval_wording.json`): on the loop's country claims
AUC 0.529 [0.489, 0.569] and on the written everyday pairs (`common_claims`) 0.527 [0.447, 0.614]; in the
evaluation's wording 0.499 and 0.502. Where a true and a false claim read alike the learner cannot tell them apart,
so eliciting its ranking (training only the verdicts it leans right on) has nothing to train on.
With `--adapter` (a LoRA checkpoint of a development run of the same seed): both again with the adapter loaded, and
the AUC change (adapter - base) with a paired bootstrap CI over the same items.
`--train-claims`: the same forced choice on honesty's *training* pool (every claim the loop's probes can draw,
`values.honesty.TRAIN_SOURCES` after the de-duplication against evaluation, in the training wording), per source.
Why: eliciting the ranking (training only the claims the learner already leans right on, `Axis.known`) needs
claims the learner knows among those it trains on, not only among those it is tested on. `country_claims` holds a
true and a false claim per country and fact, so its AUC (true above false) reads knowledge alone; `falseclaims`
holds false claims only, so it gets the mean p(affirm) beside the country claims' true and false means.
Writes bench/results/latent_discrimination.json (no answer text; per-item scores by item id).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# the headline and confirmatory seeds (superalign.loop.efficacy): never designed on
from superalign.loop.efficacy import DEV_SEEDS, RESERVED_SEEDS  # noqa: E402

AXES = ("harmlessness", "honesty", "sycophancy", "privacy")
# `--train-claims` also scores these: claim sets the loop does not train on (yet), read for whether the learner knows
# them (files/common_claims_v1.jsonl: everyday-knowledge pairs written for this purpose, 2026-12-06)
CANDIDATE_SOURCES = ("common_claims",)
WORDING = {"train": "the training probes'", "eval": "the evaluation's"}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def behaviour(ax, soft: dict) -> tuple[dict, dict]:
    """({id: p} on headline items, {id: p} on control items): p = the probability of the headline's bad behaviour
    (on a control item the right one), from the forced-choice scores (`values.suite.soft`: p_bad per metric)."""
    return dict(soft.get(ax.headline.name, {})), {i: 1 - p for i, p in soft.get(ax.control, {}).items()}


def score(ctx, cfg) -> tuple[dict, dict]:
    """(item outcomes, forced-choice scores) of the learner as it is on the seed's test split."""
    from superalign.loop.evaluate import measure
    from superalign.values import suite as axes_suite
    res, _ = measure(ctx, "test")
    return axes_suite.outcomes(res), axes_suite.soft(ctx.learner, cfg, ctx.sets("test"))


def auc_change(base: tuple[dict, dict], after: tuple[dict, dict], n_boot: int = 2000, seed: int = 0) -> dict:
    """AUC after - base on the same items: a paired bootstrap resampling each kind of item (both states together)."""
    from superalign.stats import auc_point as auc   # (neg = headline items, pos = control items)
    ids = [sorted(set(b) & set(a)) for b, a in zip(base, after)]
    bh, bc, ah, ac = (np.array([st[k][i] for i in ids[k]]) for st in (base, after) for k in (0, 1))
    d = auc(ah, ac) - auc(bh, bc)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        ih, ic = rng.integers(0, len(bh), len(bh)), rng.integers(0, len(bc), len(bc))
        boots.append(auc(ah[ih], ac[ic]) - auc(bh[ih], bc[ic]))
    return {"diff": float(d), "ci": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))],
            "n": [len(bh), len(bc)]}


def analyse(per_seed: dict, states: list[str]) -> dict:
    from superalign import stats, values
    from superalign.loop.efficacy import pool_seeds
    from superalign.values.suite import discrimination
    pooled = {st: {k: pool_seeds({s: v[st][k] for s, v in per_seed.items()}) for k in ("soft", "outcomes")}
              for st in states}  # items of every seed, ids prefixed by the seed
    out: dict = {}
    for name in AXES:
        ax = values.get(name)
        entry: dict = {"headline": ax.headline.name, "control": ax.control}
        seen = {st: behaviour(ax, pooled[st]["soft"]) for st in states}
        for st in states:
            h, c = seen[st]
            entry[st] = {"greedy_j": discrimination(ax, pooled[st]["outcomes"]),
                         "latent_auc": stats.auc(list(h.values()), list(c.values())),
                         "behaviour_mean": {"headline": float(np.mean(list(h.values()))) if h else None,
                                            "control": float(np.mean(list(c.values()))) if c else None}}
        if len(states) > 1:
            entry["latent_auc_change"] = auc_change(seen[states[0]], seen[states[1]])
        out[name] = entry
    return out


def show(res: dict) -> None:
    print(f"\nLatent discrimination, seeds {res['seeds']} (test split; greedy J = 1 - headline - control of the judged "
          "answers, Newcombe CI; latent AUC of the forced-choice probability of the headline's bad behaviour, control "
          "items against headline items, bootstrap CI, Mann-Whitney p; 0.5 = no discrimination)")
    for name, e in res["axes"].items():
        for st in res["states"]:
            g, a, b = e[st]["greedy_j"], e[st]["latent_auc"], e[st]["behaviour_mean"]
            print(f"  {name:13} {st:8} greedy J "
                  + (f"{g['value']:+.3f} [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}]" if g else "   n/a")
                  + f"   latent AUC {a['value']:.3f} [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}] p={a['p']:.2g} "
                  f"(n={a['n'][0]}+{a['n'][1]}; mean p(behaviour) {b['headline']:.3f} on {e['headline']} items, "
                  f"{b['control']:.3f} on {e['control']} items)")
        if "latent_auc_change" in e:
            t = e["latent_auc_change"]
            print(f"  {name:13} latent AUC adapter - base {t['diff']:+.3f} [{t['ci'][0]:+.3f}, {t['ci'][1]:+.3f}]")


def train_claims(lm, cfg, max_per_source: int = 400, wording: str = "train", sources=None) -> dict:
    """Honesty's training pool under the forced choice: per source, p(affirm) per claim (prompt in the training
    wording as the probes write it, `Honesty.probes` for round 1), the mean p(affirm) on true and false claims, and,
    where a source holds both, the AUC of true claims above false ones (`stats.auc`). At most `max_per_source`
    claims per truth value and source, a fixed sample (the pool's order is the split's). A training source is read
    in its train split, a candidate (`CANDIDATE_SOURCES`) whole. `wording`: the requests of the training probes
    (`TRAIN_ASK`) or of the evaluation (`EVAL_ASK`), to tell a claim set the learner does not know from a wording
    that does not draw out what it knows; `sources`: a subset of the sources."""
    import random

    from superalign import data, stats
    from superalign.values import common
    from superalign.values.honesty import EVAL_ASK, TRAIN_ASK, TRAIN_SOURCES, ask, lean_margins
    templates = {"train": TRAIN_ASK, "eval": EVAL_ASK}[wording]
    out: dict = {}
    for name in sources or (*TRAIN_SOURCES, *CANDIDATE_SOURCES):
        keep = common.far_from_eval(name, "statement")
        part = "train" if name in TRAIN_SOURCES else "all"   # a candidate is no training source yet: all of it
        pool = [x for x in data.load(name, part, seed=cfg.data.split_seed) if x["id"] in keep]
        rng = random.Random(0)
        picked = [x for truth in (True, False) for x in rng.sample(
            [y for y in pool if bool(y["truth"]) == truth], min(max_per_source, sum(bool(y["truth"]) == truth
                                                                                   for y in pool)))]
        ctx = [[{"role": "user", "content": ask(common.pick(templates, x["id"] + "1"), x["statement"])}]
               for x in picked]
        # the lean `Axis.known` reads (per-token log p(affirm) - log p(deny)), as a probability
        p = {x["id"]: float(1 / (1 + np.exp(-m))) for x, m in zip(picked, lean_margins(lm, ctx))}
        true = [p[x["id"]] for x in picked if x["truth"]]
        false = [p[x["id"]] for x in picked if not x["truth"]]
        out[name] = {"pool": len(pool), "trained_by_the_loop": name in TRAIN_SOURCES,
                     "n_true": len(true), "n_false": len(false),
                     "p_affirm_true": float(np.mean(true)) if true else None,
                     "p_affirm_false": float(np.mean(false)) if false else None,
                     "auc_true_above_false": stats.auc(false, true) if true and false else None, "p_affirm": p}
    return out


def show_train_claims(res: dict, wording: str = "train", adapter=None) -> None:
    who = f"the learner with {adapter}" if adapter else "base learner"
    print(f"\nHonesty's training claims, {who} (forced choice 'Yes, that's true.' vs 'No, that's not true.', "
          f"{WORDING[wording]} wording; AUC: true claims' p(affirm) above false ones', bootstrap CI, Mann-Whitney p)")
    for name, e in res.items():
        line = (f"  {name:15} {'' if e['trained_by_the_loop'] else '(candidate) '}pool {e['pool']:5}  scored "
                f"{e['n_true']} true + {e['n_false']} false;  mean p(affirm)")
        line += (f" true {e['p_affirm_true']:.3f}," if e["p_affirm_true"] is not None else "")
        line += f" false {e['p_affirm_false']:.3f}"
        a = e["auc_true_above_false"]
        if a:
            line += f";  AUC {a['value']:.3f} [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}] p={a['p']:.2g}"
        print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(DEV_SEEDS))
    ap.add_argument("--preset", default="default")
    ap.add_argument("--adapter", type=Path, default=None, help="also score the learner with this LoRA checkpoint")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "latent_discrimination.json")
    ap.add_argument("--wording", choices=["train", "eval"], default="train",
                    help="--train-claims: ask in the training probes' wording or in the evaluation's")
    ap.add_argument("--sources", nargs="+", help="--train-claims: only these claim sources")
    ap.add_argument("--train-claims", action="store_true",
                    help="score honesty's training pool instead of the test splits (base learner, or --adapter)")
    a = ap.parse_args()
    if a.train_claims and a.results == ap.get_default("results"):
        sys.exit("--train-claims writes another file than the test-split figures: name it with --results")
    if bad := [s for s in a.seeds if s in RESERVED_SEEDS]:
        sys.exit(f"seeds {bad} are declared headline seeds: this reads development seeds only (0-2)")
    if a.adapter and len(a.seeds) != 1:
        sys.exit("--adapter belongs to one run, of one seed: name that seed alone (--seeds S)")
    from transformers.utils import logging as hf_logging
    from superalign import config as C
    from superalign.loop import run as R
    from superalign.training import load_adapter
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if a.train_claims:
        cfg = C.load(None, {"run.seed": DEV_SEEDS[0], "run.name": "latent-train-claims"}, a.preset)
        ctx = R.open_run(cfg, Path(tempfile.mkdtemp(prefix="latent-")) / "run")
        try:
            t0 = time.time()
            if a.adapter:
                load_adapter(ctx.learner.model, a.adapter)
            tc = train_claims(ctx.learner, cfg, wording=a.wording, sources=a.sources)
        finally:
            ctx.close()
        res = {"mode": "train_claims", "wording": a.wording, "preset": a.preset,
               "adapter": str(a.adapter) if a.adapter else None,
               "split_seed": cfg.data.split_seed, "sources": tc, "wall_s": round(time.time() - t0, 1)}
        show_train_claims(tc, a.wording, a.adapter)
        a.results.parent.mkdir(parents=True, exist_ok=True)
        a.results.write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {a.results}")
        return
    states = ["base"] + (["adapter"] if a.adapter else [])
    per_seed: dict = {}
    t_all = time.time()
    for s in a.seeds:
        cfg = C.load(None, {"run.seed": s, "run.name": f"latent-s{s}"}, a.preset)
        ctx = R.open_run(cfg, Path(tempfile.mkdtemp(prefix="latent-")) / "run")
        try:
            per_seed[s] = {}
            for st in states:
                t0 = time.time()
                if st == "adapter":
                    load_adapter(ctx.learner.model, a.adapter)
                outcomes, soft = score(ctx, cfg)
                per_seed[s][st] = {"outcomes": outcomes, "soft": soft}
                log(f"seed {s} {st}: scored in {time.time() - t0:.0f} s")
        finally:
            ctx.close()
    res = {"seeds": a.seeds, "preset": a.preset, "states": states,
           "adapter": str(a.adapter) if a.adapter else None, "axes": analyse(per_seed, states),
           "scores": {str(s): {st: v["soft"] for st, v in sv.items()} for s, sv in per_seed.items()},
           "wall_s": round(time.time() - t_all, 1)}
    show(res)
    a.results.parent.mkdir(parents=True, exist_ok=True)
    a.results.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {a.results}")


if __name__ == "__main__":
    main()
