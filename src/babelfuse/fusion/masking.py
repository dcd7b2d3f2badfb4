"""Mask helpers shared by every fusion layer, and :class:`ModalityDropout`.

Inputs to every fusion layer are ``[text, image, audio, mask]`` with ``mask`` float (batch, 3) in the
order text, image, audio (1 = present). A missing modality must contribute nothing, so layers zero
its inputs *and* its projections (a Dense layer maps a zero vector to its bias, which is not nothing)
and exclude it from every softmax or average.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

N_MODALITIES = 3
NEG_INF = -1e9


def modality_mask(mask: Any, index: int) -> Any:
    """Column ``index`` of the mask as (batch, 1), ready to broadcast over features."""
    return mask[:, index : index + 1]


def masked_inputs(inputs: list[Any]) -> tuple[list[Any], Any]:
    """Split ``[text, image, audio, mask]`` and zero each absent modality's features."""
    if len(inputs) != N_MODALITIES + 1:
        raise ValueError(f"a fusion layer takes [text, image, audio, mask], got {len(inputs)} tensors")
    mask = ops.cast(inputs[-1], "float32")
    features = [ops.cast(x, "float32") * modality_mask(mask, i) for i, x in enumerate(inputs[:-1])]
    return features, mask


def masked_softmax(logits: Any, mask: Any, axis: int = -1) -> Any:
    """Softmax over present entries only; an all-absent row gives all-zero weights (never NaN)."""
    logits = ops.where(mask > 0, logits, ops.full_like(logits, NEG_INF))
    weights = ops.softmax(logits, axis=axis) * mask
    return weights / ops.maximum(ops.sum(weights, axis=axis, keepdims=True), 1e-9)


def masked_mean(stacked: Any, mask: Any) -> Any:
    """Mean of (batch, 3, d) over present modalities (zeros when none is present)."""
    weights = ops.expand_dims(mask, -1)
    total = ops.sum(stacked * weights, axis=1)
    return total / ops.maximum(ops.sum(weights, axis=1), 1.0)


@keras.saving.register_keras_serializable(package="babelfuse")
class ModalityDropout(keras.layers.Layer):
    """Training only: mask each present modality of a sample with probability ``rate``.

    Never leaves a sample with no modality: when every present modality would be dropped, the one
    with the largest random draw is kept. Teaches the model to cope with a missing modality at
    inference (``train.modality_dropout``). At inference the mask passes through unchanged.
    """

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"modality dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, mask: Any, training: bool | None = None) -> Any:
        mask = ops.cast(mask, "float32")
        if not training or self.rate == 0.0:
            return mask
        draw = keras.random.uniform(ops.shape(mask), seed=self.seed_generator)
        dropped = mask * ops.cast(draw >= self.rate, "float32")
        # Fallback for samples that lost every present modality: keep the present one with the largest draw.
        best = ops.one_hot(ops.argmax(draw * mask + mask, axis=-1), N_MODALITIES, dtype="float32") * mask
        empty = ops.cast(ops.sum(dropped, axis=-1, keepdims=True) == 0, "float32")
        return dropped + empty * best

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
