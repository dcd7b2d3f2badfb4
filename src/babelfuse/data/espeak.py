"""eSpeak NG through ctypes, on the library and data shipped by the ``espeakng-loader`` wheel.

Why ctypes: the PyPI ``espeakng`` package shells out to a binary that is not installed, while
``espeakng-loader`` ships ``libespeak-ng.so`` and its voice data, so speech works offline from the
venv alone. The engine is initialised once per process (synchronous mode, audio handed to a Python
callback); it is not thread-safe, which the single-process generate stage does not need.
"""

from __future__ import annotations

import ctypes
import difflib
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from babelfuse.errors import BabelfuseError

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1
ENDPAUSE = 0x1000
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _VoiceStruct(ctypes.Structure):
    """``espeak_VOICE`` of speak_lib.h (what ``espeak_ListVoices`` returns an array of)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, language string) pairs, ends with a 0 byte
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class Voice:
    """One eSpeak NG voice: ``key`` is what ``espeak_SetVoiceByName`` (and labels.py) takes."""

    key: str  # the voice file's name, e.g. "pt", "pt-BR", "cmn"
    name: str  # e.g. "Portuguese (Brazil)"
    identifier: str  # path below espeak-ng-data/lang, e.g. "roa/pt-BR"
    languages: tuple[str, ...]  # language tags it speaks, best first, e.g. ("pt-br", "pt")


@dataclass(frozen=True)
class Prosody:
    """eSpeak NG voice parameters: pitch and range 0-100, rate in words per minute, volume 0-200."""

    pitch: int
    range: int
    rate: int
    volume: int


class _Engine:
    """The one initialised eSpeak NG instance of this process."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._declare()
        data_path = espeakng_loader.get_data_path().encode()
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise BabelfuseError(f"eSpeak NG failed to initialise (data path {data_path.decode()})")
        self.sample_rate = int(rate)
        self.chunks: list[np.ndarray] = []
        self.callback = _CALLBACK(self._collect)  # kept alive as long as the engine
        self.lib.espeak_SetSynthCallback(self.callback)
        self.voice: str | None = None

    def _declare(self) -> None:
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceStruct))
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p

    def _collect(self, wav, n: int, _events) -> int:
        if n > 0 and wav:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue synthesis

    def set_voice(self, voice: str) -> None:
        if voice != self.voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise BabelfuseError(
                    f"eSpeak NG has no voice '{voice}' (labels.LANGUAGES espeak_voice); {suggest_voices(voice)}"
                )
            self.voice = voice


_ENGINE: _Engine | None = None


def engine() -> _Engine:
    """The process-wide engine, initialised on first use."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def sample_rate() -> int:
    """eSpeak NG's output rate (22050 Hz)."""
    return engine().sample_rate


def synthesize(text: str, voice: str, prosody: Prosody, seed: int = 0) -> np.ndarray:
    """Speak ``text`` with ``voice``: int16 mono samples at :func:`sample_rate`.

    ``seed`` fixes eSpeak's internal random source so the same call always gives the same samples.
    """
    eng = engine()
    eng.set_voice(voice)
    lib = eng.lib
    for param, value in (
        (PARAM_RATE, prosody.rate),
        (PARAM_VOLUME, prosody.volume),
        (PARAM_PITCH, prosody.pitch),
        (PARAM_RANGE, prosody.range),
    ):
        lib.espeak_SetParameter(param, int(value), 0)
    lib.espeak_ng_SetRandSeed(int(seed))
    eng.chunks = []
    data = text.encode("utf-8") + b"\0"
    status = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8 | ENDPAUSE, None, None)
    lib.espeak_Synchronize()
    if status != 0:
        raise BabelfuseError(
            f"eSpeak NG could not speak {text[:40]!r} with voice '{voice}' (status {status})"
        )
    chunks, eng.chunks = eng.chunks, []
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def text_to_phonemes(text: str, voice: str) -> str:
    """eSpeak NG's phoneme mnemonics for ``text`` in ``voice``: what will actually be spoken.

    Used to check that e.g. Japanese kana are read by the Japanese voice as Japanese.
    """
    eng = engine()
    eng.set_voice(voice)
    buffer = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
    pointer = ctypes.c_void_p(ctypes.addressof(buffer))
    clauses: list[str] = []
    while pointer.value:
        out = eng.lib.espeak_TextToPhonemes(ctypes.byref(pointer), CHARS_UTF8, 0)
        if out:
            clauses.append(out.decode("utf-8", errors="replace").strip())
    return " ".join(c for c in clauses if c)


def _languages(pointer: int | None) -> tuple[str, ...]:
    """Decode ``espeak_VOICE.languages``: repeated (priority byte, NUL-terminated tag) until a 0 byte."""
    tags: list[str] = []
    offset = 0
    while pointer:
        if ctypes.string_at(pointer + offset, 1) == b"\0":  # priority 0 = end of the list
            break
        tag = ctypes.string_at(pointer + offset + 1)
        tags.append(tag.decode("utf-8", errors="replace"))
        offset += len(tag) + 2
    return tuple(tags)


@functools.lru_cache(maxsize=1)
def list_voices() -> tuple[Voice, ...]:
    """Every voice eSpeak NG offers (``espeak_ListVoices``), sorted by key; variants (``+f3``) excluded."""
    array = engine().lib.espeak_ListVoices(None)
    voices: list[Voice] = []
    for i in range(10_000):  # NULL-terminated array
        if not array[i]:
            break
        entry = array[i].contents
        identifier = (entry.identifier or b"").decode("utf-8", errors="replace")
        voices.append(
            Voice(
                key=identifier.rsplit("/", 1)[-1],
                name=(entry.name or b"").decode("utf-8", errors="replace"),
                identifier=identifier,
                languages=_languages(entry.languages),
            )
        )
    return tuple(sorted(voices, key=lambda v: v.key.lower()))


def version() -> str:
    """The eSpeak NG library version, e.g. "1.52.0"."""
    return (engine().lib.espeak_Info(None) or b"?").decode()


def _variant_exists(variant: str) -> bool:
    import espeakng_loader

    return (Path(espeakng_loader.get_data_path()) / "voices" / "!v" / variant).is_file()


def has_voice(voice: str) -> bool:
    """Whether ``voice`` names an eSpeak NG voice, decided from the voice list (no voice is loaded).

    Like ``espeak_SetVoiceByName``, accepts (case-insensitively) a voice's file name (``pt-BR``), its
    identifier (``roa/pt-BR``) or its name (``Portuguese (Brazil)``), optionally with ``+variant``;
    stricter than eSpeak NG in one way: the variant must exist (eSpeak silently ignores an unknown one).
    """
    base, _, variant = voice.partition("+")
    wanted = base.lower()
    known = any(wanted in (v.key.lower(), v.identifier.lower(), v.name.lower()) for v in list_voices())
    return bool(base) and known and (not variant or _variant_exists(variant))


def voice_name(voice: str) -> str:
    """eSpeak NG's name for a voice key, e.g. "pt-BR" -> "Portuguese (Brazil)"; the key itself if unknown."""
    base = voice.partition("+")[0].lower()
    return next((v.name for v in list_voices() if base in (v.key.lower(), v.identifier.lower())), voice)


def voices_for(code: str) -> list[str]:
    """Keys of the voices that speak language ``code`` or a regional form of it (pt: pt, pt-BR)."""
    code = code.lower()
    return [
        v.key
        for v in list_voices()
        if any(tag.lower() == code or tag.lower().startswith(code + "-") for tag in v.languages)
    ]


def suggest_voices(voice: str, code: str | None = None) -> str:
    """The line "closest available voices: ..." (difflib on keys, names, tags), plus the voices for ``code``."""
    key_of: dict[str, str] = {}  # a voice's key, name or language tag (lower-case) -> its key
    for v in list_voices():
        for alias in (v.name, *v.languages, v.key):
            key_of[alias.lower()] = v.key
    close = difflib.get_close_matches(voice.lower(), list(key_of), n=10, cutoff=0.5)
    keys = list(dict.fromkeys(key_of[c] for c in close))[:5]
    text = f"closest available voices: {', '.join(keys) or 'none'}"
    if code:
        text += f"; voices for '{code}': {', '.join(voices_for(code)) or 'none'}"
    return text


def check_voices(voices: Iterable[tuple[str, str]], origin: str = "labels.LANGUAGES") -> None:
    """Each ``(language code, voice)`` must name an eSpeak NG voice; else one error naming both.

    Run before anything is rendered, so a wrong voice never costs half a dataset's media.
    ``origin`` says where the voice was set, for the message.
    """
    for code, voice in voices:
        if not has_voice(voice):
            raise BabelfuseError(
                f"language '{code}': eSpeak NG {version()} has no voice '{voice}' ({origin}); "
                f"{suggest_voices(voice, code)}"
            )
