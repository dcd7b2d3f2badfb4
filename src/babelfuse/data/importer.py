"""Bring-your-own-data: import a user's CSV/Parquet manifest as ``data/raw/manifest.parquet``.

Why a copy and not a link: the pipeline's later stages read one format (Parquet) from one place,
and DVC tracks ``data/raw`` as the stage output. The user's files are only read, never modified;
media stay where they are and ``source.json`` records their folder (the manifest's own folder) as the
data root, plus the manifest's sha256 so a run can be traced to the exact file. Checking the content
(labels, languages, media) is the validate stage's job; here only an unreadable file or missing
required columns stop the pipeline.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pandas as pd

from babelfuse import paths
from babelfuse.data.manifest import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, read_table, write_source
from babelfuse.errors import BabelfuseError

log = logging.getLogger("babelfuse.generate")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_user_manifest(path: Path) -> pd.DataFrame:
    """The user's table with the required (+ optional) columns, in contract order."""
    if not path.is_file():
        raise BabelfuseError(f"manifest not found: {path} (params.yaml data.manifest_path)")
    try:
        frame = read_table(path)
    except BabelfuseError:
        raise
    except Exception as err:  # pandas/pyarrow raise many types for a malformed file
        raise BabelfuseError(f"could not read manifest {path}: {type(err).__name__}: {err}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise BabelfuseError(
            f"manifest {path} lacks required column(s) {', '.join(missing)} "
            f"(has {', '.join(frame.columns) or 'none'}; needs {', '.join(REQUIRED_COLUMNS)})"
        )
    keep = [*REQUIRED_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in frame.columns)]
    dropped = [c for c in frame.columns if c not in keep]
    if dropped:
        log.info("manifest %s: ignoring extra column(s) %s", path, ", ".join(dropped))
    frame = frame[keep].copy()
    if "template_id" in frame.columns:
        numeric = pd.to_numeric(frame["template_id"], errors="coerce")
        if numeric.notna().sum() == frame["template_id"].notna().sum():  # all given values are numbers
            frame["template_id"] = numeric.astype("Int64")
    return frame


def data_root_for(manifest_path: Path, project_root: Path) -> Path:
    """The manifest's folder: relative to the project when inside it (portable), else absolute."""
    folder = manifest_path.resolve().parent
    try:
        return folder.relative_to(project_root.resolve())
    except ValueError:
        return folder


def import_manifest(manifest_path: Path, out: Path, project_root: Path | None = None) -> pd.DataFrame:
    """Copy the user's manifest into ``out/manifest.parquet`` and write ``out/source.json``."""
    from babelfuse.data.generate import clear_outputs

    frame = read_user_manifest(manifest_path)
    root = data_root_for(manifest_path, project_root or paths.project_root())
    clear_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "manifest.parquet", index=False)
    write_source(
        out / "source.json",
        "manifest",
        root,
        manifest_path=str(manifest_path),
        manifest_sha256=sha256_file(manifest_path),
    )
    log.info(
        "imported %d rows from %s; media paths are relative to %s (source.json data_root)",
        len(frame),
        manifest_path,
        root,
    )
    return frame
