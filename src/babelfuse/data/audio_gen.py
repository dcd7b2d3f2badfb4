"""Synthetic post audio: the post's sentence spoken by eSpeak NG with label-dependent prosody.

Why prosody: how something is said (pitch, pitch range, speed, loudness) carries sentiment
independently of the words, so audio is a modality of its own and not a copy of the text. When the
audio is informative for a post the four prosody settings come from Gaussians centred on the label's
means (they overlap, so single utterances are ambiguous); otherwise each setting follows the
Gaussian of its own label drawn uniformly and independently of the post's (a mixture over classes:
no class information, and not `neutral`). A *flat* voice (the irony interaction, see
:mod:`babelfuse.data.latent`) has a prosody of its own, the same for every label. Speech is
resampled from eSpeak's 22050 Hz to the target rate, placed at a random offset in a clip of the
planned length (drawn independently of the post, so duration carries no information), padded and
given white noise. A *degraded* voice is amplified, hard-clipped and much noisier.

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
from babelfuse.labels import LABELS

# Per-label means of (pitch 0-100, pitch range 0-100, rate wpm, volume 0-200); shared SDs.
PROSODY_MEAN: dict[str, tuple[float, float, float, float]] = {
    "negative": (34.0, 30.0, 140.0, 88.0),
    "neutral": (48.0, 45.0, 170.0, 100.0),
    "positive": (62.0, 70.0, 200.0, 112.0),
}
PROSODY_SD: tuple[float, float, float, float] = (9.0, 13.0, 20.0, 12.0)
# The flat voice of the irony interaction: hardly any pitch movement, the same for every label.
FLAT_MEAN: tuple[float, float, float, float] = (45.0, 5.0, 165.0, 96.0)
FLAT_SD: tuple[float, float, float, float] = (6.0, 3.0, 12.0, 6.0)
LIMITS: tuple[tuple[float, float], ...] = ((0, 100), (0, 100), (100, 320), (40, 180))
MAX_SECONDS = 8.0  # without a planned clip length, longer speech is re-spoken faster
PAD_MARGIN = (
    0.3  # seconds of the clip kept free of speech (speech longer than clip - margin is re-spoken faster)
)
DEGRADED_GAIN, DEGRADED_CLIP, DEGRADED_NOISE_DB = (
    6.0,
    0.35,
    -14.0,
)  # a degraded voice: amplified, clipped, noisy


def _settings(means: list[tuple[float, ...]], sds: tuple[float, ...], rng: np.random.Generator) -> Prosody:
    values = [
        int(round(float(np.clip(rng.normal(mean[i], sds[i]), *LIMITS[i])))) for i, mean in enumerate(means)
    ]
    return Prosody(pitch=values[0], range=values[1], rate=values[2], volume=values[3])


def draw_prosody(label: str, informative: bool, rng: np.random.Generator) -> Prosody:
    """Prosody for one post: the label's Gaussians when informative, else each setting from a random label's."""
    if informative:
        return _settings([PROSODY_MEAN[label]] * 4, PROSODY_SD, rng)
    labels = [LABELS[i] for i in rng.integers(0, len(LABELS), size=4)]
    return _settings([PROSODY_MEAN[name] for name in labels], PROSODY_SD, rng)


def draw_flat_prosody(rng: np.random.Generator) -> Prosody:
    """The flat voice (label-independent)."""
    return _settings([FLAT_MEAN] * 4, FLAT_SD, rng)


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
    spoken: str,
    voice: str,
    prosody: Prosody,
    sample_rate: int,
    noise_db: float,
    seed: int,
    clip_seconds: float | None = None,
    degraded: bool = False,
) -> np.ndarray:
    """``spoken`` as float32 mono at ``sample_rate`` with noise; a ValueError if eSpeak gave nothing.

    With ``clip_seconds`` the result is exactly that long: the speech sits at a random offset,
    padded; speech that does not fit in ``clip_seconds - PAD_MARGIN`` is spoken again faster (and cut
    if it still does not fit). Without it, speech longer than :data:`MAX_SECONDS` is re-spoken faster.
    """
    from babelfuse.data import espeak

    room = clip_seconds - PAD_MARGIN if clip_seconds is not None else MAX_SECONDS
    raw = espeak.synthesize(spoken, voice, prosody, seed=seed)
    seconds = raw.size / espeak.sample_rate()
    if seconds > room:
        faster = min(int(LIMITS[2][1]), int(math.ceil(prosody.rate * seconds / (0.95 * room))))
        raw = espeak.synthesize(spoken, voice, replace(prosody, rate=faster), seed=seed)
    if raw.size == 0:
        raise ValueError(f"eSpeak NG produced no audio for {spoken[:40]!r} (voice {voice})")
    samples = resample(raw.astype(np.float32) / 32768.0, espeak.sample_rate(), sample_rate)
    rng = np.random.default_rng(seed)
    if clip_seconds is not None:
        samples = place(samples, int(round(clip_seconds * sample_rate)), rng)
    if degraded:
        samples = np.clip(samples * DEGRADED_GAIN, -DEGRADED_CLIP, DEGRADED_CLIP)
        return add_noise(samples, DEGRADED_NOISE_DB, rng)
    return add_noise(samples, noise_db, rng)


def place(speech: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """``speech`` at a uniform random offset in ``length`` zero samples (cut if longer)."""
    speech = speech[:length]
    offset = int(rng.integers(0, length - speech.size + 1))
    out = np.zeros(length, dtype=np.float32)
    out[offset : offset + speech.size] = speech
    return out


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
    clip_seconds: float | None = None
    degraded: bool = False


def render_chunk(tasks: list[AudioTask], sample_rate: int, noise_db: float) -> list[float]:
    """Speak and write each task in order (run in a fresh process); returns the durations in seconds."""
    durations = []
    for task in tasks:
        samples = speak(
            task.spoken,
            task.voice,
            task.prosody,
            sample_rate,
            noise_db,
            task.seed,
            task.clip_seconds,
            task.degraded,
        )
        write_wav(task.path, samples, sample_rate)
        durations.append(samples.size / sample_rate)
    return durations


def voice_chunks(tasks: list[AudioTask], size: int) -> list[list[AudioTask]]:
    """``tasks`` (in order) cut into lists of at most ``size`` tasks of a single voice each.

    Each list runs in its own fresh process, so what one language says never carries eSpeak state
    into another language's clips: adding or removing a language leaves the others' bytes unchanged.
    """
    by_voice: dict[str, list[AudioTask]] = {}
    for task in tasks:
        by_voice.setdefault(task.voice, []).append(task)
    return [group[i : i + size] for group in by_voice.values() for i in range(0, len(group), size)]
