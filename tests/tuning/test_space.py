"""The search space from params.yaml: kinds of dimension, user errors, overlay and study identity."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from babelfuse.errors import BabelfuseError
from babelfuse.params import load_params
from babelfuse.tuning import study as st
from babelfuse.tuning.space import overlay, parse_space, study_fingerprint, suggest

TRAIN = {
    "fusion": "concat",
    "hidden": 64,
    "dropout": 0.2,
    "learning_rate": 0.002,
    "batch_size": 32,
    "epochs": 60,
}


def test_lists_are_categorical_ranges_float_or_int_and_log_is_kept() -> None:
    space = parse_space(
        {
            "fusion": ["concat", "late"],
            "dropout": {"low": 0.0, "high": 0.5},
            "hidden": {"low": 16, "high": 128, "log": True},
            "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
        },
        TRAIN,
    )
    assert space["fusion"] == CategoricalDistribution(["concat", "late"])
    assert space["dropout"] == FloatDistribution(0.0, 0.5)
    assert space["hidden"] == IntDistribution(16, 128, log=True)
    assert space["learning_rate"] == FloatDistribution(1e-4, 1e-2, log=True)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"nonsense": [1, 2]}, "not a key of the train section"),
        ({"dropout": {"low": 0.5, "high": 0.1}}, "must be below"),
        ({"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}, "log range needs low > 0"),
        ({"dropout": {"low": 0.1}}, "needs 'low' and 'high'"),
        ({"fusion": []}, "empty"),
        ({"fusion": "concat"}, "expected a list"),
    ],
)
def test_bad_spaces_are_user_errors_naming_the_key(space: dict, message: str) -> None:
    with pytest.raises(BabelfuseError, match=message):
        parse_space(space, TRAIN)


def test_the_repo_space_is_valid_and_a_trial_is_the_train_section_with_picks_overlaid() -> None:
    params = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    space = parse_space(params["tune"]["space"], params["train"])
    assert {"fusion", "hidden", "dropout", "modality_dropout", "learning_rate", "batch_size"} <= set(space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    trial = study.ask()
    picks = suggest(trial, space)
    merged = overlay(params["train"], picks)
    assert set(merged) == set(params["train"])
    assert {k: merged[k] for k in picks} == picks
    assert merged["epochs"] == params["train"]["epochs"]
    assert picks["fusion"] in params["tune"]["space"]["fusion"]


def test_fingerprint_ignores_budget_and_workers_but_not_space_seed_or_data() -> None:
    tune = {"space": {"hidden": [8, 16]}, "epochs": 3, "n_trials": 4, "n_workers": 1, "seed": 1}
    base = study_fingerprint(TRAIN, tune, "abc")
    budget = {"n_trials": 40, "n_workers": 2, "timeout_s": 9, "storage": "sqlite:///elsewhere.db"}
    assert study_fingerprint(TRAIN, {**tune, **budget}, "abc") == base
    assert study_fingerprint(TRAIN, {**tune, "seed": 2}, "abc") != base
    assert study_fingerprint({**TRAIN, "epochs": 5}, tune, "abc") == base  # tune.epochs governs trials
    assert study_fingerprint(TRAIN, {**tune, "space": {"hidden": [8, 32]}}, "abc") != base
    assert study_fingerprint(TRAIN, tune, "abd") != base
    assert study_fingerprint({**TRAIN, "dropout": 0.3}, tune, "abc") != base


def test_shares_add_up_to_the_remaining_budget_and_urls_hide_passwords() -> None:
    assert st.shares(5, 2) == [3, 2]
    assert st.shares(1, 4) == [1]
    assert st.shares(0, 2) == []
    url = "postgresql+psycopg2://user:s3cret@db.example:5432/optuna"
    assert "s3cret" not in st.masked_url(url)
    assert st.storage_kind(url) == "postgresql"
    with pytest.raises(BabelfuseError, match="tune.pruner"):
        st.make_pruner({"pruner": "sometimes"})
