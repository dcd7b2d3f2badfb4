"""Reading ``params.yaml``: each stage's ``main()`` reads only its own section (plus ``seed``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from babelfuse import paths


def load_params(path: Path | str = paths.PARAMS) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def load_section(section: str, path: Path | str = paths.PARAMS) -> dict[str, Any]:
    """One top-level section of params.yaml; a missing section is a clear error, not a KeyError."""
    params = load_params(path)
    if section not in params:
        raise SystemExit(f"params.yaml has no '{section}' section (looked in {path})")
    return params[section]


def params_hash(section: dict[str, Any]) -> str:
    """Stable short hash of a params section, logged as an MLflow tag for lineage."""
    blob = json.dumps(section, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
