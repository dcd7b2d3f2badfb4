"""Synthetic post audio: the post's sentence spoken by eSpeak NG with label-dependent prosody.

Why prosody: how something is said (pitch, pitch range, speed, loudness) carries sentiment
independently of the words, so audio is a modality of its own and not a copy of the text. When the
audio is informative for a post the four prosody settings come from Gaussians centred on the label's
means (they overlap, so single utterances are ambiguous); otherwise from one label-independent
Gaussian. Speech is resampled from eSpeak's 22050 Hz to the target rate and gets white noise.

eSpeak NG keeps hidden state between utterances (its pitch "flutter" phase runs on across calls), so
the same utterance can differ by a few samples depending on what was spoken before it in the
process. :func:`render_chunk` therefore always runs in a fresh process on a fixed list of posts:
the same list gives byte-identical WAV files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from babelfuse.data.espeak import Prosody

# Per-label means of (pitch 0-100, pitch range 0-100, rate wpm, volume 0-200); shared SDs.
PROSODY_MEAN: dict[str, tuple[float, float, float, float]] = {
    "negative": (34.0, 30.0, 140.0, 88.0),
    "neutral": (48.0, 45.0, 170.0, 100.0),
    "positive": (62.0, 70.0, 200.0, 112.0),
}
PROSODY_SD: tuple[float, float, float, float] = (9.0, 13.0, 20.0, 12.0)
# Non-informative audio: one broad Gaussian for every label.
UNINFORMATIVE_MEAN: tuple[float, float, float, float] = (48.0, 48.0, 170.0, 100.0)
UNINFORMATIVE_SD: tuple[float, float, float, float] = (14.0, 20.0, 30.0, 16.0)
LIMITS: tuple[tuple[float, float], ...] = ((0, 100), (0, 100), (100, 320), (40, 180))
MAX_SECONDS = 8.0  # longer clips are re-spoken faster


def draw_prosody(label: str, informative: bool, rng: np.random.Generator) -> Prosody:
    """Prosody for one post: label-dependent when informative, label-independent otherwise."""
    mean, sd = (PROSODY_MEAN[label], PROSODY_SD) if informative else (UNINFORMATIVE_MEAN, UNINFORMATIVE_SD)
    values = [
        int(round(float(np.clip(rng.normal(m, s), lo, hi))))
        for m, s, (lo, hi) in zip(mean, sd, LIMITS, strict=True)
    ]
    return Prosody(pitch=values[0], range=values[1], rate=values[2], volume=values[3])


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (scipy ``resample_poly``), float32."""
    from scipy.signal import resample_poly

    if rate_in == rate_out:
        return samples.astype(np.float32)
    g = math.gcd(rate_in, rate_out)
    return resample_poly(samples, rate_out // g, rate_in // g).astype(np.float32)


def add_noise(samples: np.ndarray, noise_db: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise with RMS ``noise_db`` dB relative to full scale (1.0); clipped to [-1, 1]."""
    noise = rng.normal(0.0, 10.0 ** (noise_db / 20.0), size=samples.shape).astype(np.float32)
    return np.clip(samples + noise, -1.0, 1.0)


def speak(
    spoken: str, voice: str, prosody: Prosody, sample_rate: int, noise_db: float, seed: int
) -> np.ndarray:
    """``spoken`` as float32 mono at ``sample_rate`` with noise; a ValueError if eSpeak gave nothing.

    A clip longer than :data:`MAX_SECONDS` is spoken again, faster, so that it fits (rare: slow rates
    on the longest sentences of the slowest voices).
    """
    from babelfuse.data import espeak

    raw = espeak.synthesize(spoken, voice, prosody, seed=seed)
    seconds = raw.size / espeak.sample_rate()
    if seconds > MAX_SECONDS:
        faster = min(int(LIMITS[2][1]), int(math.ceil(prosody.rate * seconds / (MAX_SECONDS - 0.5))))
        raw = espeak.synthesize(spoken, voice, replace(prosody, rate=faster), seed=seed)
    if raw.size == 0:
        raise ValueError(f"eSpeak NG produced no audio for {spoken[:40]!r} (voice {voice})")
    samples = resample(raw.astype(np.float32) / 32768.0, espeak.sample_rate(), sample_rate)
    return add_noise(samples, noise_db, np.random.default_rng(seed))


def write_wav(path: Path | str, samples: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM mono WAV."""
    import soundfile

    soundfile.write(str(path), samples, sample_rate, subtype="PCM_16", format="WAV")


@dataclass(frozen=True)
class AudioTask:
    """One WAV to write: everything a worker process needs, nothing it must look up."""

    path: str
    spoken: str
    voice: str
    prosody: Prosody
    seed: int


def render_chunk(tasks: list[AudioTask], sample_rate: int, noise_db: float) -> list[float]:
    """Speak and write each task in order (run in a fresh process); returns the durations in seconds."""
    durations = []
    for task in tasks:
        samples = speak(task.spoken, task.voice, task.prosody, sample_rate, noise_db, task.seed)
        write_wav(task.path, samples, sample_rate)
        durations.append(samples.size / sample_rate)
    return durations
