"""Shared fixtures. Tests never touch the network, the user's mlflow.db or the repo's data/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The venv's console scripts (dvc, mlflow) resolve even when pytest is run without `make`.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
# Offline and quiet for every test process (and the subprocesses they start).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GIT_AUTHOR_NAME", "babelfuse tests")
os.environ.setdefault("GIT_AUTHOR_EMAIL", "tests@babelfuse.invalid")
os.environ.setdefault("GIT_COMMITTER_NAME", "babelfuse tests")
os.environ.setdefault("GIT_COMMITTER_EMAIL", "tests@babelfuse.invalid")


# What MLflow keeps per process between calls: `mlflow.set_experiment` exports MLFLOW_EXPERIMENT_ID
# into os.environ (and so into every subprocess a later test starts), and the tracking/registry URI
# and active experiment live in module globals. Under `pytest -n 2` a worker runs tests in an order
# no serial run does, so each test starts and ends with none of that left over.
MLFLOW_ENV = {k: os.environ.get(k) for k in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")}


@pytest.fixture(autouse=True)
def no_mlflow_state_between_tests():
    yield
    for key, value in MLFLOW_ENV.items():  # as the session started
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if "mlflow" in sys.modules:  # only when a test imported it: importing MLflow here costs seconds
        mlflow = sys.modules["mlflow"]
        while mlflow.active_run() is not None:
            mlflow.end_run()
        sys.modules["mlflow.tracking._tracking_service.utils"]._tracking_uri = None
        sys.modules["mlflow.tracking._model_registry.utils"]._registry_uri = None
        sys.modules["mlflow.tracking.fluent"]._active_experiment_id = None


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A fresh SQLite tracking store in tmp_path, exported as MLFLOW_TRACKING_URI."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def copy_project(dest: Path) -> Path:
    """A throwaway copy of the project (code, pipeline, params, examples) as its own git + DVC repo."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "params.yaml", "pyproject.toml", ".gitignore"):
        shutil.copy2(REPO / name, dest / name)
    for folder in ("src", "examples"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "data").mkdir(exist_ok=True)
    run = lambda *cmd: subprocess.run(cmd, cwd=dest, check=True, capture_output=True, text=True)  # noqa: E731
    run("git", "init", "-q")
    run("dvc", "init", "-q")
    shutil.copy2(REPO / ".dvc" / "config", dest / ".dvc" / "config")  # the shipped default remote
    run("git", "add", "-A")
    run("git", "commit", "-qm", "test project")
    return dest


@pytest.fixture
def project(tmp_path, mlflow_uri, monkeypatch) -> Path:
    """A temp copy of the repo with git and DVC initialised; cwd is set to it."""
    dest = copy_project(tmp_path / "project")
    monkeypatch.chdir(dest)
    monkeypatch.setenv("BABELFUSE_ROOT", str(dest))
    return dest


@pytest.fixture(scope="session")
def make_project():
    """``copy_project`` for module-scoped fixtures (which cannot use tmp_path/monkeypatch)."""
    return copy_project
