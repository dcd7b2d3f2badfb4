"""``kill -9`` of the tune stage mid-study, then a rerun: the same trials and best params as a study
that was never interrupted, and no MLflow run left RUNNING."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from babelfuse.tuning import study as st
from helpers.tuning import TuneProject, build_tune_project

pytestmark = pytest.mark.slow
N_TRIALS = 5


def stage_cmd(project: TuneProject) -> list[str]:
    return [
        sys.executable,
        "-m",
        "babelfuse.stages.tune",
        *("--train", str(project.train), "--val", str(project.val)),
        *("--out", str(project.out), "--metrics", str(project.metrics)),
    ]


def setup(root: Path, empty_mlflow_db: Path) -> tuple[TuneProject, dict[str, str]]:
    project = build_tune_project(root, f"sqlite:///{root / 'optuna.db'}")
    project.set_tune(n_trials=N_TRIALS)
    shutil.copy2(empty_mlflow_db, root / "mlflow.db")
    env = {
        **os.environ,
        "BABELFUSE_ROOT": str(root),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "BABELFUSE_RUN_GROUP": "kill-test",
    }
    return project, env


def run_stage(project: TuneProject, env: dict[str, str]) -> None:
    result = subprocess.run(
        stage_cmd(project), cwd=project.root, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]


def the_study(project: TuneProject) -> optuna.Study | None:
    url = project.params()["tune"]["storage"]
    names = optuna.get_all_study_names(storage=url) if Path(url.removeprefix("sqlite:///")).exists() else []
    return optuna.load_study(study_name=names[0], storage=url) if names else None


def running_trials(db: str, min_number: int) -> list[int]:
    """RUNNING trials numbered >= min_number, read straight from the SQLite file (read-only: opening
    it through Optuna would race the stage's own creation of the tables)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            rows = conn.execute(
                "SELECT number FROM trials WHERE state = 'RUNNING' AND number >= ?", (min_number,)
            ).fetchall()
    except sqlite3.Error:  # no file or no tables yet
        return []
    return [number for (number,) in rows]


def kill_during_third_trial(project: TuneProject, env: dict[str, str]) -> None:
    """Start the stage in its own process group; SIGKILL the group once trial 2 is RUNNING."""
    proc = subprocess.Popen(
        stage_cmd(project),
        cwd=project.root,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = project.params()["tune"]["storage"].removeprefix("sqlite:///")
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None and not running_trials(db, 2):
            time.sleep(0.2)
        assert proc.poll() is None, "the stage ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def counted(study: optuna.Study) -> list[tuple]:
    """Every COMPLETE/PRUNED trial in order: params, state, value and what the pruner was fed."""
    return [
        (t.params, t.state, t.value, t.intermediate_values)
        for t in study.get_trials(deepcopy=False)
        if t.state in st.COUNTED
    ]


def test_a_study_killed_mid_trial_resumes_to_the_uninterrupted_result(
    tmp_path: Path, empty_mlflow_db: Path
) -> None:
    whole, whole_env = setup(tmp_path / "whole", empty_mlflow_db)
    run_stage(whole, whole_env)

    killed, killed_env = setup(tmp_path / "killed", empty_mlflow_db)
    kill_during_third_trial(killed, killed_env)
    assert not killed.out.exists()
    [left_running] = [t.number for t in the_study(killed).trials if t.state == TrialState.RUNNING]
    run_stage(killed, killed_env)

    reference, resumed = the_study(whole), the_study(killed)
    assert [t.state for t in resumed.trials].count(TrialState.FAIL) == 1  # the killed trial, redone
    assert len(counted(resumed)) == N_TRIALS
    assert counted(resumed) == counted(reference)
    assert any(state == TrialState.PRUNED for _, state, _, _ in counted(reference))  # pruning was exercised
    assert json.loads(killed.out.read_text()) == json.loads(whole.out.read_text())
    summary, expected = json.loads(killed.metrics.read_text()), json.loads(whole.metrics.read_text())
    assert summary["best_value"] == expected["best_value"]

    client = MlflowClient(killed_env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("babelfuse").experiment_id], max_results=200)
    status = {}
    for run in runs:
        status.setdefault(run.info.run_name, []).append(run.info.status)
    assert sorted(status["tune"]) == ["FINISHED", "KILLED"]
    assert "RUNNING" not in {s for statuses in status.values() for s in statuses}
    # The killed trial's run (if it got as far as starting one) is KILLED; its redo has another number.
    assert status.get(f"trial:{left_running}", ["KILLED"]) == ["KILLED"]
