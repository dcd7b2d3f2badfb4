"""Helpers for the tune stage tests: a temp project with tiny fused splits, its own params.yaml and stores."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
import yaml

from babelfuse.stages import tune as tune_stage
from babelfuse.training.synthetic import synthetic_fused

REPO = Path(__file__).resolve().parents[2]
DIMS = {"text": 12, "image": 8, "audio": 6}

# Small and quick: few epochs, small heads; `learning_rate` has one hopeless choice so some
# configurations are clearly bad and a median pruner has something to prune.
TEST_TUNE: dict[str, Any] = {
    "n_trials": 4,
    "timeout_s": None,
    "baselines": False,  # the baseline studies have their own test
    "seed": 7,
    "pruner": "median",
    "pruner_startup_trials": 1,
    "pruner_warmup_epochs": 0,
    "n_workers": 1,
    "study_name": "test",
    "epochs": 4,
    "space": {
        "fusion": ["concat", "weighted"],
        "hidden": [8, 16],
        "dropout": {"low": 0.0, "high": 0.3},
        "modality_dropout": {"low": 0.0, "high": 0.3},
        "learning_rate": [0.00001, 0.03],
        "batch_size": [16, 32],
    },
}


def write_split(path: Path, n: int, seed: int, lang: str | list[str] = "en") -> Path:
    split = synthetic_fused(n, DIMS, seed=seed)
    split["lang"] = np.array([lang] * n if isinstance(lang, str) else [lang[i % len(lang)] for i in range(n)])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **split)
    return path


class TuneProject:
    """A folder that looks like the repo to the tune stage (params.yaml, data/fused/*.npz)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.train = root / "data" / "fused" / "train.npz"
        self.val = root / "data" / "fused" / "val.npz"
        self.out = root / "models" / "best_params.json"
        self.baseline_out = root / "models" / "baseline_params.json"
        self.metrics = root / "metrics" / "tune.json"

    def set_tune(self, **overrides: Any) -> dict[str, Any]:
        params = yaml.safe_load((self.root / "params.yaml").read_text())
        params["tune"] = {**params["tune"], **overrides}
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        return params

    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def run(self) -> dict[str, Any]:
        """The stage exactly as dvc.yaml calls it (in this process); returns metrics/tune.json."""
        tune_stage.main(
            [
                "--train",
                str(self.train),
                "--val",
                str(self.val),
                "--out",
                str(self.out),
                "--baseline-out",
                str(self.baseline_out),
                "--metrics",
                str(self.metrics),
            ]
        )
        return json.loads(self.metrics.read_text())


def build_tune_project(root: Path, storage: str) -> TuneProject:
    """The repo's params.yaml with TEST_TUNE and small heads, tiny en splits, ``tune.storage=storage``."""
    root.mkdir(parents=True)
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    (root / "dvc.yaml").write_text("stages: {}\n")
    project = TuneProject(root)
    write_split(project.train, 90, seed=1)
    write_split(project.val, 45, seed=2)
    project.set_tune(**TEST_TUNE, storage=storage)
    patch = project.params()
    patch["train"].update(patience=10, hidden=8)
    (root / "params.yaml").write_text(yaml.safe_dump(patch, sort_keys=False))
    return project


def runs_of(experiment: str = "babelfuse") -> list[Any]:
    exp = mlflow.get_experiment_by_name(experiment)
    return mlflow.search_runs([exp.experiment_id], output_format="list") if exp else []


def counting_fit(monkeypatch: pytest.MonkeyPatch, hook: Callable[[int, dict, dict], None]) -> list[int]:
    """Wrap the real fit_model: ``hook(call_index, train, val)`` runs before each real call."""
    import babelfuse.training.fit as fit

    real = fit.fit_model
    calls: list[int] = []

    def wrapped(params, train, val, *args, **kwargs):
        hook(len(calls), train, val)
        calls.append(1)
        return real(params, train, val, *args, **kwargs)

    monkeypatch.setattr(fit, "fit_model", wrapped)
    return calls
