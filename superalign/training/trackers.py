"""Per-round loop metrics to the experiment trackers named in `run.report_to`.

TRL already reports each training phase's loss curve to these trackers (training/trainers.py); this
helper is for what only the loop knows: held-out compliance, over-refusal, competence per round. Metrics go
under `RUN_DIR/trackers/loop` for TensorBoard, so `tensorboard --logdir runs/` shows every run (and
every phase's TRL curves, written beside it under `RUN_DIR/trackers/<phase>`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from superalign.training.trainers import check_trackers


def tracker_dir(run_dir: str | Path, name: str = "loop") -> Path:
    return Path(run_dir) / "trackers" / name


def _finite(metrics: Mapping[str, float | None]) -> dict[str, float]:
    """Tracker APIs take plain floats; None (a metric with no data this round) is left out, not logged as 0."""
    out = {}
    for k, v in metrics.items():
        if v is None:
            continue
        f = float(v)
        if f == f:  # not NaN
            out[k] = f
    return out


def log_metrics(run_dir: str | Path, cfg, round: int, metrics: Mapping[str, float | None]) -> list[str]:
    """Log `metrics` at step `round` to each tracker in `cfg.run.report_to`; returns the trackers written."""
    report_to = list(getattr(cfg.run, "report_to", []) or [])
    if not report_to:
        return []
    check_trackers(report_to)
    vals = _finite(metrics)
    name = getattr(cfg.run, "name", "run")
    for t in report_to:
        if t == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter
            w = SummaryWriter(log_dir=str(tracker_dir(run_dir)))
            for k, v in vals.items():
                w.add_scalar(k, v, global_step=round)
            w.close()
        elif t == "mlflow":
            import mlflow
            idf = tracker_dir(run_dir, "mlflow_run_id")
            idf.parent.mkdir(parents=True, exist_ok=True)
            run_id = idf.read_text().strip() if idf.exists() else None
            with mlflow.start_run(run_id=run_id, run_name=None if run_id else name) as r:
                idf.write_text(r.info.run_id)
                mlflow.log_metrics(vals, step=round)
        elif t == "wandb":
            import wandb
            idf = tracker_dir(run_dir, "wandb_run_id")
            idf.parent.mkdir(parents=True, exist_ok=True)
            run_id = idf.read_text().strip() if idf.exists() else wandb.util.generate_id()
            idf.write_text(run_id)
            r = wandb.init(project=os.environ.get("WANDB_PROJECT", "superalign"), name=name, id=run_id,
                           resume="allow", dir=str(idf.parent), reinit=True)
            r.log({**vals, "round": round}, step=round)
            r.finish()
    return report_to
