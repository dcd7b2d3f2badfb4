"""The extract stages' library: one modality of the validated manifest -> ``data/features/<modality>.*``.

The entry point is :mod:`babelfuse.stages.extract` (``python -m babelfuse.stages.extract text``).

Reads only ``params.yaml: features.<modality>``. Every manifest row gets one feature row, in manifest
order: a missing modality (null text or path) or media that cannot be read or decoded gets a zero
row and ``present = False`` instead of being dropped, so later stages can join on row position and
the model can learn to cope with missing inputs. Media are read, decoded and encoded one batch at a
time, so memory does not grow with the dataset. Same inputs and params -> byte-identical ``.npy``,
whichever engine (``features.engine``) runs the batches: both call :func:`encode_batch` on the batches
:func:`plan_batches` plans.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from babelfuse import paths
from babelfuse.data.manifest import is_null
from babelfuse.errors import BabelfuseError
from babelfuse.features import media
from babelfuse.features.base import Encoder
from babelfuse.features.registry import get_encoder
from babelfuse.jsonio import write_json

log = logging.getLogger("babelfuse.features.extract")

MEDIA_COLUMNS: dict[str, str] = {"image": "image_path", "audio": "audio_path"}


def progress(total: int, desc: str) -> tqdm:
    """The one progress bar of the extract stages (both engines)."""
    return tqdm(total=total, desc=desc, unit="row", mininterval=1.0, leave=False)


def _has_text(value: Any) -> bool:
    return not is_null(value) and bool(str(value).strip())


def plan_batches(modality: str, values: list, batch_size: int) -> list[np.ndarray]:
    """Row numbers of each encoder batch, in manifest order; both engines encode exactly these batches.

    Text batches hold only rows with text (null or blank never reach the encoder); media batches hold
    every row (a null or unreadable source is zeroed inside :func:`encode_batch`).
    """
    if modality == "text":
        rows = np.flatnonzero(np.array([_has_text(t) for t in values], dtype=bool))
    else:
        rows = np.arange(len(values))
    return [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]


def encode_batch(
    encoder: Encoder, modality: str, rows: np.ndarray, values: list, root: Path | None, params: dict
) -> tuple[np.ndarray, np.ndarray]:
    """Read, decode and encode one batch (manifest rows ``rows``, their ``values``) -> (float32
    (len(rows), dim), bool present). The per-batch work of both engines (local and Ray actors).

    Null or blank text, a null source or media that cannot be read/decoded gives a zero row with
    ``present = False`` (media: logged with its row number and the reason); it never stops the stage.
    """
    features = np.zeros((len(rows), encoder.dim), dtype=np.float32)
    present = np.zeros(len(rows), dtype=bool)
    if modality == "text":
        keep = [j for j, text in enumerate(values) if _has_text(text)]
        decoded = [str(values[j]) for j in keep]
    else:
        keep, decoded = [], []
        for j, source in enumerate(values):
            if is_null(source):
                continue
            try:
                decoded.append(decode_source(source, modality, root, params))
                keep.append(j)
            except (BabelfuseError, OSError) as err:
                log.warning("row %d: %s not used (zero row, present=False): %s", rows[j], modality, err)
    if keep:
        _encode_decoded(encoder, decoded, keep, rows, features, present, modality)
    return features, present


def encode_rows(
    encoder: Encoder, modality: str, values: list, root: Path | None, params: dict, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The local engine: every planned batch in this process, in order -> (float32 (n, dim), bool present).

    Sequential on purpose: decoding the next batch in a thread while this one is encoded measured
    slower (GIL contention with the numpy-heavy encoders: 1.36x instead of 1.1x the raw encode).
    """
    features = np.zeros((len(values), encoder.dim), dtype=np.float32)
    present = np.zeros(len(values), dtype=bool)
    batches = plan_batches(modality, values, batch_size)
    with progress(sum(len(b) for b in batches), f"extract:{modality} {encoder.id}") as bar:
        for rows in batches:
            features[rows], present[rows] = encode_batch(
                encoder, modality, rows, [values[i] for i in rows], root, params
            )
            bar.update(len(rows))
    return features, present


# How a stage runs its batches: (encoder, modality, values, data root, params, batch size) -> arrays.
Engine = Callable[[Encoder, str, list, Path | None, dict, int], tuple[np.ndarray, np.ndarray]]


def encode_texts(encoder: Encoder, texts: list[str | None], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode texts in batches -> (float32 (n, dim), bool present); null or blank text -> zero row."""
    return encode_rows(encoder, "text", texts, None, {}, batch_size)


def decode_source(source: str | bytes | Path, modality: str, root: Path | None, params: dict) -> np.ndarray:
    """Read and decode one media source the way the encoder expects it (BabelfuseError if it can't)."""
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
    """Read, decode and encode media one batch at a time -> (float32 (n, dim), bool present)."""
    return encode_rows(encoder, modality, sources, root, params, batch_size)


def _encode_decoded(
    encoder: Encoder,
    decoded: list,
    keep: list[int],
    rows: np.ndarray,
    features: np.ndarray,
    present: np.ndarray,
    modality: str,
) -> None:
    """Encode the decoded inputs of a batch into positions ``keep``; if the encoder refuses the batch
    (BabelfuseError), retry one by one so that only the inputs it refuses become zero rows."""
    try:
        features[keep] = encoder.encode(decoded)
        present[keep] = True
        return
    except BabelfuseError:
        pass
    for j, item in zip(keep, decoded, strict=True):
        try:
            features[j] = encoder.encode([item])[0]
            present[j] = True
        except BabelfuseError as err:
            log.warning(
                "row %d: %s encoder %s refused it (zero row, present=False): %s",
                rows[j],
                modality,
                encoder.id,
                err,
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
    engine: Engine = encode_rows,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Encode one modality of ``frame`` -> (features, present, meta) with the encoder of ``params``.

    ``engine`` runs the planned batches: :func:`encode_rows` here, or the Ray engine
    (:func:`babelfuse.features.ray_engine.ray_engine`); both return the same arrays."""
    column = input_column(modality, frame)
    encoder, batch_size, load_seconds = built or build_encoder(modality, params)
    values = [None if is_null(v) else v for v in frame[column].tolist()]
    started = time.perf_counter()
    features, present = engine(encoder, modality, values, data_root, params, batch_size)
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
    write_json(paths.features_meta(modality, out), meta)
