"""Bring-your-own-data: a user's manifest becomes data/raw/manifest.parquet + source.json, untouched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from babelfuse.data import importer
from babelfuse.data.manifest import REQUIRED_COLUMNS, load_manifest
from babelfuse.errors import BabelfuseError
from babelfuse.labels import LABELS

REPO = Path(__file__).resolve().parents[2]
BYOD = REPO / "examples" / "byod"

CSV = """sample_id,split,lang,text,image_path,audio_path,label,template_id,notes
a1,train,en,I loved it,img/a1.png,snd/a1.wav,positive,4,keep me out
a2,val,en,It was awful,img/a2.png,,negative,,
a3,test,de,Es war okay,,snd/a3.wav,neutral,7,
"""


def user_manifest(folder: Path) -> Path:
    folder.mkdir(parents=True)
    path = folder / "posts.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_import_copies_required_columns_and_points_at_the_users_folder(tmp_path: Path) -> None:
    path = user_manifest(tmp_path / "elsewhere" / "mydata")
    before = path.read_bytes()
    out = tmp_path / "project" / "data" / "raw"
    frame = importer.import_manifest(path, out, project_root=tmp_path / "project")
    assert path.read_bytes() == before  # the user's file is never modified
    stored = pd.read_parquet(out / "manifest.parquet")
    assert list(stored.columns) == [*REQUIRED_COLUMNS, "template_id"]
    assert stored.equals(frame)
    assert stored.template_id.tolist()[0] == 4 and pd.isna(stored.template_id.tolist()[1])
    assert pd.isna(stored.audio_path[1]) and stored.sample_id.tolist() == ["a1", "a2", "a3"]
    source = json.loads((out / "source.json").read_text())
    assert source["source"] == "manifest"
    assert Path(source["data_root"]) == path.parent.resolve() and Path(source["data_root"]).is_absolute()
    assert source["manifest_sha256"] == hashlib.sha256(before).hexdigest()
    manifest = load_manifest(out / "manifest.parquet")
    assert manifest.media_path("img/a1.png") == path.parent.resolve() / "img" / "a1.png"


def test_data_root_is_project_relative_inside_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    path = user_manifest(project / "mydata")
    importer.import_manifest(path, project / "data" / "raw", project_root=project)
    source = json.loads((project / "data" / "raw" / "source.json").read_text())
    assert source["data_root"] == "mydata"


def test_parquet_manifest_and_missing_columns(tmp_path: Path) -> None:
    path = user_manifest(tmp_path / "u")
    table = pd.read_csv(path, dtype=str)
    table.to_parquet(tmp_path / "u" / "posts.parquet", index=False)
    frame = importer.read_user_manifest(tmp_path / "u" / "posts.parquet")
    assert len(frame) == 3 and "notes" not in frame.columns
    table.drop(columns=["label", "lang"]).to_csv(tmp_path / "u" / "bad.csv", index=False)
    with pytest.raises(BabelfuseError, match=r"lacks required column\(s\) lang, label"):
        importer.read_user_manifest(tmp_path / "u" / "bad.csv")
    (tmp_path / "u" / "broken.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(BabelfuseError, match="could not read manifest"):
        importer.read_user_manifest(tmp_path / "u" / "broken.parquet")


def run_stage(tmp_path: Path, manifest_path: str) -> subprocess.CompletedProcess:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update(source="manifest", manifest_path=manifest_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "BABELFUSE_ROOT": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-m", "babelfuse.stages.generate", "--out", "data/raw"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_manifest_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    result = run_stage(tmp_path, "nowhere/posts.csv")
    assert result.returncode == 2
    assert "manifest not found: nowhere/posts.csv" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "raw" / "manifest.parquet").exists()


def test_missing_column_exits_2_naming_it(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "posts.csv").write_text(
        "sample_id,split,lang,text,image_path,label\n1,train,en,hi,,positive\n"
    )
    result = run_stage(tmp_path, "m/posts.csv")
    assert result.returncode == 2
    assert "lacks required column(s) audio_path" in result.stderr and "m/posts.csv" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_byod_example_is_complete_and_small(tmp_path: Path) -> None:
    frame = importer.import_manifest(BYOD / "manifest.csv", tmp_path / "raw", project_root=REPO)
    assert json.loads((tmp_path / "raw" / "source.json").read_text())["data_root"] == "examples/byod"
    assert set(frame.split) == {"train", "val", "test"}
    for split, part in frame.groupby("split"):
        assert set(part.label) == set(LABELS), split
    assert set(frame[frame.split != "test"].lang) == {"en"}
    assert set(frame[frame.split == "test"].lang) == {"en", "de", "ja"}
    assert frame.audio_path.isna().sum() == 1
    for column in ("image_path", "audio_path"):
        for relative in frame[column].dropna():
            assert (BYOD / relative).is_file(), relative
    assert sum(p.stat().st_size for p in BYOD.rglob("*") if p.is_file()) < 1_000_000
