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
