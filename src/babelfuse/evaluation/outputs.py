"""The evaluate stage's files: headline and detail metrics, temperature, plots and the HTML report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from babelfuse.evaluation import figures, plots, report
from babelfuse.evaluation.evaluate import EvalResult
from babelfuse.jsonio import write_json


@dataclass(frozen=True)
class Outputs:
    metrics: Path  # metrics/eval.json: the short headline (a DVC metric)
    detail: Path  # metrics/eval_detail.json: everything long (git-tracked, not a DVC metric)
    report: Path
    plots: Path
    temperature: Path


def make_figures(result: EvalResult) -> dict[str, bytes]:
    m = result.metrics
    out = {
        "per_language": figures.per_language_f1(m),
        "ablation": figures.ablation_heatmap(m),
        "missing": figures.missing_rate_lines(m),
        "reliability": figures.reliability_diagram(result.reliability, m["calibration"]["temperature"]),
        "confusion": figures.confusion_grid(result.confusion),
    }
    if m.get("few_shot"):
        out["few_shot"] = figures.few_shot_lines(m["few_shot"])
    if m.get("explain"):
        out["explain"] = figures.contribution_bars(m["explain"])
    return out


def write_outputs(
    result: EvalResult, head: dict[str, Any], test: dict[str, np.ndarray], out: Outputs
) -> list[Path]:
    """Write every output file; returns the plot files written."""
    write_json(out.metrics, head, sort_keys=False)  # languages and models stay in table order
    write_json(out.detail, result.metrics, sort_keys=False)
    write_json(out.temperature, result.temperature)
    figs = make_figures(result)
    written = plots.write_plots(
        out.plots, result.metrics, result.reliability, test["label"], result.y_pred, test["lang"], figs
    )
    out.report.parent.mkdir(parents=True, exist_ok=True)
    out.report.write_text(report.render(result.metrics, figs, result.confusion), encoding="utf-8")
    return written
