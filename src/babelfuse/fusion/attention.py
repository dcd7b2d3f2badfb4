"""Cross-modal attention fusion in the spirit of MulT (Tsai et al. 2019).

Each modality becomes a token (a linear projection plus a learned modality embedding). In one
transformer block every token queries the *other* present modalities with multi-head attention
(cross-modal: a token attends to itself only when no other modality is present), then a feed-forward
layer; the fused vector is the mean of the present tokens. Absent tokens are zeroed, never attended
to and left out of the mean. Keys and values carry no bias: a key bias cannot change a softmax over
keys, so it would be a weight that never trains.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from babelfuse.fusion.base import FusionLayer, per_modality_dense, positive_int
from babelfuse.fusion.masking import N_MODALITIES, masked_mean, masked_softmax


@keras.saving.register_keras_serializable(package="babelfuse")
class AttentionFusion(FusionLayer):
    """Modality tokens + one multi-head cross-modal attention block (``train.attention_heads``)."""

    def __init__(self, hidden: int = 64, heads: int = 4, **kwargs: Any) -> None:
        super().__init__(hidden=hidden, **kwargs)
        self.heads = positive_int(heads, "train.attention_heads")
        self.key_dim = max(1, math.ceil(self.hidden / self.heads))
        width = self.heads * self.key_dim
        self.projections = per_modality_dense(self.hidden, "token")
        self.query = keras.layers.Dense(width, name="query")
        self.key = keras.layers.Dense(width, use_bias=False, name="key")
        self.value = keras.layers.Dense(width, use_bias=False, name="value")
        self.output_dense = keras.layers.Dense(self.hidden, name="attention_output")
        self.norm_attention = keras.layers.LayerNormalization(name="norm_attention")
        self.feed_forward = keras.layers.Dense(2 * self.hidden, activation="relu", name="feed_forward")
        self.feed_forward_out = keras.layers.Dense(self.hidden, name="feed_forward_out")
        self.norm_output = keras.layers.LayerNormalization(name="norm_output")

    @classmethod
    def from_params(cls, params: dict[str, Any], n_classes: int) -> AttentionFusion:
        return cls(hidden=int(params["hidden"]), heads=int(params["attention_heads"]), name="fusion")

    def build(self, input_shape: list[tuple]) -> None:
        for layer, dim in zip(self.projections, self.feature_dims(input_shape), strict=True):
            layer.build((None, dim))
        token_shape = (None, N_MODALITIES, self.hidden)
        for layer in (self.query, self.key, self.value, self.feed_forward):
            layer.build(token_shape)
        self.output_dense.build((None, N_MODALITIES, self.heads * self.key_dim))
        self.feed_forward_out.build((None, N_MODALITIES, 2 * self.hidden))
        self.norm_attention.build(token_shape)
        self.norm_output.build(token_shape)
        self.modality_embedding = self.add_weight(
            shape=(N_MODALITIES, self.hidden),
            initializer="random_normal",
            trainable=True,
            name="modality_embedding",
        )

    def _split_heads(self, x: Any) -> Any:
        return ops.reshape(x, (-1, N_MODALITIES, self.heads, self.key_dim))

    def call(self, inputs: list[Any]) -> Any:
        features, mask = self.split(inputs)
        present = ops.expand_dims(mask, -1)  # (batch, 3, 1)
        tokens = ops.stack([layer(x) for layer, x in zip(self.projections, features, strict=True)], axis=1)
        tokens = (tokens + self.modality_embedding) * present
        query = self._split_heads(self.query(tokens))
        key = self._split_heads(self.key(tokens))
        value = self._split_heads(self.value(tokens))
        scores = ops.einsum("bqhd,bkhd->bhqk", query, key) / math.sqrt(self.key_dim)
        # allowed[b, q, k]: key k present and k != q; a query with no other present modality attends to itself.
        eye = ops.eye(N_MODALITIES, dtype="float32")
        cross = ops.expand_dims(mask, 1) * (1.0 - eye)
        alone = ops.cast(ops.sum(cross, axis=-1, keepdims=True) == 0, "float32")
        allowed = cross + alone * eye * ops.expand_dims(mask, 1)
        weights = masked_softmax(scores, ops.expand_dims(allowed, 1), axis=-1)
        attended = ops.einsum("bhqk,bkhd->bqhd", weights, value)
        attended = ops.reshape(attended, (-1, N_MODALITIES, self.heads * self.key_dim))
        x = self.norm_attention(tokens + self.output_dense(attended))
        x = self.norm_output(x + self.feed_forward_out(self.feed_forward(x)))
        return masked_mean(x, mask)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "heads": self.heads}
