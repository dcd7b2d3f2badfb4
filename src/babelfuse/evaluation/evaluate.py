"""The ``evaluate`` stage: the fused model and single-modality baselines on the test split.

``python -m babelfuse.evaluation.evaluate --fused data/fused --model models/model.keras
--baselines models/baselines --metrics metrics/eval.json --report reports/eval.html --plots plots/eval
--temperature models/temperature.json``

Source languages are the languages of ``train.npz``; everything fitted here (temperature, the choice of
the best baseline) uses source ``val`` only, so the test numbers stay honest.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from babelfuse import paths, tracking
from babelfuse.errors import BabelfuseError, user_errors_exit
from babelfuse.evaluation import ablation, calibration, figures, metrics, plots, report
from babelfuse.evaluation.flat import mlflow_metrics
from babelfuse.evaluation.loading import load_inputs
from babelfuse.params import load_section

log = logging.getLogger("babelfuse.evaluate")

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass
class EvalResult:
    metrics: dict[str, Any]  # the eval.json content
    temperature: dict[str, Any]  # the temperature.json content
    confusion: dict[str, np.ndarray]
    reliability: dict[str, list[dict[str, float]]]  # {"before": bins, "after": bins}, overall test
    y_pred: np.ndarray


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """The ``evaluate`` section with types checked: a wrong value is a clear error, not a traceback."""
    try:
        out = {
            "bootstrap": int(params.get("bootstrap", 1000)),
            "ci": float(params.get("ci", 0.95)),
            "missing_rates": [float(r) for r in params.get("missing_rates", [0.0, 0.25, 0.5, 1.0])],
            "calibration_bins": int(params.get("calibration_bins", 10)),
        }
    except (TypeError, ValueError) as err:
        raise BabelfuseError(f"params.yaml evaluate: {err}") from None
    if out["bootstrap"] < 0:
        raise BabelfuseError("params.yaml evaluate.bootstrap: must be >= 0 (number of resamples)")
    if not 0.0 < out["ci"] < 1.0:
        raise BabelfuseError(f"params.yaml evaluate.ci: {out['ci']} is not a level in (0, 1), e.g. 0.95")
    if out["calibration_bins"] < 1:
        raise BabelfuseError("params.yaml evaluate.calibration_bins: must be >= 1")
    bad = [r for r in out["missing_rates"] if not 0.0 <= r <= 1.0]
    if bad:
        raise BabelfuseError(f"params.yaml evaluate.missing_rates: {bad} not shares in [0, 1]")
    return out


def _split_groups(by_group: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """``{"overall": x, lang: y}`` -> ``{"overall": x, "per_language": {lang: y}}`` in table order."""
    return {"overall": by_group["overall"], "per_language": {c: by_group[c] for c in order if c in by_group}}


def run_evaluation(
    predict: Predict,
    baselines: dict[str, Predict],
    test: dict[str, np.ndarray],
    val: dict[str, np.ndarray],
    test_inputs: dict[str, np.ndarray],
    val_inputs: dict[str, np.ndarray],
    source_langs: list[str],
    params: dict[str, Any],
    seed: int,
) -> EvalResult:
    """Every number of the report, from prediction callables and the test/val splits (no file I/O)."""
    p = check_params(params)
    y, langs = np.asarray(test["label"]), np.asarray(test["lang"]).astype(str)
    order = metrics.language_order(langs, source_langs)
    probs = predict(test_inputs)
    log.info("evaluate.bootstrap=%d resamples, evaluate.ci=%s", p["bootstrap"], p["ci"])
    overall = metrics.summarize(y, probs, p["bootstrap"], p["ci"], seed)
    per_lang = metrics.per_language(y, probs, langs, p["bootstrap"], p["ci"], seed, source_langs)
    out: dict[str, Any] = {
        "n_test": int(len(y)),
        "source_langs": ",".join(source_langs),
        "target_langs": ",".join(c for c in order if c not in source_langs),
        **{f"test_{k}": v for k, v in overall.items() if k != "n"},
        **metrics.transfer_summary(per_lang, source_langs),
        "per_language": per_lang,
    }
    out["ablation"] = {
        m: _split_groups(d, order)
        for m, d in ablation.modality_ablation(predict, test_inputs, y, langs).items()
    }
    log.info("evaluate.missing_rates=%s", p["missing_rates"])
    robust = ablation.missing_rate_robustness(predict, test_inputs, y, langs, p["missing_rates"], seed)
    out["missing_modality"] = {
        m: {k: _split_groups(d, order) for k, d in by_rate.items()} for m, by_rate in robust.items()
    }

    # Baselines and temperature: chosen / fitted on source val only.
    val_src = np.isin(np.asarray(val["lang"]).astype(str), source_langs)
    if not val_src.any():
        raise BabelfuseError(
            f"val split has no rows in the source languages {source_langs}: cannot fit on val"
        )
    y_val = np.asarray(val["label"])[val_src]
    val_in = {k: v[val_src] for k, v in val_inputs.items()}
    val_scores = {m: metrics.macro_f1(y_val, metrics.predictions(fn(val_in))) for m, fn in baselines.items()}
    best = ablation.select_best_baseline(val_scores)
    log.info("best single-modality baseline on source val: %s (%s)", best, val_scores)
    gain = ablation.fusion_gain(
        metrics.f1_by_language(y, probs, langs),
        metrics.f1_by_language(y, baselines[best](test_inputs), langs),
    )
    out["fusion_gain"] = {
        "best_baseline": best,
        "selected_on": "val",
        "baseline_val_macro_f1": val_scores,
        **_split_groups(gain, order),
    }

    val_probs = predict(val_in)
    temp = calibration.fit_temperature(y_val, val_probs)
    nll_before = calibration.nll(y_val, val_probs)
    nll_after = calibration.nll(y_val, calibration.apply_temperature(val_probs, temp))
    log.info("temperature %.3f fitted on source val: NLL %.4f -> %.4f", temp, nll_before, nll_after)
    scaled = calibration.apply_temperature(probs, temp)
    bins = p["calibration_bins"]
    out["calibration"] = {
        "temperature": temp,
        "fitted_on": "val",
        "val_nll_before": nll_before,
        "val_nll_after": nll_after,
        "bins": bins,
        "before": _split_groups(calibration.calibration_by_language(y, probs, langs, bins), order),
        "after": _split_groups(calibration.calibration_by_language(y, scaled, langs, bins), order),
    }
    out["bootstrap"] = {"resamples": p["bootstrap"], "ci": p["ci"], "seed": seed}
    confusion = metrics.confusion_matrices(y, probs, langs)
    return EvalResult(
        metrics=clean(out),
        temperature={
            "temperature": temp,
            "fitted_on": "val",
            "val_nll_before": nll_before,
            "val_nll_after": nll_after,
            "source_langs": ",".join(source_langs),
        },
        confusion={"overall": confusion["overall"], **{c: confusion[c] for c in order}},
        reliability={
            "before": calibration.reliability_bins(y, probs, bins),
            "after": calibration.reliability_bins(y, scaled, bins),
        },
        y_pred=metrics.predictions(probs),
    )


def clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None (DVC metrics must be valid JSON)."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
    from babelfuse import logs

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
        import mlflow

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
