"""Core helpers: safe media paths, params hashing, MLflow lineage tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from babelfuse import tracking
from babelfuse.data.manifest import load_manifest, resolve_inside, write_source
from babelfuse.errors import BabelfuseError
from babelfuse.params import params_hash


def test_resolve_inside_accepts_nested_and_refuses_escapes(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    assert resolve_inside(tmp_path, "images/a.png") == (tmp_path / "images" / "a.png").resolve()
    with pytest.raises(BabelfuseError, match="outside the data root"):
        resolve_inside(tmp_path, "../secret.png")
    with pytest.raises(BabelfuseError, match="outside the data root"):
        resolve_inside(tmp_path, "images/../../secret.png")
    with pytest.raises(BabelfuseError, match="absolute"):
        resolve_inside(tmp_path, "/etc/passwd")


def test_resolve_inside_refuses_symlink_escape(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(BabelfuseError):
        resolve_inside(root, "link/elsewhere.png")


def test_params_hash_is_order_independent_and_value_sensitive() -> None:
    assert params_hash({"a": 1, "b": [1, 2]}) == params_hash({"b": [1, 2], "a": 1})
    assert params_hash({"a": 1}) != params_hash({"a": 2})


def test_manifest_reads_data_root_from_source_json(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text(
        "sample_id,split,lang,text,image_path,audio_path,label\n1,train,en,hi,a.png,,positive\n"
    )
    write_source(tmp_path / "source.json", "manifest", tmp_path / "media")
    manifest = load_manifest(tmp_path / "m.csv")
    assert manifest.data_root == tmp_path / "media"
    assert manifest.frame.loc[0, "sample_id"] == "1"
    assert manifest.media_path(None) is None


def test_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BabelfuseError, match="manifest not found"):
        load_manifest(tmp_path / "nope.csv")


def test_stage_run_sets_lineage_tags(tmp_path: Path, mlflow_uri: str, monkeypatch) -> None:
    import mlflow

    monkeypatch.setenv("BABELFUSE_RUN_GROUP", "group-1")
    data = tmp_path / "input.txt"
    data.write_text("hello")
    with tracking.stage_run("demo", {"x": {"y": 3}}, inputs=[data]) as run:
        mlflow.log_metric("rows", 5)
    got = mlflow.get_run(run.info.run_id)
    assert got.data.tags["stage"] == "demo"
    assert got.data.tags["run_group"] == "group-1"
    assert got.data.tags["data_hash"] == tracking.file_digest([data])
    assert got.data.tags["params_hash"] == params_hash({"x": {"y": 3}})
    assert got.data.params["x.y"] == "3"
    data.write_text("changed")
    assert tracking.file_digest([data]) != got.data.tags["data_hash"]


def test_tracking_uri_follows_environment(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/elsewhere.db")
    assert tracking.tracking_uri() == "sqlite:////tmp/elsewhere.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking.tracking_uri().endswith("mlflow.db")
