"""Hostile inputs of issue 13, in memory: each is refused before costly work, or fails only its own row.

Costs are not timed here (``benchmarks/hostile.py`` measures them against a real server); these tests
check the *mechanism*: the header check fires before decoding, the body check before parsing, and a
bad row never fails its neighbours.
"""

from __future__ import annotations

import base64
import io
import json
import struct

import numpy as np
import pandas as pd
import pytest

from babelfuse.errors import BabelfuseError
from babelfuse.features import media
from babelfuse.features.media import MediaLimits
from babelfuse.serving import inputs, pyfunc
from babelfuse.serving.inputs import Limits, PostError
from babelfuse.validation import media_checks

LANGS = inputs.Languages("use-multilingual", frozenset({"en", "de"}), frozenset({"en"}), lambda text: "en")


def wav_bytes(seconds: float = 0.3, rate: int = 16000, channels: int = 1, declared_rate: int | None = None):
    """A PCM-16 WAV; ``declared_rate`` rewrites the header's rate (and byte rate) afterwards."""
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.repeat(tone[:, None], channels, axis=1), rate, format="WAV", subtype="PCM_16")
    data = bytearray(buf.getvalue())
    if declared_rate is not None:
        struct.pack_into("<II", data, 24, declared_rate, declared_rate * 2 * channels)
    return bytes(data)


def image_bytes(width: int, height: int, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, (width, height), 0).save(buf, format=fmt)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check(row, root=None, limits=None):
    base = {"text": "hello", "lang": "en", "image": None, "audio": None}
    return inputs.check_post(0, {**base, **row}, LANGS, limits or Limits(), root, 32, 16000)


# --------------------------------------------------------------------------- bounded decoding cost
@pytest.mark.parametrize("declared", [9_999_991, 999_983, 3_000])
def test_a_wav_declaring_an_absurd_rate_is_refused_from_its_header(declared) -> None:
    hostile = wav_bytes(seconds=0.17, declared_rate=declared)  # ~5.5 KB, like the clip
    assert len(hostile) < 6000
    with pytest.raises(PostError, match=f"sample rate {declared:,} Hz is outside 4,000-96,000 Hz"):
        check({"audio": b64(hostile)})


def test_any_accepted_rate_resamples_with_a_small_filter_and_keeps_the_tone() -> None:
    rate = 95_987  # prime: an exact polyphase ratio would need a filter ~1.9 M taps long
    y = media.decode_audio(wav_bytes(seconds=1.0, rate=rate), 16_000)
    assert abs(len(y) - 16_000) <= 2
    peak = np.argmax(np.abs(np.fft.rfft(y))) * 16_000 / len(y)
    assert abs(peak - 440) < 3


def test_channels_and_duration_are_bounded_before_samples_are_read() -> None:
    with pytest.raises(BabelfuseError, match="6 channels; at most 2"):
        media.decode_audio(wav_bytes(channels=6), 16_000)
    with pytest.raises(BabelfuseError, match="0.3 s long, more than the limit of 0.2 s"):
        media.decode_audio(wav_bytes(seconds=0.3), 16_000, MediaLimits(audio_max_seconds=0.2))


def test_serving_and_validate_share_one_limits_object_with_the_same_image_bounds(tmp_path) -> None:
    assert media_checks.MediaLimits is MediaLimits and Limits().media == MediaLimits()
    big = image_bytes(2100, 2100)  # 4.4 MP: under the old 40 MP serving limit, over validate's 4 MP
    (tmp_path / "big.png").write_bytes(big)
    assert "exceed validate.image_max_pixels=4000000" in media_checks.check_image(
        tmp_path / "big.png", MediaLimits()
    )
    with pytest.raises(PostError, match="more than the limit of 4,000,000"):
        check({"image": b64(big)})
    long_side = image_bytes(4100, 8)
    with pytest.raises(PostError, match="side is longer than the limit of 4,096"):
        check({"image": b64(long_side)})


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_only_png_jpeg_and_webp_are_decoded(fmt, tmp_path) -> None:
    data = image_bytes(16, 16, fmt, mode="RGB" if fmt != "GIF" else "P")
    with pytest.raises(PostError, match=r"cannot decode image .*formats \['PNG', 'JPEG', 'WEBP'\]"):
        check({"image": b64(data)})
    (tmp_path / f"x.{fmt.lower()}").write_bytes(data)
    assert "does not decode" in media_checks.check_image(tmp_path / f"x.{fmt.lower()}", MediaLimits())
    for ok in ("PNG", "JPEG", "WEBP"):
        assert check({"image": b64(image_bytes(16, 16, ok))}).image.shape == (32, 32, 3)


# --------------------------------------------------------------------------- bounded request bodies
def test_json_bodies_with_too_many_rows_or_levels_are_refused_before_parsing() -> None:
    limits = Limits(max_rows=4)
    records = [{"text": "a", "lang": "en"}] * 100
    body = json.dumps({"dataframe_records": records}).encode()
    assert "too many quoted values: more than the limit of 4 rows" in inputs.body_problem(
        body, "application/json", limits
    )
    columnar = json.dumps({"inputs": {"text": [None] * 100, "lang": [None] * 100}}).encode()
    assert "too many JSON values" in inputs.body_problem(columnar, "application/json", limits)
    nested = b"[" * 200_000 + b"]" * 200_000
    assert "too many JSON values" in inputs.body_problem(nested, "application/json", Limits())
    assert "nested more than 32 levels" in inputs.body_problem(
        b'{"a":' * 40 + b"1" + b"}" * 40, "application/json", Limits()
    )
    fine = json.dumps({"dataframe_records": records[:4], "params": {"on_error": "row"}}).encode()
    assert inputs.body_problem(fine, "application/json; charset=utf-8", limits) is None
    tricky = json.dumps({"dataframe_records": [{"text": 'a "quoted", [bracketed] \\ text', "lang": "en"}]})
    assert inputs.body_problem(tricky.encode(), "application/json", Limits(max_rows=1)) is None


def _outside_by_split(data: bytes, json_escapes: bool) -> bytes:
    """The body without its strings, the plain way: drop JSON escapes, split on quotes, keep even pieces."""
    if json_escapes:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b" ".join(data.split(b'"')[0::2])


def test_the_skeleton_outside_strings_matches_splitting_on_quotes() -> None:
    """``body_problem`` slices between quotes instead of copying the body; on random bodies of quotes,
    backslashes and separators it keeps what the split keeps (backslashes aside: they are never
    counted), so the row and depth bounds see the same structure."""
    rng = np.random.default_rng(0)
    alphabet = [b'"', b"\\", b",", b"[", b"]", b"{", b"}", b"a", b"QUJD", b" "]
    for _ in range(3000):
        data = b"".join(rng.choice(alphabet, size=int(rng.integers(0, 40)), p=[0.2, 0.1] + [0.0875] * 8))
        codes = np.frombuffer(data, np.uint8)
        quotes = np.flatnonzero(codes == ord('"'))
        for json_escapes in (True, False):
            got = inputs._outside_strings(data, codes, quotes, json_escapes)
            want = _outside_by_split(data, json_escapes)
            assert got.replace(b"\\", b"") == want.replace(b"\\", b""), (data, json_escapes)
    media_body = json.dumps(
        {"dataframe_split": {"columns": ["text", "audio"], "data": [["\u00e9t\u00e9", "QUJD" * 1000]]}}
    )
    codes = np.frombuffer(media_body.encode(), np.uint8)
    quotes = np.flatnonzero(codes == ord('"'))
    assert b"QUJD" not in inputs._outside_strings(media_body.encode(), codes, quotes, True)


def test_csv_and_parquet_bodies_are_bounded_by_lines_and_the_parquet_footer() -> None:
    limits = Limits(max_rows=10)
    csv = pd.DataFrame({"text": ["a,\nb"] * 11, "lang": ["en"] * 11}).to_csv(index=False).encode()
    assert inputs.body_problem(csv[: csv.index(b"\n", 60)], "text/csv", limits) is None
    assert "CSV body has more than the limit of 10 rows" in inputs.body_problem(csv, "text/csv", limits)
    buf = io.BytesIO()
    pd.DataFrame({"text": ["a"] * 5000, "lang": ["en"] * 5000}).to_parquet(buf)
    assert len(buf.getvalue()) < 10_000  # a small body declaring many rows
    assert "Parquet body has 5,000 rows" in inputs.body_problem(
        buf.getvalue(), "application/x-parquet", limits
    )
    assert "not readable Parquet" in inputs.body_problem(b"PAR1garbage", "application/x-parquet", limits)
    assert "more than the limit of 100" in inputs.body_problem(
        b"x" * 101, "text/csv", Limits(max_request_bytes=100)
    )


def test_malformed_json_gets_a_short_reason_without_the_body() -> None:
    parsed, reason = pyfunc._parse_json(b'{"dataframe_records": [' + b'"x' * 100_000)
    assert parsed is None and reason.startswith("request body is not valid JSON") and len(reason) < 200
    assert "must be an object" in pyfunc._parse_json(b"[1, 2]")[1]
    assert "UnicodeDecodeError" in pyfunc._parse_json(b'{"a": "\xff"}')[1]


# --------------------------------------------------------------------------- per-row isolation
def good_row(world) -> dict:
    return {"text": world.posts["text"][0], "lang": "en", "image": None, "audio": None}


def test_a_symlink_loop_under_the_media_root_fails_only_its_row(
    world, predictor, monkeypatch, tmp_path
) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    monkeypatch.setenv("BABELFUSE_MEDIA_ROOT", str(tmp_path))
    frame = pd.DataFrame([good_row(world), {**good_row(world), "image": "loop/a.png"}])
    out = predictor.predict(frame)
    assert out["error"][0] is None and out["label"][0] is not None
    assert out["error"][1].startswith("row 1: image: ") and str(tmp_path) not in out["error"][1]


def test_a_lone_surrogate_in_text_fails_only_its_row(world, predictor) -> None:
    bad = "bad \ud800 text"
    frame = pd.DataFrame([good_row(world), {**good_row(world), "text": bad}], dtype=object)
    out = predictor.predict(frame)
    assert out["error"][0] is None
    assert out["error"][1] == "row 1: text: not valid Unicode: surrogates not allowed at character 4"
    parsed, _ = pyfunc._parse_json(b'{"dataframe_records": [{"text": "bad \\ud800 text", "lang": "en"}]}')
    records = parsed["dataframe_records"]
    assert predictor.predict(pd.DataFrame(records))["error"][0] == out["error"][1].replace("row 1", "row 0")


def test_an_encoder_failing_on_one_post_fails_only_that_post(world, predictor, monkeypatch) -> None:
    encoder = predictor.encoders["text"]
    original = encoder.encode

    def picky(texts):
        if any("poison" in t for t in texts):
            raise RuntimeError("/secret/server/path exploded")
        return original(texts)

    monkeypatch.setattr(encoder, "encode", picky)
    frame = pd.DataFrame([good_row(world), {**good_row(world), "text": "poison"}, good_row(world)])
    out = predictor.predict(frame)
    assert out["error"].isna().tolist() == [True, False, True]
    assert out["error"][1] == "row 1: post: cannot encode this post (RuntimeError)"
    np.testing.assert_allclose(out["prob_positive"][0], out["prob_positive"][2])


def test_errors_are_bounded_and_never_echo_large_inputs_or_the_media_root(
    world, predictor, monkeypatch, tmp_path
) -> None:
    huge = "x" * 1_000_000
    monkeypatch.setenv("BABELFUSE_MEDIA_ROOT", str(tmp_path))
    frame = pd.DataFrame(
        [
            {**good_row(world), "lang": huge},
            {**good_row(world), "audio": "clips/missing.wav"},
            {**good_row(world), "image": "A" * 5_000_000},
        ]
    )
    errors = predictor.predict(frame)["error"].tolist()
    assert errors[0].startswith("row 0: lang: 'xxxxxxxxxxxxxxxx...' is not a language code")
    assert all(len(e) <= len("row 0: image: ") + inputs.MAX_REASON_CHARS for e in errors)
    assert all(str(tmp_path) not in e for e in errors), errors
    assert "missing.wav" in errors[1]
