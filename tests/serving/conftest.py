"""Fixtures of the serving tests: one tiny world (posts, media, encoders, models) per session."""

from __future__ import annotations

import pytest

from helpers.serving import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    return build_world(tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="session")
def predictor(world: World):
    """The good model's Predictor straight from its files (no MLflow involved)."""
    from babelfuse.serving.pyfunc import Predictor

    a = world.saved / "artifacts"
    return Predictor.from_files(
        a / "good.keras", a / "scalers.json", a / "temperature.json", a / "serving.json"
    )


@pytest.fixture(autouse=True)
def _forget_tracking_uri(monkeypatch):
    """Code under test calls mlflow.set_tracking_uri: do not let it leak into other tests."""
    yield
    import mlflow

    mlflow.set_tracking_uri(None)
