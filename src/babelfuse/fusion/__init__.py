"""Seven fusion methods as Keras layers, chosen by ``params.yaml: train.fusion``.

Adding a method: one module with a :class:`~babelfuse.fusion.base.FusionLayer` subclass registered
with ``keras.saving.register_keras_serializable(package="babelfuse")`` and one line in ``FUSIONS``.
Importing this package registers every layer, which loading a ``.keras`` model needs.
"""

from __future__ import annotations

from babelfuse.fusion.attention import AttentionFusion
from babelfuse.fusion.base import FusionLayer
from babelfuse.fusion.concat import ConcatFusion
from babelfuse.fusion.gated import GatedFusion
from babelfuse.fusion.late import LateFusion
from babelfuse.fusion.lowrank import LowRankFusion
from babelfuse.fusion.masking import ModalityDropout
from babelfuse.fusion.single import SingleModality
from babelfuse.fusion.tensor import TensorFusion
from babelfuse.fusion.weighted import WeightedFusion

FUSIONS: dict[str, type[FusionLayer]] = {
    "concat": ConcatFusion,
    "weighted": WeightedFusion,
    "attention": AttentionFusion,
    "gated": GatedFusion,
    "late": LateFusion,
    "tensor": TensorFusion,
    "lowrank": LowRankFusion,
}

__all__ = [
    "FUSIONS",
    "AttentionFusion",
    "ConcatFusion",
    "FusionLayer",
    "GatedFusion",
    "LateFusion",
    "LowRankFusion",
    "ModalityDropout",
    "SingleModality",
    "TensorFusion",
    "WeightedFusion",
]
