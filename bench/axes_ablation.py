"""Why do the loops regress privacy and honesty? Development ablations of the value-axes bench's arms.

On the value-axes bench's headline seeds (bench/results/value_axes.json) both loop arms raise the share of private-
person requests the learner does not decline, the harmlessness-only arm as much as the multi-axis one, and the
multi-axis arm affirms false claims far more often than the base (a yes-bias: its answers open with the honesty
rows' own affirm template, "Yes, that's true. ..."). Each variant is one of the bench's arms with one change:

- `single`: the harmlessness-only loop (the bench's `single` arm); `single_no_anchors`: the same without the
  over-refusal counterweight (`loop.refusal_anchors: false`, on benign prompts the learner's best answer preferred
  to a written refusal), the suspect for privacy: it may teach the learner to drop any disclaimer;
- `multi`: the multi-axis loop (the bench's `multi` arm); `multi_no_honesty_rows`: the same without the honesty
  axis's training rows (`loop.axes.honesty: 0`; still evaluated and guarded), the suspect for the yes-bias;
  `multi_privacy_x3`: the same with the privacy rows weighed three times (`loop.axes.privacy: 3`, in the mix of
  every axis; the harmlessness-only mix has none): whether more privacy refusals counter the privacy rise.

Every variant is scored on every axis on the same items against the base (round 0 of the first variant's run);
paired exact McNemar per metric, and each variant against its reference (`single` or `multi`). Development seeds
only (0-2): this chooses a design, so it never reads a headline seed.

    OMP_NUM_THREADS=1 python bench/axes_ablation.py --seeds 0 --variants multi &
    OMP_NUM_THREADS=1 python bench/axes_ablation.py --seeds 0 --variants multi_no_honesty_rows; wait
    python bench/axes_ablation.py --seeds 0          # reads every finished run; writes the result

Resumable (a finished run is read back from --out); a call with one variant runs it and writes nothing. Writes
bench/results/axes_ablation.json (development seeds only, so it is a development result
whatever its name says: `dev_seeds` in the file, `headline_seeds` empty).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from superalign.loop import efficacy as E  # noqa: E402

DEV_SEEDS = (0, 1, 2)
VARIANTS = {"single": ("single", []), "single_no_anchors": ("single", ["loop.refusal_anchors=false"]),
            "multi": ("multi", []), "multi_no_honesty_rows": ("multi", ["loop.axes.honesty=0"]),
            "multi_privacy_x3": ("multi", ["loop.axes.privacy=3"])}
REFERENCE = {"single_no_anchors": "single", "multi_no_honesty_rows": "multi", "multi_privacy_x3": "multi"}
METRICS = ("privacy", "privacy_control", "honesty", "honesty_control", "compliance", "over_refusal", "sycophancy",
           "sycophancy_control")
RESULTS = ROOT / "bench" / "results"


def _value_axes():
    """The value-axes bench's arm runner (same config, same re-scoring by the current judges): the sibling script,
    imported as a module from bench/ (bench is scripts, not a package)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import value_axes
    return value_axes


def analyse(per_seed: dict, variants: list[str]) -> dict:
    # every seed here is a development seed: the file says so, and names no headline seed (it has used none)
    out: dict = {"dev_seeds": sorted(per_seed), "headline_seeds": [], "variants": {v: VARIANTS[v] for v in variants},
                 "metrics": {}}
    for m in METRICS:
        row = {arm: E.rate(per_seed, arm, m) for arm in ["base", *variants]}
        row.update({f"{v}_vs_base": E.paired(per_seed, "base", v, m) for v in variants})
        row.update({f"{v}_vs_{REFERENCE[v]}": E.paired(per_seed, REFERENCE[v], v, m) for v in variants
                    if REFERENCE.get(v) in variants})
        out["metrics"][m] = row
    return out


def show(res: dict) -> None:
    vs = list(res["variants"])
    print(f"\nValue-axes ablation (development seeds {res['dev_seeds']}; variants {vs})")
    print(f"{'metric':<19}" + "".join(f"{a[:12]:>13}" for a in ["base", *vs]) + "   change [95% CI] (p)")
    for m, row in res["metrics"].items():
        rates = "".join(f"{row[a]['value']:>13.3f}" if row[a] else f"{'-':>13}" for a in ["base", *vs])
        ch = "; ".join(f"{k.replace('_vs_', ' - ')} {t['diff']:+.3f} [{t['ci'][0]:+.3f},{t['ci'][1]:+.3f}] "
                       f"(p={t['p']:.2g})" for k, t in row.items() if "_vs_" in k and t)
        print(f"{m:<19}{rates}   {ch}")
    for seed, ph in res.get("phases", {}).items():
        for v, p in ph.items():
            def moved(x: dict) -> str:
                g = [f"{m} {x['guard'][m]['before']:.2f}->{x['guard'][m]['after']:.2f}" for m in ("privacy", "honesty")
                     if m in x["guard"]]
                return f" [{', '.join(g)}]" if g else ""
            print(f"seed {seed} {v} phases: " + "; ".join(
                f"{x['phase']} {'kept' if x['kept'] else 'rolled back'}{moved(x)}" for x in p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--variants", nargs="+", default=None, choices=list(VARIANTS),
                    help="default: every variant with a finished run for each seed (at least two)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-axes-ablation"))
    args = ap.parse_args()
    if any(s not in DEV_SEEDS for s in args.seeds):
        sys.exit(f"--seeds: this ablation chooses a design, so it runs on development seeds {DEV_SEEDS} only")
    from superalign.store import RunStore
    folder = lambda seed, v: args.out / args.preset / f"seed{seed}" / v  # noqa: E731
    variants = args.variants or [v for v in VARIANTS if all(
        (folder(s, v) / "store.sqlite").exists() and RunStore(folder(s, v)).get("status") == "done"
        for s in args.seeds)]
    if not variants:
        sys.exit(f"no finished variant under {args.out}: run one with --variants NAME")
    va = _value_axes()
    per_seed: dict = {}
    phases: dict = {}
    for seed in args.seeds:
        per_seed[seed], phases[seed] = {}, {}
        for v in variants:
            arm, sets = VARIANTS[v]
            d = folder(seed, v)
            va.log(f"seed {seed} {v}: {d}")
            got = va.run_arm(va.config(args.preset, seed, arm, sets), d)
            per_seed[seed][v] = {"outcomes": got["evals"][max(got["evals"])]["outcomes"]}
            phases[seed][v] = got["phases"]
            per_seed[seed].setdefault("base", {"outcomes": got["evals"][0]["outcomes"]})
    if len(variants) < 2:
        return  # one variant of a parallel set: a last call without --variants analyses
    res = analyse(per_seed, variants)
    res["phases"] = phases
    res["preset"] = args.preset
    show(res)
    path = RESULTS / "axes_ablation.json"
    path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(f"wrote {va.rel(path)}")


if __name__ == "__main__":
    main()
