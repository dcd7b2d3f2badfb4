"""The Keras model: dict inputs ``{text, image, audio, mask}`` -> fusion layer -> head -> softmax (3,).

Every model (fused or single-modality baseline) has the same inputs and the same head
(``Dropout -> Dense(hidden, relu) -> Dropout -> Dense(3, softmax)``), so evaluation and serving treat
them alike. ``late`` fusion classifies each modality itself; its model adds only the softmax.
"""

from __future__ import annotations

from typing import Any

import keras

from babelfuse.errors import BabelfuseError
from babelfuse.fusion import FUSIONS, FusionLayer, ModalityDropout, SingleModality
from babelfuse.labels import LABELS
from babelfuse.paths import MODALITIES

MASK = "mask"


def model_input_layers(dims: dict[str, int]) -> dict[str, keras.KerasTensor]:
    """One named Input per modality (its feature dim) plus the (3,) mask."""
    missing = [m for m in MODALITIES if m not in dims]
    if missing:
        raise BabelfuseError(f"feature dims missing for modality {missing} (have {sorted(dims)})")
    inputs = {m: keras.Input(shape=(int(dims[m]),), name=m, dtype="float32") for m in MODALITIES}
    inputs[MASK] = keras.Input(shape=(len(MODALITIES),), name=MASK, dtype="float32")
    return inputs


def _head(fused: Any, params: dict[str, Any], outputs_logits: bool) -> Any:
    if outputs_logits:
        return keras.layers.Softmax(name="probs")(fused)
    x = keras.layers.Dropout(float(params["dropout"]), name="head_dropout_in")(fused)
    x = keras.layers.Dense(int(params["hidden"]), activation="relu", name="head_hidden")(x)
    x = keras.layers.Dropout(float(params["dropout"]), name="head_dropout")(x)
    return keras.layers.Dense(len(LABELS), activation="softmax", name="probs")(x)


def _assemble(dims: dict[str, int], params: dict[str, Any], fusion: FusionLayer, name: str) -> keras.Model:
    inputs = model_input_layers(dims)
    mask = inputs[MASK]
    rate = float(params["modality_dropout"])
    if rate > 0:
        mask = ModalityDropout(rate, name="modality_dropout")(mask)
    fused = fusion([inputs["text"], inputs["image"], inputs["audio"], mask])
    return keras.Model(inputs=inputs, outputs=_head(fused, params, fusion.outputs_logits), name=name)


def build_model(dims: dict[str, int], params: dict[str, Any]) -> keras.Model:
    """The fused model named by ``train.fusion`` (one of :data:`babelfuse.fusion.FUSIONS`)."""
    method = params["fusion"]
    if method not in FUSIONS:
        raise BabelfuseError(f"train.fusion={method!r} is not a fusion method; known: {', '.join(FUSIONS)}")
    fusion = FUSIONS[method].from_params(params, n_classes=len(LABELS))
    return _assemble(dims, params, fusion, name=f"babelfuse_{method}")


def build_single_modality_model(modality: str, dims: dict[str, int], params: dict[str, Any]) -> keras.Model:
    """A baseline that sees one modality through the same head (no modality dropout: nothing to drop)."""
    if modality not in MODALITIES:
        raise BabelfuseError(f"unknown modality {modality!r}; known: {', '.join(MODALITIES)}")
    fusion = SingleModality(hidden=int(params["hidden"]), modality=modality, name="fusion")
    return _assemble(dims, {**params, "modality_dropout": 0.0}, fusion, name=f"baseline_{modality}")
