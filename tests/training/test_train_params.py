"""How the train stage picks its params: params.yaml, overridden by the tune stage's best params."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from babelfuse.errors import BabelfuseError
from babelfuse.training.baselines import fusion_gain
from babelfuse.training.train import history_frame, resolve_params

SECTION = {"fusion": "attention", "hidden": 64, "learning_rate": 0.002, "use_best_params": True}


def test_best_params_override_and_are_logged_by_key(tmp_path, caplog) -> None:
    best = tmp_path / "best_params.json"
    best.write_text(json.dumps({"fusion": "gated", "hidden": 32}))
    with caplog.at_level(logging.INFO, logger="babelfuse.train"):
        params, keys = resolve_params(SECTION, best)
    assert params == {**SECTION, "fusion": "gated", "hidden": 32} and keys == ["fusion", "hidden"]
    assert "train.fusion='gated'" in caplog.text and "train.hidden=32" in caplog.text


@pytest.mark.parametrize("content", [None, "", "  \n", "{}"])
def test_missing_empty_or_empty_object_changes_nothing(tmp_path, content) -> None:
    best = tmp_path / "best_params.json"
    if content is not None:
        best.write_text(content)
    assert resolve_params(SECTION, best) == (SECTION, [])


def test_use_best_params_false_ignores_the_file(tmp_path) -> None:
    best = tmp_path / "best_params.json"
    best.write_text(json.dumps({"hidden": 32}))
    section = {**SECTION, "use_best_params": False}
    assert resolve_params(section, best) == (section, [])


@pytest.mark.parametrize(
    ("content", "message"),
    [("{oops", "not valid JSON"), ("[1, 2]", "JSON object"), ('{"hiddenn": 3}', r"\['hiddenn'\]")],
)
def test_bad_best_params_are_clear_errors(tmp_path, content, message) -> None:
    best = tmp_path / "best_params.json"
    best.write_text(content)
    with pytest.raises(BabelfuseError, match=message):
        resolve_params(SECTION, best)


def test_history_frame_and_fusion_gain() -> None:
    frame = history_frame(
        {"loss": [1.0, 0.5], "val_loss": [1.1, 0.9], "val_macro_f1": [0.4, 0.6], "accuracy": [0, 1]}
    )
    expected = pd.DataFrame(
        {"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.9], "val_macro_f1": [0.4, 0.6]}
    )
    pd.testing.assert_frame_equal(frame, expected)
    assert fusion_gain(0.8, {"text": 0.6, "image": 0.7, "audio": 0.5}) == ("image", pytest.approx(0.1))


def test_each_baseline_takes_its_own_tuned_params_and_logreg_its_c(tmp_path) -> None:
    from babelfuse.training.train import baseline_params

    tuned = tmp_path / "baseline_params.json"
    tuned.write_text(
        json.dumps({"text": {"hidden": 16}, "image": {"learning_rate": 0.01}, "logreg": {"C": 0.1}})
    )
    fused = {**SECTION, "fusion": "gated", "hidden": 32}
    params = baseline_params(SECTION, fused, tuned)
    assert params["text"] == {
        **SECTION,
        "hidden": 16,
    }  # the train section + its own picks, not the fused ones
    assert params["image"] == {**SECTION, "learning_rate": 0.01}
    assert params["audio"] == fused  # not tuned on its own: the fused model's params, as before
    assert params["logreg"] == {"C": 0.1}


def test_untuned_baselines_use_the_fused_params_and_c_1(tmp_path) -> None:
    from babelfuse.training.train import baseline_params

    tuned = tmp_path / "baseline_params.json"
    tuned.write_text(json.dumps({"text": {"hidden": 16}, "logreg": {"C": 0.1}}))
    section = {**SECTION, "use_best_params": False}
    params = baseline_params(section, section, tuned)
    assert params["text"] == section and params["logreg"] == {"C": 1.0}
    tuned.write_text(json.dumps({"text": {"hiden": 16}}))
    with pytest.raises(BabelfuseError, match="hiden"):
        baseline_params(SECTION, SECTION, tuned)
