"""media.py: safe reading (root escape, base64, size limits) and decoding (corrupt data, bombs, resampling)."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from babelfuse.errors import BabelfuseError
from babelfuse.features import media
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


# --- fast paths: the same bits (or the same error) as the general path they short-cut ----------


def _chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + b"\0" * (len(body) % 2)


def _fmt(channels: int, rate: int, bits: int = 16, tag: int = 1, extra: bytes = b"") -> bytes:
    align = channels * bits // 8
    byte_rate = rate * align % 2**32
    return _chunk(b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, byte_rate, align, bits) + extra)


def _riff(*chunks: bytes, size_error: int = 0) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) + size_error) + body


def _pcm16(frames: int, channels: int) -> bytes:
    ints = np.random.default_rng(frames + channels).integers(-32768, 32768, (frames, channels), np.int16)
    ints[:3] = np.array([[-32768], [32767], [0]], np.int16)[: len(ints)]  # both extremes and zero
    return ints.astype("<i2").tobytes()


def _sf_wav(channels: int, subtype: str, fmt: str = "WAV", rate: int = 16_000) -> bytes:
    y = np.random.default_rng(channels).uniform(-1, 1, (3000, channels)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, y, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _outcome(decode, *args):
    """An array's dtype, shape and bytes, or the error text: what "the same result" means here."""
    try:
        y = decode(*args)
    except BabelfuseError as err:
        return "error", str(err)
    return y.dtype.str, y.shape, y.tobytes()


def _general_audio(monkeypatch, data: bytes, rate: int, limits: MediaLimits):
    """decode_audio with the PCM-16 fast path turned off: soundfile reads everything."""
    with monkeypatch.context() as patched:
        patched.setattr(media, "_pcm16_wav_layout", lambda data: None)
        return _outcome(decode_audio, data, rate, limits)


def _previous_decode_audio(data: bytes, sample_rate: int) -> np.ndarray:
    """decode_audio before the fast paths, for valid clips: soundfile, numpy's channel mean, resample_poly."""
    from scipy.signal import resample_poly

    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1, dtype=np.float32)
    if rate != sample_rate:
        ratio = Fraction(sample_rate, rate).limit_denominator(1000)
        mono = resample_poly(mono, ratio.numerator, ratio.denominator).astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


PLAIN_WAVS = {
    "mono 16k": _riff(_fmt(1, 16_000), _chunk(b"data", _pcm16(4000, 1))),
    "stereo 44.1k": _riff(_fmt(2, 44_100), _chunk(b"data", _pcm16(4410, 2))),
    "mono 22.05k": _riff(_fmt(1, 22_050), _chunk(b"data", _pcm16(2205, 1))),
    "stereo 8k": _riff(_fmt(2, 8000), _chunk(b"data", _pcm16(800, 2))),
    "one frame": _riff(_fmt(1, 16_000), _chunk(b"data", _pcm16(1, 1))),
    "18-byte fmt": _riff(_fmt(1, 16_000, extra=b"\0\0"), _chunk(b"data", _pcm16(1600, 1))),
    "odd LIST before data": _riff(
        _fmt(1, 16_000), _chunk(b"LIST", b"INFOISFT\x05\0\0\0abcde"), _chunk(b"data", _pcm16(1600, 1))
    ),
    "JUNK before fmt": _riff(_chunk(b"JUNK", bytes(28)), _fmt(1, 16_000), _chunk(b"data", _pcm16(1600, 1))),
    "fact with a wrong count": _riff(
        _fmt(1, 16_000), _chunk(b"fact", struct.pack("<I", 7)), _chunk(b"data", _pcm16(1600, 1))
    ),
    "soundfile PCM_16": _sf_wav(2, "PCM_16"),
}


@pytest.mark.parametrize("name", list(PLAIN_WAVS))
def test_plain_pcm16_wav_takes_the_numpy_path_and_gives_soundfiles_bits(monkeypatch, name):
    data = PLAIN_WAVS[name]
    assert media._pcm16_wav_layout(data) is not None
    for rate in (16_000, 22_050):  # at the clip's rate or resampled
        got = _outcome(decode_audio, data, rate, MediaLimits())
        assert got == _general_audio(monkeypatch, data, rate, MediaLimits())
        expected = _previous_decode_audio(data, rate)
        assert got == (expected.dtype.str, expected.shape, expected.tobytes())


_good = PLAIN_WAVS["mono 16k"]
FALLBACK_WAVS = {
    **{
        f"{subtype} x{ch}": _sf_wav(ch, subtype) for subtype in ("PCM_24", "FLOAT", "PCM_U8") for ch in (1, 2)
    },
    "WAVEX PCM_16": _sf_wav(2, "PCM_16", "WAVEX"),
    "FLAC": _sf_wav(2, "PCM_16", "FLAC", 22_050),
    "chunk after data": _riff(_fmt(1, 16_000), _chunk(b"data", _pcm16(1600, 1)), _chunk(b"LIST", b"INFO")),
    "unknown chunk": _riff(_fmt(1, 16_000), _chunk(b"abcd", b"1234"), _chunk(b"data", _pcm16(1600, 1))),
    "fmt with an extension": _riff(_fmt(1, 16_000, extra=b"\2\0ab"), _chunk(b"data", _pcm16(1600, 1))),
    "RIFF size too big": _riff(_fmt(1, 16_000), _chunk(b"data", _pcm16(1600, 1)), size_error=2),
    "RIFF size too small": _riff(_fmt(1, 16_000), _chunk(b"data", _pcm16(1600, 1)), size_error=-2),
    "data size too big": _good[:40] + struct.pack("<I", 8100) + _good[44:],
    "data size too small": _good[:40] + struct.pack("<I", 7900) + _good[44:],
    "partial frame": _riff(_fmt(2, 16_000), _chunk(b"data", _pcm16(1600, 2) + b"\1\2")),
    "truncated": _good[:1001],
    "truncated header": _good[:40],
    "no data": _riff(_fmt(1, 16_000), _chunk(b"data", b"")),
    "rate 0": _riff(_fmt(1, 0), _chunk(b"data", _pcm16(100, 1))),
    "rate 2**31": _riff(_fmt(1, 2**31), _chunk(b"data", _pcm16(100, 1))),
    "no channels": _riff(_fmt(0, 16_000), _chunk(b"data", _pcm16(100, 1))),
    "1025 channels": _riff(_fmt(1025, 16_000), _chunk(b"data", _pcm16(10, 1025))),
    "big-endian RIFX": b"RIFX" + _good[4:],
}


@pytest.mark.parametrize("name", list(FALLBACK_WAVS))
def test_other_audio_goes_to_soundfile_with_the_same_result_or_error(monkeypatch, name):
    data = FALLBACK_WAVS[name]
    assert media._pcm16_wav_layout(data) is None
    for limits in (MediaLimits(), MediaLimits(audio_max_seconds=0.05)):
        assert _outcome(decode_audio, data, 16_000, limits) == _general_audio(
            monkeypatch, data, 16_000, limits
        )


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (MediaLimits(audio_max_seconds=0.2), "0.2 s long, more than the limit of 0.2 s"),
        (MediaLimits(audio_min_rate=20_000), "sample rate 16,000 Hz is outside 20,000-96,000 Hz"),
        (MediaLimits(audio_max_channels=0), "audio has 1 channels; at most 0 are accepted"),
    ],
)
def test_the_numpy_path_checks_the_header_limits_as_before(monkeypatch, limits, message):
    data = _riff(_fmt(1, 16_000), _chunk(b"data", _pcm16(4000, 1)))  # 0.25 s
    got = _outcome(decode_audio, data, 16_000, limits)
    assert got == _general_audio(monkeypatch, data, 16_000, limits)
    assert got[0] == "error" and message in got[1]


def test_corrupted_wav_headers_give_the_same_result_as_soundfile(monkeypatch):
    rng = np.random.default_rng(7)
    for k in range(150):
        data = bytearray(PLAIN_WAVS["odd LIST before data" if k % 2 else "stereo 8k"])
        for at in rng.integers(0, 64, rng.integers(1, 4)):
            data[at] = rng.integers(0, 256)
        data = bytes(data[: len(data) if k % 3 else int(rng.integers(0, len(data)))])
        assert _outcome(decode_audio, data, 16_000, MediaLimits()) == _general_audio(
            monkeypatch, data, 16_000, MediaLimits()
        ), k


def test_mono_mix_is_numpys_mean_bit_for_bit():
    specials = np.array([-0.0, 0.0, np.inf, -np.inf, 1e-45, -1e-45, 3.4e38, -3.4e38, 0.1], np.float32)
    noise = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    for samples in (np.concatenate([specials, noise])[:, None], np.stack([noise, noise[::-1]], axis=1)):
        assert media._mix_to_mono(samples).tobytes() == samples.mean(axis=1, dtype=np.float32).tobytes()


def _previous_decode_image(data: bytes, size: int) -> np.ndarray:
    """decode_image before the fast paths, for valid images: always exif_transpose, convert, resize."""
    from PIL import ImageOps

    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (size, size))
        img = ImageOps.exif_transpose(img)
        rgb = img.convert("RGB") if img.mode == "RGB" else media._to_rgb(img)
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(rgb, dtype=np.uint8).copy()


def _encoded(mode: str, fmt: str, width: int = 48, height: int = 32, **save) -> bytes:
    pixels = np.random.default_rng(width).integers(0, 256, (height, width, 4), np.uint8)
    img = Image.fromarray(pixels, "RGBA")
    img = img.convert("L").convert(mode) if mode.startswith("I") else img.convert(mode)
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def _orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


_XMP = '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
IMAGES = {
    "RGB PNG": _encoded("RGB", "PNG"),
    "RGB PNG at the target size": _encoded("RGB", "PNG", 32, 32),
    "RGBA PNG": _encoded("RGBA", "PNG"),
    "L PNG": _encoded("L", "PNG"),
    "P PNG with transparency": _encoded("P", "PNG", transparency=3),
    "I;16 PNG": _encoded("I;16", "PNG"),
    "RGB JPEG": _encoded("RGB", "JPEG"),
    "RGBA WebP": _encoded("RGBA", "WEBP"),
    **{
        f"EXIF orientation {v} {fmt}": _encoded("RGB", fmt, exif=_orientation(v))
        for v in (1, 3, 6, 8)
        for fmt in ("JPEG", "PNG", "WEBP")
    },
    "XMP orientation JPEG": _encoded("RGB", "JPEG", xmp=_XMP.encode()),
}


@pytest.mark.parametrize("name", list(IMAGES))
def test_decode_image_gives_the_previous_pipelines_bits(name):
    data = IMAGES[name]
    for size in (32, 96):
        got = decode_image(data, size)
        expected = _previous_decode_image(data, size)
        assert got.dtype == expected.dtype and got.shape == expected.shape and got.flags.writeable
        assert got.tobytes() == expected.tobytes()


def test_exif_and_xmp_orientations_are_still_applied():
    for data in (
        IMAGES["EXIF orientation 6 JPEG"],
        IMAGES["EXIF orientation 6 PNG"],
        IMAGES["XMP orientation JPEG"],
    ):
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            assert media._upright(img).size == (32, 48)  # 48x32 turned a quarter
    with Image.open(io.BytesIO(IMAGES["RGB PNG"])) as img:
        img.load()
        assert media._upright(img) is img  # no EXIF or XMP: nothing to turn, nothing copied
