"""Writing JSON files: the one writer every stage uses for its metrics and small model files.

Reading is :func:`babelfuse.errors.read_json` (a missing or corrupt file is one line naming it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays to Python, NaN/inf to ``None``, keys to str, Paths to str.

    DVC metrics files and MLflow tags must be strict JSON, which has no NaN.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(payload: Any, *, sort_keys: bool = True, indent: int | None = 2) -> str:
    """``payload`` as strict JSON text (through :func:`json_safe`), no trailing newline."""
    return json.dumps(
        json_safe(payload), indent=indent, sort_keys=sort_keys, allow_nan=False, ensure_ascii=False
    )


def write_json(path: Path | str, payload: Any, *, sort_keys: bool = True) -> None:
    """Write ``payload`` to ``path`` (parents created): indent 2, sorted keys, NaN as null, trailing newline.

    ``sort_keys=False`` keeps the payload's own order where a reader shows it as is (the evaluate
    stage's per-language tables follow ``data.languages``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(payload, sort_keys=sort_keys) + "\n", encoding="utf-8")
