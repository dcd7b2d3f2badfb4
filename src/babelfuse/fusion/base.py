"""The base class of the fusion layers: ``[text, image, audio, mask] -> (batch, hidden)``.

A fusion layer turns three standardised modality vectors and the modality mask into one fused
representation that the model's head classifies. ``late`` is the exception: it already classifies
each modality, so it outputs class logits (``outputs_logits = True``) and the model adds only a
softmax. Each subclass is registered with Keras (package ``babelfuse``) so ``models/model.keras``
loads with ``safe_mode=True``.
"""

from __future__ import annotations

from typing import Any

import keras

from babelfuse.fusion.masking import N_MODALITIES, masked_inputs


def positive_int(value: Any, key: str) -> int:
    """A ``train.*`` size that must be a whole number >= 1 (``key`` names it in the error)."""
    if int(value) < 1:
        raise ValueError(f"{key} must be >= 1, got {value}")
    return int(value)


def per_modality_dense(units: int, prefix: str, activation: str | None = None) -> list[keras.layers.Dense]:
    """One ``Dense(units)`` per modality, named ``<prefix>_<i>`` (the names are part of saved models)."""
    return [
        keras.layers.Dense(units, activation=activation, name=f"{prefix}_{i}") for i in range(N_MODALITIES)
    ]


class FusionLayer(keras.layers.Layer):
    """Common constructor, config and ``from_params`` for the seven fusion methods."""

    outputs_logits: bool = False

    def __init__(self, hidden: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden = positive_int(hidden, "train.hidden")

    @classmethod
    def from_params(cls, params: dict[str, Any], n_classes: int) -> FusionLayer:
        """Build from the ``train`` params section (each method reads only the keys it needs)."""
        return cls(hidden=int(params["hidden"]), name="fusion")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden": self.hidden}

    @staticmethod
    def split(inputs: list[Any]) -> tuple[list[Any], Any]:
        """``[text, image, audio, mask]`` -> (the three features with absent ones zeroed, mask)."""
        return masked_inputs(inputs)

    @staticmethod
    def feature_dims(input_shape: list[tuple]) -> list[int]:
        if len(input_shape) != N_MODALITIES + 1:
            raise ValueError("a fusion layer takes [text, image, audio, mask]")
        return [int(shape[-1]) for shape in input_shape[:N_MODALITIES]]
