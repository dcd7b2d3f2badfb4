"""media_bytes decodes base64 with pybase64 (SIMD): the same bytes as base64.b64decode, the same
refusals, and the standard library's own wording for them."""

from __future__ import annotations

import base64
import binascii
import re

import numpy as np
import pytest

from babelfuse.errors import BabelfuseError
from babelfuse.serving import inputs

BIG = 32_768  # characters: the size of a small clip's base64


def _payload(n_bytes: int) -> bytes:
    return np.random.default_rng(n_bytes).integers(0, 256, n_bytes, np.uint8).tobytes()


def _outcome(text: str) -> tuple[str, bytes | str]:
    try:
        return "bytes", inputs.media_bytes(text, None, 10_000_000)
    except BabelfuseError as err:
        return "error", str(err)


def _refuse(*_args, **_kwargs):
    raise binascii.Error("pybase64 turned off by the test")


def _reference(monkeypatch, text: str) -> tuple[str, bytes | str]:
    """media_bytes with pybase64 turned off: base64.b64decode decides everything."""
    with monkeypatch.context() as patched:
        patched.setattr(inputs.pybase64, "b64decode", _refuse)
        return _outcome(text)


@pytest.mark.parametrize(
    "n_bytes", [BIG // 4 * 3, BIG // 4 * 3 + 1, BIG // 4 * 3 + 2, 30_001, 187_500, 400_000]
)
@pytest.mark.parametrize("alphabet", ["standard", "url-safe", "url-safe unpadded", "mixed"])
def test_clean_base64_gives_b64decodes_bytes_through_pybase64(monkeypatch, n_bytes, alphabet):
    raw = _payload(n_bytes)
    text = base64.b64encode(raw).decode()
    if alphabet != "standard":
        text = base64.urlsafe_b64encode(raw).decode()
    if alphabet == "url-safe unpadded":
        text = text.rstrip("=")
    if alphabet == "mixed":  # both alphabets in one text: accepted before, accepted now
        text = text.replace("-", "+", 5).replace("_", "/", 5)
    calls = []
    with monkeypatch.context() as patched:
        decode = inputs.pybase64.b64decode
        patched.setattr(inputs.pybase64, "b64decode", lambda *a, **k: calls.append(1) or decode(*a, **k))
        assert inputs.media_bytes(text, None, 10_000_000) == raw
    assert calls == [1]  # decoded by pybase64, not by the fallback
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))  # MIME line breaks
    assert inputs.media_bytes(wrapped, None, 10_000_000) == raw


def _spoiled(text: str, kind: str) -> str:
    middle = len(text) // 2
    return {
        "bad character": text[:middle] + "!" + text[middle + 1 :],
        "bad character in the last block": text[:-30] + "!" + text[-29:],
        "padding inside": text[:middle] + "=" + text[middle + 1 :],
        "padding early": text[:-8] + "==" + text[-6:],
        "excess after padding": text + "QUJD",
        "three padding characters": text.rstrip("=") + "===",
        "one character too many": text.rstrip("=") + "Q",
        "non-ASCII": text[:middle] + "é" + text[middle:],
        "NUL": text[:middle] + "\0" + text[middle:],
        "space inside a word": text[:middle] + "\u00a0" + text[middle:],
        "non-canonical last bits": text.rstrip("=")[:-1] + "R" + "=" * (len(text) - len(text.rstrip("="))),
    }[kind]


@pytest.mark.parametrize(
    "kind",
    [
        "bad character",
        "bad character in the last block",
        "padding inside",
        "padding early",
        "excess after padding",
        "three padding characters",
        "one character too many",
        "non-ASCII",
        "NUL",
        "space inside a word",
        "non-canonical last bits",
    ],
)
@pytest.mark.parametrize("n_bytes", [BIG, 40_001, 250_000])  # 250 kB: two blocks
def test_spoiled_base64_gets_the_reference_paths_answer(monkeypatch, kind, n_bytes):
    text = _spoiled(base64.b64encode(_payload(n_bytes)).decode(), kind)
    assert _outcome(text) == _reference(monkeypatch, text)


ODD = "cannot be 1 more than a multiple of 4)"


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("QUJD!", "is not base64; file paths are read only when"),
        ("QUJD=QUJD", "is not base64; file paths are read only when"),
        ("QU=", None),  # padded to QU==: accepted
        (
            "QUJDQ",
            f"is not valid base64 (Invalid base64-encoded string: number of data characters ({BIG + 5}) {ODD}",
        ),
        (
            "Q==",
            f"is not valid base64 (Invalid base64-encoded string: number of data characters ({BIG + 1}) {ODD}",
        ),
    ],
)
def test_refusals_of_long_text_keep_their_wording(tail, message):
    text = "QUJD" * (BIG // 4) + tail
    if message is None:
        assert inputs.media_bytes(text, None, 10_000_000) == b"ABC" * (BIG // 4) + b"A"
        return
    with pytest.raises(BabelfuseError, match=re.escape(message)):
        inputs.media_bytes(text, None, 10_000_000)


def test_every_tail_length_and_block_boundary_matches_the_reference(monkeypatch):
    for n_bytes in range(
        BIG // 4 * 3 - 3, BIG // 4 * 3 + 40
    ):  # every length mod 3 and mod 12 near the threshold
        raw = _payload(n_bytes)
        for text in (base64.b64encode(raw).decode(), base64.b64encode(raw).decode().rstrip("=")):
            assert _outcome(text) == ("bytes", raw) == _reference(monkeypatch, text)


def test_oversize_text_is_refused_before_decoding(monkeypatch):
    calls = []
    monkeypatch.setattr(inputs.pybase64, "b64decode", calls.append)
    with pytest.raises(BabelfuseError, match="oversize base64 payload"):
        inputs.media_bytes(base64.b64encode(_payload(60_000)).decode(), None, 50_000)
    assert calls == []
