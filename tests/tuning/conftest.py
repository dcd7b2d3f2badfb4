"""Fixtures for the tune stage tests (helpers live in tests/helpers/tuning.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from helpers.tuning import TuneProject, build_tune_project


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its tables created once (~2.5 s); each test gets a copy."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tune_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_mlflow_db: Path) -> TuneProject:
    root = tmp_path / "project"
    project = build_tune_project(root, f"sqlite:///{tmp_path / 'optuna.db'}")
    monkeypatch.chdir(root)
    monkeypatch.setenv("BABELFUSE_ROOT", str(root))
    shutil.copy2(empty_mlflow_db, tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("BABELFUSE_RUN_GROUP", "tuning-tests")
    yield project
    if mlflow.active_run() is not None:  # a failing test must not leave a run open for the next one
        mlflow.end_run()
