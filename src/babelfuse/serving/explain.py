"""The served model's ``explain`` param: modality contributions as output columns.

``params={"explain": true}`` adds ``contrib_text``, ``contrib_image``, ``contrib_audio`` (exact Shapley
values of the calibrated probability of the predicted class, :mod:`babelfuse.explain`); a row with an
error gets null there, an absent modality 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from babelfuse.explain import CONTRIB_COLUMNS
from babelfuse.serving.inputs import RequestError


def check_explain(params: dict[str, Any] | None) -> bool:
    """``params.explain`` as a bool (default false); anything but a bool is a request error."""
    value = (params or {}).get("explain", False)
    if isinstance(value, str) and value.lower() in ("true", "false"):  # CSV/query-string callers
        return value.lower() == "true"
    if not isinstance(value, bool | np.bool_):
        raise RequestError(f"params.explain must be true or false, not {value!r}")
    return bool(value)


def with_contributions(out: pd.DataFrame, contrib: np.ndarray, failed: list[bool]) -> pd.DataFrame:
    """``out`` plus one ``contrib_<modality>`` column each; null where the row failed (not NaN: JSON)."""
    frame = out.copy()
    for j, column in enumerate(CONTRIB_COLUMNS):
        if any(failed):
            values = [None if failed[i] else float(contrib[i, j]) for i in range(len(failed))]
            frame[column] = pd.Series(values, dtype=object)
        else:
            frame[column] = contrib[:, j].astype(np.float64)
    return frame
