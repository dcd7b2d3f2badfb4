"""Every model scored on test from one shared group-bootstrap draw, and every comparison as a paired CI.

Pure functions on arrays: test labels, languages, and each model's ``(n, 3)`` probabilities in
(``fused``, the single-modality models ``text``/``image``/``audio``, ``logreg``, ``late_fusion`` and
the fused model with one modality masked, ``fused_without_<m>``). Choices (the val-chosen baseline,
the temperatures) are made by the caller on source ``val``; nothing here looks at test to decide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from babelfuse.evaluation import bootstrap as bs
from babelfuse.evaluation.metrics import predictions
from babelfuse.paths import MODALITIES
from babelfuse.probabilities import apply_temperature

Probs = dict[str, np.ndarray]
BASELINES: tuple[str, ...] = (*MODALITIES, "logreg", "late_fusion")


def without(modality: str) -> str:
    """The name of the fused model's predictions with ``modality`` masked for every row."""
    return f"fused_without_{modality}"


def late_fusion(probs: Probs, mask: np.ndarray, temperatures: dict[str, float]) -> np.ndarray:
    """Product of the temperature-calibrated single-modality probabilities over each row's present modalities.

    The simplest fusion a reviewer would try (naive Bayes with a flat prior): a modality absent from a
    row contributes nothing; a row with none present gets uniform probabilities.
    """
    mask = np.asarray(mask)
    log_p = np.zeros_like(np.asarray(probs[MODALITIES[0]], dtype=np.float64))
    for i, m in enumerate(MODALITIES):
        calibrated = apply_temperature(probs[m], temperatures[m])
        log_p += mask[:, i : i + 1] * np.log(np.clip(calibrated, 1e-12, 1.0))
    log_p -= log_p.max(axis=1, keepdims=True)
    out = np.exp(log_p)
    return out / out.sum(axis=1, keepdims=True)


def _summary(y: np.ndarray, pred: np.ndarray, rows: np.ndarray, draws: bs.Draws, level: float) -> dict:
    """``{n, macro_f1, macro_f1_ci_low, macro_f1_ci_high, accuracy, ...}`` of one model on some rows."""
    out: dict[str, float] = {"n": int(rows.sum())}
    for name, fn in (("accuracy", bs.weighted_accuracy), ("macro_f1", bs.weighted_macro_f1)):
        c = bs.ci(fn, (y, pred, rows), draws, level)
        out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = c["value"], c["ci_low"], c["ci_high"]
    return out


def groups_of(langs: np.ndarray, order: Sequence[str]) -> dict[str, np.ndarray]:
    """``{"overall": all rows, lang: its rows}`` as bool masks, in table order."""
    langs = np.asarray(langs)
    return {"overall": np.ones(len(langs), dtype=bool), **{c: langs == c for c in order}}


def split_groups(by_group: dict) -> dict:
    """``{"overall": x, lang: y}`` -> ``{"overall": x, "per_language": {lang: y}}`` (same order)."""
    return {
        "overall": by_group["overall"],
        "per_language": {k: v for k, v in by_group.items() if k != "overall"},
    }


def model_scores(
    y: np.ndarray, probs: Probs, langs: np.ndarray, order: Sequence[str], draws: bs.Draws, level: float
) -> dict[str, dict]:
    """``{model: {"overall": summary, "per_language": {lang: summary}}}`` for every model in ``probs``."""
    groups = groups_of(langs, order)
    return {
        name: split_groups({g: _summary(y, predictions(p), rows, draws, level) for g, rows in groups.items()})
        for name, p in probs.items()
    }


def f1_metric(y: np.ndarray, pred: np.ndarray, rows: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``weights -> (B,)`` macro-F1 of one model on some rows."""
    return lambda w: bs.weighted_macro_f1(w, (y, pred, rows))


def mean_f1_metric(
    y: np.ndarray, pred: np.ndarray, row_sets: list[np.ndarray]
) -> Callable[[np.ndarray], np.ndarray]:
    """``weights -> (B,)`` mean macro-F1 over several languages (each language weighs the same)."""
    return lambda w: np.nanmean(np.stack([bs.weighted_macro_f1(w, (y, pred, r)) for r in row_sets]), axis=0)


def paired_vs(
    y: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    groups: dict[str, np.ndarray],
    draws: bs.Draws,
    level: float,
) -> dict:
    """``a - b`` macro-F1 with its paired CI, overall and per language."""
    return split_groups(
        {
            g: bs.diff_ci(f1_metric(y, pred_a, rows), f1_metric(y, pred_b, rows), draws, level)
            for g, rows in groups.items()
        }
    )


def transfer_gaps(
    y: np.ndarray,
    pred: np.ndarray,
    langs: np.ndarray,
    source: Sequence[str],
    order: Sequence[str],
    draws: bs.Draws,
    level: float,
) -> dict:
    """Source macro-F1 minus each target language's (positive = worse on the target), paired CIs.

    ``mean`` is the source mean minus the target mean (the headline ``transfer_gap``).
    """
    langs = np.asarray(langs)
    src_rows = [langs == c for c in source if c in order]
    targets = [c for c in order if c not in source]
    if not src_rows or not targets:
        return {"mean": None, "per_language": {}}
    src = mean_f1_metric(y, pred, src_rows)
    per = {c: bs.diff_ci(src, f1_metric(y, pred, langs == c), draws, level) for c in targets}
    tgt = mean_f1_metric(y, pred, [langs == c for c in targets])
    return {"mean": bs.diff_ci(src, tgt, draws, level), "per_language": per}


def fusion_gains(
    y: np.ndarray,
    preds: dict[str, np.ndarray],
    langs: np.ndarray,
    order: Sequence[str],
    val_chosen: str,
    draws: bs.Draws,
    level: float,
) -> dict:
    """The fused model against single modalities, two ways, each named for what it is.

    ``vs_val_chosen``: against the one modality chosen on source val (an honest, pre-registered
    baseline). ``vs_best_single_per_language``: in each language against whichever single modality
    scores best *on that language's test rows* (an oracle choice that flatters the baseline, so the
    gain is a lower bound); ``min_gain`` is its worst language.
    """
    groups = groups_of(langs, order)
    chosen = paired_vs(y, preds["fused"], preds[val_chosen], groups, draws, level)
    best: dict[str, dict] = {}
    for g, rows in groups.items():
        scores = {m: float(f1_metric(y, preds[m], rows)(bs.ones(len(y)))[0]) for m in MODALITIES}
        winner = max(MODALITIES, key=lambda m: scores[m])
        diff = bs.diff_ci(f1_metric(y, preds["fused"], rows), f1_metric(y, preds[winner], rows), draws, level)
        best[g] = {"baseline": winner, "baseline_macro_f1": scores[winner], **diff}
    per_lang = {g: d for g, d in best.items() if g != "overall"}
    worst = min(per_lang, key=lambda g: per_lang[g]["diff"]) if per_lang else None
    return {
        "vs_val_chosen": {"baseline": val_chosen, "selected_on": "source val", **chosen},
        "vs_best_single_per_language": {
            **split_groups(best),
            "min_gain": per_lang[worst]["diff"] if worst else None,
            "min_gain_language": worst,
        },
    }


def ablation_drops(
    y: np.ndarray, preds: dict[str, np.ndarray], langs: np.ndarray, order: Sequence[str], draws, level
) -> dict:
    """``{modality: full minus masked macro-F1 with its paired CI}``: what each modality adds."""
    groups = groups_of(langs, order)
    return {
        m: paired_vs(y, preds["fused"], preds[without(m)], groups, draws, level)
        for m in MODALITIES
        if without(m) in preds
    }


def ece_change(
    y: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    langs: np.ndarray,
    order: Sequence[str],
    bins: int,
    draws: bs.Draws,
    level: float,
) -> dict:
    """ECE before minus after temperature scaling (positive = scaling helped), paired CIs."""
    ece = bs.ece_metric(bins)
    return split_groups(
        {
            g: bs.paired_ci(ece, (y, before, rows), (y, after, rows), draws, level)
            for g, rows in groups_of(langs, order).items()
        }
    )
