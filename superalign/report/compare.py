"""Held-out metrics across runs and seeds: `superalign runs compare RUN...`.

Per run: each metric at the baseline (round 0) and at the last evaluated round, with the run's own
interval (Wilson for a rate). Runs with the same `run.name` and different seeds form a group: the group row gives the
mean over seeds with a Student-t CI, and the paired change (last - baseline, per seed) with its
t-interval, because baseline and final are measured on the same items of the same seed; a rate's intervals are kept
within [0, 1] (its change within [-1, 1]).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from superalign.errors import SuperalignError
from superalign.evaluation import metrics as M
from superalign.stats import mean_ci_t
from superalign.report import CSS, Markup, esc, fmt_ci, line_plot, table
from superalign.store.summary import RunSummary

METRICS = ("compliance", "over_refusal", "competence")


def load(run_dirs: Sequence[str | Path]) -> tuple[list[dict], list[tuple[str, str]]]:
    """(runs, skipped). One record per run with held-out metrics: name, seed, run_id and
    {metric: {round: (value, lo, hi, n)}} from its `eval` rows; skipped: (dir, why) for every other directory."""
    out, skipped = [], []
    for d in run_dirs:
        if not (Path(d) / "store.sqlite").exists():
            skipped.append((str(d), "not a run directory (no store.sqlite)"))
            continue
        try:
            sm = RunSummary.of(d)
        except SuperalignError as e:  # a corrupt or empty store is skipped like a missing one, its problem named
            skipped.append((str(d), e.problem))
            continue
        why = sm.why_not_comparable()
        if why:
            skipped.append((str(d), why))
            continue
        series = {name: {r: (m.value, m.lo, m.hi, m.n) for r, m in sm.series(name).items()}
                  for name in {n for ms in sm.evals.values() for n in ms}}
        out.append({"dir": str(d), "run_id": sm.run_id, "name": sm.name, "seed": sm.seed, "status": sm.status,
                    "series": series})
    if not out:
        raise SuperalignError("none of these runs has held-out metrics: "
                              + "; ".join(f"{d}: {why}" for d, why in skipped),
                              "compare runs that finished at least the round-0 evaluation")
    return out, skipped


def _ends(series: dict[int, tuple]) -> tuple[tuple | None, tuple | None, int | None]:
    if not series:
        return None, None, None
    last = max(series)
    return series.get(0), series[last], last


def rows(runs: list[dict], metrics=METRICS) -> list[dict]:
    """Flat rows (one per run x metric, then one per group x metric), what the table and CSV show."""
    out = []
    for r in runs:
        for m in metrics:
            base, last, rnd = _ends(r["series"].get(m, {}))
            if last is None:
                continue
            out.append({"kind": "run", "name": r["name"], "run": r["run_id"], "seed": r["seed"], "metric": m,
                        "round": rnd, "baseline": base[0] if base else None, "final": last[0],
                        "final_lo": last[1], "final_hi": last[2], "n": last[3],
                        "delta": (last[0] - base[0]) if base else None, "delta_lo": None, "delta_hi": None})
    groups: dict[str, list[dict]] = {}
    for r in runs:
        groups.setdefault(r["name"], []).append(r)
    for name, rs in groups.items():
        if len(rs) < 2:
            continue
        for m in metrics:
            ends = [_ends(r["series"].get(m, {})) for r in rs]
            finals = [e[1][0] for e in ends if e[1] is not None]
            deltas = [e[1][0] - e[0][0] for e in ends if e[0] is not None and e[1] is not None]
            if len(finals) < 2:
                continue
            f, flo, fhi = mean_ci_t(finals)
            d, dlo, dhi = mean_ci_t(deltas) if len(deltas) >= 2 else (None, None, None)
            if M.is_rate(m):  # a rate's mean lies in [0, 1] and its change in [-1, 1]; with few seeds the
                flo, fhi = max(flo, 0.0), min(fhi, 1.0)  # t-interval runs past both (2 seeds: t = 12.7)
                if dlo is not None and dhi is not None:
                    dlo, dhi = max(dlo, -1.0), min(dhi, 1.0)
            out.append({"kind": "seeds", "name": name, "run": f"{len(finals)} seeds",
                        "seed": ",".join(str(r["seed"]) for r in rs), "metric": m, "round": None,
                        "baseline": None, "final": f, "final_lo": flo, "final_hi": fhi, "n": len(finals),
                        "delta": d, "delta_lo": dlo, "delta_hi": dhi})
    return out


def write(runs: list[dict], out: str | Path, metrics=METRICS) -> dict[str, Path]:
    """compare.csv (the rows) and compare.html (the table and one plot per metric over rounds)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rs = rows(runs, metrics)
    with open(out / "compare.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rs[0]) if rs else ["metric"])
        w.writeheader()
        w.writerows(rs)
    body = [f"<h1>Comparison of {len(runs)} runs</h1>", "<p class=muted>final = last evaluated round, "
            "[95% CI]: per run a bootstrap over items, per seed group a t-interval over seeds; "
            "change = final - baseline (round 0), paired per seed.</p>",
            table(["name", "run", "seed", "metric", "baseline", "final [95% CI]", "change [95% CI]"],
                  [[r["name"], r["run"], r["seed"], r["metric"], fmt_ci(r["baseline"]),
                    fmt_ci(r["final"], r["final_lo"], r["final_hi"]),
                    fmt_ci(r["delta"], r["delta_lo"], r["delta_hi"])] for r in rs])]
    for m in metrics:
        series = {f"{r['name']} seed {r['seed']} ({r['run_id']})":
                  [(x, v[0], v[1], v[2]) for x, v in sorted(r["series"].get(m, {}).items())] for r in runs}
        series = {k: v for k, v in series.items() if v}
        if series:
            body += [f"<h2>{esc(m)}</h2>", line_plot(series, ylabel=m)]
    (out / "compare.html").write_text(f"<!doctype html><meta charset=utf-8><title>superalign runs compare</title>"
                                      f"<style>{CSS}</style>" + "".join(Markup(b) for b in body))
    return {"csv": out / "compare.csv", "html": out / "compare.html"}
