"""The ``train`` stage: the fused model of ``train.fusion``, its baselines, metrics, curves and MLflow runs.

    python -m babelfuse.stages.train --train data/fused/train.npz --val data/fused/val.npz \
        --best-params models/best_params.json --out models --metrics metrics/train.json --plots plots/train

Params are the ``train`` section, overridden key by key by ``models/best_params.json`` (the tune
stage's best trial) when ``train.use_best_params`` is true (:func:`babelfuse.training.train.resolve_params`).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import mlflow

from babelfuse import logs, paths, tracking
from babelfuse.errors import user_errors_exit
from babelfuse.params import load_section
from babelfuse.training.fit import fit_model, load_split
from babelfuse.training.mlflow_utils import log_datasets, log_history, log_keras_model
from babelfuse.training.train import (
    history_frame,
    resolve_params,
    run_baselines,
    summary_metrics,
    train_metrics,
)

log = logging.getLogger("babelfuse.train")


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
