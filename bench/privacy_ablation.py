"""Why does the loop raise privacy leaks even where it trains no privacy row? A development ablation.

On the value-axes bench's headline seeds (bench/results/value_axes.json) both loop arms raise the share of private-
person requests the learner does not decline, the harmlessness-only arm as much as the multi-axis one, and on the
guard split it is the conformity phases that raise it (the `phases` lines). Read by hand, the flips go from the base
learner's "I don't have the ability to provide ..." to an invented phone number or address. The suspect is the
over-refusal counterweight of the harmlessness conformity data (`loop.refusal_anchors`: on benign prompts the
learner's best answer is preferred to a written refusal), which may teach the learner to drop any disclaimer.

Variants of the harmlessness-only loop (the value-axes bench's `single` arm), each a full run of the preset:
`default`, and `no_anchors` (`loop.refusal_anchors: false`). Every variant is scored on the privacy axis and on
harmlessness, on the same items, against the base (round 0 of the `default` run); paired exact McNemar per metric.
Development seeds only (0-2): this chooses a design, so it never reads a headline seed.

    OMP_NUM_THREADS=1 python bench/privacy_ablation.py --seeds 0 --variants default &
    OMP_NUM_THREADS=1 python bench/privacy_ablation.py --seeds 0 --variants no_anchors; wait
    python bench/privacy_ablation.py --seeds 0          # reads both finished runs; writes the result

Resumable (a finished run is read back from --out). Writes bench/results/privacy_ablation_dev.json.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from superalign.loop import efficacy as E  # noqa: E402

DEV_SEEDS = (0, 1, 2)
VARIANTS = {"default": [], "no_anchors": ["loop.refusal_anchors=false"]}
METRICS = ("privacy", "privacy_control", "compliance", "over_refusal", "sycophancy", "honesty")
RESULTS = ROOT / "bench" / "results"


def _value_axes():
    """The value-axes bench's arm runner (same config, same re-scoring by the current judges)."""
    spec = importlib.util.spec_from_file_location("value_axes", ROOT / "bench" / "value_axes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def analyse(per_seed: dict, variants: list[str]) -> dict:
    out: dict = {"seeds": sorted(per_seed), "variants": {v: VARIANTS[v] for v in variants}, "metrics": {}}
    for m in METRICS:
        row = {arm: E.rate(per_seed, arm, m) for arm in ["base", *variants]}
        row.update({f"{v}_vs_base": E.paired(per_seed, "base", v, m) for v in variants})
        if "default" in variants:
            row.update({f"{v}_vs_default": E.paired(per_seed, "default", v, m) for v in variants if v != "default"})
        out["metrics"][m] = row
    return out


def show(res: dict) -> None:
    vs = list(res["variants"])
    print(f"\nPrivacy ablation (development seeds {res['seeds']}; the harmlessness-only loop, variants {vs})")
    print(f"{'metric':<16}" + "".join(f"{a:>12}" for a in ["base", *vs]) + "   change vs base [95% CI] (p)")
    for m, row in res["metrics"].items():
        rates = "".join(f"{row[a]['value']:>12.3f}" if row[a] else f"{'-':>12}" for a in ["base", *vs])
        ch = "; ".join(f"{v} {row[f'{v}_vs_base']['diff']:+.3f} [{row[f'{v}_vs_base']['ci'][0]:+.3f},"
                       f"{row[f'{v}_vs_base']['ci'][1]:+.3f}] (p={row[f'{v}_vs_base']['p']:.2g})"
                       for v in vs if row.get(f"{v}_vs_base"))
        print(f"{m:<16}{rates}   {ch}")
    for seed, ph in res.get("phases", {}).items():
        for v, p in ph.items():
            print(f"seed {seed} {v:<10} phases: " + "; ".join(
                f"{x['phase']} {'kept' if x['kept'] else 'rolled back'} "
                f"[privacy {x['guard'].get('privacy', {}).get('before', float('nan')):.2f}->"
                f"{x['guard'].get('privacy', {}).get('after', float('nan')):.2f}]" for x in p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", type=Path, default=Path("runs/bench-privacy-ablation"))
    args = ap.parse_args()
    if any(s not in DEV_SEEDS for s in args.seeds):
        sys.exit(f"--seeds: this ablation chooses a design, so it runs on development seeds {DEV_SEEDS} only")
    va = _value_axes()
    per_seed: dict = {}
    phases: dict = {}
    for seed in args.seeds:
        per_seed[seed], phases[seed] = {}, {}
        for v in args.variants:
            cfg = va.config(args.preset, seed, "single", VARIANTS[v])
            d = args.out / args.preset / f"seed{seed}" / v
            va.log(f"seed {seed} {v}: {d}")
            got = va.run_arm(cfg, d)
            per_seed[seed][v] = {"outcomes": got["evals"][max(got["evals"])]["outcomes"]}
            phases[seed][v] = got["phases"]
            if v == "default":
                per_seed[seed]["base"] = {"outcomes": got["evals"][0]["outcomes"]}
    if "default" not in args.variants or len(args.variants) < 2:
        return  # one variant of a parallel pair: the last call (all variants) analyses
    res = analyse(per_seed, args.variants)
    res["phases"] = phases
    res["preset"] = args.preset
    show(res)
    path = RESULTS / "privacy_ablation_dev.json"
    path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(f"wrote {va.rel(path)}")


if __name__ == "__main__":
    main()
