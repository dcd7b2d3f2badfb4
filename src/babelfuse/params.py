"""Reading ``params.yaml``: each stage reads only its own section (plus ``seed``), validated.

``load_section`` validates the whole file against :mod:`babelfuse.config` (so one wrong value
anywhere stops a stage before any work, one line naming the key) and returns the section as plain
Python with every default filled in; ``load_config`` gives typed access (``load_config().train.hidden``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from babelfuse import paths
from babelfuse.config import Config, load_config, read_yaml

__all__ = ["Config", "load_config", "load_params", "load_section", "params_hash"]


def load_params(path: Path | str = paths.PARAMS) -> dict[str, Any]:
    """The whole validated params file as plain Python, defaults filled in."""
    return load_config(path).as_dict()


def load_section(section: str, path: Path | str = paths.PARAMS) -> Any:
    """One validated section of params.yaml with defaults filled in (``seed`` is an int)."""
    return load_config(path).section(section)


def load_raw(path: Path | str = paths.PARAMS) -> dict[str, Any]:
    """params.yaml exactly as written (no validation, no defaults): for tools that diff the file."""
    return read_yaml(path)


def params_hash(section: dict[str, Any]) -> str:
    """Stable short hash of a params section, logged as an MLflow tag for lineage."""
    blob = json.dumps(section, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
