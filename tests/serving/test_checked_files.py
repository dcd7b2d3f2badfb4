"""What a stage reads from earlier stages, broken on purpose: one line naming the file, never a traceback.

Issue 13's table: truncated ``scalers.json``, ``model.keras`` overwritten with random bytes or
truncated, ``text.npy`` with NaN rows, a corrupt ``.npy``, the disk filling up while writing.
"""

from __future__ import annotations

import errno
import sqlite3

import numpy as np
import pytest

from babelfuse import paths
from babelfuse.errors import BabelfuseError, load_array, load_keras, read_json, user_errors_exit
from babelfuse.features.fuse import read_features
from helpers.serving import World


def write_features(folder, modality="text", rows=4, dim=3):
    folder.mkdir(parents=True, exist_ok=True)
    array = np.arange(rows * dim, dtype=np.float32).reshape(rows, dim)
    np.save(paths.features_array(modality, folder), array)
    np.save(paths.features_present(modality, folder), np.ones(rows, bool))
    paths.features_ids(modality, folder).write_text("\n".join(f"s{i}" for i in range(rows)) + "\n")
    return array


def test_a_truncated_scalers_json_names_the_file(world: World, tmp_path) -> None:
    from babelfuse.serving.pyfunc import Predictor

    broken = tmp_path / "scalers.json"
    broken.write_text(world.scalers.read_text()[:100])
    a = world.saved / "artifacts"
    with pytest.raises(BabelfuseError, match=rf"{broken} is not valid JSON \(line 1 column \d+"):
        Predictor.from_files(a / "good.keras", broken, a / "temperature.json", a / "serving.json")
    with pytest.raises(BabelfuseError, match="file not found"):
        read_json(tmp_path / "absent.json")


@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_an_unreadable_model_keras_is_named_corrupt_not_missing(world: World, tmp_path, damage) -> None:
    path = tmp_path / "model.keras"
    good = world.models["good"].read_bytes()
    path.write_bytes(np.random.default_rng(0).bytes(4096) if damage == "random" else good[: len(good) // 2])
    with pytest.raises(BabelfuseError, match=rf"{path} is corrupt") as info:
        load_keras(path)
    assert "not found" not in str(info.value).lower()
    with pytest.raises(BabelfuseError, match="model file not found"):
        load_keras(tmp_path / "absent.keras")


def test_nan_rows_in_text_npy_are_refused_naming_their_sample_ids(tmp_path) -> None:
    array = write_features(tmp_path)
    array[[1, 3], 0] = [np.nan, np.inf]
    np.save(paths.features_array("text", tmp_path), array)
    with pytest.raises(
        BabelfuseError, match=r"text.npy: 2 row\(s\) hold NaN or infinite values, e.g. \['s1', 's3'\]"
    ):
        read_features(tmp_path, "text")


def test_a_corrupt_or_pickled_npy_names_the_file(tmp_path) -> None:
    write_features(tmp_path)
    target = paths.features_array("text", tmp_path)
    target.write_bytes(target.read_bytes()[:70])
    with pytest.raises(BabelfuseError, match=rf"{target} is not a readable .npy array"):
        read_features(tmp_path, "text")
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BabelfuseError, match="not a readable .npy array"):
        load_array(pickled)  # object arrays need pickle: never loaded


def test_disk_full_and_permission_errors_are_one_line_naming_the_path(tmp_path, capsys) -> None:
    target = tmp_path / "fused" / "train.npz"

    @user_errors_exit
    def writes(err: Exception) -> None:
        raise err

    cases = [
        (
            OSError(errno.ENOSPC, "No space left on device", str(target)),
            f"no space left on the device writing or reading {target}",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", str(target)),
            f"permission denied writing or reading {target}",
        ),
        (
            sqlite3.OperationalError("database or disk is full"),
            "the disk is full or unwritable (OperationalError",
        ),
    ]
    for err, message in cases:
        with pytest.raises(SystemExit) as info:
            writes(err)
        lines = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}")
    with pytest.raises(KeyError):  # anything else is a bug: its traceback stays
        writes(KeyError("x"))


def test_disk_full_while_the_fuse_stage_writes_is_one_line(tmp_path, mlflow_uri, monkeypatch, capsys) -> None:
    """The real stage entry point with ``np.savez`` failing as on a full disk."""
    import pandas as pd

    from babelfuse.stages import fuse as stage

    features = tmp_path / "features"
    ids = [f"s{i}" for i in range(6)]
    for modality in paths.MODALITIES:
        write_features(features, modality, rows=6)
    manifest = tmp_path / "manifest.parquet"
    pd.DataFrame(
        {
            "sample_id": ids,
            "split": ["train", "train", "val", "val", "test", "test"],
            "lang": ["en"] * 6,
            "label": ["negative", "neutral", "positive"] * 2,
            "template_id": list(range(6)),
            "text": ["t"] * 6,
            "image_path": [None] * 6,
            "audio_path": [None] * 6,
        }
    ).to_parquet(manifest)
    out = tmp_path / "fused"

    def full_disk(file, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(file))

    monkeypatch.setattr(np, "savez", full_disk)
    monkeypatch.setattr(np, "savez_compressed", full_disk)
    with pytest.raises(SystemExit) as info:
        stage.main(["--manifest", str(manifest), "--features", str(features), "--out", str(out)])
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]  # besides MLflow's log lines
    assert info.value.code == 2 and len(errors) == 1 and "Traceback" not in stderr, stderr
    assert (
        errors[0].startswith("error: no space left on the device writing or reading")
        and str(out) in errors[0]
    )
