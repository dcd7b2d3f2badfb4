"""The ``train`` stage: the fused model of ``train.fusion``, its baselines, metrics, curves and MLflow runs.

    python -m babelfuse.stages.train --train data/fused/train.npz --val data/fused/val.npz \
        --best-params models/best_params.json --baseline-params models/baseline_params.json --out models --metrics metrics/train.json --plots plots/train

Params are the ``train`` section, overridden key by key by ``models/best_params.json`` (the tune
stage's best trial) when ``train.use_best_params`` is true (:func:`babelfuse.training.train.resolve_params`);
each baseline likewise by its entry in ``models/baseline_params.json``. One set of models per seed in
``evaluate.seeds``: ``models/seeds/<seed>/{model.keras,baselines/}``; ``models/model.keras`` and
``models/baselines/`` are the first seed's (the model register serves).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import mlflow

from babelfuse import logs, paths, tracking
from babelfuse.config import add_config_arguments, config_from_args
from babelfuse.errors import user_errors_exit
from babelfuse.jsonio import write_json
from babelfuse.training.fit import load_split
from babelfuse.training.mlflow_utils import log_datasets, log_history, log_keras_model
from babelfuse.training.train import (
    baseline_params,
    history_frame,
    publish_first_seed,
    resolve_params,
    seed_summary,
    summary_metrics,
    train_one_seed,
)

log = logging.getLogger("babelfuse.train")


def _other_seed(
    params: dict,
    baselines: dict | None,
    seed: int,
    train: dict,
    val: dict,
    seed_dir: Path,
    inputs: list[Path],
) -> dict:
    """A later seed: its own nested run, models under models/seeds/<seed>/."""
    with tracking.stage_run(
        "train",
        {**params, "seed": seed},
        inputs,
        f"train:{params['fusion']}:seed={seed}",
        True,
        {"seed": str(seed)},
    ):
        result, metrics = train_one_seed(params, baselines, seed, train, val, seed_dir, inputs)
        mlflow.log_metrics(summary_metrics(result))
    return metrics


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=paths.fused_split("train"))
    parser.add_argument("--val", type=Path, default=paths.fused_split("val"))
    parser.add_argument("--best-params", type=Path, default=paths.BEST_PARAMS)
    parser.add_argument("--baseline-params", type=Path, default=paths.BASELINE_PARAMS)
    parser.add_argument("--out", type=Path, default=paths.MODELS)
    parser.add_argument("--metrics", type=Path, default=paths.METRICS / "train.json")
    parser.add_argument("--plots", type=Path, default=paths.PLOTS / "train")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    logs.setup()
    cfg = config_from_args(args)
    seeds = list(cfg.section("evaluate")["seeds"])
    section = cfg.section("train")
    params, from_best = resolve_params(section, args.best_params)
    baselines = baseline_params(section, params, args.baseline_params) if params["baselines"] else None
    train, val = load_split(args.train), load_split(args.val)
    fusion = params["fusion"]
    log.info(
        "train.fusion=%s on %d train / %d val rows, evaluate.seeds=%s",
        fusion,
        len(train["label"]),
        len(val["label"]),
        seeds,
    )
    inputs = [args.train, args.val, args.best_params, args.baseline_params]
    tags = {"fusion": str(fusion), "best_params_keys": ",".join(from_best) or "none", "seed": str(seeds[0])}
    with tracking.stage_run(
        "train", {**params, "seeds": seeds}, inputs, run_name=f"train:{fusion}", extra_tags=tags
    ):
        log_datasets({"training": (train, args.train), "validation": (val, args.val)})
        first_dir = args.out / "seeds" / str(seeds[0])
        result, first = train_one_seed(params, baselines, seeds[0], train, val, first_dir, inputs)
        log_history(result.history)
        mlflow.log_metrics({**summary_metrics(result), "param_count": float(result.model.count_params())})
        log_keras_model(result.model, val)
        per_seed = {str(seeds[0]): first}
        for seed in seeds[1:]:
            seed_dir = args.out / "seeds" / str(seed)
            per_seed[str(seed)] = _other_seed(params, baselines, seed, train, val, seed_dir, inputs)
        publish_first_seed(first_dir, args.out)
        over_seeds = seed_summary(per_seed)
        mlflow.log_metrics(
            {f"{k}_{stat}": v[stat] for k, v in over_seeds.items() for stat in ("mean", "std")}
        )
        if "fusion_gain" in first:
            baseline_f1 = {
                f"baseline_{k}_val_macro_f1": v["val_macro_f1"] for k, v in first["baselines"].items()
            }
            mlflow.log_metrics({"fusion_gain": first["fusion_gain"], **baseline_f1})
    metrics = {"fusion": fusion, "seed": seeds[0], **first, "seeds": per_seed, "over_seeds": over_seeds}
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.metrics, metrics)
    args.plots.mkdir(parents=True, exist_ok=True)
    history_frame(result.history).to_csv(args.plots / "history.csv", index=False)
    log.info(
        "wrote %s (seed %d), %s and %s",
        args.out / "model.keras",
        seeds[0],
        args.metrics,
        args.plots / "history.csv",
    )


if __name__ == "__main__":
    main()
