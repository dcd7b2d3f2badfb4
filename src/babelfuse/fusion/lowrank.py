"""Low-rank Multimodal Fusion (Liu et al. 2018): the Tensor Fusion product computed through
rank-``r`` modality-specific factors, never materialising the outer product.

``out = sum_r w_r * prod_m (W_m^(r) [z_m, 1]) + b``. The factors ``W_m`` (stored as ``factor_m`` for the
rows multiplying ``z_m`` and ``factor_offset_m`` for the row multiplying the appended 1) are trainable Keras weights
created with ``add_weight`` (a public benchmark once shipped factors that never trained; the unit
test checks that every factor receives a gradient). An absent modality's ``z_m`` is zeroed, leaving
its appended 1, exactly as in :mod:`babelfuse.fusion.tensor`.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from babelfuse.fusion.base import FusionLayer, per_modality_dense, positive_int
from babelfuse.fusion.masking import N_MODALITIES, modality_mask


@keras.saving.register_keras_serializable(package="babelfuse")
class LowRankFusion(FusionLayer):
    """Rank ``train.lowrank_rank`` factors on modality projections of size ``hidden``."""

    def __init__(self, hidden: int = 64, rank: int = 4, **kwargs: Any) -> None:
        super().__init__(hidden=hidden, **kwargs)
        self.rank = positive_int(rank, "train.lowrank_rank")
        self.projections = per_modality_dense(self.hidden, "project", "tanh")

    @classmethod
    def from_params(cls, params: dict[str, Any], n_classes: int) -> LowRankFusion:
        return cls(hidden=int(params["hidden"]), rank=int(params["lowrank_rank"]), name="fusion")

    def build(self, input_shape: list[tuple]) -> None:
        for layer, dim in zip(self.projections, self.feature_dims(input_shape), strict=True):
            layer.build((None, dim))
        # Factor m acts on [z_m, 1]: `factors[m]` holds the rows for z_m, `factor_offsets[m]` the row for
        # the appended 1. Offsets start at 1 so the product starts near 1 + sum of unimodal terms (an
        # additive fusion) and learns interactions from there, instead of starting as a product of noise.
        self.factors = [
            self.add_weight(
                shape=(self.rank, self.hidden, self.hidden),
                initializer="glorot_normal",
                trainable=True,
                name=f"factor_{i}",
            )
            for i in range(N_MODALITIES)
        ]
        self.factor_offsets = [
            self.add_weight(
                shape=(self.rank, self.hidden), initializer="ones", trainable=True, name=f"factor_offset_{i}"
            )
            for i in range(N_MODALITIES)
        ]
        self.rank_weights = self.add_weight(
            shape=(self.rank,), initializer="glorot_normal", trainable=True, name="rank_weights"
        )
        self.bias = self.add_weight(shape=(self.hidden,), initializer="zeros", trainable=True, name="bias")

    def call(self, inputs: list[Any]) -> Any:
        features, mask = self.split(inputs)
        fused = None
        for i, (layer, x) in enumerate(zip(self.projections, features, strict=True)):
            z = layer(x) * modality_mask(mask, i)  # (batch, hidden); zero when absent
            factor = ops.einsum("bd,rdh->brh", z, self.factors[i]) + self.factor_offsets[i]  # W_m [z_m, 1]
            fused = factor if fused is None else fused * factor
        return ops.einsum("r,brh->bh", self.rank_weights, fused) + self.bias

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rank": self.rank}
