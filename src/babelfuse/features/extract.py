"""The extract stages' library: one modality of the validated manifest -> ``data/features/<modality>.*``.

The entry point is :mod:`babelfuse.stages.extract` (``python -m babelfuse.stages.extract text``).

Reads only ``params.yaml: features.<modality>``. Every manifest row gets one feature row, in manifest
order: a missing modality (null text or path) or media that cannot be read or decoded gets a zero
row and ``present = False`` instead of being dropped, so later stages can join on row position and
the model can learn to cope with missing inputs. Media are read, decoded and encoded one batch at a
time, so memory does not grow with the dataset. Same inputs and params -> byte-identical ``.npy``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from babelfuse import paths
from babelfuse.errors import BabelfuseError
from babelfuse.features.base import Encoder
from babelfuse.features.registry import get_encoder

log = logging.getLogger("babelfuse.features.extract")

MEDIA_COLUMNS: dict[str, str] = {"image": "image_path", "audio": "audio_path"}


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _progress(total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit="row", mininterval=1.0, leave=False)


def encode_texts(encoder: Encoder, texts: list[str | None], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode texts in batches -> (float32 (n, dim), bool present); null or blank text -> zero row."""
    present = np.array([not _is_null(t) and bool(str(t).strip()) for t in texts], dtype=bool)
    features = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    rows = np.flatnonzero(present)
    with _progress(len(rows), f"extract:text {encoder.id}") as bar:
        for start in range(0, len(rows), batch_size):
            idx = rows[start : start + batch_size]
            features[idx] = encoder.encode([str(texts[i]) for i in idx])
            bar.update(len(idx))
    return features, present


def decode_source(source: str | bytes | Path, modality: str, root: Path | None, params: dict) -> np.ndarray:
    """Read and decode one media source the way the encoder expects it (BabelfuseError if it can't)."""
    from babelfuse.features import media

    data = media.read_bytes(source, root, int(params["max_bytes"]))
    if modality == "image":
        return media.decode_image(data, int(params["size"]))
    if modality == "audio":
        return media.decode_audio(data, int(params["sample_rate"]))
    raise BabelfuseError(f"unknown media modality '{modality}' (expected image or audio)")


def encode_media(
    encoder: Encoder,
    sources: list[str | bytes | None],
    modality: str,
    root: Path | None,
    params: dict,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Read, decode and encode media one batch at a time -> (float32 (n, dim), bool present).

    A null source or one that cannot be read/decoded gives a zero row with ``present = False``
    (logged with its row number and the reason); it never stops the stage.
    """
    n = len(sources)
    features = np.zeros((n, encoder.dim), dtype=np.float32)
    present = np.zeros(n, dtype=bool)
    batches = [range(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]

    def decode_batch(batch: range) -> tuple[list[int], list[np.ndarray]]:
        rows, decoded = [], []
        for i in batch:
            if _is_null(sources[i]):
                continue
            try:
                decoded.append(decode_source(sources[i], modality, root, params))
                rows.append(i)
            except (BabelfuseError, OSError) as err:
                log.warning("row %d: %s not used (zero row, present=False): %s", i, modality, err)
        return rows, decoded

    # Sequential on purpose: decoding the next batch in a thread while this one is encoded measured
    # slower (GIL contention with the numpy-heavy encoders: 1.36x instead of 1.1x the raw encode).
    with _progress(n, f"extract:{modality} {encoder.id}") as bar:
        for batch in batches:
            rows, decoded = decode_batch(batch)
            if rows:
                _encode_batch(encoder, decoded, rows, features, present, modality)
            bar.update(len(batch))
    return features, present


def _encode_batch(
    encoder: Encoder, decoded: list, rows: list[int], features: np.ndarray, present: np.ndarray, modality: str
) -> None:
    """Encode a batch; if the encoder refuses it (BabelfuseError), retry one by one so that only the
    inputs it refuses become zero rows."""
    try:
        features[rows] = encoder.encode(decoded)
        present[rows] = True
        return
    except BabelfuseError:
        pass
    for i, item in zip(rows, decoded, strict=True):
        try:
            features[i] = encoder.encode([item])[0]
            present[i] = True
        except BabelfuseError as err:
            log.warning(
                "row %d: %s encoder %s refused it (zero row, present=False): %s", i, modality, encoder.id, err
            )


def truncated_share(encoder: Encoder, texts: list[str | None], present: np.ndarray) -> float:
    """Share of present texts longer than the encoder's token limit (0 when it has none)."""
    counter = getattr(encoder, "count_truncated", None)
    used = [str(texts[i]) for i in np.flatnonzero(present)]
    if counter is None or not used:
        return 0.0
    return float(counter(used)) / len(used)


def input_column(modality: str, frame: pd.DataFrame) -> str:
    """The manifest column a modality is read from (a clear error when the manifest lacks it)."""
    column = "text" if modality == "text" else MEDIA_COLUMNS.get(modality)
    if column is None:
        raise BabelfuseError(f"unknown modality '{modality}' (expected one of {', '.join(paths.MODALITIES)})")
    if column not in frame.columns:
        raise BabelfuseError(f"manifest has no '{column}' column, needed for features.{modality}")
    return column


def build_encoder(modality: str, params: dict) -> tuple[Encoder, int, float]:
    """The encoder named by ``features.<modality>.encoder``, its batch size and its load seconds.

    Called before the MLflow run starts, so a wrong encoder name fails fast without a failed run.
    """
    spec, batch_size = params["encoder"], int(params["batch_size"])  # validated by babelfuse.config
    log.info("features.%s.encoder=%s, features.%s.batch_size=%d", modality, spec, modality, batch_size)
    started = time.perf_counter()
    encoder = get_encoder(modality, str(spec), params)
    return encoder, batch_size, time.perf_counter() - started


def extract(
    modality: str,
    frame: pd.DataFrame,
    data_root: Path | None,
    params: dict,
    built: tuple[Encoder, int, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Encode one modality of ``frame`` -> (features, present, meta) with the encoder of ``params``."""
    column = input_column(modality, frame)
    encoder, batch_size, load_seconds = built or build_encoder(modality, params)
    values = [None if _is_null(v) else v for v in frame[column].tolist()]
    started = time.perf_counter()
    if modality == "text":
        features, present = encode_texts(encoder, values, batch_size)
    else:
        features, present = encode_media(encoder, values, modality, data_root, params, batch_size)
    seconds = time.perf_counter() - started
    nulls = sum(v is None for v in values)
    meta: dict[str, Any] = {
        **encoder.describe(),
        "rows": len(values),
        "present": int(present.sum()),
        "missing": int((~present).sum()),
        "missing_null": int(nulls),
        "undecodable": int((~present).sum()) - int(nulls),
        "batch_size": batch_size,
        "load_seconds": round(load_seconds, 3),
        "seconds": round(seconds, 3),
        "rows_per_second": round(len(values) / seconds, 2) if seconds > 0 else None,
    }
    if modality == "text":
        meta["truncated_share"] = truncated_share(encoder, values, present)
    return features, present, meta


def write_outputs(
    out: Path, modality: str, ids: list[str], features: np.ndarray, present: np.ndarray, meta: dict
) -> None:
    """``<m>.npy``, ``<m>.ids.txt``, ``<m>.present.npy``, ``<m>.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    np.save(
        paths.features_array(modality, out),
        np.ascontiguousarray(features, dtype=np.float32),
        allow_pickle=False,
    )
    np.save(
        paths.features_present(modality, out), np.ascontiguousarray(present, dtype=bool), allow_pickle=False
    )
    paths.features_ids(modality, out).write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    paths.features_meta(modality, out).write_text(
        json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
