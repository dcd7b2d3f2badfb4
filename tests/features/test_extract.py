"""Extract stage: batching and missing rows in memory, then the real stage end to end in a tmp dir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from PIL import Image

from babelfuse.config import ImageFeatures
from babelfuse.errors import BabelfuseError
from babelfuse.features.base import Encoder
from babelfuse.features.extract import encode_media, encode_texts
from babelfuse.stages.extract import main


class RecordingEncoder(Encoder):
    """Encodes each input as (its length, batch number) and remembers batch sizes."""

    modality = "any"
    id = "recording"
    version = "1"
    dim = 2

    def __init__(self) -> None:
        self.batches: list[int] = []

    def encode(self, batch: list) -> np.ndarray:
        self.batches.append(len(batch))
        return np.array(
            [[float(np.size(x) if not isinstance(x, str) else len(x)), len(self.batches)] for x in batch],
            np.float32,
        )


def test_encode_texts_keeps_order_and_zero_rows_for_missing_text() -> None:
    enc = RecordingEncoder()
    texts = ["abc", None, "hello", "   ", float("nan"), "x", "four"]
    feats, present = encode_texts(enc, texts, batch_size=2)
    assert present.tolist() == [True, False, True, False, False, True, True]
    assert feats.dtype == np.float32 and feats.shape == (7, 2)
    assert feats[:, 0].tolist() == [3, 0, 5, 0, 0, 1, 4]
    assert not feats[~present].any()
    assert enc.batches == [2, 2]  # only present texts are encoded, batch_size at a time


def _png(path: Path, colour: tuple[int, int, int], size: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(sum(colour))
    pixels = np.clip(np.array(colour) + rng.integers(-30, 30, (size, size, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)


def _wav(path: Path, freq: float, seconds: float = 0.6, rate: int = 22050) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


def _image(**overrides) -> dict:
    """A full features.image section (schema defaults) with ``overrides``."""
    return ImageFeatures(**overrides).model_dump()


def test_encode_media_decodes_in_batches_and_zeroes_bad_rows(tmp_path: Path) -> None:
    _png(tmp_path / "a.png", (200, 30, 30), size=50)
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    enc = RecordingEncoder()
    sources = ["a.png", None, "bad.png", "a.png", "../escape.png", "a.png"]
    feats, present = encode_media(enc, sources, "image", tmp_path, _image(size=16), batch_size=2)
    assert present.tolist() == [True, False, False, True, False, True]
    assert feats[present, 0].tolist() == [16 * 16 * 3] * 3  # decoded and resized to features.image.size
    assert not feats[~present].any()
    assert enc.batches == [1, 1, 1]  # one good row in each batch of 2: never the whole list at once


class PickyEncoder(RecordingEncoder):
    """Refuses (BabelfuseError) any batch holding an image whose top-left pixel is pure black."""

    def encode(self, batch: list) -> np.ndarray:
        if any(int(x[0, 0].sum()) == 0 for x in batch):
            raise BabelfuseError("black corner")
        return super().encode(batch)


def test_encode_media_zeroes_only_the_inputs_an_encoder_refuses(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "black.png")
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(tmp_path / "grey.png")
    enc = PickyEncoder()
    feats, present = encode_media(
        enc, ["grey.png", "black.png", "grey.png"], "image", tmp_path, _image(size=8), 3
    )
    assert present.tolist() == [True, False, True]
    assert feats[[0, 2], 0].tolist() == [8 * 8 * 3] * 2 and not feats[1].any()


TEXTS = {
    "en": [
        "I love this place, it is wonderful.",
        "This is terrible, I want my money back.",
        "The bus leaves at noon.",
    ],
    "de": ["Ich liebe diesen Ort, er ist wunderbar.", "Das ist schrecklich, ich will mein Geld zurück."],
    "ru": [
        "Я люблю это место, оно чудесное.",
        "Это ужасно, верните мне деньги.",
        "Автобус уходит в полдень.",
    ],
    "ja": ["この場所が大好きです。素晴らしいです。", "ひどいです。お金を返してください。"],
}


def _manifest(root: Path) -> pd.DataFrame:
    _png(root / "images" / "red.png", (220, 40, 40))
    _png(root / "images" / "blue.png", (30, 40, 210), size=120)
    _wav(root / "audio" / "low.wav", 110.0)
    _wav(root / "audio" / "high.wav", 240.0, rate=16000)
    (root / "audio" / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(64))
    rows = []
    for lang, texts in TEXTS.items():
        for tid, text in enumerate(texts):
            rows.append(
                {
                    "lang": lang,
                    "text": text,
                    "template_id": tid,
                    "label": ["positive", "negative", "neutral"][tid],
                }
            )
    rows.append({"lang": "en", "text": None, "template_id": -1, "label": "neutral"})
    frame = pd.DataFrame(rows)
    n = len(frame)
    frame.insert(0, "sample_id", [f"s{i:02d}" for i in range(n)][::-1])  # ids not in sorted order
    frame["split"] = ["train", "val"] + ["test"] * (n - 2)
    frame["image_path"] = [["images/red.png", "images/blue.png"][i % 2] for i in range(n)]
    frame.loc[3, "image_path"] = None
    frame["audio_path"] = [["audio/low.wav", "audio/high.wav"][i % 2] for i in range(n)]
    frame.loc[5, "audio_path"] = "audio/corrupt.wav"
    frame["template_id"] = frame["template_id"].astype("int64")
    return frame


def _run_stage(root: Path, modality: str, out: Path) -> Path:
    metrics = root / "metrics" / f"extract_{modality}.json"
    args = [modality, "--manifest", str(root / "validated" / "manifest.parquet"), "--out", str(out)]
    main([*args, "--metrics", str(metrics), "--params", str(root / "params.yaml")])
    return metrics


def test_stage_end_to_end_all_modalities(tmp_path: Path, mlflow_uri: str, monkeypatch) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BABELFUSE_ROOT", str(tmp_path))
    frame = _manifest(tmp_path / "raw")
    (tmp_path / "validated").mkdir()
    frame.to_parquet(tmp_path / "validated" / "manifest.parquet", index=False)
    (tmp_path / "validated" / "source.json").write_text(
        json.dumps({"source": "generated", "data_root": str(tmp_path / "raw")})
    )
    features = {
        "batch_size": 64,
        "text": {"encoder": "use-multilingual", "max_length": 128, "batch_size": 4},
        "image": {"encoder": "classic", "size": 96, "weights": None, "batch_size": 4},
        "audio": {"encoder": "prosody", "sample_rate": 16000, "n_mels": 40, "n_mfcc": 20, "batch_size": 4},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"seed": 1, "features": features}))
    n = len(frame)
    expected_absent = {"text": [n - 1], "image": [3], "audio": [5]}
    first: dict[str, bytes] = {}
    for modality in ("text", "image", "audio"):
        out = tmp_path / "features"
        metrics = json.loads(_run_stage(tmp_path, modality, out).read_text())
        feats = np.load(out / f"{modality}.npy", allow_pickle=False)
        present = np.load(out / f"{modality}.present.npy", allow_pickle=False)
        meta = json.loads((out / f"{modality}.json").read_text())
        assert feats.dtype == np.float32 and feats.shape == (n, meta["dim"]) and meta["dim"] > 0
        assert present.dtype == bool and np.flatnonzero(~present).tolist() == expected_absent[modality]
        assert not feats[~present].any() and np.abs(feats[present]).sum(axis=1).min() > 0
        assert (out / f"{modality}.ids.txt").read_text().split("\n")[:-1] == frame["sample_id"].tolist()
        for key in ("encoder", "encoder_version", "dim", "rows", "seconds", "rows_per_second", "missing"):
            assert key in meta and metrics[key] == meta[key]
        assert meta["rows"] == n and meta["missing"] == 1
        first[modality] = (out / f"{modality}.npy").read_bytes()
    # Same row content -> same features, whatever the row's position or batch.
    img = np.load(tmp_path / "features" / "image.npy")
    np.testing.assert_array_equal(img[0], img[2])
    assert meta["undecodable"] == 1 and meta["missing_null"] == 0  # the corrupt WAV
    text_metrics = json.loads((tmp_path / "metrics" / "extract_text.json").read_text())
    assert text_metrics["truncated_share"] == 0.0 and text_metrics["encoder"] == "use-multilingual"
    xling = text_metrics["crosslingual"]
    assert xling["method"] == "translation_nn" and xling["split"] == "test"
    assert xling["nn_rate"] > xling["chance"] and set(xling["per_language"]) <= set(TEXTS)

    runs = {
        r.info.run_name: r for r in mlflow.search_runs(experiment_names=["babelfuse"], output_format="list")
    }
    assert {"extract:text", "extract:image", "extract:audio"} <= set(runs)
    text_run = runs["extract:text"].data
    assert text_run.params["features.text.encoder"] == "use-multilingual"
    assert text_run.metrics["rows"] == n and text_run.metrics["missing"] == 1
    assert text_run.metrics["test_xling_nn_rate"] == pytest.approx(xling["nn_rate"])
    assert runs["extract:audio"].data.tags["stage"] == "extract_audio"
    assert runs["extract:image"].data.metrics["dim"] == img.shape[1]

    for modality in ("text", "image", "audio"):  # a second run writes byte-identical arrays
        _run_stage(tmp_path, modality, tmp_path / "again")
        assert (tmp_path / "again" / f"{modality}.npy").read_bytes() == first[modality]


def test_stage_user_errors_exit_2_without_traceback(tmp_path: Path, mlflow_uri: str, capsys) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"features": {"text": {"encoder": "nope"}}}))
    frame = pd.DataFrame(
        {"sample_id": ["a"], "split": ["test"], "lang": ["en"], "text": ["hi"], "label": ["neutral"]}
    )
    frame["image_path"] = frame["audio_path"] = None
    frame.to_parquet(tmp_path / "m.parquet")
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "text",
                "--manifest",
                str(tmp_path / "m.parquet"),
                "--out",
                str(tmp_path / "f"),
                "--params",
                str(tmp_path / "params.yaml"),
            ]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "features.text.encoder" in err and "'nope'" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(
            [
                "image",
                "--manifest",
                str(tmp_path / "missing.parquet"),
                "--params",
                str(tmp_path / "params.yaml"),
            ]
        )
