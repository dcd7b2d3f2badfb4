"""Same commit, same params, same machine -> same results: the tiny pipeline run twice from scratch
(fresh copies, fresh MLflow and Optuna stores) gives the same tuned params and the same metrics."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from test_pipeline import run, shrink_params

pytestmark = pytest.mark.slow

COMPARED = ("models/best_params.json", "models/baseline_params.json", "metrics/eval.json")
# Wall-clock figures differ from run to run by nature; every other value must be equal.
TIMINGS = {"seconds", "train_seconds", "baselines_seconds", "rows_per_second"}


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def fresh_run(root: Path, make_project) -> Path:
    make_project(root)
    shrink_params(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    # Stop on the trial count only: with a timeout the count depends on the machine's load.
    params["tune"]["timeout_s"] = None
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "commit", "-qam", "tiny params"], cwd=root, check=True)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "BABELFUSE_ROOT": str(root),
        "BABELFUSE_RUN_GROUP": "repro-twice",
    }
    run(["dvc", "repro"], root, env)
    assert (root / "optuna.db").exists()  # the study lived in this copy's own storage
    return root


def test_two_runs_from_scratch_give_the_same_params_and_metrics(tmp_path: Path, make_project) -> None:
    first = fresh_run(tmp_path / "first", make_project)
    second = fresh_run(tmp_path / "second", make_project)
    for name in COMPARED:
        a, b = (json.loads((root / name).read_text()) for root in (first, second))
        assert without_timings(a) == without_timings(b), name
    baselines = json.loads((first / "models/baseline_params.json").read_text())
    assert set(baselines) == {"text", "image", "audio", "logreg"}  # each baseline tuned on its own
    assert not {"fusion", "modality_dropout"} & {k for m in ("text", "image", "audio") for k in baselines[m]}
    assert baselines["logreg"]["C"] in yaml.safe_load((first / "params.yaml").read_text())["tune"]["logreg_c"]
    train_a, train_b = (json.loads((root / "metrics/train.json").read_text()) for root in (first, second))
    assert without_timings(train_a) == without_timings(train_b)
