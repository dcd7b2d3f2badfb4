"""The babelfuse experiment is marked as model training, so MLflow 3's UI opens on its runs."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow

from babelfuse import tracking


def test_configure_marks_a_new_and_an_existing_experiment(mlflow_uri, monkeypatch) -> None:
    monkeypatch.setenv("BABELFUSE_EXPERIMENT", "kind-test")
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.create_experiment("kind-test")  # made by someone else, untagged
    tracking.configure()
    tracking.configure()  # idempotent
    experiment = mlflow.get_experiment_by_name("kind-test")
    assert experiment.tags[tracking.EXPERIMENT_KIND_TAG] == tracking.EXPERIMENT_KIND


def test_the_kind_is_one_the_installed_ui_knows_as_custom_model_development() -> None:
    """The value must be the UI bundle's CUSTOM_MODEL_DEVELOPMENT kind, not a string it ignores."""
    bundle = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    found = {
        value
        for js in bundle.glob("main.*.js")
        for value in re.findall(r'CUSTOM_MODEL_DEVELOPMENT="([a-z_]+)"', js.read_text(encoding="utf-8"))
    }
    assert tracking.EXPERIMENT_KIND in found
