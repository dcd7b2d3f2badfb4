"""The manifest: one row per post. Reading it, finding its data root, resolving media paths safely.

Columns: ``sample_id, split, lang, text, image_path, audio_path, label`` (+ optional ``template_id``).
Media paths are relative to the *data root*, recorded in ``source.json`` beside the manifest
(``data/raw`` for the generated dataset, the user manifest's own folder for imported data).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from babelfuse.errors import BabelfuseError, read_json
from babelfuse.jsonio import write_json

REQUIRED_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "split",
    "lang",
    "text",
    "image_path",
    "audio_path",
    "label",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("template_id",)


def is_null(value: object) -> bool:
    """A missing cell (None / NaN / NaT / pd.NA), without choking on arrays, bytes or other odd values.

    The one null check of manifests (validate, extract) and of served requests (serving.inputs).
    """
    if value is None:
        return True
    if isinstance(value, str | bytes | list | tuple | dict | np.ndarray):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Manifest:
    frame: pd.DataFrame
    data_root: Path

    def media_path(self, relative: str | None) -> Path | None:
        return None if relative is None or pd.isna(relative) else resolve_inside(self.data_root, relative)


def resolve_inside(root: Path, relative: str) -> Path:
    """``root / relative`` resolved; a :class:`BabelfuseError` if it is absolute or escapes ``root``."""
    rel = Path(str(relative))
    if rel.is_absolute():
        raise BabelfuseError(f"media path {relative!r} is absolute; paths must be relative to {root}")
    root_resolved = Path(root).resolve()
    full = (root_resolved / rel).resolve()
    if full != root_resolved and root_resolved not in full.parents:
        raise BabelfuseError(f"media path {relative!r} resolves outside the data root {root_resolved}")
    return full


def read_table(path: Path | str) -> pd.DataFrame:
    """A user's CSV or Parquet manifest as a DataFrame (strings stay strings)."""
    path = Path(path)
    if not path.exists():
        raise BabelfuseError(f"manifest not found: {path}")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() in {".csv", ".tsv"}:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=True, encoding="utf-8")
    raise BabelfuseError(f"manifest {path} must be .csv, .tsv or .parquet")


def write_source(path: Path, source: str, data_root: Path, **extra: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"source": source, "data_root": str(data_root), **extra}
    write_json(path, record)


def read_source(manifest_path: Path | str) -> dict:
    """The ``source.json`` beside a manifest; default data root is the manifest's own folder."""
    manifest_path = Path(manifest_path)
    sidecar = manifest_path.parent / "source.json"
    if sidecar.exists():
        return read_json(sidecar)
    return {"source": "manifest", "data_root": str(manifest_path.parent)}


def load_manifest(path: Path | str) -> Manifest:
    """Read a manifest and its data root (from ``source.json`` beside it)."""
    frame = read_table(path)
    data_root = Path(read_source(path)["data_root"])
    return Manifest(frame=frame, data_root=data_root)
