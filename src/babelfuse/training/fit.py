"""Training one Keras model: data loading, the val macro-F1 callback, early stopping, seeds, threads.

``fit_model`` is what the ``train`` stage and the ``tune`` stage's trials call. Early stopping
monitors ``val_macro_f1`` (the task metric, computed by :class:`ValMacroF1` each epoch and put into
``logs`` before any other callback runs, so an Optuna pruning callback can monitor it too) and
restores the best epoch's weights.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from babelfuse.errors import BabelfuseError, load_npz
from babelfuse.evaluation.metrics import macro_f1, predictions
from babelfuse.paths import MODALITIES

log = logging.getLogger("babelfuse.training")

SPLIT_KEYS: tuple[str, ...] = (*MODALITIES, "mask", "label", "lang", "sample_id", "template_id")
INPUT_KEYS: tuple[str, ...] = (*MODALITIES, "mask")
EPS = 1e-7


def load_split(path: Path | str) -> dict[str, np.ndarray]:
    """A ``data/fused/<split>.npz`` as a dict of arrays (``allow_pickle=False``); missing keys are an error."""
    path = Path(path)
    if not path.exists():
        raise BabelfuseError(f"fused split not found: {path} (run the fuse stage first)")
    split = load_npz(path)
    missing = [key for key in SPLIT_KEYS if key not in split]
    if missing:
        raise BabelfuseError(f"{path} lacks key(s) {missing}; expected {list(SPLIT_KEYS)}")
    return split


def model_inputs(split: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's dict input ``{text, image, audio, mask}`` (float32) from a fused split."""
    return {key: np.asarray(split[key], dtype="float32") for key in INPUT_KEYS}


def cross_entropy(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy with Keras' clipping (the same number as Keras' loss)."""
    picked = np.asarray(probs)[np.arange(len(y_true)), np.asarray(y_true)]
    return float(-np.mean(np.log(np.clip(picked, EPS, 1.0 - EPS))))


class ValMacroF1(keras.callbacks.Callback):
    """Each epoch: predicts val once and writes ``val_loss``, ``val_accuracy`` and ``val_macro_f1`` into logs.

    Computing val_loss here too (instead of passing ``validation_data`` to ``fit``) saves a second
    pass over val per epoch.
    """

    def __init__(self, inputs: dict[str, np.ndarray], labels: np.ndarray) -> None:
        super().__init__()
        self.inputs = inputs
        self.labels = np.asarray(labels)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None or len(self.labels) == 0:
            return
        probs = np.asarray(self.model.predict_on_batch(self.inputs))
        logs["val_loss"] = cross_entropy(self.labels, probs)
        logs["val_accuracy"] = float(np.mean(np.argmax(probs, axis=-1) == self.labels))
        logs["val_macro_f1"] = macro_f1(self.labels, predictions(probs))


@dataclass
class FitResult:
    model: keras.Model
    history: dict[str, list[float]]
    val_macro_f1: float
    epochs: int
    seconds: float
    best_epoch: int = 0
    val_accuracy: float = float("nan")
    val_loss: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)


def configure_threads(threads: int | None = None) -> None:
    """Small dense models on 2 cores: ``min(2, cores)`` intra-op threads and 1 inter-op thread.

    Leaves alone a thread count someone set before (the tune stage gives each worker its share) and
    a TF runtime that is already initialised (the counts can no longer change then).
    """
    import tensorflow as tf  # heavy (TensorFlow, ~4 s): only when a model is built, loaded or run

    threads = threads or min(2, os.cpu_count() or 1)
    try:
        if tf.config.threading.get_intra_op_parallelism_threads() == 0:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        if tf.config.threading.get_inter_op_parallelism_threads() == 0:
            tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TF already initialised in this process: keep what it has
        pass


def seed_everything(seed: int) -> None:
    """Python, NumPy, TF and Keras seeds from ``seed``, and TF's deterministic op kernels: the same
    seed, data and params give the same weights and scores, whatever ran before in the process.

    Call before any model is built (``fit_model`` does). Op determinism is process-wide and stays on.
    """
    import tensorflow as tf  # heavy (TensorFlow, ~4 s): only when a model is built, loaded or run

    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def feature_dims(split: dict[str, np.ndarray]) -> dict[str, int]:
    return {m: int(np.asarray(split[m]).shape[1]) for m in MODALITIES}


def _dataset(inputs: dict[str, np.ndarray], labels: np.ndarray, batch_size: int, seed: int) -> Any:
    """A tf.data pipeline reshuffled each epoch from ``seed``: the batch order is a function of the seed."""
    import tensorflow as tf  # heavy (TensorFlow, ~4 s): only when a model is built, loaded or run

    data = tf.data.Dataset.from_tensor_slices((inputs, np.asarray(labels, dtype="int64")))
    return data.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True).batch(batch_size)


def fit_model(
    params: dict[str, Any],
    train: dict[str, np.ndarray],
    val: dict[str, np.ndarray],
    seed: int,
    callbacks: list | None = None,
    verbose: int = 0,
    epochs: int | None = None,
    *,
    build: Callable[[dict[str, int], dict[str, Any]], keras.Model] | None = None,
) -> FitResult:
    """Train the model of ``params`` (the ``train`` section) with Adam and early stopping on val macro-F1.

    ``build`` defaults to :func:`babelfuse.training.model.build_model`; the baselines pass a
    single-modality builder. ``epochs`` overrides ``params["epochs"]`` (the tune stage uses fewer).
    """
    from babelfuse.training.model import build_model

    if len(train["label"]) == 0 or len(val["label"]) == 0:
        raise BabelfuseError("the train and val splits must each have at least one row")
    configure_threads()
    seed_everything(seed)
    model = (build or build_model)(feature_dims(train), params)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(params["learning_rate"])),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,  # XLA was 3-5x slower here: it recompiles for the last partial batch and for predict
    )
    val_inputs, val_labels = model_inputs(val), np.asarray(val["label"])
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_macro_f1", mode="max", patience=int(params["patience"]), restore_best_weights=True
    )
    started = time.perf_counter()
    history = model.fit(
        _dataset(model_inputs(train), train["label"], int(params["batch_size"]), int(seed)),
        epochs=int(epochs if epochs is not None else params["epochs"]),
        callbacks=[ValMacroF1(val_inputs, val_labels), stopper, *(callbacks or [])],
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles (seeded)
    )
    seconds = time.perf_counter() - started
    probs = np.asarray(model.predict_on_batch(val_inputs))
    record = {key: [float(v) for v in values] for key, values in history.history.items()}
    return FitResult(
        model=model,
        history=record,
        val_macro_f1=macro_f1(val_labels, predictions(probs)),
        epochs=len(record.get("loss", [])),
        seconds=seconds,
        best_epoch=int(stopper.best_epoch) + 1,
        val_accuracy=float(np.mean(np.argmax(probs, axis=-1) == val_labels)),
        val_loss=cross_entropy(val_labels, probs),
    )
