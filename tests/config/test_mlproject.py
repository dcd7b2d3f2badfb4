"""MLproject entry points take typed parameters that reach the same validated config as params.yaml."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from babelfuse import config

REPO = Path(__file__).resolve().parents[2]


def entry_points() -> dict:
    return yaml.safe_load((REPO / "MLproject").read_text(encoding="utf-8"))["entry_points"]


def _is_key(dotted: str) -> bool:
    model: type = config.Config
    for part in dotted.split("."):
        fields = {f.alias or name: f for name, f in model.model_fields.items()}
        if part not in fields:
            return False
        model = fields[part].annotation
    return True


def test_the_most_changed_stages_take_parameters_and_each_maps_to_a_schema_key() -> None:
    eps = entry_points()
    assert {"main", "train", "tune", "evaluate"} <= {n for n, ep in eps.items() if ep.get("parameters")}
    for name, ep in eps.items():
        command = " ".join(ep["command"].split())
        for param, spec in (ep.get("parameters") or {}).items():
            found = re.findall(rf"--set ([\w.]+)=\{{{param}\}}", command)
            assert len(found) == 1, f"{name}: parameter {param} is not passed as one --set"
            assert _is_key(found[0]), f"{name}: --set {found[0]} is not a params.yaml key"
            # "" = keep params.yaml's value, so MLproject holds no second copy of the defaults
            assert spec["default"] == "", f"{name}.{param}: default must be '' (params.yaml's value)"


def _tiny_project(root: Path) -> Path:
    from babelfuse.training.synthetic import synthetic_fused

    root.mkdir()
    shutil.copy2(REPO / "MLproject", root / "MLproject")
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["train"].update({"baselines": False, "epochs": 2, "patience": 1})
    params["evaluate"].update({"seeds": [params["seed"]]})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    (root / "data/fused").mkdir(parents=True)
    dims = {"text": 8, "image": 6, "audio": 4}
    for split, n, seed in (("train", 48, 1), ("val", 24, 2)):
        np.savez(root / f"data/fused/{split}.npz", **synthetic_fused(n, dims, seed=seed))
    return root


def _mlflow_run(root: Path, uri: str, *params: str) -> subprocess.CompletedProcess:
    cmd = ["mlflow", "run", ".", "-e", "train", "--env-manager", "local", "--experiment-name", "babelfuse"]
    for p in params:
        cmd += ["-P", p]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "BABELFUSE_ROOT": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("MLFLOW_EXPERIMENT_ID", None)  # `mlflow run` refuses it beside --experiment-name
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_mlflow_run_train_with_a_parameter_trains_with_that_value(tmp_path) -> None:
    """(A bad -P value fails like any --set: tests/config/test_stage_params.py.)"""
    import mlflow

    root = _tiny_project(tmp_path / "project")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    good = _mlflow_run(root, uri, "fusion=gated", "use_best_params=false")
    assert good.returncode == 0, good.stderr[-3000:]
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("babelfuse")
    runs = client.search_runs([experiment.experiment_id], "tags.stage = 'train'")
    assert len(runs) == 1
    stage_run = runs[0]
    assert stage_run.data.params["fusion"] == "gated"  # what the stage trained with
    assert stage_run.data.params["use_best_params"] == "False"
    assert stage_run.data.params["hidden"] == str(config.TrainConfig().hidden)  # "" kept params.yaml's
    launcher = client.get_run(stage_run.data.tags["mlflow.parentRunId"])
    assert launcher.data.params["fusion"] == "gated"  # the run `mlflow run` made holds the -P values
    assert (root / "models/model.keras").exists()
