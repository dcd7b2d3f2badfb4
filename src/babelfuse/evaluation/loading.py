"""I/O for the evaluate stage: fused splits, the source languages, the model and the baselines.

Models load with ``safe_mode=True``; importing ``babelfuse.fusion`` first registers the custom layers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from babelfuse import paths
from babelfuse.errors import BabelfuseError

log = logging.getLogger("babelfuse.evaluate")

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass
class EvalInputs:
    test: dict[str, np.ndarray]
    val: dict[str, np.ndarray]
    test_inputs: dict[str, np.ndarray]
    val_inputs: dict[str, np.ndarray]
    source_langs: list[str]
    predict: Predict
    baselines: dict[str, Predict]


def source_languages(train_npz: Path) -> list[str]:
    """The languages of the train split (only its ``lang`` array is read): the zero-shot sources."""
    if not train_npz.exists():
        raise BabelfuseError(f"{train_npz}: missing; run the fuse stage first (dvc repro fuse)")
    with np.load(train_npz, allow_pickle=False) as npz:
        if "lang" not in npz.files:
            raise BabelfuseError(f"{train_npz}: no 'lang' array; re-run the fuse stage")
        return sorted(set(npz["lang"].astype(str).tolist()))


def load_model(path: Path):
    """A Keras model file, custom fusion layers registered, ``safe_mode=True`` (no arbitrary code)."""
    import keras

    import babelfuse.fusion  # noqa: F401  (registers the custom layers)

    if not path.exists():
        raise BabelfuseError(f"{path}: model file missing; run the train stage first")
    return keras.saving.load_model(path, safe_mode=True)


def predictor(model, batch_size: int = 4096) -> Predict:
    """``inputs dict -> (n, 3) probabilities`` for a Keras model.

    A direct (eager) call over large chunks: ``model.predict`` builds a data pipeline per call and
    ``predict_on_batch`` retraces for every new row count, both much slower on the many small
    evaluation passes (ablations, missing rates, baselines, val).
    """

    def predict(inputs: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(inputs.values())))
        chunks = [
            np.asarray(model({k: v[i : i + batch_size] for k, v in inputs.items()}, training=False))
            for i in range(0, n, batch_size)
        ]
        return np.concatenate(chunks).astype(np.float64) if chunks else np.zeros((0, 3))

    return predict


def load_baselines(folder: Path) -> dict[str, Predict]:
    """``{modality: predict}`` for each ``<folder>/<modality>.keras`` present; at least one is required."""
    found = {m: folder / f"{m}.keras" for m in paths.MODALITIES if (folder / f"{m}.keras").exists()}
    if not found:
        raise BabelfuseError(
            f"{folder}: no single-modality baselines ({', '.join(m + '.keras' for m in paths.MODALITIES)}); "
            "the fusion gain needs them: set train.baselines=true and re-run the train stage"
        )
    missing = sorted(set(paths.MODALITIES) - set(found))
    if missing:
        log.warning("baselines missing for %s: the best baseline is chosen among %s", missing, sorted(found))
    return {m: predictor(load_model(p)) for m, p in found.items()}


def load_inputs(fused: Path, model_path: Path, baselines: Path) -> EvalInputs:
    from babelfuse.training.fit import load_split, model_inputs

    for split in ("val", "test"):
        if not paths.fused_split(split, fused).exists():
            raise BabelfuseError(f"{paths.fused_split(split, fused)}: missing; run the fuse stage first")
    test, val = load_split(paths.fused_split("test", fused)), load_split(paths.fused_split("val", fused))
    return EvalInputs(
        test=test,
        val=val,
        test_inputs=model_inputs(test),
        val_inputs=model_inputs(val),
        source_langs=source_languages(paths.fused_split("train", fused)),
        predict=predictor(load_model(model_path)),
        baselines=load_baselines(baselines),
    )
