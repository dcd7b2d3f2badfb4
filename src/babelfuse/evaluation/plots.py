"""DVC plot files under plots/eval/: tidy CSVs that ``dvc plots show/diff`` can draw, plus the PNG figures.

``confusion.csv`` (and ``confusion/<lang>.csv``) has one row per test post with ``actual,predicted``
label names, the shape DVC's ``confusion`` template expects. The top-level ``plots:`` section of
``dvc.yaml`` says how each file is drawn.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from babelfuse.labels import LABELS
from babelfuse.paths import MODALITIES


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(
                [
                    ""
                    if isinstance(v, float) and math.isnan(v)
                    else round(v, 6)
                    if isinstance(v, float)
                    else v
                    for v in row
                ]
            )
    return path


def write_plots(
    out: Path,
    metrics: dict[str, Any],
    reliability: dict[str, list[dict[str, float]]],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    langs: np.ndarray,
    figures: dict[str, bytes],
) -> list[Path]:
    """Write every plot file into ``out`` and return their paths (for MLflow artifacts and tests)."""
    out.mkdir(parents=True, exist_ok=True)
    source = set(metrics["source_langs"].split(","))
    per, gain = metrics["per_language"], metrics["fusion_gain"]["per_language"]
    keys = [
        "n",
        "accuracy",
        "accuracy_ci_low",
        "accuracy_ci_high",
        "macro_f1",
        "macro_f1_ci_low",
        "macro_f1_ci_high",
    ]
    written = [
        _write_csv(
            out / "per_language.csv",
            ["lang", "role", *keys, "baseline_macro_f1", "fusion_gain"],
            [
                [
                    c,
                    "source" if c in source else "target",
                    *(d[k] for k in keys),
                    gain[c]["baseline"],
                    gain[c]["gain"],
                ]
                for c, d in per.items()
            ],
        )
    ]
    abl = metrics["ablation"]
    rows = []
    for m in MODALITIES:
        groups = {"overall": abl[m]["overall"], **abl[m]["per_language"]}
        rows += [[c, m, d["macro_f1"], d["drop"]] for c, d in groups.items()]
    written.append(_write_csv(out / "ablation.csv", ["lang", "masked", "macro_f1", "drop"], rows))
    miss = metrics["missing_modality"]
    rows = []
    for m in MODALITIES:
        for key, d in miss[m].items():
            groups = {"overall": d["overall"], **d["per_language"]}
            rows += [[m, int(key.split("_")[1]), c, f1] for c, f1 in groups.items()]
    written.append(
        _write_csv(out / "missing_modality.csv", ["modality", "missing_pct", "lang", "macro_f1"], rows)
    )
    wide = [
        [int(key.split("_")[1]), *(miss[m][key]["overall"] for m in MODALITIES)]
        for key in miss[MODALITIES[0]]
    ]
    written.append(_write_csv(out / "missing_overall.csv", ["missing_pct", *MODALITIES], wide))
    for when, bins in reliability.items():
        rows = [
            [b["bin"], b["low"], b["high"], b["confidence"], b["accuracy"], b["count"]]
            for b in bins
            if b["count"]
        ]
        header = ["bin", "low", "high", "confidence", "accuracy", "count"]
        written.append(_write_csv(out / "reliability" / f"{when}.csv", header, rows))
    actual = [LABELS[i] for i in np.asarray(y_true)]
    predicted = [LABELS[i] for i in np.asarray(y_pred)]
    written.append(
        _write_csv(
            out / "confusion.csv",
            ["actual", "predicted"],
            [list(p) for p in zip(actual, predicted, strict=True)],
        )
    )
    langs = np.asarray(langs)
    for code in per:
        idx = np.flatnonzero(langs == code)
        written.append(
            _write_csv(
                out / "confusion" / f"{code}.csv",
                ["actual", "predicted"],
                [[actual[i], predicted[i]] for i in idx],
            )
        )
    written += extra_plots(out, metrics)
    for name, png in figures.items():
        path = out / f"{name}.png"
        path.write_bytes(png)
        written.append(path)
    return written


def extra_plots(out: Path, metrics: dict[str, Any]) -> list[Path]:
    """``models.csv`` (every model's macro-F1 per language with CIs) and ``few_shot.csv`` when there is a curve."""
    rows = []
    for name, d in metrics.get("models", {}).items():
        for lang, s in {"overall": d["overall"], **d["per_language"]}.items():
            rows.append([name, lang, s["macro_f1"], s["macro_f1_ci_low"], s["macro_f1_ci_high"]])
    written = [_write_csv(out / "models.csv", ["model", "lang", "macro_f1", "ci_low", "ci_high"], rows)]
    curve = metrics.get("few_shot")
    if curve:
        langs = list(curve["per_language"])
        rows = [
            [k, curve["target_mean"][i], *(curve["per_language"][c][i] for c in langs)]
            for i, k in enumerate(curve["k"])
        ]
        written.append(_write_csv(out / "few_shot.csv", ["k", "target_mean", *langs], rows))
    return written
