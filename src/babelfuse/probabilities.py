"""Class probabilities <-> logits and temperature scaling: numpy only, so the served model imports it too.

The evaluate stage fits the temperature (:mod:`babelfuse.evaluation.calibration`); the served model
applies the same function to its softmax output.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def to_logits(probs: np.ndarray) -> np.ndarray:
    """Log-probabilities: logits up to a per-row constant, which softmax ignores."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): probabilities after dividing the logits by ``temperature`` (argmax unchanged)."""
    return softmax(to_logits(probs) / float(temperature))
