"""Every fusion method: shapes, .keras round trip, every weight trains, the mask is honoured."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from babelfuse.errors import BabelfuseError
from babelfuse.fusion import FUSIONS, SingleModality
from babelfuse.training.model import build_model, build_single_modality_model
from helpers.fusion import DIMS, PARAMS, make_batch

METHODS = sorted(FUSIONS)


@pytest.fixture
def batch() -> dict[str, np.ndarray]:
    return make_batch()


def model_for(method: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    if method.startswith("single:"):
        return build_single_modality_model(method.split(":")[1], DIMS, PARAMS)
    return build_model(DIMS, {**PARAMS, "fusion": method})


def layer_inputs(batch: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [batch["text"], batch["image"], batch["audio"], batch["mask"]]


def test_registry_has_the_seven_methods() -> None:
    assert set(FUSIONS) == {"concat", "weighted", "attention", "gated", "late", "tensor", "lowrank"}


@pytest.mark.parametrize("method", METHODS)
def test_layer_output_shape(method: str, batch: dict[str, np.ndarray]) -> None:
    layer = FUSIONS[method].from_params({**PARAMS, "fusion": method}, n_classes=3)
    out = np.asarray(layer(layer_inputs(batch)))
    width = 3 if layer.outputs_logits else PARAMS["hidden"]
    assert out.shape == (len(batch["mask"]), width)
    assert np.isfinite(out).all()  # including row 3, which has no modality at all


@pytest.mark.parametrize("method", METHODS)
def test_model_outputs_probabilities(method: str, batch: dict[str, np.ndarray]) -> None:
    probs = np.asarray(model_for(method)(batch, training=False))
    assert probs.shape == (len(batch["mask"]), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("method", [*METHODS, "single:audio"])
def test_keras_round_trip_gives_identical_predictions(method: str, batch, tmp_path) -> None:
    model = model_for(method)
    path = tmp_path / f"{method.replace(':', '_')}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.get_layer("fusion")) is type(model.get_layer("fusion"))
    assert loaded.get_layer("fusion").get_config() == model.get_layer("fusion").get_config()
    np.testing.assert_array_equal(
        np.asarray(loaded(batch, training=False)), np.asarray(model(batch, training=False))
    )


@pytest.mark.parametrize("method", [*METHODS, "single:text"])
def test_every_weight_is_trainable_and_gets_a_gradient(method: str) -> None:
    model = model_for(method)
    batch = make_batch(n=32, seed=1)
    labels = np.arange(32) % 3
    trainable = {id(w) for w in model.trainable_weights}
    assert model.get_layer("fusion").trainable_weights, "a fusion layer with nothing to learn"
    assert all(id(w) in trainable for w in model.weights), [
        w.path for w in model.weights if id(w) not in trainable
    ]
    with tf.GradientTape() as tape:
        probs = model(batch, training=True)
        loss = keras.losses.sparse_categorical_crossentropy(labels, probs)
    grads = tape.gradient(loss, model.trainable_weights)
    dead = [
        w.path
        for w, g in zip(model.trainable_weights, grads, strict=True)
        if g is None or not np.any(np.asarray(g) != 0)
    ]
    assert not dead, f"weights with no gradient: {dead}"


def modality_weights(model: keras.Model, index: int) -> list:
    """The fusion layer's weights that belong to modality ``index`` alone: its per-modality projections
    (``per_modality_dense`` layers, named ``<prefix>_<index>``) and, for ``concat``, the kernel rows that
    read that modality's features."""
    fusion = model.get_layer("fusion")
    own = [
        w
        for layer in fusion._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.Dense) and layer.name.endswith(f"_{index}")
        for w in layer.weights
    ]
    return own


def with_garbage(model: keras.Model, batch: dict[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
    """Large random values in modality ``index``'s projection weights (kernel *and* bias) and in its
    absent input slots, so whatever an absent modality's projections output is garbage, not a zero
    vector mapped to a small bias. Returns the garbage batch; the model's weights are changed in place."""
    rng = np.random.default_rng(index)
    for w in modality_weights(model, index):
        w.assign(rng.normal(scale=25.0, size=tuple(w.shape)).astype("float32"))
    m = list(DIMS)[index]
    noisy = dict(batch, **{m: batch[m].copy()})
    absent = batch["mask"][:, index] == 0
    noisy[m][absent] = rng.normal(scale=50.0, size=(int(absent.sum()), DIMS[m]))
    return noisy


@pytest.mark.parametrize("method", METHODS)
def test_absent_modality_input_does_not_change_the_output(method: str, batch: dict[str, np.ndarray]) -> None:
    """Garbage in the absent slots: the rows that lack a modality give the same output.

    For ``concat`` (one shared Dense) this is the whole masking contract; the next test checks the
    per-modality projections of the other methods, which input zeroing alone cannot protect.
    """
    model = model_for(method)
    before = np.asarray(model(batch, training=False))
    rng = np.random.default_rng(7)
    noisy = dict(batch)
    for i, m in enumerate(DIMS):  # put large garbage where the mask says "absent"
        absent = batch["mask"][:, i] == 0
        noisy[m] = batch[m].copy()
        noisy[m][absent] = rng.normal(scale=50.0, size=(int(absent.sum()), DIMS[m]))
    np.testing.assert_array_equal(np.asarray(model(noisy, training=False)), before)


PROJECTED = [m for m in METHODS if m != "concat"]  # concat has no per-modality projection


@pytest.mark.parametrize("method", PROJECTED)
@pytest.mark.parametrize("index", range(3))
def test_an_absent_modality_projection_contributes_nothing(method: str, index: int, batch) -> None:
    """Garbage through an absent modality's own projections (weights and inputs) must not reach the output.

    Input zeroing alone does not make this pass: a Dense maps the zero vector to its (here: garbage)
    bias, so a layer that forgets to mask a projection's *output* fails. The present rows must change,
    which proves the garbage weights are on the path at all.
    """
    model = model_for(method)
    before = np.asarray(model(batch, training=False))
    assert modality_weights(model, index), f"{method}: no per-modality weights found for modality {index}"
    after = np.asarray(model(with_garbage(model, batch, index), training=False))
    absent = batch["mask"][:, index] == 0
    np.testing.assert_allclose(after[absent], before[absent], rtol=1e-6, atol=1e-7)
    assert np.abs(after[~absent] - before[~absent]).max() > 1e-4, (
        f"{method}: garbage never reached the output"
    )


@pytest.mark.parametrize("method", METHODS)
def test_present_modalities_do_change_the_output(method: str, batch: dict[str, np.ndarray]) -> None:
    model = model_for(method)
    before = np.asarray(model(batch, training=False))
    for m in DIMS:
        changed = dict(batch, **{m: batch[m] + 3.0 * batch["mask"][:, list(DIMS).index(m), None]})
        after = np.asarray(model(changed, training=False))
        full = batch["mask"].sum(axis=1) == 3
        assert np.abs(after[full] - before[full]).max() > 1e-6, f"{method} ignores {m}"


def test_all_absent_sample_gives_the_same_output_whatever_the_inputs() -> None:
    model = model_for("late")
    batch = make_batch()
    probs = np.asarray(model(batch, training=False))
    np.testing.assert_allclose(probs[3], [1 / 3, 1 / 3, 1 / 3], rtol=1e-6)  # late: zero logits


def test_single_modality_layer_sees_only_its_modality(batch: dict[str, np.ndarray]) -> None:
    layer = SingleModality(hidden=8, modality="image")
    out = np.asarray(layer(layer_inputs(batch)))
    other = dict(batch, text=batch["text"] + 5.0, audio=batch["audio"] - 5.0)
    np.testing.assert_array_equal(np.asarray(layer(layer_inputs(other))), out)
    assert np.all(out[batch["mask"][:, 1] == 0] == 0)


def test_unknown_fusion_is_a_clear_error() -> None:
    with pytest.raises(BabelfuseError, match="train.fusion='nope'"):
        build_model(DIMS, {**PARAMS, "fusion": "nope"})


def test_lowrank_factors_are_weights_that_scale_with_rank_and_move_when_trained() -> None:
    """Guards the known bug: factors held as plain tensors (invisible to the optimizer) never train."""
    batch = make_batch(n=32, seed=2)
    hidden = PARAMS["hidden"]
    counts = {}
    for rank in (2, 5):
        model = build_model(DIMS, {**PARAMS, "fusion": "lowrank", "lowrank_rank": rank})
        counts[rank] = model.count_params()
    per_rank = 3 * (hidden * hidden + hidden) + 1  # three factors [z_m, 1] -> hidden, plus one rank weight
    assert counts[5] - counts[2] == 3 * per_rank
    layer = model.get_layer("fusion")
    names = {w.name for w in layer.trainable_weights}
    assert {
        "factor_0",
        "factor_1",
        "factor_2",
        "factor_offset_0",
        "factor_offset_1",
        "factor_offset_2",
    } <= names
    before = {w.name: np.array(w) for w in layer.trainable_weights}
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.train_on_batch(batch, np.arange(32) % 3)
    unchanged = [w.name for w in layer.trainable_weights if np.array_equal(np.array(w), before[w.name])]
    assert not unchanged, f"lowrank weights that did not move after a training step: {unchanged}"
