"""The ``validate`` stage's library: check the raw manifest and its media, pass or quarantine rows.

The entry point is :mod:`babelfuse.stages.validate` (``python -m babelfuse.stages.validate``).

Reads ``params.yaml: validate`` and ``features.text`` (the languages accepted are those the text
encoder covers, :func:`accepted_languages`). What each ``validate.on_failure`` mode does: see
``report.py``.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from babelfuse import paths
from babelfuse.data.manifest import Manifest, load_manifest
from babelfuse.errors import BabelfuseError
from babelfuse.features.coverage import covered_languages
from babelfuse.jsonio import write_json
from babelfuse.validation import report as rep
from babelfuse.validation.media_checks import MEDIA_COLUMNS, MediaLimits
from babelfuse.validation.row_checks import build_check_frame, class_balance, class_ratio_column
from babelfuse.validation.suite import build_checks, row_reasons, run_suite

log = logging.getLogger("babelfuse.validation")
MODES = ("fail", "quarantine")


def accepted_languages(encoder: str, languages: list[str] | str | None) -> list[str] | None:
    """The ``lang`` codes a manifest may hold: the text encoder's covered set (``features.text``).

    The same set the served model accepts, so a bring-your-own manifest in Portuguese validates with
    the default encoder; None (``features.text.languages: any``, or an undeclared ``hf:`` encoder)
    accepts any code.
    """
    covered = covered_languages(encoder, languages)
    return None if covered is None else list(covered)


def read_manifest(path: Path) -> Manifest:
    """``load_manifest`` with every way a file can be unreadable turned into a clear error."""
    try:
        manifest = load_manifest(path)
    except BabelfuseError:
        raise
    except Exception as err:  # pyarrow / csv / json / KeyError on a broken source.json
        raise BabelfuseError(
            f"cannot read manifest {path} (or its source.json): {type(err).__name__}: {err}"
        ) from None
    frame = manifest.frame
    if frame.columns.duplicated().any():
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise BabelfuseError(f"manifest {path} has duplicate columns: {dupes}")
    return Manifest(frame=frame.reset_index(drop=True), data_root=manifest.data_root)


def validate_manifest(
    manifest: Manifest,
    params: dict[str, Any],
    languages: list[str] | None,
    docs_dir: Path | None,
    mode: str = "fail",
    progress: bool = True,
) -> rep.Report:
    """Run every check on a manifest (media read from its data root); Data Docs go to ``docs_dir``."""
    start = time.perf_counter()
    frame, root = manifest.frame, Path(manifest.data_root)
    has_media = any(c in frame and frame[c].notna().any() for c in MEDIA_COLUMNS.values())
    if has_media and not root.is_dir():
        raise BabelfuseError(
            f"data root {root} (source.json: data_root) is not a folder; media paths cannot resolve"
        )
    check_frame, rows_per_second = build_check_frame(frame, root, MediaLimits.from_params(params), progress)
    balance = class_balance(check_frame, float(params["class_balance_max_ratio"]))
    check_frame["class_ratio"] = class_ratio_column(check_frame, balance)
    severity = "warning" if mode == "quarantine" else "critical"
    checks = build_checks(list(check_frame.columns), languages, params, balance, balance_severity=severity)
    try:
        outcomes = run_suite(check_frame, balance, checks, docs_dir)
    except BabelfuseError:
        raise
    except Exception as err:  # GX refusing some odd input must still not end in a traceback
        log.debug("Great Expectations failed", exc_info=True)
        raise BabelfuseError(f"the expectation suite could not run: {type(err).__name__}: {err}") from None
    report = rep.Report(frame, outcomes, row_reasons(outcomes, checks, check_frame), balance, rows_per_second)
    report.seconds = time.perf_counter() - start
    return report


def reset_docs(docs: Path) -> None:
    """Start Data Docs afresh (GX adds a page per run); refuse to clear a folder that is not a docs site."""
    if docs.exists():
        if any(docs.iterdir()) and not (docs / "index.html").exists():
            raise BabelfuseError(
                f"--docs {docs} is not empty and holds no Data Docs index.html; not clearing it"
            )
        shutil.rmtree(docs)
    docs.mkdir(parents=True, exist_ok=True)


def write_outputs(report: rep.Report, out: Path, source: dict, mode: str) -> tuple[int, int]:
    """Validated manifest, quarantine (possibly empty, same schema) and source.json; -> (kept, quarantined)."""
    good, bad = rep.partition(report)
    if mode == "fail":  # only reached on success: nothing to quarantine
        bad = bad.iloc[0:0]
    out.mkdir(parents=True, exist_ok=True)
    rep.write_parquet(good, out / paths.VALIDATED_MANIFEST.name)
    rep.write_parquet(bad, out / paths.QUARANTINE.name)
    write_json(out / paths.VALIDATED_SOURCE.name, source)
    return len(good), len(bad)


def remove_stale_outputs(out: Path) -> None:
    """A failed run must not leave an earlier run's validated manifest looking current."""
    for name in (paths.VALIDATED_MANIFEST.name, paths.QUARANTINE.name, paths.VALIDATED_SOURCE.name):
        (out / name).unlink(missing_ok=True)
