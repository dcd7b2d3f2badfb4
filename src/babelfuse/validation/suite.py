"""The Great Expectations suite, built in code, and one checkpoint run that also writes Data Docs.

One batch, the *check frame* (one row per manifest row, see ``row_checks``). Each expectation
carries a ``name`` (used in metrics, messages and quarantine reasons) and, for row-level checks, a
function that turns a failing row into a reason. Class balance is table-level: the max over rows
of their split's largest/smallest class ratio, with the per-split counts in the expectation notes. A fresh ephemeral
context is built per run, so reruns are idempotent and nothing is written outside ``docs_dir``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from babelfuse.data.manifest import REQUIRED_COLUMNS
from babelfuse.labels import LABELS
from babelfuse.paths import SPLITS
from babelfuse.validation.row_checks import NON_NULL_COLUMNS, ROW

log = logging.getLogger("babelfuse.validation")
SITE = "babelfuse_validation"
Reason = Callable[[dict[str, Any]], str]


@dataclass
class Check:
    name: str
    expectation: Any  # a great_expectations Expectation
    reason: Reason | None = None  # per-row reason; None = table-level (no rows to quarantine)


@dataclass
class Outcome:
    name: str
    expectation: str
    column: str | None
    success: bool
    table_level: bool
    unexpected_count: int = 0
    rows: list[int] = field(default_factory=list)  # failing manifest row numbers
    observed: Any = None
    detail: str = ""


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _index_columns(columns: list[str] | pd.DataFrame) -> list[str]:
    """Failing rows are reported by row number and sample_id (when the column exists)."""
    return [ROW] + (["sample_id"] if "sample_id" in list(columns) else [])


def _result_format(index_columns: list[str]) -> dict[str, Any]:
    return {"result_format": "COMPLETE", "unexpected_index_column_names": index_columns}


def build_checks(
    columns: list[str],
    languages: list[str] | None,
    params: dict[str, Any],
    balance: pd.DataFrame,
    balance_severity: str = "critical",
) -> list[Check]:
    """Every expectation of the suite, in report order, for the columns present in the check frame."""
    import great_expectations.expectations as gxe  # heavy (GX, seconds): only when the suite runs

    rf = _result_format(_index_columns(columns))
    max_chars = int(params["text_max_chars"])
    checks = [Check("row_count", gxe.ExpectTableRowCountToBeBetween(min_value=1))]
    checks += [Check(f"{c}_exists", gxe.ExpectColumnToExist(column=c)) for c in REQUIRED_COLUMNS]
    checks.append(
        Check(
            "types",
            gxe.ExpectColumnValuesToBeInSet(column="types_ok", value_set=[True], result_format=rf),
            lambda r: r["types_reason"] or "wrong type",
        )
    )
    for col in NON_NULL_COLUMNS:
        if col in columns:
            exp = gxe.ExpectColumnValuesToNotBeNull(column=col, result_format=rf)
            checks.append(Check(f"{col}_not_null", exp, lambda r, col=col: f"{col} is missing"))
    if "sample_id" in columns:
        checks.append(
            Check(
                "sample_id_unique",
                gxe.ExpectColumnValuesToBeUnique(column="sample_id", result_format=rf),
                lambda r: f"sample_id {_short(r['sample_id'])} is duplicated",
            )
        )
        checks.append(
            Check(
                "sample_id_length",
                gxe.ExpectColumnValueLengthsToBeBetween(column="sample_id", min_value=1, result_format=rf),
                lambda r: "sample_id is empty",
            )
        )
    allowed = {"label": list(LABELS), "split": list(SPLITS)}
    if languages is not None:  # None: the text encoder accepts any language code
        allowed["lang"] = list(languages)
    for col, value_set in allowed.items():
        if col in columns:
            exp = gxe.ExpectColumnValuesToBeInSet(column=col, value_set=value_set, result_format=rf)
            what = "the text encoder's languages (features.text)" if col == "lang" else "|".join(value_set)
            checks.append(
                Check(
                    f"{col}_in_set",
                    exp,
                    lambda r, col=col, what=what: f"{col} {_short(r[col])} not in {what}",
                )
            )
    if "text" in columns:
        exp = gxe.ExpectColumnValueLengthsToBeBetween(
            column="text", min_value=1, max_value=max_chars, result_format=rf, notes="validate.text_max_chars"
        )
        checks.append(
            Check(
                "text_length",
                exp,
                lambda r: (
                    "text is empty"
                    if len(r["text"]) == 0
                    else f"text has {len(r['text'])} chars > validate.text_max_chars={max_chars}"
                ),
            )
        )
        exp = gxe.ExpectColumnValuesToBeInSet(column="text_encoding_ok", value_set=[True], result_format=rf)
        checks.append(Check("text_encoding", exp, lambda r: r["text_encoding_reason"]))
    for modality in ("image", "audio"):
        if f"{modality}_path_ok" in columns:
            for kind in ("path_ok", "ok"):
                exp = gxe.ExpectColumnValuesToBeInSet(
                    column=f"{modality}_{kind}", value_set=[True], result_format=rf
                )
                checks.append(Check(f"{modality}_{kind}", exp, lambda r, m=modality: r[f"{m}_reason"]))
    if "class_ratio" in columns and len(balance):
        exp = gxe.ExpectColumnMaxToBeBetween(
            column="class_ratio",
            max_value=float(params["class_balance_max_ratio"]),
            severity=balance_severity,
            notes=[
                "Per split: largest/smallest class count <= validate.class_balance_max_ratio.",
                *(balance_text(r) for r in balance.itertuples()),
            ],
        )
        checks.append(Check("class_balance", exp, None))
    for check in checks:
        check.expectation.meta = {"name": check.name}
    return checks


def _docs_site(docs_dir: Path) -> dict[str, Any]:
    return {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(Path(docs_dir).resolve()),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }


def balance_text(r: Any) -> str:
    counts = ", ".join(f"{label} {getattr(r, label)}" for label in LABELS)
    return f"split {r.split}: ratio {r.ratio:.2f} ({counts})"


def run_suite(
    check_frame: pd.DataFrame, balance: pd.DataFrame, checks: list[Check], docs_dir: Path | None
) -> list[Outcome]:
    """One Checkpoint run; its ``UpdateDataDocsAction`` renders Data Docs into ``docs_dir``.

    Rendering costs ~1 s; ``docs_dir=None`` skips it (in-memory use, tests).
    """
    import great_expectations as gx  # heavy (GX, seconds): only when the suite runs
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    # all expectations at once: suite.add_expectation re-serialises the whole suite on every call
    suite = context.suites.add(
        gx.ExpectationSuite(name="manifest", expectations=[c.expectation for c in checks])
    )
    batch = context.data_sources.add_pandas("babelfuse").add_dataframe_asset("manifest")
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name="manifest", data=batch.add_batch_definition_whole_dataframe("all"), suite=suite
        )
    )
    actions = []
    if docs_dir is not None:
        context.add_data_docs_site(site_name=SITE, site_config=_docs_site(docs_dir))
        actions = [UpdateDataDocsAction(name="data_docs", site_names=[SITE])]
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="validate",
            validation_definitions=[definition],
            actions=actions,
            result_format=_result_format(_index_columns(check_frame)),
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": check_frame})
    results = [res for run in result.run_results.values() for res in run.results]
    by_name = {res.expectation_config.meta["name"]: res for res in results}
    return [_outcome(check, by_name[check.name], balance) for check in checks]


def _outcome(check: Check, res: Any, balance: pd.DataFrame) -> Outcome:
    config = res.expectation_config
    result = res.result or {}
    out = Outcome(
        name=check.name,
        expectation=config.type,
        column=config.kwargs.get("column"),
        success=bool(res.success),
        table_level=check.reason is None,
        observed=result.get("observed_value"),
    )
    if res.exception_info and res.exception_info.get("raised_exception"):
        out.detail = f"could not run: {res.exception_info.get('exception_message')}"
    if check.name == "class_balance":
        bad = balance[~(balance["ratio"] <= balance["max_ratio"])]
        out.unexpected_count = len(bad)
        out.detail = "; ".join(f"{balance_text(r)} > {r.max_ratio:g}" for r in bad.itertuples())
    elif check.reason is not None:
        out.rows = sorted(int(item[ROW]) for item in result.get("unexpected_index_list") or [])
        out.unexpected_count = int(result.get("unexpected_count") or len(out.rows))
    elif not out.success and not out.detail:
        out.detail = f"observed {out.observed}" if out.observed is not None else "failed"
    return out


def row_reasons(outcomes: list[Outcome], checks: list[Check], frame: pd.DataFrame) -> dict[int, list[str]]:
    """Manifest row number -> every reason it failed (in suite order)."""
    reasons: dict[int, list[str]] = {}
    by_name = {c.name: c for c in checks}
    records = frame.to_dict("records")
    for outcome in outcomes:
        check = by_name[outcome.name]
        for row in outcome.rows:
            text = check.reason(records[row]) if check.reason else outcome.name
            reasons.setdefault(row, []).append(f"{outcome.name}: {text}")
    return reasons
