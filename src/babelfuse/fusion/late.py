"""Late fusion: one classifier head per modality, logits averaged over the present modalities."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from babelfuse.fusion.base import FusionLayer, per_modality_dense
from babelfuse.fusion.masking import N_MODALITIES, masked_mean


@keras.saving.register_keras_serializable(package="babelfuse")
class LateFusion(FusionLayer):
    """Outputs class *logits* (``outputs_logits``): the model only adds a softmax after it.

    Each head is ``Dense(hidden, relu) -> Dropout -> Dense(n_classes)`` on one modality; a sample's
    logits are the mean over its present modalities (all-absent gives zero logits = uniform).
    """

    outputs_logits = True

    def __init__(self, hidden: int = 64, n_classes: int = 3, dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(hidden=hidden, **kwargs)
        self.n_classes = int(n_classes)
        self.dropout = float(dropout)
        self.hidden_layers = per_modality_dense(self.hidden, "hidden", "relu")
        self.dropouts = [keras.layers.Dropout(self.dropout, name=f"dropout_{i}") for i in range(N_MODALITIES)]
        self.classifiers = per_modality_dense(self.n_classes, "logits")

    @classmethod
    def from_params(cls, params: dict[str, Any], n_classes: int) -> LateFusion:
        return cls(
            hidden=int(params["hidden"]), n_classes=n_classes, dropout=float(params["dropout"]), name="fusion"
        )

    def build(self, input_shape: list[tuple]) -> None:
        for i, dim in enumerate(self.feature_dims(input_shape)):
            self.hidden_layers[i].build((None, dim))
            self.classifiers[i].build((None, self.hidden))

    def call(self, inputs: list[Any], training: bool | None = None) -> Any:
        features, mask = self.split(inputs)
        logits = [
            self.classifiers[i](self.dropouts[i](self.hidden_layers[i](x), training=training))
            for i, x in enumerate(features)
        ]
        return masked_mean(ops.stack(logits, axis=1), mask)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_classes": self.n_classes, "dropout": self.dropout}
