"""media.py: safe reading (root escape, base64, size limits) and decoding (corrupt data, bombs, resampling)."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from babelfuse.errors import BabelfuseError
from babelfuse.features.media import MediaLimits, decode_audio, decode_image, read_bytes


def _png(width: int = 20, height: int = 10, colour=(200, 30, 40), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _wav(y: np.ndarray, rate: int, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, rate, format=fmt)
    return buffer.getvalue()


@pytest.fixture()
def root(tmp_path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "images" / "a.png").write_bytes(_png())
    (tmp_path / "secret.png").write_bytes(_png())
    return data


def test_reads_a_relative_path_inside_the_root(root):
    assert read_bytes("images/a.png", root, 10_000) == (root / "images" / "a.png").read_bytes()


@pytest.mark.parametrize("escape", ["../secret.png", "images/../../secret.png"])
def test_path_escaping_the_root_is_rejected(root, escape):
    with pytest.raises(BabelfuseError, match="outside the data root"):
        read_bytes(escape, root, 10_000)


def test_absolute_path_is_rejected(root, tmp_path):
    with pytest.raises(BabelfuseError, match="absolute"):
        read_bytes(str(tmp_path / "secret.png"), root, 10_000)


def test_base64_plain_and_data_uri_are_decoded(root):
    payload = _png()
    plain = base64.b64encode(payload).decode()
    assert read_bytes(plain, root, 10_000) == payload
    assert read_bytes("data:image/png;base64," + plain, root, 10_000) == payload
    wrapped = "\n".join(plain[i : i + 60] for i in range(0, len(plain), 60))  # MIME-style line breaks
    assert read_bytes(wrapped, None, 10_000) == payload
    urlsafe = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    assert read_bytes(urlsafe, None, 10_000) == payload


def test_raw_bytes_pass_through_and_text_that_is_neither_path_nor_base64_fails(root):
    assert read_bytes(b"abc", root, 10) == b"abc"
    with pytest.raises(BabelfuseError, match="neither an existing file"):
        read_bytes("images/missing.png", root, 10_000)
    with pytest.raises(BabelfuseError, match="data URI"):
        read_bytes("data:image/png,not-base64", root, 10_000)


@pytest.mark.parametrize("form", ["bytes", "path", "base64"])
def test_oversize_payload_is_rejected(root, form):
    payload = (root / "images" / "a.png").read_bytes()
    source = {"bytes": payload, "path": "images/a.png", "base64": base64.b64encode(payload).decode()}[form]
    with pytest.raises(BabelfuseError, match="oversize"):
        read_bytes(source, root, len(payload) - 1)


def test_decode_image_gives_square_rgb_uint8_and_composites_alpha_on_white():
    rgb = decode_image(_png(40, 20, (200, 30, 40)), 16)
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[8, 8]) == (200, 30, 40)
    transparent = decode_image(_png(8, 8, (0, 0, 0, 0), mode="RGBA"), 8)
    assert (transparent == 255).all()
    grey = decode_image(_png(8, 8, 77, mode="L"), 8)
    assert (grey == 77).all()


@pytest.mark.parametrize(
    "data", [b"", b"not an image at all", _png()[:40]], ids=["empty", "text", "truncated"]
)
def test_corrupt_image_bytes_raise_a_clear_error(data):
    with pytest.raises(BabelfuseError, match="cannot decode image"):
        decode_image(data, 16)


def _with_header_size(png: bytes, width: int, height: int) -> bytes:
    """A valid PNG whose IHDR claims another size: what a decompression bomb looks like before loading."""
    start = 8 + 8  # signature, then chunk length + b"IHDR"
    ihdr = bytearray(png[start : start + 13])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return png[:start] + bytes(ihdr) + crc + png[start + 13 + 4 :]


def test_decompression_bomb_is_rejected_before_pixels_are_loaded():
    bomb = _with_header_size(_png(), 50_000, 50_000)  # 2.5 gigapixels claimed in a ~100 byte file
    assert len(bomb) < 200
    with pytest.raises(BabelfuseError, match="decompression bomb"):
        decode_image(bomb, 16)
    with pytest.raises(BabelfuseError, match="decompression bomb"):
        decode_image(_png(30, 30), 16, MediaLimits(image_max_pixels=899))


def test_audio_is_resampled_to_the_requested_rate_and_mixed_to_mono():
    rate, seconds, tone = 22_050, 1.0, 440.0
    t = np.arange(int(rate * seconds)) / rate
    stereo = np.stack([0.5 * np.sin(2 * np.pi * tone * t), 0.1 * np.sin(2 * np.pi * tone * t)], axis=1)
    y = decode_audio(_wav(stereo.astype(np.float32), rate), 16_000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == 16_000
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16_000 / len(y) - tone) < 2.0  # the tone survives resampling
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.02)  # channel mean


def test_audio_at_the_right_rate_is_untouched_and_flac_decodes():
    y = (0.25 * np.sin(np.arange(1600) / 5.0)).astype(np.float32)
    assert np.allclose(decode_audio(_wav(y, 16_000), 16_000), y, atol=1e-4)  # 16-bit PCM
    assert np.allclose(decode_audio(_wav(y, 16_000, "FLAC"), 16_000), y, atol=1e-4)


def test_corrupt_or_too_long_audio_raises_a_clear_error():
    with pytest.raises(BabelfuseError, match="cannot decode audio"):
        decode_audio(b"RIFF....WAVEnonsense", 16_000)
    with pytest.raises(BabelfuseError, match="cannot decode audio"):
        decode_audio(_png(), 16_000)
    with pytest.raises(BabelfuseError, match="longer|limit"):
        decode_audio(_wav(np.zeros(8000, np.float32), 8000), 16_000, MediaLimits(audio_max_seconds=0.5))
