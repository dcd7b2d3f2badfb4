"""The validate stage accepts the languages the text encoder covers, the same set the served model does."""

from __future__ import annotations

import pytest

from babelfuse.config import TextFeatures
from babelfuse.data.manifest import Manifest
from babelfuse.validation.validate import accepted_languages, validate_manifest
from helpers.validation import clean_frame


@pytest.fixture(scope="module")
def validate_params():
    from babelfuse.config import load_config

    return load_config().section("validate")


def run(frame, root, params, text: TextFeatures):
    languages = accepted_languages(text.encoder, text.languages)
    return validate_manifest(Manifest(frame=frame, data_root=root), params, languages, None, progress=False)


def test_a_manifest_with_portuguese_test_posts_passes_with_the_default_encoder(tmp_path, validate_params):
    frame = clean_frame(tmp_path)
    frame.loc[frame["split"] == "test", "lang"] = "pt"  # not in the bundled data, covered by USE
    report = run(frame, tmp_path, validate_params, TextFeatures())
    assert not report.failed and not report.reasons


def test_a_language_outside_the_encoder_fails_naming_it_unless_params_say_any(tmp_path, validate_params):
    frame = clean_frame(tmp_path)
    frame.loc[0, "lang"] = "sv"  # Swedish: not one of USE Multilingual's 16
    report = run(frame, tmp_path, validate_params, TextFeatures())
    assert [o.name for o in report.failed] == ["lang_in_set"]
    assert report.reasons[0] == ["lang_in_set: lang 'sv' not in the text encoder's languages (features.text)"]
    assert not run(frame, tmp_path, validate_params, TextFeatures(languages="any")).failed
    narrowed = run(
        frame, tmp_path, validate_params, TextFeatures(encoder="hf:some/model", languages=["sv", "en", "de"])
    )
    assert not narrowed.failed
