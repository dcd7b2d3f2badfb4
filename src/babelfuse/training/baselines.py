"""Baselines logged beside the fused model: each modality alone (same head) and a LogisticRegression.

``fusion_gain`` = fused val macro-F1 minus the best single-modality model's: the number that says
whether fusing was worth it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from babelfuse.paths import MODALITIES
from babelfuse.training.fit import FitResult, cross_entropy, fit_model, macro_f1, model_inputs
from babelfuse.training.model import build_single_modality_model

log = logging.getLogger("babelfuse.training")


@dataclass
class LogRegResult:
    val_macro_f1: float
    val_accuracy: float
    val_loss: float
    seconds: float


def fit_single_modality(
    modality: str, params: dict[str, Any], train: dict[str, np.ndarray], val: dict[str, np.ndarray], seed: int
) -> FitResult:
    """The fused model's head on one modality, trained exactly like the fused model."""

    def build(dims: dict[str, int], p: dict[str, Any]) -> Any:
        return build_single_modality_model(modality, dims, p)

    return fit_model(params, train, val, seed, build=build)


def concatenated(split: dict[str, np.ndarray]) -> np.ndarray:
    """All modality features side by side plus the mask (absent modalities are zeros)."""
    inputs = model_inputs(split)
    return np.concatenate([inputs[m] for m in (*MODALITIES, "mask")], axis=1)


def fit_logreg(
    train: dict[str, np.ndarray], val: dict[str, np.ndarray], seed: int
) -> tuple[Any, LogRegResult]:
    """scikit-learn LogisticRegression (L2, C=1) on the concatenated standardised features."""
    started = time.perf_counter()
    model = LogisticRegression(max_iter=2000, random_state=seed)
    model.fit(concatenated(train), np.asarray(train["label"]))
    seconds = time.perf_counter() - started
    probs = np.zeros((len(val["label"]), 3))
    probs[:, model.classes_] = model.predict_proba(concatenated(val))
    labels = np.asarray(val["label"])
    result = LogRegResult(
        val_macro_f1=macro_f1(labels, probs),
        val_accuracy=float(np.mean(np.argmax(probs, axis=1) == labels)),
        val_loss=cross_entropy(labels, probs),
        seconds=seconds,
    )
    return model, result


def fusion_gain(fused_f1: float, single_f1: dict[str, float]) -> tuple[str, float]:
    """(best single modality, fused macro-F1 minus its macro-F1)."""
    best = max(single_f1, key=lambda m: single_f1[m])
    return best, float(fused_f1 - single_f1[best])
