"""Early fusion: concatenate the (masked) modality vectors and the mask, then one shared Dense layer."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from babelfuse.fusion.base import FusionLayer
from babelfuse.fusion.masking import N_MODALITIES


@keras.saving.register_keras_serializable(package="babelfuse")
class ConcatFusion(FusionLayer):
    """``relu(W [x_t*m_t, x_i*m_i, x_a*m_a, m] + b)``: the mask tells the layer which parts are real zeros."""

    def __init__(self, hidden: int = 64, **kwargs: Any) -> None:
        super().__init__(hidden=hidden, **kwargs)
        self.dense = keras.layers.Dense(self.hidden, activation="relu", name="dense")

    def build(self, input_shape: list[tuple]) -> None:
        self.dense.build((None, sum(self.feature_dims(input_shape)) + N_MODALITIES))

    def call(self, inputs: list[Any]) -> Any:
        features, mask = self.split(inputs)
        return self.dense(ops.concatenate([*features, mask], axis=-1))
