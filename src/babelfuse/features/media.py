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
from math import gcd
from pathlib import Path

import numpy as np

from babelfuse.data.manifest import resolve_inside
from babelfuse.errors import BabelfuseError

DEFAULT_MAX_PIXELS = 40_000_000  # 40 MP: far above any real photo we need, far below a bomb
DEFAULT_MAX_SECONDS = 600.0
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
_MAX_PATH_CHARS = 4096


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
        except OSError:
            pass
    decoded = _decode_base64(text, max_bytes)
    if decoded is not None:
        return decoded
    if path_error is not None:
        raise path_error
    where = f" under the data root {Path(root).resolve()}" if root is not None else ""
    raise BabelfuseError(f"media source {_preview(text)} is neither an existing file{where} nor valid base64")


def decode_image(data: bytes, size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Encoded image bytes -> (size, size, 3) uint8 RGB; transparency is composited on white."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width <= 0 or height <= 0:
                raise BabelfuseError(f"image has an empty size {width}x{height}")
            if width * height > max_pixels:
                raise BabelfuseError(
                    f"image is {width}x{height} = {width * height:,} pixels, more than the limit of "
                    f"{max_pixels:,} (possible decompression bomb)"
                )
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when much larger than needed
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
            return np.asarray(rgb, dtype=np.uint8).copy()
    except BabelfuseError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise BabelfuseError(f"cannot decode image ({len(data):,} bytes): {_clean(err)}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise BabelfuseError(
            f"cannot decode image ({len(data):,} bytes): corrupt or truncated ({err})"
        ) from None


def decode_audio(data: bytes, sample_rate: int, max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """Encoded audio bytes (WAV, FLAC, OGG, MP3, ...) -> float32 mono at ``sample_rate``."""
    import soundfile as sf
    from scipy.signal import resample_poly

    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            source_rate = int(handle.samplerate)
            frames = int(handle.frames)
            if source_rate <= 0:
                raise BabelfuseError(f"audio has an invalid sample rate {source_rate}")
            if frames > max_seconds * source_rate:
                raise BabelfuseError(
                    f"audio is {frames / source_rate:.1f} s long, more than the limit of {max_seconds:g} s"
                )
            samples = handle.read(dtype="float32", always_2d=True)
    except BabelfuseError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise BabelfuseError(f"cannot decode audio ({len(data):,} bytes): {_clean(err)}") from None
    if samples.size == 0:
        raise BabelfuseError("audio contains no samples")
    mono = samples.mean(axis=1, dtype=np.float32)
    if not np.all(np.isfinite(mono)):
        raise BabelfuseError("audio contains NaN or infinite samples")
    if source_rate != sample_rate:
        common = gcd(source_rate, int(sample_rate))
        mono = resample_poly(mono, int(sample_rate) // common, source_rate // common).astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


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


def _to_rgb(img):
    """Any PIL mode -> RGB; alpha (also palette transparency) is composited on white."""
    from PIL import Image

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
