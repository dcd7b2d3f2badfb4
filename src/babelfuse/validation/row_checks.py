"""Pure frame-level helpers: string typing, text encoding, class balance, and the check frame.

The check frame is what the Great Expectations suite runs on: the manifest's required columns
(every value a ``str`` or ``None``, so no expectation can crash on an odd cell), a ``row`` number
(to map failures back to manifest rows) and the derived per-row check columns.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from babelfuse.data.manifest import REQUIRED_COLUMNS, is_null
from babelfuse.labels import LABELS
from babelfuse.paths import SPLITS
from babelfuse.validation.media_checks import MEDIA_COLUMNS, MediaLimits, media_columns

ROW = "row"
NON_NULL_COLUMNS: tuple[str, ...] = ("sample_id", "split", "lang", "text", "label")
BAD_TEXT_CHARS = "\ufffd"  # the replacement char: text that was decoded with errors="replace"


def as_text_column(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``(values as str-or-None object column, per-row type name where a value is not text)``."""
    if isinstance(series.dtype, pd.StringDtype):
        clean = series.astype(object).where(series.notna(), None)
        return clean, pd.Series([None] * len(series), index=series.index, dtype=object)
    clean, wrong = [], []
    for value in series.tolist():
        if isinstance(value, str):
            clean.append(value)
            wrong.append(None)
        elif is_null(value):
            clean.append(None)
            wrong.append(None)
        else:
            clean.append(None)
            wrong.append(type(value).__name__)
    return (
        pd.Series(clean, index=series.index, dtype=object),
        pd.Series(wrong, index=series.index, dtype=object),
    )


def text_encoding_problem(text: str) -> str | None:
    """Why ``text`` is not clean UTF-8 (lone surrogates, U+FFFD replacement chars), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text is not valid UTF-8 (lone surrogate)"
    if BAD_TEXT_CHARS in text:
        return "text contains U+FFFD replacement characters (decoded with errors=replace)"
    return None


def class_balance(frame: pd.DataFrame, max_ratio: float) -> pd.DataFrame:
    """Per split: label counts and largest/smallest count ratio (inf when a class is absent).

    Only rows with a known split and label count; a split with no such rows is left out.
    """
    rows = []
    if "split" in frame and "label" in frame:
        known = frame[frame["split"].isin(SPLITS) & frame["label"].isin(LABELS)]
        for split in SPLITS:
            part = known[known["split"] == split]
            if part.empty:
                continue
            counts = {label: int((part["label"] == label).sum()) for label in LABELS}
            low, high = min(counts.values()), max(counts.values())
            ratio = high / low if low > 0 else math.inf
            rows.append({"split": split, "ratio": ratio, "max_ratio": float(max_ratio), **counts})
    columns = ["split", "ratio", "max_ratio", *LABELS]
    return pd.DataFrame(rows, columns=columns).astype({"ratio": float, "max_ratio": float})


def _objects(values: list) -> pd.Series:
    """An object column: pandas would turn a list of str/None into a str column with NaN."""
    return pd.Series(values, dtype=object)


def build_check_frame(
    manifest: pd.DataFrame, root: Path, limits: MediaLimits, progress: bool = True
) -> tuple[pd.DataFrame, float]:
    """The frame the suite validates, and the media rows/s. Missing required columns stay missing."""
    present = [c for c in REQUIRED_COLUMNS if c in manifest.columns]
    frame = pd.DataFrame({ROW: np.arange(len(manifest), dtype=np.int64)})
    type_problems = pd.Series([[] for _ in range(len(manifest))], dtype=object)
    for column in present:
        clean, wrong = as_text_column(manifest[column].reset_index(drop=True))
        frame[column] = clean
        for i in np.flatnonzero(wrong.notna().to_numpy()):
            type_problems[i].append(f"{column} is {wrong[i]}, not text")
    frame["types_ok"] = [not p for p in type_problems]
    frame["types_reason"] = _objects(["; ".join(p) or None for p in type_problems])
    if "text" in frame:
        reasons = [None if t is None else text_encoding_problem(t) for t in frame["text"]]
        frame["text_encoding_reason"] = _objects(reasons)
        frame["text_encoding_ok"] = _objects(
            [None if t is None else r is None for t, r in zip(frame["text"], reasons, strict=True)]
        )
    media = {m: frame[c] for m, c in MEDIA_COLUMNS.items() if c in frame}
    rows_per_second = 0.0
    if media:
        derived, rows_per_second = media_columns(media, root, limits, progress=progress)
        frame = pd.concat([frame, derived], axis=1)
    return frame, rows_per_second


def class_ratio_column(frame: pd.DataFrame, balance: pd.DataFrame) -> pd.Series:
    """Each row's split ratio (NaN for unknown splits): the suite checks its max."""
    ratios = dict(zip(balance["split"], balance["ratio"], strict=True))
    split = frame["split"] if "split" in frame else pd.Series([None] * len(frame), index=frame.index)
    return pd.Series([ratios.get(s, np.nan) for s in split], index=frame.index, dtype=float)
