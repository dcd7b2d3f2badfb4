"""``train`` stage: the fused model of ``train.fusion``, its baselines, metrics, curves and MLflow runs.

Params are the ``train`` section, overridden key by key by ``models/best_params.json`` (the tune
stage's best trial) when ``train.use_best_params`` is true and that file holds a JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from babelfuse import logs, paths, tracking
from babelfuse.errors import BabelfuseError, user_errors_exit
from babelfuse.params import load_section
from babelfuse.training.fit import FitResult, fit_model, load_split

log = logging.getLogger("babelfuse.train")


def resolve_params(section: dict[str, Any], best_params: Path | None) -> tuple[dict[str, Any], list[str]]:
    """(effective train params, the keys taken from best_params.json)."""
    params = dict(section)
    if not params.get("use_best_params", False):
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


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=paths.fused_split("train"))
    parser.add_argument("--val", type=Path, default=paths.fused_split("val"))
    parser.add_argument("--best-params", type=Path, default=paths.BEST_PARAMS)
    parser.add_argument("--out", type=Path, default=paths.MODELS)
    parser.add_argument("--metrics", type=Path, default=paths.METRICS / "train.json")
    parser.add_argument("--plots", type=Path, default=paths.PLOTS / "train")
    args = parser.parse_args(argv)
    logs.setup()
    seed = int(load_section("seed"))
    params, from_best = resolve_params(load_section("train"), args.best_params)
    train, val = load_split(args.train), load_split(args.val)
    fusion = params.get("fusion")
    log.info(
        "train.fusion=%s on %d train / %d val rows (seed=%d)",
        fusion,
        len(train["label"]),
        len(val["label"]),
        seed,
    )
    inputs = [args.train, args.val, args.best_params]
    tags = {"fusion": str(fusion), "best_params_keys": ",".join(from_best) or "none"}
    with tracking.stage_run(
        "train", {**params, "seed": seed}, inputs, run_name=f"train:{fusion}", extra_tags=tags
    ):
        import mlflow

        from babelfuse.training.mlflow_utils import log_datasets, log_history, log_keras_model

        log_datasets({"training": (train, args.train), "validation": (val, args.val)})
        result = fit_model(params, train, val, seed)
        log.info(
            "train:%s val_macro_f1=%.4f val_accuracy=%.4f after %d epochs (best %d) in %.1f s",
            fusion,
            result.val_macro_f1,
            result.val_accuracy,
            result.epochs,
            result.best_epoch,
            result.seconds,
        )
        args.out.mkdir(parents=True, exist_ok=True)
        result.model.save(args.out / "model.keras")
        log_history(result.history)
        mlflow.log_metrics({**summary_metrics(result), "param_count": float(result.model.count_params())})
        log_keras_model(result.model, val)
        baselines_dir = args.out / "baselines"
        baselines_dir.mkdir(parents=True, exist_ok=True)
        baselines: dict[str, dict[str, float]] = {}
        if params.get("baselines", True):
            baselines = run_baselines(params, seed, train, val, baselines_dir, inputs)
        else:
            log.info("train.baselines=false: no baseline models (models/baselines stays empty)")
        metrics = {
            "fusion": params["fusion"],
            **train_metrics(result, result.model.count_params(), baselines),
        }
        if "fusion_gain" in metrics:
            mlflow.log_metrics(
                {
                    "fusion_gain": metrics["fusion_gain"],
                    **{f"baseline_{k}_val_macro_f1": v["val_macro_f1"] for k, v in baselines.items()},
                }
            )
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    args.plots.mkdir(parents=True, exist_ok=True)
    history_frame(result.history).to_csv(args.plots / "history.csv", index=False)
    log.info("wrote %s, %s and %s", args.out / "model.keras", args.metrics, args.plots / "history.csv")


if __name__ == "__main__":
    main()
