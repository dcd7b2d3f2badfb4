"""Synthetic multimodal data for tests and benchmarks (no real features needed).

Each modality carries the label on a random subset of samples (``informative`` share) and is noise
elsewhere, so no single modality can classify everything but their combination can: a fusion model
should beat every single-modality model. A small share of each modality is missing (zero row, mask 0).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from babelfuse.labels import LABELS
from babelfuse.paths import MODALITIES

DEFAULT_DIMS: dict[str, int] = {"text": 512, "image": 64, "audio": 48}


def synthetic_features(
    n: int,
    dims: dict[str, int],
    seed: int,
    informative: float = 0.55,
    missing: float = 0.05,
    signal: float = 4.0,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(labels int64 (n,), {modality: float32 (n, d)}, {modality: bool present (n,)}).

    ``signal`` is how far (in noise standard deviations) an informative row sits along its class's
    direction; ``informative`` the share of rows where a modality carries the label.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(LABELS)
    rng.shuffle(labels)
    arrays: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    for i, modality in enumerate(MODALITIES):
        dim = int(dims[modality])
        # Fixed per-modality class prototypes (independent of `seed` so every split shares them).
        prototypes = np.random.default_rng(1000 + i).normal(size=(len(LABELS), dim))
        prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)
        informs = rng.random(n) < informative
        # Informative rows sit `signal` noise-SDs along their class's direction; the others are pure noise.
        x = rng.normal(size=(n, dim)) + informs[:, None] * signal * prototypes[labels]
        keep = rng.random(n) >= missing
        arrays[modality] = (x * keep[:, None]).astype("float32")
        present[modality] = keep
    return labels.astype("int64"), arrays, present


def synthetic_fused(
    n: int, dims: dict[str, int] | None = None, seed: int = 0, **kwargs: float
) -> dict[str, np.ndarray]:
    """A dict with the keys of a ``data/fused/<split>.npz`` (features not standardised)."""
    labels, arrays, present = synthetic_features(n, dims or DEFAULT_DIMS, seed, **kwargs)
    return {
        **arrays,
        "mask": np.stack([present[m] for m in MODALITIES], axis=1).astype("float32"),
        "label": labels,
        "lang": np.full(n, "en"),
        "sample_id": np.array([f"s{seed}-{i:05d}" for i in range(n)]),
        "template_id": np.full(n, -1, dtype="int64"),
    }


def synthetic_manifest(sizes: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """A manifest frame (``sample_id, split, lang, text, image_path, audio_path, label, template_id``)."""
    rows = []
    for split, count in sizes.items():
        for i in range(count):
            rows.append({"sample_id": f"{split}-{i:05d}", "split": split, "lang": "en", "text": f"post {i}"})
    frame = pd.DataFrame(rows)
    frame["image_path"] = [f"images/{sid}.png" for sid in frame["sample_id"]]
    frame["audio_path"] = [f"audio/{sid}.wav" for sid in frame["sample_id"]]
    frame["label"] = "neutral"
    frame["template_id"] = np.arange(len(frame), dtype="int64")
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def write_synthetic_features(
    frame: pd.DataFrame, folder: Path, dims: dict[str, int] | None = None, seed: int = 0, **kwargs: float
) -> pd.DataFrame:
    """Write ``<folder>/<m>.npy|.ids.txt|.present.npy|.json`` for the manifest rows; returns the manifest
    with ``label`` (and null media paths where a modality is missing) set to match the features."""
    dims = dims or DEFAULT_DIMS
    labels, arrays, present = synthetic_features(len(frame), dims, seed, **kwargs)
    frame = frame.copy()
    frame["label"] = [LABELS[i] for i in labels]
    frame.loc[~present["image"], "image_path"] = None
    frame.loc[~present["audio"], "audio_path"] = None
    folder.mkdir(parents=True, exist_ok=True)
    for modality in MODALITIES:
        np.save(folder / f"{modality}.npy", arrays[modality])
        np.save(folder / f"{modality}.present.npy", present[modality])
        (folder / f"{modality}.ids.txt").write_text("\n".join(frame["sample_id"]) + "\n", encoding="utf-8")
        meta = {
            "encoder": "synthetic",
            "encoder_version": "0",
            "dim": int(dims[modality]),
            "rows": len(frame),
        }
        (folder / f"{modality}.json").write_text(json.dumps(meta), encoding="utf-8")
    return frame
