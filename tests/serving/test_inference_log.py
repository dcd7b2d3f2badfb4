"""``register.inference_log``: the served model appends each answered request's metadata, never media."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from babelfuse import monitoring
from babelfuse.serving import bundle
from helpers.serving import World, b64


def test_served_model_logs_metadata_and_text_vectors(world: World, predictor, tmp_path) -> None:
    import mlflow

    config = json.loads((world.saved / "artifacts" / "serving.json").read_text())
    folder = tmp_path / "log"
    config["inference_log"] = str(folder)
    saved = bundle.save_pyfunc(
        tmp_path / "pyfunc", world.models["good"], world.scalers, world.temperature, config
    )
    model = mlflow.pyfunc.load_model(str(saved))
    image = world.root / "images/p06.png"
    frame = pd.DataFrame({"text": ["Das war eine furchtbare Enttäuschung.", None], "lang": ["de", "en"],
                          "image": [b64(image), b64(image)], "audio": [None, None]})  # fmt: skip
    out = model.predict(frame)
    log = monitoring.read_log(folder)
    assert len(log) == 2 and log["label"].tolist() == out["label"].tolist()
    assert log["has_text"].tolist() == [True, False] and log["has_image"].all() and not log["has_audio"].any()
    assert log["text_chars"].tolist() == [len(frame["text"][0]), 0]
    assert b64(image) not in log.astype(str).to_numpy().ravel().tolist()
    want = predictor.model_inputs(predictor.decode(frame.head(1)))[0]["text"][0]
    np.testing.assert_allclose(log["text_vec"][0], want, atol=1e-5)  # what the model saw
    assert log["text_vec"][1] is None and log["latency_ms"][0] > 0
