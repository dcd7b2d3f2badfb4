"""Request and post checks of the served model, in memory (no model, no MLflow)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest

from babelfuse.errors import BabelfuseError
from babelfuse.serving import inputs
from babelfuse.serving.inputs import Limits, PostError, RequestError

LANGS = inputs.Languages("use-multilingual", frozenset({"en", "de"}), frozenset({"en"}), lambda text: "de")


def png_b64(size: int = 20) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (10, 200, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def post(**row):
    base = {"text": "hello", "lang": "en", "image": None, "audio": None}
    return {**base, **row}


def check(row, root=None, limits=None):
    return inputs.check_post(0, row, LANGS, limits or Limits(), root, 32, 16000)


def test_request_needs_a_text_column_and_fills_missing_lang_and_media_columns() -> None:
    frame = inputs.check_request(pd.DataFrame({"text": ["a"]}), Limits())
    assert list(frame.columns) == ["text", "lang", "image", "audio"]
    assert frame.loc[0, "image"] is None and frame.loc[0, "lang"] is None
    with pytest.raises(RequestError, match=r"lacks column\(s\) \['text'\]"):
        inputs.check_request(pd.DataFrame({"lang": ["en"]}), Limits())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("just a string", "must be a table"),
        (pd.DataFrame({"text": [], "lang": []}), "no rows"),
        (pd.DataFrame({"text": [3], "lang": ["en"]}), r"row 0: column 'text' must be text or null, not int"),
        (
            pd.DataFrame({"text": ["a"], "lang": ["en"], "image": [1.5]}),
            "column 'image' must be a file path or base64",
        ),
        (pd.DataFrame({"text": ["a"] * 5, "lang": ["en"] * 5}), "5 rows, more than the limit of 4"),
    ],
)
def test_malformed_requests_fail_as_a_whole(data, message) -> None:
    with pytest.raises(RequestError, match=message):
        inputs.check_request(data, Limits(max_rows=4))


def test_a_dict_of_columns_is_a_table_too() -> None:
    frame = inputs.check_request({"text": ["a", None], "lang": ["en", "de"]}, Limits())
    assert len(frame) == 2 and inputs.is_null(frame.loc[1, "text"])


def test_on_error_param_is_checked() -> None:
    assert inputs.check_on_error(None) == "row"
    assert inputs.check_on_error({"on_error": "raise"}) == "raise"
    with pytest.raises(RequestError, match="on_error must be one of"):
        inputs.check_on_error({"on_error": "ignore"})


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        (post(lang="xx"), "lang", "language 'xx' is not covered by the text encoder use-multilingual"),
        (post(lang="12!"), "lang", "'12!' is not a language code"),
        (post(text="   "), "text", "empty text"),
        (post(text="x" * 30), "text", "30 characters, more than the limit of 20"),
        (post(text=None), "text", "no text, image or audio"),
        (post(image="aGVsbG8gd29ybGQh"), "image", "cannot decode image"),
        (post(audio="aGVsbG8gd29ybGQh"), "audio", "cannot decode audio"),
        (post(image="not base64 at all!"), "image", "is not base64"),
        (post(image="/etc/passwd"), "image", "read as base64; file paths are read only when"),
    ],
)
def test_bad_posts_name_their_row_field_and_reason(row, field, reason) -> None:
    with pytest.raises(PostError, match=reason) as info:
        check(row, limits=Limits(max_text_chars=20))
    assert info.value.field == field and str(info.value).startswith(f"row 0: {field}: ")
    assert "object at 0x" not in str(info.value)


def test_a_good_post_decodes_and_language_case_is_ignored() -> None:
    got = check(post(lang=" EN ", image=png_b64(), text=None))
    assert got.lang == "en" and got.text is None and got.audio is None
    assert got.image.shape == (32, 32, 3) and got.image.dtype == np.uint8


def test_oversize_media_is_refused_before_decoding() -> None:
    with pytest.raises(PostError, match="oversize"):
        check(post(image=png_b64(200)), limits=Limits(max_media_bytes=100))


def test_paths_are_read_only_inside_the_media_root(tmp_path) -> None:
    from PIL import Image

    (tmp_path / "pics").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "pics" / "a.png")
    secret = tmp_path.parent / "secret.png"
    Image.new("RGB", (8, 8)).save(secret)
    assert check(post(image="pics/a.png"), root=tmp_path).image.shape == (32, 32, 3)
    with pytest.raises(PostError, match="not base64; file paths are read only when"):
        check(post(image=str(tmp_path / "pics" / "a.png")))  # no root: no file is ever opened
    with pytest.raises(PostError, match="outside the data root|absolute"):
        check(post(image="../secret.png"), root=tmp_path)
    with pytest.raises(PostError, match="absolute"):
        check(post(image=str(secret)), root=tmp_path)


def test_media_bytes_accepts_raw_bytes_data_uris_and_urlsafe_base64() -> None:
    raw = base64.b64decode(png_b64())
    assert inputs.media_bytes(raw, None, 10_000) == raw
    assert inputs.media_bytes("data:image/png;base64," + png_b64(), None, 10_000) == raw
    assert inputs.media_bytes(base64.urlsafe_b64encode(raw).decode(), None, 10_000) == raw
    with pytest.raises(BabelfuseError, match="empty string"):
        inputs.media_bytes("  ", None, 10)
