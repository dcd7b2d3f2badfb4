"""The ``evaluate`` stage: the fused model and every baseline on test, per seed, with paired CIs.

    python -m babelfuse.stages.evaluate --fused data/fused --models models \
        --best-params models/best_params.json --metrics metrics/eval.json \
        --detail metrics/eval_detail.json --report reports/eval.html --plots plots/eval \
        --temperature models/temperature.json

Scores each seed's models (``models/seeds/<seed>/``, ``evaluate.seeds``) on test; everything fitted
or chosen (temperatures, the val-chosen baseline) uses source ``val`` only. The few-shot curve
(``evaluate.few_shot``) refits the fused model of the first seed only, on train plus posts from the
``fewshot`` split (:mod:`babelfuse.evaluation.fewshot`). ``metrics/eval.json`` is the short headline,
``metrics/eval_detail.json`` the long detail.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import mlflow

from babelfuse import logs, paths, tracking
from babelfuse.config import add_config_arguments, config_from_args
from babelfuse.errors import user_errors_exit
from babelfuse.evaluation.evaluate import Labelled, evaluate_seeds
from babelfuse.evaluation.fewshot import few_shot_curve
from babelfuse.evaluation.loading import (
    load_seed_models,
    load_splits,
    refit_predictor,
    seed_folders,
    source_languages,
)
from babelfuse.evaluation.mlflow_metrics import mlflow_metrics, numbers
from babelfuse.evaluation.outputs import Outputs, write_outputs
from babelfuse.jsonio import json_safe
from babelfuse.training.fit import model_inputs
from babelfuse.training.train import resolve_params

log = logging.getLogger("babelfuse.evaluate")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fused", type=Path, default=paths.FUSED)
    ap.add_argument("--models", type=Path, default=paths.MODELS, help="holds seeds/<seed>/ (or model.keras)")
    ap.add_argument("--best-params", type=Path, default=paths.BEST_PARAMS)
    ap.add_argument("--metrics", type=Path, default=paths.METRICS / "eval.json")
    ap.add_argument("--detail", type=Path, default=paths.METRICS / "eval_detail.json")
    ap.add_argument("--report", type=Path, default=paths.EVAL_REPORT)
    ap.add_argument("--plots", type=Path, default=paths.PLOTS / "eval")
    ap.add_argument("--temperature", type=Path, default=paths.TEMPERATURE)
    add_config_arguments(ap)
    return ap.parse_args(argv)


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    logs.setup()
    args = parse(argv)
    cfg = config_from_args(args)
    params = cfg.section("evaluate")
    train_params, _ = resolve_params(cfg.section("train"), args.best_params)
    splits = load_splits(args.fused)
    source = source_languages(paths.fused_split("train", args.fused))
    test = Labelled.of(splits["test"], model_inputs(splits["test"]))
    val = Labelled.of(splits["val"], model_inputs(splits["val"]))
    folders = seed_folders(args.models, list(params["seeds"]))
    log.info("source languages (from train.npz): %s; seeds %s", ",".join(source), list(folders))
    inputs = [args.fused, *folders.values()]
    with tracking.stage_run("evaluate", {**params, "fusion": train_params["fusion"]}, inputs=inputs) as run:
        models = {s: load_seed_models(f) for s, f in folders.items()}
        result, head = evaluate_seeds(models, test, val, source, params, train_params["fusion"])
        first = next(iter(models))
        log.info("evaluate.few_shot=%s (seed %d only)", params["few_shot"], first)
        curve = few_shot_curve(
            params["few_shot"], refit_predictor(train_params, splits["val"], first), models[first][0],
            splits["train"], splits.get("fewshot"), splits["test"], test.inputs, source, first,
        )  # fmt: skip
        if curve:
            result.metrics["few_shot"] = json_safe({**curve, "seed": first})
        out = Outputs(args.metrics, args.detail, args.report, args.plots, args.temperature)
        written = write_outputs(result, head, splits["test"], out)
        mlflow.log_metrics({**mlflow_metrics(result.metrics), **numbers(head)})
        mlflow.set_tags(
            {"worst_language": head["worst_language"], "best_baseline": str(head["val_chosen_baseline"]),
             "source_langs": ",".join(source), "seeds": ",".join(map(str, folders))}
        )  # fmt: skip
        for path in (args.metrics, args.detail, args.temperature, args.report):
            mlflow.log_artifact(str(path), "eval")
        mlflow.log_artifacts(str(args.plots), "plots")
        log.info(
            "test macro-F1 %.3f (seed std %s), transfer gap %+.3f, worst %s; %d plot files; run %s",
            head["test_macro_f1"], head["test_macro_f1_seed_std"], head["transfer_gap"] or float("nan"),
            head["worst_language"], len(written), run.info.run_id,
        )  # fmt: skip


if __name__ == "__main__":
    main()
