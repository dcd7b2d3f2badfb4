"""Gated Multimodal Unit (Arevalo et al. 2017) generalised from two modalities to three.

Each modality gives a candidate ``h_m = tanh(W_m x_m)``; a gate network looks at all inputs and
outputs, per hidden unit, a softmax over the present modalities (the two-modality GMU's ``z`` and
``1 - z`` become three weights that sum to one). ``out = sum_m z_m * h_m``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from babelfuse.fusion.base import FusionLayer, per_modality_dense
from babelfuse.fusion.masking import N_MODALITIES, masked_softmax, modality_mask


@keras.saving.register_keras_serializable(package="babelfuse")
class GatedFusion(FusionLayer):
    """Per-unit gates over present modalities; an absent modality gets gate 0 and candidate 0."""

    def __init__(self, hidden: int = 64, **kwargs: Any) -> None:
        super().__init__(hidden=hidden, **kwargs)
        self.candidates = per_modality_dense(self.hidden, "candidate", "tanh")
        self.gate = keras.layers.Dense(N_MODALITIES * self.hidden, name="gate")

    def build(self, input_shape: list[tuple]) -> None:
        dims = self.feature_dims(input_shape)
        for layer, dim in zip(self.candidates, dims, strict=True):
            layer.build((None, dim))
        self.gate.build((None, sum(dims) + N_MODALITIES))

    def call(self, inputs: list[Any]) -> Any:
        features, mask = self.split(inputs)
        candidates = ops.stack(
            [
                layer(x) * modality_mask(mask, i)
                for i, (layer, x) in enumerate(zip(self.candidates, features, strict=True))
            ],
            axis=1,
        )  # (batch, 3, hidden)
        gate_logits = ops.reshape(
            self.gate(ops.concatenate([*features, mask], axis=-1)), (-1, N_MODALITIES, self.hidden)
        )
        gates = masked_softmax(gate_logits, ops.expand_dims(mask, -1), axis=1)
        return ops.sum(gates * candidates, axis=1)
