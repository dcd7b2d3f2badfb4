"""Bring-your-own-data through real DVC: a user's manifest in another folder enters at `validate`.

The foundation issue's acceptance case: a manifest with a corrupt image, a path escaping the data
root and a duplicate id fails `validate` naming those rows; in quarantine mode the good rows go on.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from PIL import Image

pytestmark = pytest.mark.slow

LABELS = ("negative", "neutral", "positive")


def make_user_data(folder: Path) -> pd.DataFrame:
    """Nine good posts (each class in each split) with real PNG and 16 kHz WAV files."""
    (folder / "img").mkdir(parents=True)
    (folder / "wav").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for split, lang in (("train", "en"), ("val", "en"), ("test", "de")):
        for i, label in enumerate(LABELS):
            sid = f"{split}-{label}"
            Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(
                folder / "img" / f"{sid}.png"
            )
            t = np.arange(16000) / 16000
            sf.write(folder / "wav" / f"{sid}.wav", 0.3 * np.sin(2 * np.pi * (120 + 40 * i) * t), 16000)
            text = {"en": f"Post number {i} about {label} things.", "de": f"Beitrag {i} über Dinge."}[lang]
            rows.append(
                dict(
                    sample_id=sid,
                    split=split,
                    lang=lang,
                    text=text,
                    image_path=f"img/{sid}.png",
                    audio_path=f"wav/{sid}.wav",
                    label=label,
                )
            )
    return pd.DataFrame(rows)


def point_params_at(project: Path, manifest: Path, on_failure: str) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"].update({"source": "manifest", "manifest_path": str(manifest)})
    params["validate"]["on_failure"] = on_failure
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def dvc_repro_validate(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["dvc", "repro", "validate"],
        cwd=project,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=600,
    )


def test_user_manifest_in_another_folder_is_validated(project: Path, tmp_path: Path) -> None:
    user = tmp_path / "user_data"
    frame = make_user_data(user)
    frame.to_csv(user / "posts.csv", index=False)
    point_params_at(project, user / "posts.csv", "fail")
    result = dvc_repro_validate(project)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    validated = pd.read_parquet(project / "data/validated/manifest.parquet")
    assert sorted(validated["sample_id"]) == sorted(frame["sample_id"])


def test_bad_rows_fail_by_name_then_quarantine_lets_good_rows_on(project: Path, tmp_path: Path) -> None:
    user = tmp_path / "user_data"
    frame = make_user_data(user)
    (user / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "outside.png").write_bytes((user / "img" / "train-neutral.png").read_bytes())
    bad = pd.DataFrame(
        [
            dict(frame.iloc[0], sample_id="bad-corrupt", image_path="img/broken.png"),
            dict(frame.iloc[1], sample_id="bad-escape", image_path="../outside.png"),
            dict(frame.iloc[2], sample_id="train-positive"),  # duplicate id
        ]
    )
    pd.concat([frame, bad]).to_csv(user / "posts.csv", index=False)

    point_params_at(project, user / "posts.csv", "fail")
    failed = dvc_repro_validate(project)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    for name in ("bad-corrupt", "bad-escape", "train-positive"):
        assert name in output, f"{name} not named in:\n{output[-3000:]}"
    assert "Traceback" not in output

    point_params_at(project, user / "posts.csv", "quarantine")
    passed = dvc_repro_validate(project)
    assert passed.returncode == 0, passed.stdout[-2000:] + passed.stderr[-2000:]
    validated = pd.read_parquet(project / "data/validated/manifest.parquet")
    quarantined = pd.read_parquet(project / "data/validated/quarantine.parquet")
    assert {"bad-corrupt", "bad-escape"} <= set(quarantined["sample_id"])
    assert "train-positive" in set(quarantined["sample_id"])
    assert not {"bad-corrupt", "bad-escape"} & set(validated["sample_id"])
    assert validated["sample_id"].is_unique
    assert len(validated) >= 8
    assert quarantined["reasons"].str.len().gt(0).all()
