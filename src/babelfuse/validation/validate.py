"""The ``validate`` stage: check the raw manifest and its media, pass or quarantine rows.

    python -m babelfuse.validation.validate --manifest data/raw/manifest.parquet \
        --out data/validated --docs reports/validation --metrics metrics/validate.json

Reads ``params.yaml: validate`` and ``data.languages`` (supported = ``data.languages`` that
``labels.LANGUAGES`` knows). What each ``validate.on_failure`` mode does: see ``report.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from babelfuse import logs, paths
from babelfuse.data.manifest import Manifest, load_manifest, read_source
from babelfuse.errors import BabelfuseError, user_errors_exit
from babelfuse.labels import LANGUAGES
from babelfuse.params import load_section
from babelfuse.validation import report as rep
from babelfuse.validation.media_checks import MEDIA_COLUMNS, MediaLimits
from babelfuse.validation.row_checks import build_check_frame, class_balance, class_ratio_column
from babelfuse.validation.suite import build_checks, row_reasons, run_suite

log = logging.getLogger("babelfuse.validation")
MODES = ("fail", "quarantine")


def supported_languages(data_languages: list[str]) -> list[str]:
    """``data.languages`` ∩ ``labels.LANGUAGES``, in params order."""
    unknown = [c for c in data_languages if c not in LANGUAGES]
    if unknown:
        log.warning("data.languages lists %s, which labels.LANGUAGES does not know: not accepted", unknown)
    return [c for c in data_languages if c in LANGUAGES]


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
    languages: list[str],
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
    (out / paths.VALIDATED_SOURCE.name).write_text(
        json.dumps(source, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return len(good), len(bad)


def _params(params_file: Path) -> tuple[dict[str, Any], list[str]]:
    params = load_section("validate", params_file)
    mode = params.get("on_failure", "fail")
    if mode not in MODES:
        raise BabelfuseError(f"validate.on_failure={mode!r} must be one of {MODES}")
    try:
        MediaLimits.from_params(params)
        float(params["class_balance_max_ratio"]), int(params["text_max_chars"])
    except (KeyError, TypeError, ValueError) as err:
        raise BabelfuseError(f"params.yaml validate section is incomplete or not numeric: {err}") from None
    return params, supported_languages(list(load_section("data", params_file).get("languages") or []))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--manifest", type=Path, default=paths.RAW_MANIFEST)
    parser.add_argument("--out", type=Path, default=paths.VALIDATED)
    parser.add_argument("--docs", type=Path, default=paths.VALIDATION_DOCS)
    parser.add_argument("--metrics", type=Path, default=paths.METRICS / "validate.json")
    parser.add_argument("--params", type=Path, default=paths.PARAMS)
    parser.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    return parser.parse_args(argv)


def _balance_warnings(report: rep.Report, kept_balance: pd.DataFrame) -> None:
    """Quarantine mode: imbalance cannot be fixed by dropping rows, so it is reported, not fatal."""
    for outcome in report.failed:
        if outcome.name in rep.WARN_ONLY_IN_QUARANTINE:
            report.warnings.append(f"{outcome.name}: {outcome.detail}")
    for r in kept_balance.itertuples():
        if not r.ratio <= r.max_ratio:
            report.warnings.append(
                f"class_balance after quarantine: split {r.split} ratio {r.ratio:.2f} > {r.max_ratio:g}"
            )
    for warning in report.warnings:
        log.warning("validate.on_failure=quarantine, only a warning: %s", warning)


def _log_mlflow(record: dict, report: rep.Report, metrics_path: Path, mode: str) -> None:
    import mlflow

    counts = ("rows_in", "rows_passed", "rows_failed", "rows_quarantined", "expectations_failed")
    values = {k: float(record[k]) for k in (*counts, "media_rows_per_second", "seconds")}
    values.update({f"unexpected.{o.name}": float(o.unexpected_count) for o in report.outcomes})
    mlflow.log_metrics(values)
    mlflow.set_tag("on_failure", mode)
    mlflow.log_artifact(str(metrics_path))


def remove_stale_outputs(out: Path) -> None:
    """A failed run must not leave an earlier run's validated manifest looking current."""
    for name in (paths.VALIDATED_MANIFEST.name, paths.QUARANTINE.name, paths.VALIDATED_SOURCE.name):
        (out / name).unlink(missing_ok=True)


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    logs.setup()
    args = parse_args(argv)
    params, languages = _params(args.params)
    mode = params.get("on_failure", "fail")
    log.info("validate.on_failure=%s; languages accepted (data.languages): %s", mode, languages)
    manifest = read_manifest(args.manifest)
    source = read_source(args.manifest)
    reset_docs(args.docs)
    remove_stale_outputs(args.out)
    from babelfuse import tracking

    inputs = [args.manifest, args.manifest.parent / "source.json"]
    with tracking.stage_run("validate", {**params, "languages": languages}, inputs=inputs):
        report = validate_manifest(
            manifest, params, languages, args.docs, mode, progress=not args.no_progress
        )
        failing = rep.blocking(report, mode)
        if len(report.frame) and len(report.reasons) == len(report.frame):
            failing = report.failed  # every row is bad: quarantining would leave nothing
        quarantined = write_outputs(report, args.out, source, mode)[1] if not failing else 0
        kept_balance = class_balance(
            report.frame.drop(index=sorted(report.reasons)), float(params["class_balance_max_ratio"])
        )
        if mode == "quarantine":
            _balance_warnings(report, kept_balance)
        record = rep.metrics(report, mode, not failing, quarantined, kept_balance)
        rep.write_json(record, args.metrics)
        _log_mlflow(record, report, args.metrics, mode)
        message = rep.summary(report, mode, failing, args.docs, record["rows_passed"])
        if failing:
            raise BabelfuseError(message)
        log.info(
            "%s; %d quarantined -> %s (%.1f media rows/s)",
            message,
            quarantined,
            args.out,
            report.media_rows_per_second,
        )


if __name__ == "__main__":
    main()
