"""The ``evaluate`` stage: the fused model and single-modality baselines on the test split.

    python -m babelfuse.stages.evaluate --fused data/fused --model models/model.keras \
        --baselines models/baselines --metrics metrics/eval.json --report reports/eval.html \
        --plots plots/eval --temperature models/temperature.json

Source languages are the languages of ``train.npz``; everything fitted (temperature, the choice of
the best baseline) uses source ``val`` only (:mod:`babelfuse.evaluation.evaluate`).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import mlflow

from babelfuse import logs, paths, tracking
from babelfuse.errors import user_errors_exit
from babelfuse.evaluation import figures, plots, report
from babelfuse.evaluation.evaluate import EvalResult, clean, run_evaluation
from babelfuse.evaluation.flat import mlflow_metrics
from babelfuse.evaluation.loading import load_inputs
from babelfuse.params import load_section

log = logging.getLogger("babelfuse.evaluate")


def make_figures(result: EvalResult) -> dict[str, bytes]:
    m = result.metrics
    return {
        "per_language": figures.per_language_f1(m),
        "ablation": figures.ablation_heatmap(m),
        "missing": figures.missing_rate_lines(m),
        "reliability": figures.reliability_diagram(result.reliability, m["calibration"]["temperature"]),
        "confusion": figures.confusion_grid(result.confusion),
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    logs.setup()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fused", type=Path, default=paths.FUSED)
    ap.add_argument("--model", type=Path, default=paths.MODEL)
    ap.add_argument("--baselines", type=Path, default=paths.BASELINES)
    ap.add_argument("--metrics", type=Path, default=paths.METRICS / "eval.json")
    ap.add_argument("--report", type=Path, default=paths.EVAL_REPORT)
    ap.add_argument("--plots", type=Path, default=paths.PLOTS / "eval")
    ap.add_argument("--temperature", type=Path, default=paths.TEMPERATURE)
    args = ap.parse_args(argv)

    params = load_section("evaluate")
    seed = int(load_section("seed"))
    data = load_inputs(args.fused, args.model, args.baselines)
    log.info("source languages (from train.npz): %s", ",".join(data.source_langs))
    with tracking.stage_run(
        "evaluate", {**params, "seed": seed}, inputs=[args.fused, args.model, args.baselines]
    ) as run:
        result = run_evaluation(
            data.predict,
            data.baselines,
            data.test,
            data.val,
            data.test_inputs,
            data.val_inputs,
            data.source_langs,
            params,
            seed,
        )
        _write_json(args.metrics, result.metrics)
        _write_json(args.temperature, clean(result.temperature))
        figs = make_figures(result)
        written = plots.write_plots(
            args.plots,
            result.metrics,
            result.reliability,
            data.test["label"],
            result.y_pred,
            data.test["lang"],
            figs,
        )
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report.render(result.metrics, figs, result.confusion), encoding="utf-8")
        m = result.metrics
        mlflow.log_metrics(mlflow_metrics(m))
        mlflow.set_tags(
            {
                "worst_language": m["worst_language"],
                "best_baseline": m["fusion_gain"]["best_baseline"],
                "source_langs": m["source_langs"],
            }
        )
        mlflow.log_artifact(str(args.metrics), "eval")
        mlflow.log_artifact(str(args.temperature), "eval")
        mlflow.log_artifact(str(args.report), "eval")
        mlflow.log_artifacts(str(args.plots), "plots")
        log.info(
            "test macro-F1 %.3f, transfer gap %+.3f, worst %s; %d plot files; run %s",
            m["test_macro_f1"],
            m["transfer_gap"] or float("nan"),
            m["worst_language"],
            len(written),
            run.info.run_id,
        )


if __name__ == "__main__":
    main()
