"""Classification metrics per language and the transfer summary (intervals: :mod:`.bootstrap`).

Pure functions: arrays in (``y_true`` int labels, ``probs`` (n, 3) class probabilities, ``langs``
str codes), plain dicts of floats/strings out, so the evaluate stage, the report and the promotion gate
all read the same numbers. scikit-learn does the counting.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from babelfuse.labels import LABELS


def predictions(probs: np.ndarray) -> np.ndarray:
    """The predicted class index of each row (argmax of the probabilities)."""
    return np.asarray(probs).argmax(axis=1)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(accuracy_score(y_true, y_pred))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """sklearn macro-F1 over the classes present in ``y_true`` or ``y_pred``: the one definition
    (training passes ``predictions(probs)``; no warning on 0/0)."""
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def language_order(langs: np.ndarray, source_langs: Sequence[str] = ()) -> list[str]:
    """Source languages first, then the others alphabetically: the order every table uses."""
    present = sorted(set(np.asarray(langs).tolist()))
    return [code for code in source_langs if code in present] + [c for c in present if c not in source_langs]


def f1_by_language(y_true: np.ndarray, probs: np.ndarray, langs: np.ndarray) -> dict[str, float]:
    """Point macro-F1 overall (key ``overall``) and per language, no intervals: for ablations."""
    y_true, y_pred, langs = np.asarray(y_true), predictions(probs), np.asarray(langs)
    out = {"overall": macro_f1(y_true, y_pred)}
    for code in sorted(set(langs.tolist())):
        rows = langs == code
        out[code] = macro_f1(y_true[rows], y_pred[rows])
    return out


def transfer_summary(per_lang: dict[str, dict[str, float]], source_langs: Sequence[str]) -> dict[str, object]:
    """How well what was learned in the source language(s) carries to the others.

    ``source_macro_f1`` is the mean test macro-F1 over source languages, ``target_macro_f1`` the mean
    over every other language, ``transfer_gap`` their difference (positive = worse on targets) and
    ``worst_language`` the language with the lowest macro-F1.
    """
    source = [c for c in per_lang if c in set(source_langs)]
    target = [c for c in per_lang if c not in set(source_langs)]
    source_f1 = float(np.mean([per_lang[c]["macro_f1"] for c in source])) if source else float("nan")
    target_f1 = float(np.mean([per_lang[c]["macro_f1"] for c in target])) if target else float("nan")
    worst = min(per_lang, key=lambda c: per_lang[c]["macro_f1"]) if per_lang else ""
    return {
        "source_macro_f1": source_f1,
        "target_macro_f1": target_f1,
        "transfer_gap": source_f1 - target_f1,
        "worst_language": worst,
    }


def confusion_matrices(y_true: np.ndarray, probs: np.ndarray, langs: np.ndarray) -> dict[str, np.ndarray]:
    """Confusion matrices (rows = actual, columns = predicted, in ``LABELS`` order), overall and per language."""
    y_true, y_pred, langs = np.asarray(y_true), predictions(probs), np.asarray(langs)
    labels = list(range(len(LABELS)))
    out = {"overall": confusion_matrix(y_true, y_pred, labels=labels)}
    for code in sorted(set(langs.tolist())):
        rows = langs == code
        out[code] = confusion_matrix(y_true[rows], y_pred[rows], labels=labels)
    return out
