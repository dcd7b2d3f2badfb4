"""Fixtures for the tune stage tests (helpers live in tuning_helpers.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient
from tuning_helpers import REPO, TEST_TUNE, TuneProject, write_split


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its tables created once (~2.5 s); each test gets a copy."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tune_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_mlflow_db: Path) -> TuneProject:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    (root / "dvc.yaml").write_text("stages: {}\n")
    project = TuneProject(root)
    write_split(project.train, 90, seed=1)
    write_split(project.val, 45, seed=2)
    project.set_tune(**TEST_TUNE, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    patch = yaml.safe_load((root / "params.yaml").read_text())
    patch["train"].update(patience=10, hidden=8)
    (root / "params.yaml").write_text(yaml.safe_dump(patch, sort_keys=False))
    monkeypatch.chdir(root)
    monkeypatch.setenv("BABELFUSE_ROOT", str(root))
    shutil.copy2(empty_mlflow_db, tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("BABELFUSE_RUN_GROUP", "tuning-tests")
    yield project
    if mlflow.active_run() is not None:  # a failing test must not leave a run open for the next one
        mlflow.end_run()
