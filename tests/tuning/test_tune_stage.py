"""The tune stage end to end: real Optuna on SQLite, real MLflow, the real fit_model on tiny data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow
import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from babelfuse.training.model import build_model
from babelfuse.tuning.space import overlay
from helpers.tuning import DIMS, TuneProject, counting_fit, runs_of, write_split

# Every file opened by this process while a test records (the stage's reads, whatever the library).
_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], str | Path):
        _OPENED.append(str(Path(args[0]).resolve()))


sys.addaudithook(_audit)


def _study(metrics: dict, project: TuneProject) -> optuna.Study:
    return optuna.load_study(study_name=metrics["study_name"], storage=project.params()["tune"]["storage"])


@pytest.mark.slow
def test_study_writes_outputs_nests_every_trial_and_prunes(tune_project: TuneProject) -> None:
    tune_project.set_tune(n_trials=6)
    metrics = tune_project.run()
    params = tune_project.params()
    train, space = params["train"], params["tune"]["space"]

    assert metrics["trials_complete"] + metrics["trials_pruned"] == 6
    assert metrics["trials_pruned"] >= 1, "a median pruner with 1 start-up trial and a hopeless lr must prune"
    assert metrics["trials_failed"] == 0 and metrics["storage"] == "sqlite"
    assert 0.0 < metrics["best_value"] <= 1.0

    # best_params.json: a subset of the train section, same types, inside the space, buildable.
    best = json.loads(tune_project.out.read_text())
    assert set(best) == set(space) and set(best) <= set(train)
    for key, value in best.items():
        assert type(value) is type(train[key]), key
        if isinstance(space[key], list):
            assert value in space[key]
        else:
            assert space[key]["low"] <= value <= space[key]["high"]
    assert build_model(DIMS, overlay(train, best)).count_params() > 0

    study = _study(metrics, tune_project)
    assert study.best_trial.number == metrics["best_trial"] and study.best_value == metrics["best_value"]
    states = {t.number: t for t in study.trials}
    for trial in study.trials:  # the pruner was fed once per epoch
        steps = sorted(trial.intermediate_values)
        if trial.state == TrialState.COMPLETE:
            assert steps == list(range(params["tune"]["epochs"]))
        else:
            assert trial.state == TrialState.PRUNED and steps == list(range(len(steps))) and steps

    # MLflow: one parent `tune` run at top level; every trial a child of it with its own history.
    runs = runs_of()
    top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_name for r in top] == ["tune"]
    parent = top[0]
    children = [r for r in runs if r is not parent]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    assert sorted(r.info.run_name for r in children) == sorted(f"trial:{n}" for n in states)
    client = MlflowClient()
    for run in children:
        trial = states[int(run.data.params["trial_number"])]
        assert run.data.tags["optuna.state"] == trial.state.name
        assert {k: run.data.params[k] for k in trial.params} == {k: str(v) for k, v in trial.params.items()}
        history = client.get_metric_history(run.info.run_id, "val_macro_f1")
        assert [m.step for m in history] == sorted(trial.intermediate_values)
        assert [m.value for m in history] == pytest.approx(
            [trial.intermediate_values[s] for s in sorted(trial.intermediate_values)]
        )
        assert len(client.get_metric_history(run.info.run_id, "val_loss")) == len(history)

    assert {k[5:]: v for k, v in parent.data.params.items() if k.startswith("best.")} == {
        k: str(v) for k, v in best.items()
    }
    assert parent.data.metrics["best_value"] == pytest.approx(metrics["best_value"])
    assert parent.data.metrics["trials_pruned"] == metrics["trials_pruned"]
    plots = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "optuna")}
    assert {"optimization_history.html", "param_importances.html", "parallel_coordinate.html"} <= plots
    html = Path(client.download_artifacts(parent.info.run_id, "optuna/optimization_history.html")).read_text()
    assert '<script src="https://cdn.plot.ly' not in html and len(html) > 1_000_000  # plotly.js embedded


@pytest.mark.slow
def test_an_interrupted_study_resumes_instead_of_starting_over(
    tune_project: TuneProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    tune_project.set_tune(n_trials=3, pruner="none")
    interrupted = []

    def interrupt_third_trial(index: int, train: dict, val: dict) -> None:
        if index == 2 and not interrupted:
            interrupted.append(index)
            raise KeyboardInterrupt  # what Ctrl-C in the middle of trial 2 looks like

    counting_fit(monkeypatch, interrupt_third_trial)
    with pytest.raises(KeyboardInterrupt):
        tune_project.run()
    assert not tune_project.metrics.exists()
    storage = tune_project.params()["tune"]["storage"]
    [name] = optuna.get_all_study_names(storage=storage)
    first = optuna.load_study(study_name=name, storage=storage)
    assert [t.state for t in first.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]
    before = {t.number: t.params for t in first.trials[:2]}

    metrics = tune_project.run()  # same params, same data: the same study, continued
    assert metrics["study_name"] == name
    assert metrics["trials_complete"] == 3 and metrics["trials_this_run"] == 1
    assert metrics["trials_failed"] == 1 and metrics["trials_total"] == 4
    again = _study(metrics, tune_project)
    assert {t.number: t.params for t in again.trials[:2]} == before
    assert again.trials[3].state == TrialState.COMPLETE

    parents = [r for r in runs_of() if r.info.run_name == "tune"]
    assert sorted(r.info.status for r in parents) == ["FAILED", "FINISHED"]


def test_the_objective_reads_only_the_source_train_and_val_files(
    tune_project: TuneProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    global _OPENED
    fused = tune_project.train.parent
    write_split(
        fused / "test.npz", 60, seed=3, lang=["en", "de", "fr"]
    )  # the zero-shot split lies beside them
    tune_project.set_tune(n_trials=1, epochs=2, pruner="hyperband")
    seen: list[tuple[set, set, int, int]] = []
    counting_fit(
        monkeypatch,
        lambda i, tr, va: seen.append((set(tr["lang"]), set(va["lang"]), len(tr["label"]), len(va["label"]))),
    )
    _OPENED = []
    try:
        metrics = tune_project.run()
    finally:
        opened, _OPENED = _OPENED, None
    data_files = {p for p in opened if Path(p).is_relative_to(fused.resolve())}
    assert data_files == {str(tune_project.train.resolve()), str(tune_project.val.resolve())}
    assert seen == [({"en"}, {"en"}, 90, 45)]
    assert metrics["val_langs"] == ["en"] and metrics["train_langs"] == ["en"]


def test_val_with_a_target_language_is_refused_before_any_trial(
    tune_project: TuneProject, capsys: pytest.CaptureFixture[str]
) -> None:
    write_split(tune_project.val, 30, seed=2, lang=["en", "de"])
    with pytest.raises(SystemExit) as exit_info:
        tune_project.run()
    assert exit_info.value.code == 2
    assert "['de']" in capsys.readouterr().err
    assert not Path(tune_project.params()["tune"]["storage"].removeprefix("sqlite:///")).exists()


def test_no_completed_trial_is_a_clear_error(
    tune_project: TuneProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tune_project.set_tune(n_trials=2)

    def broken(index: int, train: dict, val: dict) -> None:
        raise ValueError("the model exploded")

    counting_fit(monkeypatch, broken)
    with pytest.raises(SystemExit) as exit_info:
        tune_project.run()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "no trial completed" in err and "2 failed" in err and "the model exploded" in err
    assert not tune_project.out.exists()
    assert mlflow.active_run() is None


@pytest.mark.slow
def test_each_baseline_gets_its_own_study_of_the_same_size_and_logreg_its_c(
    tune_project: TuneProject,
) -> None:
    tune_project.set_tune(n_trials=2, epochs=2, pruner="none", baselines=True, logreg_c=[0.01, 1.0])
    metrics = tune_project.run()
    tuned = json.loads(tune_project.baseline_out.read_text())
    space = tune_project.params()["tune"]["space"]
    assert set(tuned) == {"text", "image", "audio", "logreg"}
    storage = tune_project.params()["tune"]["storage"]
    for modality in ("text", "image", "audio"):
        study = optuna.load_study(study_name=f"{metrics['study_name']}-{modality}", storage=storage)
        assert (
            len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 2
        )  # the fused study's budget
        assert tuned[modality] == study.best_params
        assert set(tuned[modality]) == set(space) - {"fusion", "modality_dropout"}
        assert metrics["baselines"][modality]["best_value"] == study.best_value
    assert tuned["logreg"]["C"] in (0.01, 1.0) and metrics["baselines"]["logreg"]["C"] == tuned["logreg"]["C"]
    names = {r.info.run_name for r in runs_of()}
    assert {f"trial:{m}:{n}" for m in ("text", "image", "audio") for n in (0, 1)} <= names
