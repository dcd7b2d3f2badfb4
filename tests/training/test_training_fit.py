"""fit_model and its helpers on small synthetic data (real Keras, real scikit-learn)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from babelfuse.errors import BabelfuseError
from babelfuse.fusion import FUSIONS
from babelfuse.training.fit import cross_entropy, fit_model, load_split, model_inputs
from babelfuse.training.synthetic import synthetic_fused

DIMS = {"text": 16, "image": 12, "audio": 8}
PARAMS = {
    "fusion": "concat",
    "hidden": 16,
    "dropout": 0.1,
    "modality_dropout": 0.2,
    "learning_rate": 0.01,
    "batch_size": 16,
    "epochs": 4,
    "patience": 2,
    "lowrank_rank": 2,
    "attention_heads": 2,
    "tensor_dim": 3,
}


@pytest.fixture(scope="module")
def data() -> tuple[dict, dict]:
    return synthetic_fused(96, DIMS, seed=1), synthetic_fused(48, DIMS, seed=2)


def test_load_split_round_trip_and_missing_key(tmp_path) -> None:
    split = synthetic_fused(10, DIMS, seed=0)
    np.savez(tmp_path / "ok.npz", **split)
    loaded = load_split(tmp_path / "ok.npz")
    assert set(loaded) == set(split) and loaded["sample_id"].dtype.kind == "U"
    inputs = model_inputs(loaded)
    assert set(inputs) == {"text", "image", "audio", "mask"} and all(
        v.dtype == np.float32 for v in inputs.values()
    )
    np.savez(tmp_path / "bad.npz", **{k: v for k, v in split.items() if k != "mask"})
    with pytest.raises(BabelfuseError, match="mask"):
        load_split(tmp_path / "bad.npz")
    with pytest.raises(BabelfuseError, match="not found"):
        load_split(tmp_path / "nope.npz")


def test_cross_entropy_matches_keras_loss() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], size=50).astype("float32")
    labels = rng.integers(0, 3, size=50)
    keras_ce = float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, probs)))
    assert cross_entropy(labels, probs) == pytest.approx(keras_ce, rel=1e-5)


def test_fit_records_history_restores_best_and_is_deterministic(data) -> None:
    train, val = data
    seen: list[float] = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(logs["val_macro_f1"])  # present before user callbacks run (pruning needs it)

    first = fit_model(PARAMS, train, val, seed=3, callbacks=[Spy()])
    for key in ("loss", "val_loss", "val_macro_f1", "val_accuracy"):
        assert len(first.history[key]) == first.epochs
    assert seen == first.history["val_macro_f1"]
    assert 1 <= first.epochs <= PARAMS["epochs"]
    assert first.val_macro_f1 == pytest.approx(max(first.history["val_macro_f1"]))  # best weights restored
    assert first.history["val_macro_f1"][first.best_epoch - 1] == pytest.approx(first.val_macro_f1)
    second = fit_model(PARAMS, train, val, seed=3)
    assert second.history == first.history
    other = fit_model(PARAMS, train, val, seed=4)
    assert other.history["loss"] != first.history["loss"]


def test_epochs_override_and_early_stopping(data) -> None:
    train, val = data
    result = fit_model({**PARAMS, "patience": 1, "learning_rate": 0.0}, train, val, seed=0, epochs=6)
    # learning rate 0: val_macro_f1 never improves after epoch 1, so patience 1 stops at epoch 2
    assert result.epochs == 2 and result.best_epoch == 1


@pytest.mark.parametrize("method", sorted(FUSIONS))
def test_every_method_trains_end_to_end(method: str, data) -> None:
    train, val = data
    result = fit_model({**PARAMS, "fusion": method}, train, val, seed=0, epochs=2)
    assert result.epochs == 2
    assert result.history["loss"][1] < result.history["loss"][0] * 1.5
    assert np.isfinite(result.history["val_loss"]).all()
    probs = np.asarray(result.model.predict_on_batch(model_inputs(val)))
    assert probs.shape == (len(val["label"]), 3)


def test_empty_split_is_a_clear_error(data) -> None:
    train, val = data
    empty = {k: v[:0] for k, v in val.items()}
    with pytest.raises(BabelfuseError, match="at least one row"):
        fit_model(PARAMS, train, empty, seed=0)
