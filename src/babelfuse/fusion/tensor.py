"""Tensor Fusion Network (Zadeh et al. 2017): the outer product of the modality vectors, each with a 1
appended, so the product holds unimodal, bimodal and trimodal interaction terms.

The outer product of three ``d``-vectors has ``(d+1)^3`` entries, so each modality is first projected
to a small ``dim`` (``train.tensor_dim``, default 8: 729 entries). An absent modality's projection is
zeroed, leaving only its appended 1: the product then holds the terms of the present modalities only.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from babelfuse.fusion.base import FusionLayer, per_modality_dense, positive_int
from babelfuse.fusion.masking import N_MODALITIES, modality_mask


@keras.saving.register_keras_serializable(package="babelfuse")
class TensorFusion(FusionLayer):
    """``relu(W vec([z_t,1] x [z_i,1] x [z_a,1]) + b)`` with ``z_m = tanh(P_m x_m) * mask_m``."""

    def __init__(self, hidden: int = 64, dim: int = 8, **kwargs: Any) -> None:
        super().__init__(hidden=hidden, **kwargs)
        self.dim = positive_int(dim, "train.tensor_dim")
        self.projections = per_modality_dense(self.dim, "project", "tanh")
        self.dense = keras.layers.Dense(self.hidden, activation="relu", name="dense")

    @classmethod
    def from_params(cls, params: dict[str, Any], n_classes: int) -> TensorFusion:
        return cls(hidden=int(params["hidden"]), dim=int(params["tensor_dim"]), name="fusion")

    def build(self, input_shape: list[tuple]) -> None:
        for layer, dim in zip(self.projections, self.feature_dims(input_shape), strict=True):
            layer.build((None, dim))
        self.dense.build((None, (self.dim + 1) ** N_MODALITIES))

    def call(self, inputs: list[Any]) -> Any:
        features, mask = self.split(inputs)
        ones = ops.ones_like(mask[:, :1])
        z = [
            ops.concatenate([layer(x) * modality_mask(mask, i), ones], axis=-1)
            for i, (layer, x) in enumerate(zip(self.projections, features, strict=True))
        ]
        product = ops.einsum("bi,bj,bk->bijk", z[0], z[1], z[2])
        return self.dense(ops.reshape(product, (-1, (self.dim + 1) ** N_MODALITIES)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dim": self.dim}
