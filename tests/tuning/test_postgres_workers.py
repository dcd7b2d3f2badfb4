"""Two worker processes share one study on a real PostgreSQL server: every trial stored exactly once.

``.ci/run`` installs Debian's PostgreSQL, starts it on 127.0.0.1 and exports
``BABELFUSE_TEST_POSTGRES_URL``; the test creates its own database, runs the real stage code path
(``tune.n_workers: 2`` -> two spawned processes calling ``optimize`` on the shared storage) and
drops the database again.
"""

from __future__ import annotations

from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from helpers.postgres import fresh_database
from helpers.tuning import TuneProject, runs_of


@pytest.fixture
def postgres_db():
    """A fresh database on the test server (dropped afterwards), or a skip naming the reason."""
    with fresh_database() as url:
        yield url


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_on_postgres_store_every_trial_exactly_once(
    tune_project: TuneProject, postgres_db: str
) -> None:
    tune_project.set_tune(n_trials=4, n_workers=2, epochs=2, pruner="none", storage=postgres_db)
    metrics = tune_project.run()

    assert metrics["storage"] == "postgresql" and metrics["n_workers"] == 2
    assert "babelfuse:" not in str(metrics)  # no credentials in the metrics file
    study = optuna.load_study(study_name=metrics["study_name"], storage=postgres_db)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 4 == metrics["trials_total"]
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert len({t._trial_id for t in trials}) == 4
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4  # no trial stored twice
    assert Counter(t.user_attrs["worker"] for t in trials) == {0: 2, 1: 2}  # both processes worked

    runs = runs_of()
    parent = next(r for r in runs if r.info.run_name == "tune")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == [f"trial:{n}" for n in range(4)]
    assert len(runs) == 5
