"""Checking what a caller sends the served model: the request's shape, then each post.

Two kinds of bad input, handled differently (the policy is in ``babelfuse.serving``'s docstring):

* **Request errors** (:class:`RequestError`): the table itself is malformed — not a table, a
  required column missing, a column of the wrong type, more rows than ``max_rows``. Nothing can be
  answered, so the whole request fails (HTTP 400 from ``mlflow models serve``).
* **Post errors** (:class:`PostError`): one row is wrong — empty text, unknown language, an image or
  clip that cannot be read or decoded, an oversize media item, a media path where paths are not
  allowed. By default that row is answered with its ``error`` set and the others are predicted;
  with ``params={"on_error": "raise"}`` the first one fails the whole request instead.

A missing modality (null / None / NaN) is not an error: it becomes a zero vector with mask 0.
At least one modality must be present.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from babelfuse.errors import BabelfuseError
from babelfuse.features import media

REQUIRED_COLUMNS: tuple[str, ...] = ("text", "lang")
MEDIA_COLUMNS: tuple[str, ...] = ("image", "audio")
COLUMNS: tuple[str, ...] = (*REQUIRED_COLUMNS, *MEDIA_COLUMNS)
ON_ERROR: tuple[str, ...] = ("row", "raise")
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
_PATHS_HINT = (
    "file paths are read only when the server's BABELFUSE_MEDIA_ROOT names a folder to read them from "
    "(send the file's bytes as base64)"
)
_OBJECT_REPR = re.compile(
    r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>"
)  # PIL names its BytesIO: say nothing internal


class RequestError(BabelfuseError):
    """The request as a whole is malformed: nothing is answered."""


class PostError(BabelfuseError):
    """One post is unusable; ``row`` and ``field`` say where."""

    def __init__(self, row: int, field: str, reason: str) -> None:
        super().__init__(f"row {row}: {field}: {reason}")
        self.row, self.field, self.reason = row, field, reason


@dataclass(frozen=True)
class Limits:
    """What one request may carry (``params.yaml: register.max_*``, stored with the model)."""

    max_rows: int = 1024
    max_media_bytes: int = 10_000_000
    max_text_chars: int = 2000
    max_audio_seconds: float = 30.0


@dataclass
class Post:
    """One decoded post: None where a modality is missing."""

    text: str | None
    lang: str
    image: np.ndarray | None
    audio: np.ndarray | None


def is_null(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and np.isnan(value)


def check_request(data: Any, limits: Limits) -> pd.DataFrame:
    """The request as a frame with exactly :data:`COLUMNS` (absent media columns = all missing)."""
    if isinstance(data, dict):
        try:
            data = pd.DataFrame(data)
        except ValueError as err:
            raise RequestError(f"input must be a table with columns {list(COLUMNS)}: {err}") from None
    if not isinstance(data, pd.DataFrame):
        raise RequestError(
            f"input must be a table (DataFrame) with columns {list(COLUMNS)}, not {type(data).__name__}"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in data.columns]
    if missing:
        raise RequestError(
            f"input lacks column(s) {missing}; expected {list(REQUIRED_COLUMNS)} and optionally {list(MEDIA_COLUMNS)}"
        )
    if len(data) == 0:
        raise RequestError("input has no rows")
    if len(data) > limits.max_rows:
        raise RequestError(
            f"input has {len(data):,} rows, more than the limit of {limits.max_rows:,} per request "
            "(register.max_rows): split it into smaller requests"
        )
    frame = pd.DataFrame({c: data[c].tolist() if c in data.columns else [None] * len(data) for c in COLUMNS})
    for column in COLUMNS:
        allowed = (str,) if column in REQUIRED_COLUMNS else (str, bytes, bytearray)
        for i, value in enumerate(frame[column].tolist()):
            if not is_null(value) and not isinstance(value, allowed):
                kinds = "text" if column in REQUIRED_COLUMNS else "a file path or base64 text"
                raise RequestError(
                    f"row {i}: column '{column}' must be {kinds} or null, not {type(value).__name__} ({value!r:.40})"
                )
    return frame


def check_on_error(params: dict[str, Any] | None) -> str:
    value = (params or {}).get("on_error", "row")
    if value not in ON_ERROR:
        raise RequestError(f"params.on_error must be one of {list(ON_ERROR)}, not {value!r}")
    return str(value)


def media_bytes(source: str | bytes, root: Path | None, max_bytes: int) -> bytes:
    """A media item's bytes: raw bytes, a ``data:`` URI, base64, or (only when ``root`` is set) a path.

    Without a root no file is ever opened: the server's disk is not the caller's business.
    """
    if isinstance(source, bytes | bytearray):
        return media.read_bytes(bytes(source), None, max_bytes)
    text = source.strip()
    if not text:
        raise BabelfuseError("empty string (use null for a missing modality)")
    if text[:5].lower() == "data:":
        return media.read_bytes(text, None, max_bytes)
    if root is not None:
        return media.read_bytes(text, root, max_bytes)
    compact = "".join(text.split())
    if not _BASE64.match(compact) or len(compact) < 8:
        raise BabelfuseError(f"{_preview(text)} is not base64; {_PATHS_HINT}")
    if len(compact) * 3 // 4 > max_bytes:
        raise BabelfuseError(
            f"oversize base64 payload: ~{len(compact) * 3 // 4:,} bytes, more than the limit of {max_bytes:,} bytes"
        )
    padded = compact + "=" * (-len(compact) % 4)
    try:
        if "-" in padded or "_" in padded:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as err:
        raise BabelfuseError(f"{_preview(text)} is not valid base64 ({err})") from None


def check_post(
    i: int,
    row: dict[str, Any],
    languages: set[str],
    limits: Limits,
    root: Path | None,
    image_size: int,
    sample_rate: int,
) -> Post:
    """Validate and decode one row (raises :class:`PostError` naming the row and field)."""
    lang = row["lang"]
    if is_null(lang) or not str(lang).strip():
        raise PostError(i, "lang", "missing language code")
    lang = str(lang).strip().lower()
    if lang not in languages:
        raise PostError(i, "lang", f"unknown language {lang!r}; this model supports {sorted(languages)}")
    text = row["text"]
    if is_null(text):
        text = None
    elif not text.strip():
        raise PostError(i, "text", "empty text (use null for a post without text)")
    elif len(text) > limits.max_text_chars:
        raise PostError(
            i, "text", f"{len(text):,} characters, more than the limit of {limits.max_text_chars:,}"
        )
    decoded: dict[str, np.ndarray | None] = {}
    for column in MEDIA_COLUMNS:
        value = row[column]
        if is_null(value):
            decoded[column] = None
            continue
        try:
            data = media_bytes(value, root, limits.max_media_bytes)
            if column == "image":
                decoded[column] = media.decode_image(data, image_size)
            else:
                decoded[column] = media.decode_audio(data, sample_rate, max_seconds=limits.max_audio_seconds)
        except BabelfuseError as err:
            reason = _OBJECT_REPR.sub("", str(err))
            if (
                root is None
                and isinstance(value, str)
                and _looks_like_path(value)
                and "BABELFUSE_MEDIA_ROOT" not in reason
            ):
                reason += f" (read as base64; {_PATHS_HINT})"
            raise PostError(i, column, reason) from None
        except (OSError, ValueError, MemoryError) as err:
            raise PostError(i, column, f"cannot read or decode it ({type(err).__name__}: {err})") from None
    if text is None and decoded["image"] is None and decoded["audio"] is None:
        raise PostError(i, "text", "the post has no text, image or audio: nothing to predict from")
    return Post(text=text, lang=lang, image=decoded["image"], audio=decoded["audio"])


def _looks_like_path(text: str) -> bool:
    """Short text with a slash could be a path the caller meant (it is still tried as base64: /9j/ starts a JPEG)."""
    return len(text) < 1024 and ("/" in text or "\\" in text)


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
