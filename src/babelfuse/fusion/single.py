"""One modality only: the fusion slot of the single-modality baselines (``baseline:text`` ...).

It takes the same ``[text, image, audio, mask]`` inputs as every fusion layer (so baseline models have
the fused model's input signature) but looks at one modality: ``relu(W x_m + b) * mask_m``.
"""

from __future__ import annotations

from typing import Any

import keras

from babelfuse.fusion.base import FusionLayer
from babelfuse.fusion.masking import modality_mask
from babelfuse.paths import MODALITIES


@keras.saving.register_keras_serializable(package="babelfuse")
class SingleModality(FusionLayer):
    """Projects the chosen modality; other inputs are ignored."""

    def __init__(self, hidden: int = 64, modality: str = "text", **kwargs: Any) -> None:
        super().__init__(hidden=hidden, **kwargs)
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        self.modality = modality
        self.index = MODALITIES.index(modality)
        self.dense = keras.layers.Dense(self.hidden, activation="relu", name="dense")

    def build(self, input_shape: list[tuple]) -> None:
        self.dense.build((None, self.feature_dims(input_shape)[self.index]))

    def call(self, inputs: list[Any]) -> Any:
        features, mask = self.split(inputs)
        return self.dense(features[self.index]) * modality_mask(mask, self.index)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "modality": self.modality}
