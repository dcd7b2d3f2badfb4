"""``params={"explain": true}``: modality contributions from the real served model (tiny Keras world)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from babelfuse.explain import CONTRIB_COLUMNS
from babelfuse.labels import LABELS
from babelfuse.paths import MODALITIES
from helpers.serving import World, b64

PROBS = [f"prob_{label}" for label in LABELS]


def request(world: World) -> pd.DataFrame:
    posts = world.posts.head(8)

    def src(relative):
        return None if relative is None or pd.isna(relative) else b64(world.root / relative)

    frame = pd.DataFrame(
        {
            "text": posts["text"].tolist(),
            "lang": posts["lang"].tolist(),
            "image": [src(p) for p in posts["image_path"]],
            "audio": [src(p) for p in posts["audio_path"]],
        }
    )
    frame.loc[1, "image"] = None  # one post without a picture, one without a clip
    frame.loc[2, "audio"] = None
    return frame


@pytest.fixture(scope="module")
def loaded(world: World):
    import mlflow

    return mlflow.pyfunc.load_model(str(world.saved))


def test_contributions_are_efficient_and_zero_for_absent_modalities(world, loaded, predictor) -> None:
    frame = request(world)
    out = loaded.predict(frame, params={"explain": True})
    plain = loaded.predict(frame)
    assert list(out.columns[: len(plain.columns)]) == list(plain.columns)
    assert set(CONTRIB_COLUMNS) <= set(out.columns)
    np.testing.assert_allclose(out[PROBS].to_numpy(float), plain[PROBS].to_numpy(float), atol=1e-6)
    assert (out["label"] == plain["label"]).all()
    # efficiency: contributions sum to p(label | all present) - p(label | nothing present)
    dims = {m: predictor.encoders[m].dim for m in MODALITIES}
    nothing = {m: np.zeros((1, d), np.float32) for m, d in dims.items()} | {
        "mask": np.zeros((1, 3), np.float32)
    }
    empty = predictor.probabilities(nothing)[0]
    contrib = out[list(CONTRIB_COLUMNS)].to_numpy(float)
    for i, label in enumerate(out["label"]):
        k = LABELS.index(label)
        assert contrib[i].sum() == pytest.approx(out[PROBS[k]][i] - empty[k], abs=1e-5)
    assert contrib[1, 1] == 0.0 and contrib[2, 2] == 0.0
    assert np.abs(contrib).max() > 1e-3


def test_a_failed_row_has_null_contributions_and_a_bad_flag_is_a_request_error(
    world, loaded, predictor
) -> None:
    from babelfuse.serving.pyfunc import guarded_predict

    frame = request(world)
    frame.loc[0, "lang"] = "xx"
    out = loaded.predict(frame, params={"explain": True})
    assert isinstance(out["error"][0], str)
    assert all(out[c][0] is None for c in CONTRIB_COLUMNS)
    assert all(isinstance(out[c][3], float) for c in CONTRIB_COLUMNS)
    with pytest.raises(MlflowException, match="explain"):  # the signature's ParamSchema refuses it
        loaded.predict(frame, params={"explain": 3})
    with pytest.raises(MlflowException) as refused:  # without MLflow's check: ours, a 400 too
        guarded_predict(predictor, frame, {"explain": 3})
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
