"""The fuse stage: join by sample_id, train-only scalers on present rows, zeros + mask for missing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from babelfuse.errors import BabelfuseError
from babelfuse.features.fuse import apply_scaler, fit_scaler, fuse, read_features
from babelfuse.training.synthetic import synthetic_manifest, write_synthetic_features

DIMS = {"text": 6, "image": 4, "audio": 3}


@pytest.fixture
def dataset(tmp_path) -> tuple[pd.DataFrame, dict]:
    frame = write_synthetic_features(
        synthetic_manifest({"train": 40, "val": 12, "test": 10}), tmp_path, DIMS, seed=0, missing=0.2
    )
    return frame, {m: read_features(tmp_path, m) for m in DIMS}


def test_scaler_uses_present_train_rows_only(dataset) -> None:
    frame, features = dataset
    splits, scalers = fuse(frame, features)
    assert {len(s["label"]) for s in splits.values()} == {40, 12, 10}  # no row dropped
    array, ids, present = features["image"]
    by_id = dict(zip(ids, range(len(ids)), strict=True))
    train_rows = [by_id[s] for s in frame.loc[frame["split"] == "train", "sample_id"]]
    rows = array[train_rows][present[train_rows]]
    assert len(rows) < 40  # some train images are missing, so the check below means something
    np.testing.assert_allclose(scalers["image"]["mean"], rows.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(scalers["image"]["scale"], rows.std(axis=0), rtol=1e-5)
    train = splits["train"]
    present_train = train["mask"][:, 1] == 1
    np.testing.assert_allclose(train["image"][present_train].mean(axis=0), 0.0, atol=1e-5)
    assert np.all(train["image"][~present_train] == 0.0)  # absent rows stay zeros after scaling


def test_rows_follow_the_manifest_and_features_are_joined_by_id(dataset) -> None:
    frame, features = dataset
    # Shuffle one modality's rows (and its ids): the join must still put each row on its sample.
    array, ids, present = features["text"]
    order = np.random.default_rng(1).permutation(len(ids))
    shuffled = {**features, "text": (array[order], [ids[i] for i in order], present[order])}
    a, _ = fuse(frame, features)
    b, _ = fuse(frame, shuffled)
    for split in a:
        np.testing.assert_array_equal(a[split]["text"], b[split]["text"])
    val = a["val"]
    expected = frame.loc[frame["split"] == "val"]
    assert val["sample_id"].tolist() == expected["sample_id"].tolist()
    assert val["label"].dtype == np.int64 and val["mask"].dtype == np.float32
    assert val["lang"].dtype.kind == "U" and val["template_id"].tolist() == expected["template_id"].tolist()


def test_id_mismatch_is_a_clear_error(dataset) -> None:
    frame, features = dataset
    array, ids, present = features["audio"]
    broken = {**features, "audio": (array, [*ids[:-1], "stranger"], present)}
    with pytest.raises(
        BabelfuseError, match=r"audio features do not match the manifest: 1 manifest.*stranger"
    ):
        fuse(frame, broken)


def test_unknown_label_and_no_standardisation(dataset) -> None:
    frame, features = dataset
    splits, scalers = fuse(frame, features, standardize=False)
    assert scalers["text"]["scale"] == [1.0] * DIMS["text"]
    bad = frame.copy()
    bad.loc[3, "label"] = "angry"
    with pytest.raises(BabelfuseError, match="row 3: label 'angry'"):
        fuse(bad, features)


def test_constant_feature_scale_is_one_and_scalers_are_json() -> None:
    x = np.array([[1.0, 5.0], [3.0, 5.0], [100.0, 100.0]], dtype="float32")
    scaler = fit_scaler(x, np.array([True, True, False]))
    assert scaler == {"mean": [2.0, 5.0], "scale": [1.0, 1.0]}
    json.dumps(scaler)
    out = apply_scaler(x, np.array([True, True, False]), scaler)
    np.testing.assert_array_equal(out, [[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])


def test_read_features_checks_row_counts(tmp_path) -> None:
    frame = write_synthetic_features(synthetic_manifest({"train": 5}), tmp_path, DIMS)
    (tmp_path / "image.ids.txt").write_text("\n".join(frame["sample_id"][:4]) + "\n")
    with pytest.raises(BabelfuseError, match="image features disagree"):
        read_features(tmp_path, "image")
    with pytest.raises(BabelfuseError, match="extract_video"):
        read_features(tmp_path, "video")
