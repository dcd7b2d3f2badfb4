"""Checking what a caller sends the served model: the request's shape, then each post.

Two kinds of bad input, handled differently (the policy is in ``babelfuse.serving``'s docstring):

* **Request errors** (:class:`RequestError`): the table itself is malformed — not a table, a
  required column missing, a column of the wrong type, more rows than ``max_rows``. Nothing can be
  answered, so the whole request fails (HTTP 400 from ``mlflow models serve``).
* **Post errors** (:class:`PostError`): one row is wrong — empty text, a language the text encoder
  does not cover (or no language code at all), an image or
  clip that cannot be read or decoded, an oversize media item, a media path where paths are not
  allowed. By default that row is answered with its ``error`` set and the others are predicted;
  with ``params={"on_error": "raise"}`` the first one fails the whole request instead.

A missing modality (null / None / NaN) is not an error: it becomes a zero vector with mask 0.
At least one modality must be present. ``lang`` is optional: a missing one is identified from the
text (:class:`Languages`); a post without text or language has none (it is not used to predict).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pybase64

from babelfuse.data.manifest import is_null
from babelfuse.errors import BabelfuseError
from babelfuse.features import media
from babelfuse.features.coverage import ANY_LANGUAGE, canonical_language
from babelfuse.features.media import MediaLimits
from babelfuse.serving.language_id import identify_within

REQUIRED_COLUMNS: tuple[str, ...] = ("text",)
TEXT_COLUMNS: tuple[str, ...] = ("text", "lang")  # cells are text or null
MEDIA_COLUMNS: tuple[str, ...] = ("image", "audio")
COLUMNS: tuple[str, ...] = (*TEXT_COLUMNS, *MEDIA_COLUMNS)
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in REQUIRED_COLUMNS)
ON_ERROR: tuple[str, ...] = ("row", "raise")
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
_URLSAFE = str.maketrans("-_", "+/")
_PATHS_HINT = (
    "file paths are read only when the server's BABELFUSE_MEDIA_ROOT names a folder to read them from "
    "(send the file's bytes as base64)"
)
MAX_REASON_CHARS = 200  # an error names row, field and reason; never more than this of the reason
INVALID_UNICODE = (
    "\x00invalid unicode\x00"  # marks a string that could not be kept (see mark_invalid_unicode)
)
MAX_JSON_DEPTH = 32  # a request table is 3-4 levels deep
_OBJECT_REPR = re.compile(
    r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>"
)  # PIL names its BytesIO: say nothing internal


class RequestError(BabelfuseError):
    """The request as a whole is malformed: nothing is answered."""


class PostError(BabelfuseError):
    """One post is unusable; ``row`` and ``field`` say where."""

    def __init__(self, row: int, field: str, reason: str) -> None:
        reason = shorten(reason)
        super().__init__(f"row {row}: {field}: {reason}")
        self.row, self.field, self.reason = row, field, reason


@dataclass(frozen=True)
class Limits:
    """What one request may carry (``params.yaml: register.max_*``, stored with the model).

    ``media`` bounds each decoded image and clip: the validate stage's :class:`MediaLimits` (same
    class, same values), with ``register.max_audio_seconds`` as the clip length.
    """

    max_rows: int = 1024
    max_media_bytes: int = 10_000_000
    max_text_chars: int = 2000
    max_request_bytes: int = 128_000_000
    media: MediaLimits = field(default_factory=MediaLimits)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Limits:
        """The ``limits`` of a ``serving.json`` (as :meth:`to_config` wrote them)."""
        values = dict(config)
        media_values = values.pop("media", {})
        return cls(**values, media=MediaLimits(**media_values))

    def to_config(self) -> dict[str, Any]:
        return asdict(self)


def shorten(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """At most ``limit`` characters of ``text`` (a bounded error message, whatever the input)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Post:
    """One decoded post: None where a modality is missing.

    ``lang`` is the caller's code in babelfuse's spelling, or the identified one (then also
    ``lang_detected``); None when the post has neither a code nor text.
    """

    text: str | None
    lang: str | None
    image: np.ndarray | None
    audio: np.ndarray | None
    lang_detected: str | None = None


@dataclass(frozen=True)
class Languages:
    """The languages a served model accepts (its text encoder's coverage) and those it was trained on.

    ``covered`` None means any code (``features.text.languages: any``, or an ``hf:`` encoder that
    declares none). ``identify`` names the language of a text, within ``covered``.
    """

    encoder: str
    covered: frozenset[str] | None
    trained: frozenset[str]
    identify: Callable[[str], str]

    def check(self, i: int, code: Any, text: str | None) -> tuple[str | None, str | None]:
        """``(lang, lang_detected)`` of row ``i``: the caller's code, or the text's identified language."""
        if is_null(code) or (isinstance(code, str) and not code.strip()):
            if text is None:
                return None, None
            detected = self.identify(text)
            return detected, detected
        lang = canonical_language(code, self.covered)
        if lang is None:
            raise PostError(
                i, "lang", f"{_preview(str(code), 16)} is not a language code (e.g. pt, pt-BR, zh-TW)"
            )
        if self.covered is not None and lang not in self.covered:
            raise PostError(
                i,
                "lang",
                f"language {lang!r} is not covered by the text encoder {self.encoder}; "
                f"covered: {', '.join(sorted(self.covered))}",
            )
        return lang, None

    def seen_in_training(self, lang: str | None) -> bool | None:
        """Whether the model was trained on posts in ``lang`` (a region variant counts as its base)."""
        if lang is None:
            return None
        return lang in self.trained or lang.split("-")[0] in self.trained


def served_languages(cfg: dict[str, Any]) -> Languages:
    """The languages of a ``serving.json``: covered (``"any"`` or a list) and trained on."""
    covered = cfg["covered_languages"]
    accepted = None if covered == ANY_LANGUAGE else frozenset(covered)
    return Languages(
        encoder=str(cfg["features"]["text"]["encoder"]),
        covered=accepted,
        trained=frozenset(cfg["train_languages"]),
        identify=identify_within(accepted),
    )


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
            f"input lacks column(s) {missing}; expected {list(REQUIRED_COLUMNS)} and optionally {list(OPTIONAL_COLUMNS)}"
        )
    if len(data) == 0:
        raise RequestError("input has no rows")
    if len(data) > limits.max_rows:
        raise RequestError(
            f"input has {len(data):,} rows, more than the limit of {limits.max_rows:,} per request "
            "(register.max_rows): split it into smaller requests"
        )
    frame = (
        pd.DataFrame(  # object columns: any Python string survives (pandas' string dtype refuses surrogates)
            {c: data[c].tolist() if c in data.columns else [None] * len(data) for c in COLUMNS}, dtype=object
        )
    )
    for column in COLUMNS:
        allowed = (str,) if column in TEXT_COLUMNS else (str, bytes, bytearray)
        for i, value in enumerate(frame[column].tolist()):
            if not is_null(value) and not isinstance(value, allowed):
                kinds = "text" if column in TEXT_COLUMNS else "a file path or base64 text"
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
    # line-wrapped base64; `in` scans are ~100x faster than a regex over a 200 kB payload
    compact = "".join(text.split()) if any(c in text for c in " \n\r\t\f\v") else text
    if len(compact) * 3 // 4 > max_bytes:
        raise BabelfuseError(
            f"oversize base64 payload: ~{len(compact) * 3 // 4:,} bytes, more than the limit of {max_bytes:,} bytes"
        )
    decoded = _decode_base64(text, compact)
    if len(compact) < 8:
        raise BabelfuseError(f"{_preview(text)} is not base64; {_PATHS_HINT}")
    return decoded


def _decode_base64(text: str, compact: str) -> bytes:
    """Strict base64 (standard or URL-safe alphabet, padding optional) or the error saying what is wrong."""
    standard = compact.translate(_URLSAFE) if "-" in compact or "_" in compact else compact
    padded = standard + "=" * (-len(standard) % 4)
    try:
        # pybase64 (SIMD): ~70x the standard library's speed on a 250 kB clip, same strict rules;
        # validate=True refuses any character outside the alphabet: no separate scan of the payload
        return pybase64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:  # refused: the standard library's own error wording
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as err:
        if not _BASE64.match(compact):
            raise BabelfuseError(f"{_preview(text)} is not base64; {_PATHS_HINT}") from None
        raise BabelfuseError(f"{_preview(text)} is not valid base64 ({err})") from None


def check_text(i: int, text: Any, limits: Limits) -> str | None:
    """Row ``i``'s text, None when missing; a :class:`PostError` when it is not usable text."""
    if is_null(text):
        return None
    if _unencodable(text) is not None:
        raise PostError(i, "text", f"not valid Unicode: {_unencodable(text)}")
    if not text.strip():
        raise PostError(i, "text", "empty text (use null for a post without text)")
    if len(text) > limits.max_text_chars:
        raise PostError(
            i, "text", f"{len(text):,} characters, more than the limit of {limits.max_text_chars:,}"
        )
    return text


def check_post(
    i: int,
    row: dict[str, Any],
    languages: Languages,
    limits: Limits,
    root: Path | None,
    image_size: int,
    sample_rate: int,
) -> Post:
    """Validate and decode one row (raises :class:`PostError` naming the row and field)."""
    text = check_text(i, row["text"], limits)
    lang, detected = languages.check(i, row["lang"], text)
    decoded = {
        column: _decode_column(i, column, row[column], limits, root, image_size, sample_rate)
        for column in MEDIA_COLUMNS
    }
    if text is None and decoded["image"] is None and decoded["audio"] is None:
        raise PostError(i, "text", "the post has no text, image or audio: nothing to predict from")
    return Post(text=text, lang=lang, image=decoded["image"], audio=decoded["audio"], lang_detected=detected)


def _decode_column(
    i: int, column: str, value: Any, limits: Limits, root: Path | None, image_size: int, sample_rate: int
) -> np.ndarray | None:
    """One media cell decoded (None when missing); any failure is this row's :class:`PostError`."""
    if is_null(value):
        return None
    try:
        data = media_bytes(value, root, limits.max_media_bytes)
        if column == "image":
            return media.decode_image(data, image_size, limits.media)
        return media.decode_audio(data, sample_rate, limits.media)
    except BabelfuseError as err:
        reason = _scrub(_OBJECT_REPR.sub("", str(err)), root)
        if (
            root is None
            and isinstance(value, str)
            and _looks_like_path(value)
            and "BABELFUSE_MEDIA_ROOT" not in reason
        ):
            reason = f"{shorten(reason, 120)} (read as base64; {_PATHS_HINT})"
        raise PostError(i, column, reason) from None
    except MemoryError:
        raise PostError(i, column, "too large to decode") from None
    except Exception as err:  # noqa: BLE001 - a decoder's surprise is this row's problem, not the request's
        raise PostError(i, column, f"cannot read or decode it ({type(err).__name__})") from None


def _scrub(reason: str, root: Path | None) -> str:
    """The reason without the server's media root (callers name paths relative to it)."""
    if root is None:
        return reason
    for folder in {str(Path(root).resolve()), str(root)}:
        reason = reason.replace(folder, "$BABELFUSE_MEDIA_ROOT")
    return reason


def mark_invalid_unicode(value: Any) -> Any:
    """A parsed JSON value with each string that is not valid Unicode replaced by a marked reason.

    JSON may escape lone surrogates (``"\\ud800"``); pandas' string columns cannot hold them, so the
    whole request would fail while being parsed. Marked, the string fails only its own row.
    """
    if isinstance(value, str):
        reason = _encoding_problem(value)
        return value if reason is None else INVALID_UNICODE + reason
    if isinstance(value, list):
        return [mark_invalid_unicode(v) for v in value]
    if isinstance(value, dict):
        return {mark_invalid_unicode(k): mark_invalid_unicode(v) for k, v in value.items()}
    return value


def _encoding_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"{err.reason} at character {err.start}"
    return None


def _unencodable(text: str) -> str | None:
    """Why ``text`` is not valid Unicode (a lone surrogate, maybe marked while parsing), or None."""
    if text.startswith(INVALID_UNICODE):
        return text[len(INVALID_UNICODE) :]
    return _encoding_problem(text)


def body_problem(data: bytes, content_type: str | None, limits: Limits) -> str | None:
    """Why a raw request body is refused before it is parsed, or None.

    Cheap scans in C over the bytes: the size, then an upper bound on the rows (JSON: values outside
    strings and nesting depth; CSV: lines outside quotes; Parquet: the footer's row count and
    uncompressed size). A body that passes costs at most a bounded parse.
    """
    if len(data) > limits.max_request_bytes:
        return f"request body is {len(data):,} bytes, more than the limit of {limits.max_request_bytes:,} (register.max_request_mb)"
    kind = (content_type or "").split(";")[0].strip().lower()
    too_many = f"more than the limit of {limits.max_rows:,} rows per request (register.max_rows): split it"
    if kind == "application/x-parquet":
        return _parquet_problem(data, limits, too_many)
    if kind not in ("application/json", "text/csv"):
        return None
    bound = 4 * len(COLUMNS) * limits.max_rows + 64  # quotes, commas, brackets, lines of max_rows rows
    codes = np.frombuffer(data, np.uint8)
    quotes = np.flatnonzero(codes == ord('"'))
    n_quotes = len(quotes)
    if n_quotes > bound and kind == "application/json":  # escaped quotes do not end strings
        n_quotes += data.count(b'\\\\"') - data.count(b'\\"')
    if n_quotes > bound:
        return f"request body holds too many quoted values: {too_many}"
    outside = _outside_strings(data, codes, quotes, json_escapes=kind == "application/json")
    if kind == "text/csv":
        return f"CSV body has {too_many}" if outside.count(b"\n") > limits.max_rows + 1 else None
    if max(outside.count(b","), outside.count(b"["), outside.count(b"{")) > bound:
        return f"request body holds too many JSON values: {too_many}"
    return _json_depth_problem(outside)


def _outside_strings(data: bytes, codes: np.ndarray, quotes: np.ndarray, json_escapes: bool) -> bytes:
    """``data`` without its quoted strings (the pieces between them joined by spaces).

    ``quotes`` are the positions of every ``"`` in ``data`` (``codes``, its bytes). When no quote
    is preceded by a backslash, every quote opens or closes a string, so the pieces are sliced
    between them without copying the strings (a 70 MB body of base64 media: ~20 ms instead of
    ~200). Otherwise JSON escapes are dropped first, which copies the body.
    """
    if json_escapes and (codes[quotes[quotes > 0] - 1] == ord("\\")).any():
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
        return b" ".join(data.split(b'"')[0::2])
    bounds = np.concatenate([[-1], quotes, [len(data)]])  # piece k of data.split(b'"') ends at bounds[k + 1]
    pieces = len(quotes) // 2 + 1  # the even pieces: outside every string
    starts, ends = (bounds[0::2][:pieces] + 1).tolist(), bounds[1::2][:pieces].tolist()
    return b" ".join([data[a:b] for a, b in zip(starts, ends, strict=True)])


def stream_separator_limit(limits: Limits) -> int:
    """Most quotes (or commas) a legitimate JSON/CSV body can hold: structure plus every text character.

    Checked on each chunk while the body is read, so a row flood is stopped after a few MB instead
    of being read whole; :func:`body_problem` then checks the exact structure of what was read.
    """
    return 4 * len(COLUMNS) * limits.max_rows + 64 + 2 * limits.max_rows * limits.max_text_chars


def _json_depth_problem(skeleton: bytes) -> str | None:
    depth = deepest = 0
    for char in re.findall(rb"[\[\]{}]", skeleton):
        depth += 1 if char in (b"[", b"{") else -1
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return f"request JSON is nested more than {MAX_JSON_DEPTH} levels deep"
    return None


def _parquet_problem(data: bytes, limits: Limits, too_many: str) -> str | None:
    import pyarrow.parquet as pq  # only Parquet bodies need it

    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
    except Exception as err:  # noqa: BLE001 - any unreadable footer is a malformed body
        return f"request body is not readable Parquet ({type(err).__name__})"
    if meta.num_rows > limits.max_rows:
        return f"Parquet body has {meta.num_rows:,} rows, {too_many}"
    unpacked = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
    if unpacked > limits.max_request_bytes:
        return (
            f"Parquet body unpacks to {unpacked:,} bytes, more than the limit of {limits.max_request_bytes:,}"
        )
    return None


def _looks_like_path(text: str) -> bool:
    """Short text with a slash could be a path the caller meant (it is still tried as base64: /9j/ starts a JPEG)."""
    return len(text) < 1024 and ("/" in text or "\\" in text)


def _preview(text: str, limit: int = 40) -> str:
    return (
        repr(text if len(text) <= limit else text[:limit] + "...")
        .encode("utf-8", "backslashreplace")
        .decode()
    )
