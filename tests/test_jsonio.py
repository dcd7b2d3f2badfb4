"""The one JSON writer: strict JSON (NaN/inf -> null), numpy values as Python, sorted keys, newline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from babelfuse.jsonio import json_safe, write_json


def test_write_json_is_strict_sorted_and_ends_with_a_newline(tmp_path) -> None:
    out = tmp_path / "deep" / "m.json"
    write_json(out, {"b": float("nan"), "a": np.float32(0.5), "c": [np.int64(3), math.inf], "p": Path("x/y")})
    text = out.read_text(encoding="utf-8")
    assert text.endswith("}\n") and "NaN" not in text and "Infinity" not in text
    assert list(json.loads(text)) == ["a", "b", "c", "p"]
    assert json.loads(text) == {"a": 0.5, "b": None, "c": [3, None], "p": "x/y"}


def test_sort_keys_false_keeps_the_payload_order(tmp_path) -> None:
    out = tmp_path / "m.json"
    write_json(out, {"zh": 1, "en": 2, "de": 3}, sort_keys=False)
    assert list(json.loads(out.read_text(encoding="utf-8"))) == ["zh", "en", "de"]


def test_json_safe_converts_nested_numpy_values() -> None:
    value = json_safe({1: (np.array([1.0, np.nan]), np.bool_(True))})
    assert value == {"1": [[1.0, None], True]}
    json.dumps(value, allow_nan=False)
