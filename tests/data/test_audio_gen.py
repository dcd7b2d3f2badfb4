"""Speech through eSpeak NG: format, duration, loudness, voices and label-driven prosody."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile

from babelfuse.data import audio_gen, espeak, text_gen
from babelfuse.data.espeak import Prosody
from babelfuse.labels import LABELS, LANGUAGES

KANA = re.compile(r"[\u3040-\u30ff]")
MIDDLE = Prosody(pitch=50, range=50, rate=170, volume=100)


def test_speech_is_16khz_mono_audible_and_of_sane_length(tmp_path) -> None:
    samples = audio_gen.speak("I really loved this concert.", "en", MIDDLE, 16000, -30, seed=1)
    audio_gen.write_wav(tmp_path / "a.wav", samples, 16000)
    info = soundfile.info(tmp_path / "a.wav")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    data, rate = soundfile.read(tmp_path / "a.wav", dtype="float32")
    assert 0.5 <= len(data) / rate <= 8.0
    assert np.sqrt(np.mean(data**2)) > 0.02  # speech, not just the -30 dB noise floor


def test_noise_level_follows_params() -> None:
    silence = np.zeros(16000, dtype=np.float32)
    noisy = audio_gen.add_noise(silence, -30, np.random.default_rng(0))
    assert 20 * np.log10(np.sqrt(np.mean(noisy**2))) == pytest.approx(-30, abs=0.5)


def test_long_sentences_are_capped_at_max_seconds() -> None:
    text = "This is a very long sentence that goes on and on about nothing in particular at all. " * 3
    slow = Prosody(pitch=50, range=50, rate=100, volume=100)
    samples = audio_gen.speak(text, "en", slow, 16000, -30, seed=2)
    assert len(samples) / 16000 <= audio_gen.MAX_SECONDS + 0.5


def test_prosody_follows_the_label_only_when_informative() -> None:
    rng = np.random.default_rng(0)
    pitch = {
        label: np.mean([audio_gen.draw_prosody(label, True, rng).pitch for _ in range(300)])
        for label in LABELS
    }
    rate = {
        label: np.mean([audio_gen.draw_prosody(label, True, rng).rate for _ in range(300)])
        for label in LABELS
    }
    assert pitch["negative"] + 5 < pitch["neutral"] < pitch["positive"] - 5
    assert rate["negative"] + 10 < rate["neutral"] < rate["positive"] - 10
    for seed in range(20):
        assert (
            len({audio_gen.draw_prosody(label, False, np.random.default_rng(seed)) for label in LABELS}) == 1
        )


def test_higher_pitch_setting_gives_higher_f0() -> None:
    import librosa

    f0 = {}
    for pitch in (25, 75):
        samples = audio_gen.speak(
            "Hello, this is a test.", "en", Prosody(pitch, 40, 170, 100), 16000, -40, seed=3
        )
        track = librosa.yin(samples, fmin=50, fmax=400, sr=16000, frame_length=1024)
        f0[pitch] = np.median(track)
    assert f0[75] > f0[25] * 1.15


def test_japanese_is_spoken_from_kana_by_the_japanese_voice() -> None:
    spec = text_gen.draw_spec("positive", True, np.random.default_rng(5))
    spoken = text_gen.render(spec, "ja").spoken
    assert KANA.search(spoken), spoken
    own = espeak.text_to_phonemes(spoken, LANGUAGES["ja"].espeak_voice)
    english = espeak.text_to_phonemes(spoken, "en")
    assert own and "(en)" not in own
    assert "dZ'ap@ni:z" not in own  # the English voice reads kana as "Japanese letter"
    assert "dZ'ap@ni:z" in english
    assert re.search(r"[aiueo]", own)


def test_each_language_is_read_by_its_own_voice() -> None:
    spec = text_gen.draw_spec("negative", True, np.random.default_rng(11))
    phonemes = {}
    for code, language in LANGUAGES.items():
        spoken = text_gen.render(spec, code).spoken
        phonemes[code] = espeak.text_to_phonemes(spoken, language.espeak_voice)
        assert phonemes[code], code
        assert "(en)" not in phonemes[code] or code == "en", (code, phonemes[code])
        if code != "en":
            assert phonemes[code] != espeak.text_to_phonemes(spoken, "en"), code
    assert re.search(r"\d\d", phonemes["zh"])  # Mandarin tones come out as tone numbers
    assert len(set(phonemes.values())) == len(LANGUAGES)


def test_unknown_voice_is_a_clear_error() -> None:
    from babelfuse.errors import BabelfuseError

    with pytest.raises(BabelfuseError, match="no voice"):
        espeak.synthesize("hi", "xx-nonexistent", MIDDLE)
