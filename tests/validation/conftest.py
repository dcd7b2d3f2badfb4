"""Fixtures for the validation tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def shared_mlflow(tmp_path_factory):
    """One SQLite tracking DB per test module (creating one costs ~2.4 s)."""
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
        mp.setenv("BABELFUSE_RUN_GROUP", "tests")
        yield f"sqlite:///{db}"
