"""Slot-seeded sampling and pruning: a trial's params depend on (tune.seed, slot), not on the process
history, so a study resumed by a new process (after a kill) draws what an uninterrupted one draws."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from babelfuse import tracking
from babelfuse.tuning import study as st
from babelfuse.tuning.sampling import (
    PROCESS_ATTR,
    SLOT_ATTR,
    WORKER_PREFIX,
    SlotHyperbandPruner,
    fail_orphaned_trials,
    register_worker,
    slot_of,
)
from babelfuse.tuning.space import parse_space, suggest

SPACE = parse_space(
    {
        "fusion": ["concat", "late", "gated"],
        "hidden": [8, 16, 32],
        "dropout": {"low": 0.0, "high": 0.5},
        "learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
    },
    {"fusion": "concat", "hidden": 8, "dropout": 0.1, "learning_rate": 0.01},
)
N_TRIALS = 8  # 2 random start-up trials, then TPE: both phases are covered


def score(params: dict) -> float:
    """A deterministic objective of the params (what a seeded, deterministic fit is)."""
    return -abs(params["dropout"] - 0.3) - abs(params["learning_rate"] - 0.01) * 10 + params["hidden"] / 100


def new_sampler() -> optuna.samplers.BaseSampler:
    return st.make_sampler(seed=11, n_trials=N_TRIALS, parallel=False)


def objective(trial: optuna.Trial) -> float:
    return score(suggest(trial, SPACE))


def counted_params(study: optuna.Study) -> list[dict]:
    return [t.params for t in study.trials if t.state in st.COUNTED]


def uninterrupted() -> list[dict]:
    study = optuna.create_study(direction="maximize", sampler=new_sampler())
    study.optimize(objective, n_trials=N_TRIALS)
    return counted_params(study)


def test_trial_k_draws_the_same_params_whatever_failed_or_restarted_before_it() -> None:
    reference = uninterrupted()
    assert len({str(p) for p in reference}) == N_TRIALS  # the draws do differ from slot to slot

    storage = optuna.storages.InMemoryStorage()
    # "Process" 1 runs three trials; the third dies after its params were drawn.
    first = optuna.create_study(direction="maximize", sampler=new_sampler(), storage=storage, study_name="s")

    def dies_at_third(trial: optuna.Trial) -> float:
        value = objective(trial)
        if trial.number == 2:
            raise RuntimeError("killed")
        return value

    first.optimize(dies_at_third, n_trials=3, catch=(RuntimeError,))
    # "Process" 2: a fresh sampler object (its random state starts over), one more failure, then the rest.
    second = optuna.load_study(study_name="s", storage=storage, sampler=new_sampler())
    second.optimize(lambda t: (_ for _ in ()).throw(RuntimeError("again")), n_trials=1, catch=(RuntimeError,))
    third = optuna.load_study(study_name="s", storage=storage, sampler=new_sampler())
    third.optimize(objective, n_trials=N_TRIALS - 2)

    assert [t.state for t in third.trials].count(TrialState.FAIL) == 2
    assert counted_params(third) == reference
    assert [t.user_attrs[SLOT_ATTR] for t in third.trials if t.state in st.COUNTED] == list(range(N_TRIALS))


def test_a_plain_seeded_tpe_would_repeat_draws_after_a_restart() -> None:
    """Why the slot sampler exists: the guard above fails for Optuna's own seeded TPE."""
    storage = optuna.storages.InMemoryStorage()
    tpe = lambda: optuna.samplers.TPESampler(seed=11, n_startup_trials=2)  # noqa: E731
    optuna.create_study(direction="maximize", sampler=tpe(), storage=storage, study_name="s").optimize(
        objective, n_trials=1
    )
    resumed = optuna.load_study(study_name="s", storage=storage, sampler=tpe())
    resumed.optimize(objective, n_trials=1)
    assert resumed.trials[0].params == resumed.trials[1].params


def test_slot_counts_every_earlier_trial_that_did_not_fail() -> None:
    study = optuna.create_study()
    for state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED, TrialState.RUNNING):
        study.add_trial(
            optuna.trial.create_trial(state=state, value=1.0 if state == TrialState.COMPLETE else None)
        )
    trials = study.get_trials(deepcopy=False)
    assert [slot_of(trials, n) for n in range(5)] == [0, 1, 1, 2, 3]


def test_hyperband_brackets_follow_the_slot_and_ignore_failed_trials() -> None:
    pruner = SlotHyperbandPruner(min_resource=1, max_resource=27)
    study = optuna.create_study(pruner=pruner, study_name="hb")
    study.add_trial(optuna.trial.create_trial(value=0.5, intermediate_values={i: 0.5 for i in range(27)}))
    pruner._try_initialization(study)
    assert len(pruner._trial_allocation_budgets) > 1

    def trial(number: int, slot: int, state: TrialState = TrialState.RUNNING) -> optuna.trial.FrozenTrial:
        frozen = optuna.trial.create_trial(state=state, user_attrs={SLOT_ATTR: slot})
        frozen.number = number
        return frozen

    for slot in range(20):  # the bracket of a redone trial (a later number) is the one of its slot
        assert pruner._get_bracket_id(study, trial(slot + 3, slot)) == pruner._get_bracket_id(
            study, trial(slot, slot)
        )
    assert pruner._get_bracket_id(study, trial(4, 4, TrialState.FAIL)) == -1


def dead_process_tag() -> str:
    """The tag a process had while it ran; it has been killed and reaped since."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    tag = tracking.process_tag(proc.pid)
    proc.kill()
    proc.wait()
    return tag


def test_process_gone_tells_dead_from_live_and_leaves_other_hosts_alone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = tracking.process_tag(proc.pid)
        assert not tracking.process_gone(live)
        assert not tracking.process_gone(tracking.process_tag())
    finally:
        proc.kill()
        proc.wait()
    assert tracking.process_gone(live)  # killed and reaped
    assert not tracking.process_gone("some-other-host:1:1")
    assert not tracking.process_gone("")


def running_study(*process_tags: str | None) -> optuna.Study:
    study = optuna.create_study()
    for tag in process_tags:
        attrs = {PROCESS_ATTR: tag} if tag else {}
        study.add_trial(optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs=attrs))
    return study


def test_running_trials_of_a_dead_process_are_failed_and_live_ones_kept() -> None:
    study = running_study(dead_process_tag(), tracking.process_tag(), None)
    register_worker(study)  # this live process works on the study: the untagged trial may be its own
    assert fail_orphaned_trials(study) == [0]
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING]


def test_an_untagged_running_trial_is_failed_once_every_worker_of_the_study_is_gone() -> None:
    """Killed between creating the trial and recording its process."""
    study = running_study(None)
    study.set_user_attr(WORKER_PREFIX + dead_process_tag(), True)
    assert fail_orphaned_trials(study) == [0]


def test_stage_runs_of_a_killed_process_are_marked_killed(mlflow_uri: str) -> None:
    tracking.configure()
    client = MlflowClient()
    experiment = mlflow.get_experiment_by_name(tracking.EXPERIMENT).experiment_id

    def running(stage: str, process: str) -> str:
        tags = {"stage": stage, tracking.PROCESS_TAG: process}
        return client.create_run(experiment, tags=tags).info.run_id

    dead, live, other_stage = (
        running("tune", dead_process_tag()),
        running("tune", tracking.process_tag()),
        running("train", dead_process_tag()),
    )
    assert tracking.mark_killed_runs("tune") == [dead]
    status = {run_id: client.get_run(run_id).info.status for run_id in (dead, live, other_stage)}
    assert status == {dead: "KILLED", live: "RUNNING", other_stage: "RUNNING"}


def test_logreg_json_gives_scikit_learns_probabilities() -> None:
    import numpy as np

    from babelfuse.training.baselines import fit_logreg, logreg_json_probs, logreg_probs, logreg_to_json
    from babelfuse.training.synthetic import synthetic_fused

    train, val = (
        synthetic_fused(n, {"text": 6, "image": 4, "audio": 3}, seed=s) for n, s in ((60, 1), (30, 2))
    )
    model, _ = fit_logreg(train, val, seed=0, C=0.5)
    payload = logreg_to_json(model)
    assert payload["C"] == 0.5
    np.testing.assert_allclose(logreg_json_probs(payload, val), logreg_probs(model, val), atol=1e-6)


def test_a_baseline_study_searches_the_same_space_without_the_fusion_only_keys() -> None:
    from babelfuse.tuning.space import model_space

    space = {
        "fusion": ["concat"],
        "modality_dropout": {"low": 0.0, "high": 0.4},
        "hidden": [8, 16],
        "dropout": {"low": 0.0, "high": 0.5},
    }
    assert model_space(space, "fused") == space
    assert model_space(space, "text") == {"hidden": [8, 16], "dropout": {"low": 0.0, "high": 0.5}}
