"""The ``train`` stage's library: the fused model of ``train.fusion``, its baselines, metrics, curves and MLflow runs.

Params are the ``train`` section, overridden key by key by ``models/best_params.json`` (the tune
stage's best trial) when ``train.use_best_params`` is true and that file holds a JSON object.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from babelfuse import paths, tracking
from babelfuse.errors import BabelfuseError
from babelfuse.training.fit import FitResult

log = logging.getLogger("babelfuse.train")


def resolve_params(section: dict[str, Any], best_params: Path | None) -> tuple[dict[str, Any], list[str]]:
    """(effective train params, the keys taken from best_params.json)."""
    params = dict(section)
    if not params["use_best_params"]:
        log.info("train.use_best_params=false: using params.yaml train section only")
        return params, []
    if best_params is None or not best_params.exists() or not best_params.read_text(encoding="utf-8").strip():
        log.info("train.use_best_params=true but %s is missing or empty: using params.yaml", best_params)
        return params, []
    try:
        best = json.loads(best_params.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise BabelfuseError(f"{best_params} is not valid JSON ({err}); re-run the tune stage") from None
    if not isinstance(best, dict):
        raise BabelfuseError(
            f"{best_params} must hold a JSON object of train params, got {type(best).__name__}"
        )
    unknown = sorted(set(best) - set(section))
    if unknown:
        raise BabelfuseError(
            f"{best_params} has key(s) {unknown} that are not train params ({sorted(section)})"
        )
    for key in sorted(best):
        log.info(
            "train.%s=%r from %s (was %r; train.use_best_params=true)",
            key,
            best[key],
            best_params,
            section[key],
        )
    params.update(best)
    return params, sorted(best)


def history_frame(history: dict[str, list[float]]) -> pd.DataFrame:
    """The DVC plot ``plots/train/history.csv``: epoch, train_loss, val_loss, val_macro_f1."""
    epochs = len(history.get("loss", []))
    return pd.DataFrame(
        {
            "epoch": np.arange(1, epochs + 1),
            "train_loss": history.get("loss", [np.nan] * epochs),
            "val_loss": history.get("val_loss", [np.nan] * epochs),
            "val_macro_f1": history.get("val_macro_f1", [np.nan] * epochs),
        }
    )


def summary_metrics(result: FitResult) -> dict[str, float]:
    """What a run reports for its restored (best-epoch) model."""
    return {
        "best_val_macro_f1": result.val_macro_f1,
        "best_val_accuracy": result.val_accuracy,
        "best_val_loss": result.val_loss,
        "best_epoch": float(result.best_epoch),
        "epochs": float(result.epochs),
        "train_seconds": result.seconds,
    }


def run_baselines(
    params: dict[str, Any], seed: int, train: dict, val: dict, out: Path, inputs: list[Path]
) -> dict[str, dict[str, float]]:
    """Single-modality models (saved to ``models/baselines``) and the LogisticRegression, each a nested run."""
    import mlflow

    from babelfuse.training.baselines import fit_logreg, fit_single_modality
    from babelfuse.training.mlflow_utils import log_history

    results: dict[str, dict[str, float]] = {}
    for modality in paths.MODALITIES:
        with tracking.stage_run(
            "train",
            {**params, "seed": seed},
            inputs,
            run_name=f"baseline:{modality}",
            nested=True,
            extra_tags={"baseline": modality},
        ):
            result = fit_single_modality(modality, params, train, val, seed)
            result.model.save(out / f"{modality}.keras")
            log_history(result.history)
            mlflow.log_metrics(summary_metrics(result))
        log.info("baseline:%s val_macro_f1=%.4f (%d epochs)", modality, result.val_macro_f1, result.epochs)
        results[modality] = {"val_macro_f1": result.val_macro_f1, "val_accuracy": result.val_accuracy}
    with tracking.stage_run(
        "train",
        {"model": "LogisticRegression", "C": 1.0, "seed": seed},
        inputs,
        run_name="baseline:logreg",
        nested=True,
        extra_tags={"baseline": "logreg"},
    ):
        _, logreg = fit_logreg(train, val, seed)
        mlflow.log_metrics(
            {
                "best_val_macro_f1": logreg.val_macro_f1,
                "best_val_accuracy": logreg.val_accuracy,
                "best_val_loss": logreg.val_loss,
                "train_seconds": logreg.seconds,
            }
        )
    log.info("baseline:logreg val_macro_f1=%.4f", logreg.val_macro_f1)
    results["logreg"] = {"val_macro_f1": logreg.val_macro_f1, "val_accuracy": logreg.val_accuracy}
    return results


def train_metrics(
    result: FitResult, param_count: int, baselines: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """``metrics/train.json``: the fused model, each baseline and the fusion gain (numbers only)."""
    from babelfuse.training.baselines import fusion_gain

    metrics: dict[str, Any] = {
        "val_macro_f1": result.val_macro_f1,
        "val_accuracy": result.val_accuracy,
        "val_loss": result.val_loss,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "seconds": round(result.seconds, 3),
        "params": param_count,
    }
    if baselines:
        metrics["baselines"] = baselines
        best, gain = fusion_gain(
            result.val_macro_f1, {m: baselines[m]["val_macro_f1"] for m in paths.MODALITIES}
        )
        metrics["best_single_modality_val_macro_f1"] = baselines[best]["val_macro_f1"]
        metrics["fusion_gain"] = gain
        log.info("fusion_gain=%+.4f over baseline:%s", gain, best)
    return metrics
