"""The encoder interface every modality shares: an id, a dimension, ``encode(batch) -> (n, dim)``.

Batches are lists of decoded inputs: ``list[str]`` for text, ``list[np.ndarray]`` (H, W, 3 uint8
RGB) for images, ``list[np.ndarray]`` (samples,) float32 mono at the encoder's sample rate for
audio. ``encode`` returns float32 and must be deterministic for the same inputs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Encoder(ABC):
    """Base class: subclasses set ``modality``, ``id``, ``version`` and ``dim``."""

    modality: str = ""
    id: str = ""
    version: str = ""
    dim: int = 0

    @abstractmethod
    def encode(self, batch: list[Any]) -> np.ndarray:
        """Encode a batch of decoded inputs into a float32 array of shape (len(batch), dim)."""

    def describe(self) -> dict[str, Any]:
        """What goes into ``data/features/<modality>.json`` and the MLflow run."""
        return {
            "modality": self.modality,
            "encoder": self.id,
            "encoder_version": self.version,
            "dim": self.dim,
        }
