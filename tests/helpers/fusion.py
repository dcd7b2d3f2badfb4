"""Tiny shapes shared by the fusion tests (a plain module: a second conftest.py would clash on import): three small modalities and a mask with absent entries."""

from __future__ import annotations

import numpy as np

DIMS = {"text": 12, "image": 7, "audio": 5}
PARAMS = {
    "hidden": 16,
    "dropout": 0.1,
    "modality_dropout": 0.2,
    "attention_heads": 4,
    "lowrank_rank": 3,
    "tensor_dim": 4,
}


def make_batch(n: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs; rows 0-3 miss some modalities (row 3 misses all), the rest have all three."""
    rng = np.random.default_rng(seed)
    batch = {m: rng.normal(size=(n, d)).astype("float32") for m, d in DIMS.items()}
    mask = np.ones((n, 3), dtype="float32")
    mask[0] = [1, 0, 1]
    mask[1] = [0, 1, 0]
    mask[2] = [1, 1, 0]
    mask[3] = [0, 0, 0]
    for i, m in enumerate(DIMS):  # absent rows are zeros, as the fuse stage writes them
        batch[m] = batch[m] * mask[:, i : i + 1]
    batch["mask"] = mask
    return batch
