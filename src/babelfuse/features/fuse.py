"""The ``fuse`` stage's library: join the three feature sets by ``sample_id``, standardise on train, split.

(The data join only; the fusion *layers* of the model are in :mod:`babelfuse.fusion`.)

Writes ``data/fused/<split>.npz`` for train, val, test and each other split of ``paths.SPLITS``
the manifest has (gate, fewshot) (``text, image, audio, mask, label, lang, sample_id, template_id,
group``; ``group`` = ``template_id``, the bootstrap's resampling unit) and ``data/fused/scalers.json``. A missing modality stays a zero row with mask 0 —
rows are never dropped — and the per-modality scaler is fitted on the train rows where that
modality is present only, so neither other splits nor placeholder zeros leak into it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from babelfuse import paths
from babelfuse.errors import BabelfuseError, check_finite, load_array
from babelfuse.labels import LABEL_TO_INDEX

log = logging.getLogger("babelfuse.fuse")

REQUIRED_SPLITS: tuple[str, ...] = ("train", "val", "test")  # always written (possibly empty)
Features = tuple[np.ndarray, list[str], np.ndarray]  # (float32 (n, d), ids, bool present (n,))


def read_features(folder: Path, modality: str) -> Features:
    """``<m>.npy``, ``<m>.ids.txt`` and ``<m>.present.npy``, checked for matching row counts."""
    files = [paths.features_array(modality, folder), paths.features_ids(modality, folder)]
    for file in files:
        if not file.exists():
            raise BabelfuseError(f"features file missing: {file} (run the extract_{modality} stage)")
    array = load_array(files[0]).astype("float32")
    ids = files[1].read_text(encoding="utf-8").splitlines()
    present_file = paths.features_present(modality, folder)
    present = load_array(present_file).astype(bool) if present_file.exists() else np.ones(len(ids), bool)
    if array.ndim != 2 or not (len(array) == len(ids) == len(present)):
        raise BabelfuseError(
            f"{modality} features disagree: {files[0].name} has shape {array.shape}, {files[1].name} "
            f"{len(ids)} ids, {present_file.name} {len(present)} flags"
        )
    check_finite(array, ids, str(files[0]))  # refused, not a missing modality: extract never writes NaN
    return array, ids, present


def align(manifest_ids: list[str], feature_ids: list[str], modality: str) -> np.ndarray:
    """Row index into the feature arrays for each manifest id; any mismatch is a clear error."""
    position = {sid: i for i, sid in enumerate(feature_ids)}
    if len(position) != len(feature_ids):
        dupes = pd.Series(feature_ids)[pd.Series(feature_ids).duplicated()].unique()[:5].tolist()
        raise BabelfuseError(f"{modality}.ids.txt repeats sample ids, e.g. {dupes}")
    missing = [sid for sid in manifest_ids if sid not in position]
    extra = sorted(set(position) - set(manifest_ids))
    if missing or extra:
        raise BabelfuseError(
            f"{modality} features do not match the manifest: {len(missing)} manifest sample_id(s) without "
            f"features (e.g. {missing[:5]}), {len(extra)} feature id(s) not in the manifest (e.g. {extra[:5]}); "
            f"re-run extract_{modality} on this manifest"
        )
    return np.array([position[sid] for sid in manifest_ids], dtype=np.int64)


def fit_scaler(x: np.ndarray, present: np.ndarray) -> dict[str, list[float]]:
    """Mean and scale (population SD, 1 where constant, as scikit-learn) over present rows only."""
    rows = x[present]
    if len(rows) == 0:
        return {"mean": [0.0] * x.shape[1], "scale": [1.0] * x.shape[1]}
    mean = rows.astype("float64").mean(axis=0)
    scale = rows.astype("float64").std(axis=0)
    scale[scale < 1e-12] = 1.0
    return {"mean": mean.tolist(), "scale": scale.tolist()}


def apply_scaler(x: np.ndarray, present: np.ndarray, scaler: dict[str, list[float]]) -> np.ndarray:
    """Standardise present rows; absent rows stay exactly zero."""
    mean = np.asarray(scaler["mean"], dtype="float64")
    scale = np.asarray(scaler["scale"], dtype="float64")
    scaled = (x.astype("float64") - mean) / scale
    return np.where(present[:, None], scaled, 0.0).astype("float32")


def label_indices(labels: pd.Series) -> np.ndarray:
    unknown = labels[~labels.isin(list(LABEL_TO_INDEX))]
    if len(unknown):
        raise BabelfuseError(
            f"manifest row {unknown.index[0]}: label {unknown.iloc[0]!r} is not one of {list(LABEL_TO_INDEX)}"
        )
    return labels.map(LABEL_TO_INDEX).to_numpy(dtype="int64")


def template_ids(frame: pd.DataFrame) -> np.ndarray:
    if "template_id" not in frame:
        return np.full(len(frame), -1, dtype="int64")
    return pd.to_numeric(frame["template_id"], errors="coerce").fillna(-1).to_numpy(dtype="int64")


def fuse(
    frame: pd.DataFrame, features: dict[str, Features], standardize: bool = True
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, list[float]]]]:
    """The fused splits (keyed train/val/test) and the scalers, from a manifest and its features."""
    frame = frame.reset_index(drop=True)
    bad = frame.loc[~frame["split"].isin(paths.SPLITS), "split"]
    if len(bad):
        raise BabelfuseError(
            f"manifest row {bad.index[0]}: split {bad.iloc[0]!r} is not one of {paths.SPLITS}"
        )
    ids = frame["sample_id"].astype(str).tolist()
    aligned: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for modality in paths.MODALITIES:
        array, feature_ids, present = features[modality]
        index = align(ids, feature_ids, modality)
        aligned[modality] = (array[index], present[index])
    is_train = (frame["split"] == "train").to_numpy()
    scalers = {}
    for modality, (array, present) in aligned.items():
        if standardize and not (present & is_train).any():
            log.warning("no train row has %s: its scaler is the identity (fuse.standardize)", modality)
        scalers[modality] = (
            fit_scaler(array, present & is_train)
            if standardize
            else {"mean": [0.0] * array.shape[1], "scale": [1.0] * array.shape[1]}
        )
    labels, templates = label_indices(frame["label"]), template_ids(frame)
    splits = {}
    for split in paths.SPLITS:
        rows = (frame["split"] == split).to_numpy()
        if not rows.any() and split not in REQUIRED_SPLITS:
            continue  # gate / fewshot: only written when the manifest has them
        out: dict[str, np.ndarray] = {}
        for modality, (array, present) in aligned.items():
            out[modality] = apply_scaler(array[rows], present[rows], scalers[modality])
        out["mask"] = np.stack([aligned[m][1][rows] for m in paths.MODALITIES], axis=1).astype("float32")
        out["label"] = labels[rows]
        out["lang"] = frame.loc[rows, "lang"].astype(str).to_numpy().astype(str)
        out["sample_id"] = np.asarray(ids, dtype=str)[rows]
        out["template_id"] = templates[rows]
        out["group"] = templates[rows]  # bootstrap group (a meaning and its translations); -1 = own group
        splits[split] = out
    return splits, scalers


def summary(splits: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """Row counts and per-modality missing shares per split (logged to MLflow)."""
    metrics: dict[str, float] = {}
    for split, data in splits.items():
        metrics[f"{split}_rows"] = float(len(data["label"]))
        for i, modality in enumerate(paths.MODALITIES):
            if len(data["label"]):
                metrics[f"{split}_{modality}_missing_share"] = float(1.0 - data["mask"][:, i].mean())
    return metrics
