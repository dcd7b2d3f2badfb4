"""eSpeak NG through ctypes, on the library and data shipped by the ``espeakng-loader`` wheel.

Why ctypes: the PyPI ``espeakng`` package shells out to a binary that is not installed, while
``espeakng-loader`` ships ``libespeak-ng.so`` and its voice data, so speech works offline from the
venv alone. The engine is initialised once per process (synchronous mode, audio handed to a Python
callback); it is not thread-safe, which the single-process generate stage does not need.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from babelfuse.errors import BabelfuseError

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1
ENDPAUSE = 0x1000
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


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

    def _collect(self, wav, n: int, _events) -> int:
        if n > 0 and wav:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue synthesis

    def set_voice(self, voice: str) -> None:
        if voice != self.voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise BabelfuseError(f"eSpeak NG has no voice '{voice}' (labels.LANGUAGES espeak_voice)")
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
