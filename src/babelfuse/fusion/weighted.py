"""Weighted fusion: project each modality to a common size, average with learned softmax weights."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from babelfuse.fusion.base import FusionLayer, per_modality_dense
from babelfuse.fusion.masking import N_MODALITIES, masked_softmax, modality_mask


@keras.saving.register_keras_serializable(package="babelfuse")
class WeightedFusion(FusionLayer):
    """``sum_m w_m tanh(W_m x_m)`` with ``w = softmax(learned logits)`` taken over present modalities only,
    so a sample with one modality missing renormalises over the other two."""

    def __init__(self, hidden: int = 64, **kwargs: Any) -> None:
        super().__init__(hidden=hidden, **kwargs)
        self.projections = per_modality_dense(self.hidden, "project", "tanh")

    def build(self, input_shape: list[tuple]) -> None:
        for layer, dim in zip(self.projections, self.feature_dims(input_shape), strict=True):
            layer.build((None, dim))
        self.modality_logits = self.add_weight(
            shape=(N_MODALITIES,), initializer="zeros", trainable=True, name="modality_logits"
        )

    def call(self, inputs: list[Any]) -> Any:
        features, mask = self.split(inputs)
        projected = [
            layer(x) * modality_mask(mask, i)
            for i, (layer, x) in enumerate(zip(self.projections, features, strict=True))
        ]
        stacked = ops.stack(projected, axis=1)  # (batch, 3, hidden)
        logits = ops.zeros_like(mask) + self.modality_logits  # (batch, 3)
        weights = masked_softmax(logits, mask, axis=-1)
        return ops.sum(stacked * ops.expand_dims(weights, -1), axis=1)
