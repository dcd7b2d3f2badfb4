"""Per-prediction modality contributions: exact Shapley values over the modalities present, by masking.

The game of one post: the players are its modalities; the value of a coalition ``S`` is the model's
probability of the class it predicts with every present modality, when only ``S`` is present (the
others are missing exactly as the fuse stage writes a missing modality: zero features, mask bit 0).
With three modalities that is 2^3 = 8 coalitions per post, stacked into one batched forward pass.

A modality absent from the post is a dummy player (masking it changes nothing), so its value is 0 and
the others' values are those of the game over the present modalities only. By Shapley's efficiency
property the contributions of a post sum to ``p(class | all present) - p(class | none present)``.

``predict`` is any callable from a model-input dict ``{"text", "image", "audio", "mask"}`` to
``(n, n_classes)`` probabilities (the served model's calibrated probabilities, or ``model.predict``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import factorial
from typing import Any

import numpy as np

from babelfuse.paths import MODALITIES

Inputs = dict[str, np.ndarray]
Predict = Callable[[Inputs], np.ndarray]
CONTRIB_COLUMNS: tuple[str, ...] = tuple(f"contrib_{m}" for m in MODALITIES)


def coalitions(k: int = len(MODALITIES)) -> np.ndarray:
    """All 2^k coalitions as a (2^k, k) 0/1 float array; row 0 is the empty one, the last the full one."""
    return np.array(list(itertools.product((0.0, 1.0), repeat=k)), dtype=np.float32)[:, ::-1].copy()


def shapley_matrix(k: int = len(MODALITIES)) -> np.ndarray:
    """(2^k, k) weights W with ``phi = values @ W`` for values (n, 2^k) ordered as :func:`coalitions`.

    ``phi_i = sum over S not holding i of |S|! (k-|S|-1)! / k! * (v(S + i) - v(S))``.
    """
    rows = coalitions(k).astype(bool)
    index = {tuple(r): c for c, r in enumerate(rows)}
    weights = np.zeros((len(rows), k), dtype=np.float64)
    for c, members in enumerate(rows):
        size = int(members.sum())
        for i in np.flatnonzero(~members):
            w = factorial(size) * factorial(k - size - 1) / factorial(k)
            with_i = members.copy()
            with_i[i] = True
            weights[index[tuple(with_i)], i] += w
            weights[c, i] -= w
    return weights


def coalition_inputs(inputs: Inputs, members: np.ndarray) -> Inputs:
    """The inputs repeated once per coalition (coalition-major: row ``c * n + i``), each keeping only
    that coalition's modalities (features zeroed and mask bit cleared for the others)."""
    mask = np.concatenate([inputs["mask"] * row for row in members]).astype(np.float32)
    out: Inputs = {"mask": mask}
    for j, modality in enumerate(MODALITIES):
        x = np.tile(np.asarray(inputs[modality]), (len(members), 1))
        out[modality] = (x * mask[:, j : j + 1]).astype(np.float32)
    return out


@dataclass(frozen=True)
class Explanation:
    """Contributions of a batch of posts. ``probs[c]`` = (n, classes) probabilities under coalition c."""

    label: np.ndarray  # (n,) predicted class index with all present modalities
    contrib: np.ndarray  # (n, 3) Shapley value of each modality for that class (0 when absent)
    probs: np.ndarray  # (2^3, n, classes)

    @property
    def full(self) -> np.ndarray:
        return self.probs[-1]

    def without_top(self) -> np.ndarray:
        """(n,) predicted class when the top contributor (largest value) of each post is masked too."""
        top = np.argmax(self.contrib, axis=1)
        members = coalitions()
        full_row = np.ones(len(MODALITIES), dtype=bool)
        index = {tuple(r): c for c, r in enumerate(members.astype(bool))}
        out = np.empty(len(top), dtype=np.int64)
        for t in range(len(MODALITIES)):
            keep = full_row.copy()
            keep[t] = False
            rows = np.flatnonzero(top == t)
            out[rows] = np.argmax(self.probs[index[tuple(keep)]][rows], axis=1)
        return out


def explain(predict: Predict, inputs: Inputs) -> Explanation:
    """Exact Shapley values of every post's modalities for its predicted class: one batched ``predict``."""
    n = len(inputs["mask"])
    members = coalitions()
    probs = np.asarray(predict(coalition_inputs(inputs, members)), dtype=np.float64)
    probs = probs.reshape(len(members), n, -1)
    label = np.argmax(probs[-1], axis=1)
    values = probs[:, np.arange(n), label].T  # (n, 2^k): v(S) for the predicted class
    contrib = values @ shapley_matrix()
    contrib[np.asarray(inputs["mask"]) == 0] = 0.0  # dummies: exactly 0, not float noise
    return Explanation(label=label, contrib=contrib, probs=probs)


def contribution_summary(
    predict: Predict, inputs: Inputs, langs: np.ndarray, order: Sequence[str]
) -> dict[str, Any]:
    """Per language (and overall): mean |contribution| of each modality (absent counts as 0), and the
    share of posts whose prediction flips when their top contributor is masked."""
    result = explain(predict, inputs)
    flipped = result.without_top() != result.label
    langs = np.asarray(langs)

    def one(rows: np.ndarray) -> dict[str, Any]:
        mean_abs = (
            np.abs(result.contrib[rows]).mean(axis=0) if rows.any() else np.full(len(MODALITIES), np.nan)
        )
        return {
            "n": int(rows.sum()),
            "mean_abs_contribution": {m: float(mean_abs[j]) for j, m in enumerate(MODALITIES)},
            "flip_share_without_top": float(flipped[rows].mean()) if rows.any() else None,
        }

    return {
        "method": "exact Shapley values over present modalities, by masking; value = p(predicted class)",
        "overall": one(np.ones(len(langs), dtype=bool)),
        "per_language": {c: one(langs == c) for c in order if (langs == c).any()},
    }
