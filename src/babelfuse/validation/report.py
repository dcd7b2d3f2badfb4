"""What a validation run decides and writes: pass/fail, the summary message, metrics, parquet outputs.

Mode semantics (``validate.on_failure``):

* ``fail`` -- any failed expectation fails the stage (exit 2) with a short summary; nothing is
  written to the output folder except on success (then ``manifest.parquet`` plus an empty
  ``quarantine.parquet`` with the same schema, so the outputs are stable).
* ``quarantine`` -- rows that fail a row-level expectation go to ``quarantine.parquet`` with a
  ``reasons`` column, the rest to ``manifest.parquet``. Table-level failures cannot be fixed by
  dropping rows: a missing required column, an empty manifest or no passing rows still fail the
  stage; class imbalance is only a warning (it is measured on the input and on the kept rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from babelfuse.data.manifest import is_null
from babelfuse.validation.suite import Outcome

FIRST_FAILING = 8
WARN_ONLY_IN_QUARANTINE = {"class_balance"}


@dataclass
class Report:
    """Everything one validation run found, in memory (``validate_manifest`` builds it)."""

    frame: pd.DataFrame  # the manifest as read (RangeIndex)
    outcomes: list[Outcome]
    reasons: dict[int, list[str]]  # row number -> reasons
    balance: pd.DataFrame
    media_rows_per_second: float
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]


def sample_label(frame: pd.DataFrame, row: int) -> str:
    """How a row is named in messages: its sample_id, else its row number."""
    value = frame["sample_id"].iloc[row] if "sample_id" in frame else None
    return str(value) if isinstance(value, str) and value else f"<row {row}>"


def blocking(report: Report, mode: str) -> list[Outcome]:
    """The failed expectations that fail the stage in this mode."""
    if mode == "fail":
        return report.failed
    return [
        o
        for o in report.failed
        if o.name not in WARN_ONLY_IN_QUARANTINE
        and (o.table_level or not o.rows or o.detail.startswith("could not"))
    ]


def describe(outcome: Outcome, report: Report) -> str:
    """One line per failed expectation: what, how many, which sample_ids, an example reason."""
    where = f" on {outcome.column}" if outcome.column else ""
    head = f"  - {outcome.name} [{outcome.expectation}{where}]"
    if outcome.rows:
        names = list(dict.fromkeys(sample_label(report.frame, r) for r in outcome.rows))  # duplicates once
        ids = ", ".join(names[:FIRST_FAILING])
        more = "" if len(names) <= FIRST_FAILING else ", ..."
        example = next(
            (x for x in report.reasons.get(outcome.rows[0], []) if x.startswith(outcome.name + ":")), ""
        )
        example = example.split(": ", 1)[-1]
        return f"{head}: {len(outcome.rows)} row(s): {ids}{more} (e.g. {example})"
    return f"{head}: {outcome.detail or 'failed'}"


def summary(report: Report, mode: str, failing: list[Outcome], docs: Path, rows_passed: int) -> str:
    rows_in = len(report.frame)
    if not failing:
        return f"{rows_in} rows in, {rows_passed} passed"
    lines = [
        f"validation failed (validate.on_failure={mode}): {len(failing)} of {len(report.outcomes)} "
        f"expectations failed on {rows_in} rows"
    ]
    lines += [describe(o, report) for o in failing]
    if mode == "quarantine" and rows_passed == 0 and rows_in:
        lines.append("  - no row passed every check: nothing left to validate")
    lines.append(f"Data Docs: {docs / 'index.html'}")
    if mode == "fail" and all(not o.table_level for o in failing):
        lines.append("Set validate.on_failure=quarantine to move the bad rows to quarantine.parquet instead.")
    return "\n".join(lines)


def metrics(
    report: Report, mode: str, success: bool, rows_quarantined: int, kept_balance: pd.DataFrame
) -> dict:
    """The ``metrics/validate.json`` record (DVC-friendly: nested dicts, finite numbers)."""

    def balance_dict(balance: pd.DataFrame) -> dict[str, Any]:
        out = {}
        for rec in balance.to_dict("records"):
            split = rec.pop("split")
            ratio = rec.pop("ratio")
            out[split] = {"ratio": round(ratio, 4) if ratio != float("inf") else None, **rec}
        return out

    expectations = {}
    for o in report.outcomes:
        expectations[o.name] = {
            "expectation": o.expectation,
            "column": o.column,
            "success": o.success,
            "unexpected_count": int(o.unexpected_count),
            "first_failing": [sample_label(report.frame, r) for r in o.rows[:FIRST_FAILING]],
            **({"detail": o.detail} if o.detail else {}),
        }
    return {
        "on_failure": mode,
        "success": success,
        "rows_in": len(report.frame),
        "rows_passed": len(report.frame) - len(report.reasons),
        "rows_failed": len(report.reasons),
        "rows_quarantined": rows_quarantined,
        "expectations_failed": len(report.failed),
        "expectations_total": len(report.outcomes),
        "media_rows_per_second": round(min(report.media_rows_per_second, 1e9), 1),
        "seconds": round(report.seconds, 3),
        "class_balance": balance_dict(report.balance),
        "class_balance_kept": balance_dict(kept_balance),
        "warnings": report.warnings,
        "expectations": expectations,
    }


def partition(report: Report) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(good rows, bad rows + reasons column)``, both in manifest order."""
    frame = report.frame
    bad_rows = sorted(report.reasons)
    good = frame.drop(index=bad_rows)
    bad = frame.iloc[bad_rows].copy()
    bad["reasons"] = pd.Series(["; ".join(report.reasons[r]) for r in bad_rows], index=bad.index, dtype="str")
    return good, bad


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write as-is; if Arrow refuses mixed cell types (only possible in quarantined rows), as text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        frame.to_parquet(path, index=False)
    except Exception:  # pyarrow.ArrowException, TypeError, ValueError on odd object columns
        safe = frame.copy()
        for col in [c for c in safe.columns if pd.api.types.is_object_dtype(safe[c])]:
            safe[col] = [None if is_null(v) else v if isinstance(v, str) else repr(v) for v in safe[col]]
        safe.to_parquet(path, index=False)
