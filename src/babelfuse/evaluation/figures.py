"""The evaluation figures as PNG bytes (matplotlib, Agg): written under plots/eval/ and embedded in the report.

Each function takes the evaluation results (the eval.json dict, confusion matrices or reliability bins)
and returns PNG bytes, so the report and DVC get the very same picture.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from babelfuse.labels import LABELS  # noqa: E402
from babelfuse.paths import MODALITIES  # noqa: E402

CHANCE_F1 = 1.0 / len(LABELS)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def per_language_f1(metrics: dict[str, Any]) -> bytes:
    """Macro-F1 per language with its bootstrap CI, the chosen baseline beside it, source line and chance."""
    per = metrics["per_language"]
    langs = list(per)
    source = set(metrics["source_langs"].split(","))
    f1 = np.array([per[c]["macro_f1"] for c in langs])
    err = np.array(
        [[f1[i] - per[c]["macro_f1_ci_low"], per[c]["macro_f1_ci_high"] - f1[i]] for i, c in enumerate(langs)]
    ).T
    gain = metrics["fusion_gain"]
    base = [gain["per_language"].get(c, {}).get("baseline", np.nan) for c in langs]
    x = np.arange(len(langs))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(langs) + 2), 3.6))
    colors = ["#1f77b4" if c in source else "#9ecae1" for c in langs]
    ax.bar(x - 0.18, f1, 0.36, yerr=err, capsize=3, color=colors, label="fusion model (95 % CI)")
    ax.bar(x + 0.18, base, 0.36, color="#fdae6b", label=f"best single modality ({gain['best_baseline']})")
    if metrics["source_macro_f1"] is not None:
        ax.axhline(metrics["source_macro_f1"], color="#1f77b4", ls="--", lw=1, label="source macro-F1")
    ax.axhline(CHANCE_F1, color="grey", ls=":", lw=1, label="chance")
    ax.set_xticks(x, langs)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test macro-F1")
    ax.set_title("Cross-lingual transfer: macro-F1 per language (dark = source)")
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def ablation_heatmap(metrics: dict[str, Any]) -> bytes:
    """Drop in macro-F1 when each modality is masked, per language (positive = the modality helped)."""
    langs = ["overall", *metrics["per_language"]]
    abl = metrics["ablation"]
    grid = np.array(
        [
            [(abl[m]["overall"] if c == "overall" else abl[m]["per_language"][c])["drop"] for m in MODALITIES]
            for c in langs
        ]
    )
    lim = max(0.05, float(np.nanmax(np.abs(grid))))
    fig, ax = plt.subplots(figsize=(5.0, 0.38 * len(langs) + 1.4))
    im = ax.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(MODALITIES)), [f"without\n{m}" for m in MODALITIES])
    ax.set_yticks(range(len(langs)), langs)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            dark = abs(grid[i, j]) > 0.6 * lim
            ax.text(
                j,
                i,
                f"{grid[i, j]:+.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )
    fig.colorbar(im, ax=ax, label="macro-F1 drop")
    ax.set_title("What each modality adds")
    return _png(fig)


def missing_rate_lines(metrics: dict[str, Any]) -> bytes:
    """Macro-F1 against the share of test rows missing one modality, one panel per modality."""
    miss = metrics["missing_modality"]
    langs = ["overall", *metrics["per_language"]]
    fig, axes = plt.subplots(1, len(MODALITIES), figsize=(4.0 * len(MODALITIES), 3.2), sharey=True)
    for ax, m in zip(np.atleast_1d(axes), MODALITIES, strict=True):
        keys = list(miss[m])
        rates = [int(k.split("_")[1]) for k in keys]
        for c in langs:
            ys = [miss[m][k]["overall"] if c == "overall" else miss[m][k]["per_language"][c] for k in keys]
            ax.plot(
                rates,
                ys,
                marker="o",
                lw=2.5 if c == "overall" else 1,
                color="black" if c == "overall" else None,
                label=c,
            )
        ax.set_title(f"{m} missing")
        ax.set_xlabel("% of test rows")
        ax.set_ylim(0, 1.05)
    np.atleast_1d(axes)[0].set_ylabel("macro-F1")
    np.atleast_1d(axes)[-1].legend(fontsize=7, ncol=2)
    return _png(fig)


def reliability_diagram(reliability: dict[str, list[dict[str, float]]], temperature: float) -> bytes:
    """Accuracy against mean confidence per bin, before and after temperature scaling (diagonal = calibrated).

    Grey bars show the share of posts in each bin, so a far-off point backed by few posts reads as such.
    """
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), sharey=True)
    for ax, (when, bins) in zip(axes, reliability.items(), strict=True):
        total = max(1, sum(b["count"] for b in bins))
        centers = [(b["low"] + b["high"]) / 2 for b in bins]
        width = bins[0]["high"] - bins[0]["low"]
        ax.bar(
            centers,
            [b["count"] / total for b in bins],
            width=width * 0.95,
            color="#d9d9d9",
            label="share of posts",
        )
        used = [b for b in bins if b["count"]]
        ax.plot(
            [b["confidence"] for b in used],
            [b["accuracy"] for b in used],
            "o-",
            color="#d62728",
            label="accuracy",
        )
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.set_title("before scaling" if when == "before" else f"after scaling (T = {temperature:.2f})")
        ax.set_xlabel("confidence (max probability)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=7, loc="upper left")
    return _png(fig)


def confusion_grid(confusion: dict[str, np.ndarray]) -> bytes:
    """Row-normalised confusion matrices, overall first then per language, with raw counts printed."""
    names = list(confusion)
    cols = min(5, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    short = [label[:3] for label in LABELS]
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        cm = np.asarray(confusion[name])
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if norm[i, j] > 0.6 else "black",
                )
        ax.set_xticks(range(len(LABELS)), short, fontsize=7)
        ax.set_yticks(range(len(LABELS)), short, fontsize=7)
        ax.set_title(name, fontsize=9)
    fig.supxlabel("predicted", fontsize=9)
    fig.supylabel("actual", fontsize=9)
    return _png(fig)


def few_shot_lines(curve: dict[str, Any]) -> bytes:
    """Test macro-F1 per language against k labelled target-language posts per class (k = 0: zero-shot)."""
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    ks = curve["k"]
    for code, ys in curve["per_language"].items():
        ax.plot(ks, ys, marker="o", lw=1, label=code)
    ax.plot(ks, curve["target_mean"], marker="s", lw=2.5, color="black", label="target mean")
    ax.axhline(CHANCE_F1, color="grey", ls=":", lw=1)
    ax.set_xlabel("labelled target-language posts per class (k)")
    ax.set_ylabel("test macro-F1")
    ax.set_ylim(0, 1.05)
    ax.set_title("Few-shot target-language curve")
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def contribution_bars(explained: dict[str, Any]) -> bytes:
    """Mean |Shapley contribution| of each modality per language, and the share of posts whose
    prediction flips without their top contributor (``eval_detail.json["explain"]``)."""
    groups = {"overall": explained["overall"], **explained["per_language"]}
    langs = list(groups)
    x = np.arange(len(langs))
    width = 0.8 / len(MODALITIES)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(langs) + 2), 3.6))
    for j, m in enumerate(MODALITIES):
        values = [groups[c]["mean_abs_contribution"][m] for c in langs]
        ax.bar(x + (j - 1) * width, values, width, label=f"{m}")
    flips = [groups[c]["flip_share_without_top"] for c in langs]
    ax.plot(x, flips, "k.", ms=9, label="share flipped without top contributor")
    ax.set_xticks(x, langs)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean |contribution| to p(predicted class)")
    ax.set_title("Which modality decides: exact Shapley values per post, by language")
    ax.legend(fontsize=7, loc="upper right")
    return _png(fig)
