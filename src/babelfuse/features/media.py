"""Reading and decoding media safely: used by the extract stage and by the serving pyfunc for uploads.

A media *source* is a path relative to the data root (resolved with ``resolve_inside`` so it cannot
escape it), base64 text (a ``data:<mime>;base64,`` URI or plain base64), or raw bytes. Everything is
size-checked before it is read or decoded, images are checked for decompression bombs before their
pixels are loaded, and every failure is a :class:`BabelfuseError` that says what was wrong.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from babelfuse.data.manifest import resolve_inside
from babelfuse.errors import BabelfuseError

# Pillow never tries EPS, PSD, ... (no external programs)
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP")
_MAX_RESAMPLE_DENOMINATOR = 1000  # keeps the polyphase filter small whatever the declared rate
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
_MAX_PATH_CHARS = 4096
_RIFF_HEADER = struct.Struct("<4sI4s")  # b"RIFF", size of the rest, b"WAVE"
_RIFF_CHUNK = struct.Struct("<4sI")  # id, size (then the body, padded to an even size)
_WAV_FORMAT = struct.Struct("<HHIIHH")  # format tag, channels, rate, byte rate, block align, bits
_WAVE_FORMAT_PCM = 1
_WAV_METADATA_CHUNKS = frozenset({b"LIST", b"JUNK", b"fact"})  # read past by libsndfile (tested)
_SNDFILE_MAX_CHANNELS = 1024  # libsndfile opens no WAV with more channels
# where Pillow's getexif() finds an EXIF orientation (TIFF tags aside: not one of IMAGE_FORMATS)
_ORIENTATION_INFO = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")


@dataclass(frozen=True)
class MediaLimits:
    """Bounds on one media file, checked on its header before any work proportional to its size.

    One object for the validate stage (``params.yaml: validate.*``) and the served model (stored in
    its ``serving.json``), so serving accepts what validation accepts. ``audio_sample_rate``,
    ``audio_min_seconds`` and ``audio_min_rms`` are data-quality checks of the validate stage only;
    the rest bounds decoding cost: the served model resamples any rate in
    ``[audio_min_rate, audio_max_rate]``.
    """

    image_max_side: int = 4096
    image_max_pixels: int = 4_000_000
    audio_sample_rate: int = 16000
    audio_min_seconds: float = 0.2
    audio_max_seconds: float = 30.0
    audio_min_rms: float = 0.001
    audio_min_rate: int = 4000
    audio_max_rate: int = 96000
    audio_max_channels: int = 2

    @classmethod
    def from_params(cls, params: dict[str, Any], **override: Any) -> MediaLimits:
        """The fields named in ``params`` (other keys ignored), then ``override``."""
        names = {f.name: type(getattr(cls, f.name)) for f in fields(cls)}
        chosen = {k: names[k](v) for k, v in {**params, **override}.items() if k in names}
        return cls(**chosen)

    @property
    def audio_max_frames(self) -> int:
        """Frames (per channel) a clip may decode to: the longest clip at the highest rate."""
        return int(self.audio_max_seconds * self.audio_max_rate)


def check_image_header(width: int, height: int, image_format: str | None, limits: MediaLimits) -> None:
    """Format, side and pixel count from the header, before any pixel is decoded."""
    if image_format not in IMAGE_FORMATS:
        raise BabelfuseError(f"image format {image_format} is not one of {list(IMAGE_FORMATS)}")
    if width <= 0 or height <= 0:
        raise BabelfuseError(f"image has an empty size {width}x{height}")
    if width * height > limits.image_max_pixels:
        raise BabelfuseError(
            f"image is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{limits.image_max_pixels:,} (possible decompression bomb)"
        )
    if max(width, height) > limits.image_max_side:
        raise BabelfuseError(
            f"image is {width}x{height}: a side is longer than the limit of {limits.image_max_side:,} pixels"
        )


def check_audio_header(rate: int, channels: int, frames: int, limits: MediaLimits) -> None:
    """Sample rate, channels and duration from the header, before any sample is decoded."""
    if not limits.audio_min_rate <= rate <= limits.audio_max_rate:
        raise BabelfuseError(
            f"audio sample rate {rate:,} Hz is outside {limits.audio_min_rate:,}-{limits.audio_max_rate:,} Hz"
        )
    if not 1 <= channels <= limits.audio_max_channels:
        raise BabelfuseError(
            f"audio has {channels} channels; at most {limits.audio_max_channels} are accepted"
        )
    if frames > limits.audio_max_seconds * rate:
        raise BabelfuseError(
            f"audio is {frames / rate:.1f} s long, more than the limit of {limits.audio_max_seconds:g} s"
        )


def read_bytes(source: str | bytes | bytearray | Path, root: Path | None, max_bytes: int) -> bytes:
    """The bytes of a media source, at most ``max_bytes`` of them.

    Strings are tried as a file under ``root`` first (when ``root`` is None, as a plain path), then
    as base64. A path that escapes ``root`` is never read: unless the text is valid base64, that
    escape is the error raised. Sizes are checked before anything is read or decoded.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        _check_size(len(data), max_bytes, "payload")
        return data
    if isinstance(source, Path):
        return _read_file(_resolve(str(source), root), max_bytes)
    if not isinstance(source, str):
        raise BabelfuseError(
            f"media source must be a path, base64 text or bytes, not {type(source).__name__}"
        )
    text = source.strip()
    if not text:
        raise BabelfuseError("media source is an empty string")
    if text[:5].lower() == "data:":
        return _decode_data_uri(text, max_bytes)
    path_error: BabelfuseError | None = None
    if len(text) <= _MAX_PATH_CHARS and "\n" not in text:
        try:
            path = _resolve(text, root)
            if path.is_file():
                return _read_file(path, max_bytes)
        except BabelfuseError as err:  # escapes the root: remember, but it may still be base64
            path_error = err
        except (OSError, RuntimeError, ValueError) as err:  # symlink loops, NUL bytes, permissions
            path_error = BabelfuseError(f"media path {_preview(text)} is not usable ({type(err).__name__})")
    decoded = _decode_base64(text, max_bytes)
    if decoded is not None:
        return decoded
    if path_error is not None:
        raise path_error
    where = f" under the data root {Path(root).resolve()}" if root is not None else ""
    raise BabelfuseError(f"media source {_preview(text)} is neither an existing file{where} nor valid base64")


def decode_image(data: bytes, size: int, limits: MediaLimits = MediaLimits()) -> np.ndarray:
    """Encoded PNG/JPEG/WebP bytes -> (size, size, 3) uint8 RGB; transparency is composited on white."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as img:
            check_image_header(*img.size, img.format, limits)
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when much larger than needed
            img.load()
            rgb = _to_rgb(_upright(img))
            if rgb.size != (size, size):  # resizing to its own size would only copy it
                rgb = rgb.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
            return np.asarray(rgb, dtype=np.uint8).copy()
    except BabelfuseError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise BabelfuseError(
            f"cannot decode image ({len(data):,} bytes; formats {list(IMAGE_FORMATS)}): {_clean(err)}"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise BabelfuseError(
            f"cannot decode image ({len(data):,} bytes): corrupt or truncated ({_clean(err)})"
        ) from None


def decode_audio(data: bytes, sample_rate: int, limits: MediaLimits = MediaLimits()) -> np.ndarray:
    """Encoded audio bytes (WAV, FLAC, OGG, MP3, ...) -> float32 mono at ``sample_rate``.

    The header is checked first (:func:`check_audio_header`); at most ``limits.audio_max_frames``
    frames are ever read, whatever the header claims; resampling uses a ratio with a small
    denominator, so its filter stays small for any accepted rate. A plain PCM-16 WAV is read with
    numpy (:func:`_pcm16_wav_layout`), to the samples soundfile gives for it; the rest by soundfile.
    """
    layout = _pcm16_wav_layout(data)
    if layout is not None:
        source_rate, samples = _read_pcm16(data, layout, limits)
    else:
        source_rate, samples = _read_soundfile(data, limits)
    if samples.shape[0] > int(limits.audio_max_seconds * source_rate):
        raise BabelfuseError(f"audio is longer than the limit of {limits.audio_max_seconds:g} s")
    if samples.size == 0:
        raise BabelfuseError("audio contains no samples")
    mono = _mix_to_mono(samples)
    if not np.all(np.isfinite(mono)):
        raise BabelfuseError("audio contains NaN or infinite samples")
    if source_rate != sample_rate:
        from scipy.signal import resample_poly  # slow to import: only resampling needs it

        ratio = Fraction(int(sample_rate), source_rate).limit_denominator(_MAX_RESAMPLE_DENOMINATOR)
        mono = resample_poly(mono, ratio.numerator, ratio.denominator).astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _read_soundfile(data: bytes, limits: MediaLimits) -> tuple[int, np.ndarray]:
    """``(rate, (frames, channels) float32)`` by soundfile: header checked, at most the limit + 1 frames read."""
    import soundfile as sf  # loads libsndfile: only audio that is not plain PCM-16 WAV needs it

    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            source_rate, channels = int(handle.samplerate), int(handle.channels)
            check_audio_header(source_rate, channels, max(int(handle.frames), 0), limits)
            cap = int(limits.audio_max_seconds * source_rate)
            return source_rate, handle.read(frames=cap + 1, dtype="float32", always_2d=True)
    except BabelfuseError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as err:
        raise BabelfuseError(f"cannot decode audio ({len(data):,} bytes): {_clean(err)}") from None


def _read_pcm16(
    data: bytes, layout: tuple[int, int, int, int], limits: MediaLimits
) -> tuple[int, np.ndarray]:
    """What :func:`_read_soundfile` returns for a plain PCM-16 WAV (``layout`` from :func:`_pcm16_wav_layout`).

    libsndfile turns 16-bit samples into floats as ``float(x) * (1 / 0x8000)``: exact in float32,
    so numpy gives the same bits.
    """
    rate, channels, offset, frames = layout
    check_audio_header(rate, channels, frames, limits)
    count = min(frames, int(limits.audio_max_seconds * rate) + 1)  # as soundfile's read(frames=cap + 1)
    ints = np.frombuffer(data, "<i2", count=count * channels, offset=offset).reshape(count, channels)
    return rate, np.multiply(ints, np.float32(1 / 0x8000), dtype=np.float32)


def _pcm16_wav_layout(data: bytes) -> tuple[int, int, int, int] | None:
    """``(rate, channels, data offset, frames)`` of a plain PCM-16 WAV; None for anything else.

    Plain: a ``RIFF`` size that matches the file, one ``fmt `` chunk (16 bytes, or 18 with an empty
    extension), then only LIST/JUNK/fact chunks before a ``data`` chunk that ends the file. Anything
    else (other encodings, WAVE_FORMAT_EXTENSIBLE, chunks after the data, sizes that disagree with
    the file) is None: soundfile decodes it, or refuses it with its own error, as before.
    """
    if len(data) < _RIFF_HEADER.size:
        return None
    riff, riff_size, wave = _RIFF_HEADER.unpack_from(data)
    if riff != b"RIFF" or wave != b"WAVE" or riff_size + 8 != len(data):
        return None
    pos, fmt = _RIFF_HEADER.size, None
    while pos + _RIFF_CHUNK.size <= len(data):
        chunk, size = _RIFF_CHUNK.unpack_from(data, pos)
        pos += _RIFF_CHUNK.size
        if pos + size > len(data):
            return None
        if chunk == b"data":
            return _pcm16_data_layout(fmt, pos, size, len(data))
        plain_fmt = size == 16 or (size == 18 and data[pos + 16 : pos + 18] == b"\0\0")
        if chunk == b"fmt " and fmt is None and plain_fmt:
            fmt = _WAV_FORMAT.unpack_from(data, pos)
        elif chunk not in _WAV_METADATA_CHUNKS:
            return None
        pos += size + (size & 1)  # chunks are padded to an even size
    return None


def _pcm16_data_layout(
    fmt: tuple[int, ...] | None, offset: int, size: int, total: int
) -> tuple[int, int, int, int] | None:
    """The layout of a ``data`` chunk (see :func:`_pcm16_wav_layout`) when ``fmt`` is consistent 16-bit PCM."""
    if fmt is None:
        return None
    tag, channels, rate, byte_rate, block_align, bits = fmt
    if tag != _WAVE_FORMAT_PCM or bits != 16:
        return None
    if not (1 <= channels <= _SNDFILE_MAX_CHANNELS and rate >= 1):
        return None  # libsndfile refuses the header: soundfile raises its own error
    if block_align != 2 * channels or byte_rate != rate * block_align:
        return None  # (a 32-bit byte rate also keeps the rate below 2**31, libsndfile's other bound)
    if size == 0 or size % block_align or offset + size != total:
        return None
    return rate, channels, offset, size // block_align


def _mix_to_mono(samples: np.ndarray) -> np.ndarray:
    """``samples.mean(axis=1, dtype=np.float32)``, bit for bit.

    For one channel that mean is the channel plus 0.0 (checked on all 2**32 float32 values; -0.0
    becomes 0.0), several times cheaper than numpy's reduction over an axis of length 1.
    """
    if samples.shape[1] == 1:
        return samples[:, 0] + np.float32(0.0)
    return samples.mean(axis=1, dtype=np.float32)


def _resolve(text: str, root: Path | None) -> Path:
    return resolve_inside(Path(root), text) if root is not None else Path(text)


def _read_file(path: Path, max_bytes: int) -> bytes:
    if not path.is_file():
        raise BabelfuseError(f"media file not found: {path}")
    _check_size(path.stat().st_size, max_bytes, f"file {path}")
    return path.read_bytes()


def _decode_data_uri(text: str, max_bytes: int) -> bytes:
    header, sep, payload = text.partition(",")
    if not sep or not header.lower().endswith(";base64"):
        raise BabelfuseError(f"data URI {_preview(text)} must look like data:<mime>;base64,<payload>")
    decoded = _decode_base64(payload.strip(), max_bytes)
    if decoded is None:
        raise BabelfuseError(f"data URI {_preview(text)} does not carry valid base64")
    return decoded


def _decode_base64(text: str, max_bytes: int) -> bytes | None:
    """Strict base64 (standard or URL-safe, whitespace allowed) or None; size checked before decoding."""
    compact = "".join(text.split())
    if not compact or not _BASE64_CHARS.match(compact):
        return None
    _check_size(len(compact) * 3 // 4, max_bytes, "base64 payload")
    padded = compact + "=" * (-len(compact) % 4)
    try:
        if "-" in padded or "_" in padded:
            data = base64.urlsafe_b64decode(padded)
        else:
            data = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not data:
        return None
    _check_size(len(data), max_bytes, "base64 payload")
    return data


def _check_size(n_bytes: int, max_bytes: int, what: str) -> None:
    if n_bytes > max_bytes:
        raise BabelfuseError(
            f"oversize {what}: {n_bytes:,} bytes, more than the limit of {max_bytes:,} bytes"
        )


def _upright(img):
    """The image turned as its EXIF orientation says (``ImageOps.exif_transpose``).

    Pillow reads an orientation only from the ``info`` entries named in ``_ORIENTATION_INFO``:
    without any of them there is none to apply, and the image itself is returned
    (``exif_transpose`` would return a copy).
    """
    from PIL import ImageOps

    if not any(key in img.info for key in _ORIENTATION_INFO):
        return img
    return ImageOps.exif_transpose(img)


def _to_rgb(img):
    """Any PIL mode -> RGB (an RGB image itself); alpha (also palette transparency) is composited on white."""
    from PIL import Image

    if img.mode == "RGB":
        return img  # convert("RGB") would only copy it
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in {"I;16", "I;16B", "I;16L", "I"}:  # 16/32-bit greyscale: scale to 8 bits
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        return Image.fromarray((arr / top * 255.0).astype(np.uint8), mode="L").convert("RGB")
    return img.convert("RGB")


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _clean(err: Exception) -> str:
    """A library's error text without object reprs like ``<_io.BytesIO object at 0x...>``."""
    return re.sub(r"<[^<>]* object at 0x[0-9a-f]+>", "the data", str(err))
