"""I/O for the evaluate stage: fused splits, the source languages, the model and the baselines.

Models load with ``safe_mode=True``; importing ``babelfuse.fusion`` first registers the custom layers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from babelfuse import paths
from babelfuse.errors import BabelfuseError, load_keras, read_json

log = logging.getLogger("babelfuse.evaluate")

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]


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
    if not path.exists():
        raise BabelfuseError(f"{path}: model file missing; run the train stage first")
    return load_keras(path)  # unreadable: named as corrupt


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


def logreg_predictor(path: Path) -> Predict:
    """The all-features LogisticRegression the train stage saved as ``logreg.json`` (no pickle)."""
    from babelfuse.training.baselines import logreg_json_probs  # imports Keras/TensorFlow (~4 s)

    saved = read_json(path)
    missing = [k for k in ("coef", "intercept", "classes") if not isinstance(saved, dict) or k not in saved]
    if missing:
        raise BabelfuseError(
            f"{path}: not a saved LogisticRegression (lacks {missing}); re-run the train stage"
        )
    return lambda inputs: logreg_json_probs(saved, inputs)


def seed_folders(models: Path, seeds: list[int]) -> dict[int, Path]:
    """``{seed: models/seeds/<seed>}`` for each seed the train stage wrote.

    Without ``models/seeds/`` (a train stage from before seeds) the single model set in ``models/``
    stands for the first seed, with a warning.
    """
    found = {
        s: models / "seeds" / str(s) for s in seeds if (models / "seeds" / str(s) / "model.keras").exists()
    }
    if found:
        missing = [s for s in seeds if s not in found]
        if missing:
            raise BabelfuseError(
                f"{models / 'seeds'}: no model for evaluate.seeds {missing}; re-run the train stage"
            )
        return found
    log.warning("%s: no per-seed models; evaluating %s as seed %d only", models / "seeds", models, seeds[0])
    return {seeds[0]: models}


def load_seed_models(folder: Path) -> tuple[Predict, dict[str, Predict]]:
    """(fused predict, ``{text, image, audio[, logreg]}`` predicts) of one seed's folder."""
    baselines = load_baselines(folder / "baselines")
    if (folder / "baselines" / "logreg.json").exists():
        baselines["logreg"] = logreg_predictor(folder / "baselines" / "logreg.json")
    return predictor(load_model(folder / "model.keras")), baselines


def refit_predictor(
    params: dict, val: dict[str, np.ndarray], seed: int
) -> Callable[[dict[str, np.ndarray]], Predict]:
    """``train split -> predict`` that refits the fused model with the train stage's params and seed
    (early stopping on ``val``, which holds source languages only): the few-shot curve's refits."""
    from babelfuse.training.fit import fit_model

    def fit(train: dict[str, np.ndarray]) -> Predict:
        return predictor(fit_model(params, train, val, seed).model)

    return fit


def load_splits(fused: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every fused split present (``train``, ``val`` and ``test`` are required; ``gate`` is never read here)."""
    from babelfuse.training.fit import load_split

    for split in ("train", "val", "test"):
        if not paths.fused_split(split, fused).exists():
            raise BabelfuseError(f"{paths.fused_split(split, fused)}: missing; run the fuse stage first")
    return {
        split: load_split(paths.fused_split(split, fused))
        for split in ("train", "val", "test", "fewshot")
        if paths.fused_split(split, fused).exists()
    }
