"""Pure per-row checks: paths, images, audio, text encoding, string types, class balance (no GX)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from babelfuse.validation.media_checks import MediaLimits, check_audio, check_image, check_path, media_columns
from babelfuse.validation.row_checks import as_text_column, class_balance, text_encoding_problem
from helpers.validation import png_header_only, write_png, write_wav

LIMITS = MediaLimits()


def test_limits_from_params_reads_validate_section():
    limits = MediaLimits.from_params({"image_max_side": "64", "audio_min_rms": 0.5, "on_failure": "fail"})
    assert limits.image_max_side == 64 and limits.audio_min_rms == 0.5
    assert limits.audio_sample_rate == 16000


def test_check_path(tmp_path):
    root = tmp_path / "root"
    write_png(root / "images" / "a.png")
    write_png(tmp_path / "outside.png")
    full, reason = check_path(root, "images/a.png", "image_path")
    assert reason is None and full == (root / "images" / "a.png").resolve()
    assert "is absolute" in check_path(root, str(root / "images" / "a.png"), "image_path")[1]
    assert "escapes the data root" in check_path(root, "../outside.png", "image_path")[1]
    assert "escapes the data root" in check_path(root, "images/../../outside.png", "image_path")[1]
    assert "file not found" in check_path(root, "images/b.png", "image_path")[1]
    assert "file not found" in check_path(root, "images", "image_path")[1]  # a folder is not a file
    assert "is empty" in check_path(root, " ", "image_path")[1]
    assert "not a usable path" in check_path(root, "images/a\x00.png", "image_path")[1]


def test_symlink_out_of_root_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    target = write_png(tmp_path / "secret.png")
    (root / "link.png").symlink_to(target)
    assert "escapes the data root" in check_path(root, "link.png", "image_path")[1]


def test_check_image(tmp_path):
    assert check_image(write_png(tmp_path / "ok.png", size=(96, 96)), LIMITS) is None
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"this is not an image at all")
    assert "does not decode" in check_image(corrupt, LIMITS)
    good = write_png(tmp_path / "full.png", size=(64, 64)).read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good[: len(good) // 2])
    assert "does not decode" in check_image(truncated, LIMITS)


def test_image_size_is_checked_from_the_header_before_decoding(tmp_path):
    # a few hundred bytes on disk, 9 megapixels claimed: refused without decoding (the IDAT is bogus)
    pixels = png_header_only(tmp_path / "pixels.png", 3000, 3000)
    assert pixels.stat().st_size < 200
    assert "validate.image_max_pixels=4000000" in check_image(pixels, LIMITS)
    side = png_header_only(tmp_path / "side.png", 5000, 10)
    assert "validate.image_max_side=4096" in check_image(side, LIMITS)
    # within generous limits the bogus data would fail to decode: proves the header check came first
    assert "does not decode" in check_image(
        pixels, MediaLimits(image_max_side=10**6, image_max_pixels=10**12)
    )


def test_pillow_decompression_bomb_guard_still_applies(tmp_path):
    bomb = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    generous = MediaLimits(image_max_side=10**7, image_max_pixels=10**12)
    assert "decompression bomb" in check_image(bomb, generous)
    warn_size = png_header_only(tmp_path / "warn.png", 10_000, 10_000)  # above MAX_IMAGE_PIXELS, below 2x
    assert "decompression bomb" in check_image(warn_size, generous)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, None),
        ({"rate": 8000}, "sample rate 8000 Hz != validate.audio_sample_rate=16000"),
        ({"seconds": 0.05}, "shorter than validate.audio_min_seconds"),
        ({"seconds": 31.0}, "longer than validate.audio_max_seconds"),
        ({"amplitude": 0.0}, "silent"),
        ({"amplitude": 0.0005}, "RMS 0.00035 < validate.audio_min_rms=0.001"),
    ],
)
def test_check_audio(tmp_path, kwargs, expected):
    reason = check_audio(write_wav(tmp_path / "a.wav", **kwargs), LIMITS)
    assert reason is None if expected is None else expected in reason


def test_corrupt_audio(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    assert "does not decode" in check_audio(bad, LIMITS)
    good = write_wav(tmp_path / "good.wav", seconds=1.0).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good[:30])  # header cut in the middle
    assert "does not decode" in check_audio(cut, LIMITS)


def test_media_columns_null_means_missing_modality(tmp_path):
    root = tmp_path
    write_png(root / "i.png")
    write_wav(root / "a.wav")
    (root / "bad.png").write_bytes(b"nope")
    paths = {
        "image": pd.Series(["i.png", None, "bad.png", "../x.png"]),
        "audio": pd.Series(["a.wav", "a.wav", None, None]),
    }
    frame, rows_per_second = media_columns(paths, root, LIMITS, progress=False)
    assert rows_per_second > 0
    assert frame["image_path_ok"].tolist() == [True, None, True, False]
    assert frame["image_ok"].tolist() == [True, None, False, None]  # bad path: decode not counted again
    assert frame["audio_ok"].tolist() == [True, True, None, None]
    assert "does not decode" in frame.loc[2, "image_reason"]
    assert "escapes" in frame.loc[3, "image_reason"]


def test_text_encoding_problem():
    assert text_encoding_problem("héllo 日本語 مرحبا") is None
    assert "lone surrogate" in text_encoding_problem("bad \udc80 byte")
    assert "U+FFFD" in text_encoding_problem("caf\ufffd")


def test_as_text_column_flags_non_text_values():
    clean, wrong = as_text_column(pd.Series(["a", None, 3, np.nan, np.array([1, 2])], dtype=object))
    assert clean.tolist() == ["a", None, None, None, None]
    assert wrong.tolist() == [None, None, "int", None, "ndarray"]
    clean, wrong = as_text_column(pd.Series(["x", None], dtype="str"))
    assert clean.tolist() == ["x", None] and wrong.isna().all()


def test_class_balance_ratio_per_split():
    frame = pd.DataFrame(
        {
            "split": ["train"] * 8 + ["val"] * 2 + ["bogus"],
            "label": ["positive"] * 6 + ["negative", "neutral"] + ["positive", "negative"] + ["neutral"],
        }
    )
    balance = class_balance(frame, 3.0).set_index("split")
    assert balance.loc["train", "ratio"] == 6.0 and balance.loc["train", "positive"] == 6
    assert balance.loc["val", "ratio"] == float("inf")  # no neutral row in val
    assert "test" not in balance.index and "bogus" not in balance.index
