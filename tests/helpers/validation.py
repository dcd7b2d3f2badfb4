"""Builders for the validation tests: tiny manifests with real PNG/WAV files (no generator needed)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
LABELS = ("negative", "neutral", "positive")


def write_png(path: Path, size: tuple[int, int] = (8, 8), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A few-byte PNG whose IHDR claims ``width x height`` (a decompression-bomb lookalike)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def write_wav(path: Path, seconds: float = 0.3, rate: int = 16000, amplitude: float = 0.2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * rate))) / rate
    sf.write(path, (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, subtype="PCM_16")
    return path


def clean_frame(root: Path, per_cell: int = 2, prefix: str = "s") -> pd.DataFrame:
    """Balanced rows (every split x label ``per_cell`` times), media under ``root``; a few rows lack media."""
    rows = []
    for split in ("train", "val", "test"):
        for label in LABELS:
            for k in range(per_cell):
                sid = f"{prefix}-{split}-{label}-{k}"
                image = f"images/{sid}.png"
                audio = f"audio/{sid}.wav"
                if not (root / image).exists():
                    write_png(root / image, seed=len(rows))
                    write_wav(root / audio)
                rows.append(
                    {
                        "sample_id": sid,
                        "split": split,
                        "lang": "en" if split != "test" else "de",
                        "text": f"a {label} post number {k}",
                        "image_path": None if k == 1 and label == "neutral" else image,
                        "audio_path": None if k == 1 and label == "negative" else audio,
                        "label": label,
                        "template_id": len(rows),
                    }
                )
    return pd.DataFrame(rows).astype(
        {c: "str" for c in ("sample_id", "split", "lang", "text", "image_path", "audio_path", "label")}
    )


def write_case(
    case_dir: Path, frame: pd.DataFrame, root: Path, on_failure: str = "fail", **overrides
) -> dict:
    """manifest.parquet + source.json + params.yaml in ``case_dir``; the argv for ``main``."""
    case_dir.mkdir(parents=True, exist_ok=True)
    manifest = case_dir / "raw" / "manifest.parquet"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(manifest, index=False)
    (manifest.parent / "source.json").write_text(json.dumps({"source": "generated", "data_root": str(root)}))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["validate"].update(on_failure=on_failure, **overrides)
    params_file = case_dir / "params.yaml"
    params_file.write_text(yaml.safe_dump({"validate": params["validate"], "data": params["data"]}))
    return {
        "manifest": manifest,
        "out": case_dir / "validated",
        "docs": case_dir / "docs",
        "metrics": case_dir / "metrics" / "validate.json",
        "argv": [
            "--manifest", str(manifest), "--out", str(case_dir / "validated"), "--docs", str(case_dir / "docs"),
            "--metrics", str(case_dir / "metrics" / "validate.json"), "--params", str(params_file), "--no-progress",
        ],
    }  # fmt: skip
