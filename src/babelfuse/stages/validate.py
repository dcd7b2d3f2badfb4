"""The ``validate`` stage: check the raw manifest and its media, pass or quarantine rows.

    python -m babelfuse.stages.validate --manifest data/raw/manifest.parquet \
        --out data/validated --docs reports/validation --metrics metrics/validate.json

Reads ``params.yaml: validate`` and ``features.text`` (accepted languages = those the text encoder
covers, as served). The checks live in :mod:`babelfuse.validation`; what each
``validate.on_failure`` mode does: see :mod:`babelfuse.validation.report`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from babelfuse import logs, paths, tracking
from babelfuse.config import Config, add_config_arguments, config_from_args
from babelfuse.data.manifest import read_source
from babelfuse.errors import BabelfuseError, user_errors_exit
from babelfuse.jsonio import write_json
from babelfuse.validation import report as rep
from babelfuse.validation.media_checks import MediaLimits
from babelfuse.validation.row_checks import class_balance
from babelfuse.validation.validate import (
    accepted_languages,
    read_manifest,
    remove_stale_outputs,
    reset_docs,
    validate_manifest,
    write_outputs,
)

log = logging.getLogger("babelfuse.validation")


def _params(cfg: Config) -> tuple[dict[str, Any], list[str] | None]:
    """The validate section (checked by the schema) and the languages the suite accepts."""
    params = cfg.section("validate")
    MediaLimits.from_params(params)
    return params, accepted_languages(cfg.features.text.encoder, cfg.features.text.languages)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--manifest", type=Path, default=paths.RAW_MANIFEST)
    parser.add_argument("--out", type=Path, default=paths.VALIDATED)
    parser.add_argument("--docs", type=Path, default=paths.VALIDATION_DOCS)
    parser.add_argument("--metrics", type=Path, default=paths.METRICS / "validate.json")
    add_config_arguments(parser)
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
    counts = ("rows_in", "rows_passed", "rows_failed", "rows_quarantined", "expectations_failed")
    values = {k: float(record[k]) for k in (*counts, "media_rows_per_second", "seconds")}
    values.update({f"unexpected.{o.name}": float(o.unexpected_count) for o in report.outcomes})
    mlflow.log_metrics(values)
    mlflow.set_tag("on_failure", mode)
    mlflow.log_artifact(str(metrics_path))


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    logs.setup()
    args = parse_args(argv)
    params, languages = _params(config_from_args(args))
    mode = params["on_failure"]
    log.info("validate.on_failure=%s; languages accepted (features.text): %s", mode, languages or "any")
    manifest = read_manifest(args.manifest)
    source = read_source(args.manifest)
    reset_docs(args.docs)
    remove_stale_outputs(args.out)
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
        write_json(args.metrics, record)
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
