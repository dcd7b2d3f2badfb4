"""MLflow for a study: one parent run (``tune``) and every trial a nested child run (``trial:<n>``).

Worker processes get the parent's run id and start their child runs with
``mlflow.start_run(nested=True, parent_run_id=...)``, so the UI shows the study as one expandable
run even when the trials ran in other processes. Per-epoch metrics are buffered and written with one
``log_batch`` per trial: fewer writes means less waiting on a shared SQLite tracking store.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import optuna
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from babelfuse import tracking

log = logging.getLogger("babelfuse.tuning")

STATE_TAG = "optuna.state"


class TrialRun:
    """Handle on a trial's child run: buffers per-epoch metrics and records the final state."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.metrics: list[Metric] = []
        self.state = "FAIL"

    def add_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        now = int(time.time() * 1000)
        for key in ("val_macro_f1", "val_loss", "loss"):
            if key in logs and logs[key] is not None:
                self.metrics.append(Metric(key, float(logs[key]), now, int(epoch)))

    def flush(self) -> None:
        client = MlflowClient()
        for start in range(0, len(self.metrics), 900):  # log_batch takes at most 1000 metrics
            client.log_batch(self.run_id, metrics=self.metrics[start : start + 900], synchronous=True)
        self.metrics = []


@contextlib.contextmanager
def trial_run(
    trial: optuna.Trial,
    picks: dict[str, Any],
    parent_run_id: str,
    experiment_id: str,
    study_name: str,
    run_name: str | None = None,
) -> Iterator[TrialRun]:
    """A child run (``trial:<n>`` unless named) under the study's run; state tag COMPLETE / PRUNED /
    FAIL on exit."""
    tags = {
        "stage": "tune",
        "optuna.study": study_name,
        "optuna.trial_number": str(trial.number),
        "optuna.worker": str(trial.user_attrs.get("worker", 0)),
        tracking.PROCESS_TAG: tracking.process_tag(),  # a killed trial's run is marked KILLED later
    }
    with mlflow.start_run(
        run_name=run_name or f"trial:{trial.number}",
        experiment_id=experiment_id,
        nested=True,
        parent_run_id=parent_run_id,
        tags=tags,
    ) as run:
        mlflow.log_params({**{k: str(v) for k, v in picks.items()}, "trial_number": trial.number})
        handle = TrialRun(run.info.run_id)
        status = "FAILED"
        try:
            yield handle
            handle.state, status = "COMPLETE", "FINISHED"
        except optuna.TrialPruned:
            handle.state, status = "PRUNED", "FINISHED"  # a pruned trial is a normal outcome
            raise
        finally:
            handle.flush()
            mlflow.set_tag(STATE_TAG, handle.state)
            mlflow.end_run(status=status)


def write_plots(study: optuna.Study, folder: Path) -> list[str]:
    """Optuna's plots as self-contained HTML (plotly.js embedded: the MLflow UI works offline)."""
    from optuna import visualization as vis  # heavy: only the tune stage runs studies

    folder.mkdir(parents=True, exist_ok=True)
    plots = {
        "optimization_history": vis.plot_optimization_history,
        "param_importances": vis.plot_param_importances,
        "parallel_coordinate": vis.plot_parallel_coordinate,
        "intermediate_values": vis.plot_intermediate_values,
    }
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    written = []
    for name, plot in plots.items():
        if name == "param_importances" and len(complete) < 2:
            log.info(
                "skipping the param importances plot: it needs >= 2 complete trials, have %d", len(complete)
            )
            continue
        try:
            plot(study).write_html(str(folder / f"{name}.html"), include_plotlyjs=True)
            written.append(name)
        except Exception as err:  # a plot must never cost the study its results
            log.warning("could not draw the %s plot: %s", name, err)
    return written


def log_study_summary(study: optuna.Study, summary: dict[str, Any], best_params: dict[str, Any]) -> None:
    """On the active parent run: best value, ``best.<name>`` params, trial counts and the plots."""
    mlflow.log_params({f"best.{k}": str(v) for k, v in best_params.items()})
    mlflow.log_metrics(
        {k: float(v) for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    )
    mlflow.set_tags({"optuna.study": study.study_name, "optuna.best_trial": str(summary.get("best_trial"))})
    with tempfile.TemporaryDirectory() as tmp:
        if write_plots(study, Path(tmp)):
            mlflow.log_artifacts(tmp, artifact_path="optuna")
