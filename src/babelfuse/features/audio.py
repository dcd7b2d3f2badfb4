"""Audio encoders: ``prosody`` (pitch, loudness, rate and spectral statistics; offline, fast) and
``hf:<model>`` (wav2vec2 / HuBERT / Whisper encoder through torch, mean-pooled).

Every encoder takes a list of float32 mono arrays at ``sample_rate`` (as :func:`media.decode_audio`
returns) and gives float32 (n, dim), one row per clip, independent of how clips are batched.
"""

from __future__ import annotations

import logging
from math import gcd
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from babelfuse.errors import BabelfuseError
from babelfuse.features.base import Encoder
from babelfuse.features.hf import load_pretrained

log = logging.getLogger("babelfuse.features.audio")

F0_MIN, F0_MAX = 60.0, 400.0  # speech range (Hz)
F0_RATE = 8000  # pitch is tracked on an 8 kHz copy: 4x cheaper, nothing lost below 400 Hz
PERIODIC = 0.5  # normalised autocorrelation at the pitch period above which a frame counts as voiced
EPS = 1e-10


class ProsodyAudioEncoder(Encoder):
    """Statistics of log-mel, MFCC (+ deltas), F0 (autocorrelation), RMS energy, voicing and speaking rate.

    Log-mel is referenced to full scale (not to the clip's maximum) so that loudness stays visible.
    Frames: 10 ms hop for spectra and energy, 20 ms for pitch (aligned to every second energy frame).
    BLAS runs on one thread while encoding: its matrices are small, and extra threads only wait for
    busy cores (3x slower per clip on a loaded 2-core machine).
    """

    modality = "audio"
    id = "prosody"
    version = "2"  # 2: F0 from the frames' normalised autocorrelation instead of librosa.yin

    def __init__(self, sample_rate: int = 16000, n_mels: int = 40, n_mfcc: int = 20, **_: Any) -> None:
        import librosa  # heavy (numba): only the audio encoders need it
        from scipy.signal import firwin

        self.sample_rate = int(sample_rate)
        self.n_mels, self.n_mfcc = int(n_mels), int(n_mfcc)
        if self.sample_rate < F0_RATE or self.n_mfcc > self.n_mels:
            raise BabelfuseError(
                f"features.audio: sample_rate={sample_rate} must be >= 8000 and n_mfcc={n_mfcc} <= n_mels={n_mels}"
            )
        sr = self.sample_rate
        self.hop = sr // 100
        self.n_fft = 1 << int(np.ceil(np.log2(0.025 * sr)))
        self.mel_basis = librosa.filters.mel(sr=sr, n_fft=self.n_fft, n_mels=self.n_mels, fmin=50.0)
        self.freqs = librosa.fft_frequencies(sr=sr, n_fft=self.n_fft)
        centres = librosa.mel_frequencies(n_mels=self.n_mels + 2, fmin=50.0, fmax=sr / 2)[1:-1]
        self.speech_bands = (centres >= 300) & (centres <= 3000)  # where syllable nuclei carry energy
        self.window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)
        self.f0_frame = 512
        g = gcd(sr, F0_RATE)
        self.f0_ratio = (F0_RATE // g, sr // g)
        # resample_poly's own default low-pass (Kaiser, beta 5), designed once instead of on every clip
        self.f0_filter = firwin(20 * max(self.f0_ratio) + 1, 1.0 / max(self.f0_ratio), window=("kaiser", 5.0))
        self.f0_filter = self.f0_filter.astype(np.float32)
        self.threads = ThreadpoolController()
        self.version = f"2;sr={self.sample_rate};mels={self.n_mels};mfcc={self.n_mfcc}"
        self.names = self._names()
        self.dim = len(self.names)

    def encode(self, batch: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(batch), self.dim), dtype=np.float32)
        with self.threads.limit(limits=1, user_api="blas"):
            for i, clip in enumerate(batch):
                out[i] = self.features(np.asarray(clip, dtype=np.float32).reshape(-1))
        return out

    def _names(self) -> list[str]:
        rate = ["nuclei_per_active_s", "nuclei_per_span_s", "nuclei_per_s", "onsets_per_s"]
        scalars = [
            *["duration_s", "active_s", "active_ratio", "voiced_ratio"],
            *[
                f"f0_{s}"
                for s in ["median", "mean", "std", "p10", "p90", "range", "slope", "jitter", "median_hz"]
            ],
            *[f"rms_db_{s}" for s in ["mean", "std", "p10", "p50", "p90", "max", "voiced_mean", "clip"]],
            *rate,
            *["mod_peak_hz", "mod_centroid_hz", "pause_ratio"],
            *[f"spec_{s}" for s in ["centroid_mean", "centroid_std", "flatness_mean", "zcr_mean"]],
        ]
        bands = [f"logmel{i}_{s}" for s in ("mean", "std") for i in range(self.n_mels)]
        ceps = [
            f"mfcc{i}_{s}" for s in ("mean", "std", "delta_std", "delta2_std") for i in range(self.n_mfcc)
        ]
        return scalars + bands + ceps

    def features(self, y: np.ndarray) -> np.ndarray:
        """The feature vector of one clip (names in ``self.names``)."""
        import librosa  # heavy (numba): only the audio encoders need it
        from scipy.fft import rfft
        from scipy.ndimage import uniform_filter1d
        from scipy.signal import find_peaks, resample_poly

        sr, hop = self.sample_rate, self.hop
        duration = len(y) / sr
        if len(y) < self.n_fft:
            y = np.pad(y, (0, self.n_fft - len(y)))
        y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
        frames = librosa.util.frame(np.pad(y, self.n_fft // 2), frame_length=self.n_fft, hop_length=hop).T
        power = np.abs(rfft(frames * self.window, axis=1)).T ** 2  # (freq, time)
        rms_db = 10 * np.log10(np.mean(frames**2, axis=1) + EPS)
        mel = self.mel_basis @ power
        logmel = 10 * np.log10(mel + EPS)
        n = logmel.shape[1]

        # Speech activity: clearly above the clip's own noise floor, within 35 dB of its loudest frame.
        active = rms_db > max(np.percentile(rms_db, 10) + 6.0, rms_db.max() - 35.0, -80.0)
        active_ratio = float(active.mean())
        if not active.any():  # silence or stationary noise: describe all frames
            active = np.ones(n, bool)

        # Pitch on an 8 kHz copy, 20 ms hop: the normalised autocorrelation of each frame gives both the
        # period (F0) and how periodic the frame is; voicing = periodicity at that period + activity.
        y8 = (
            resample_poly(y, *self.f0_ratio, window=self.f0_filter).astype(np.float32) if sr != F0_RATE else y
        )
        f0, periodicity = _pitch(y8, F0_RATE, self.f0_frame, 160)
        active_f0 = active[::2][: len(f0)]
        f0 = f0[: len(active_f0)]
        voiced = (periodicity[: len(f0)] > PERIODIC) & active_f0
        semitones = 12 * np.log2(f0[voiced] / 100.0)
        f0_stats = _f0_stats(semitones, f0[voiced])

        rms_active = rms_db[active]
        voiced_10ms = np.zeros(n, bool)
        voiced_10ms[: 2 * len(voiced)] = np.repeat(voiced, 2)[:n]
        rms_stats = [
            rms_active.mean(),
            rms_active.std(),
            *np.percentile(rms_active, [10, 50, 90]),
            rms_db.max(),
            rms_db[voiced_10ms].mean() if voiced_10ms.any() else rms_active.mean(),
            10 * np.log10(np.mean(y**2) + EPS),
        ]

        # Rate: syllable nuclei = prominent peaks of the smoothed speech-band envelope, >= 100 ms apart.
        envelope = 10 * np.log10(mel[self.speech_bands].sum(axis=0) + EPS)
        envelope = uniform_filter1d(envelope, 5, mode="nearest")
        peaks, _ = find_peaks(envelope, prominence=3.0, distance=10)
        peaks = peaks[active[peaks]]
        near_voiced = np.convolve(voiced_10ms.astype(float), np.ones(7), mode="same") > 0
        nuclei = int(near_voiced[peaks].sum())
        active_s = active.sum() * hop / sr
        onset_env = librosa.onset.onset_strength(S=logmel, sr=sr, hop_length=hop)
        onsets = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sr, hop_length=hop)
        onsets = onsets[active[np.minimum(onsets, n - 1)]]
        first, last = np.flatnonzero(active)[[0, -1]]
        span_s = (last - first + 1) * hop / sr
        mod_peak, mod_centroid = _modulation(envelope, active, sr / hop)
        rate_stats = [
            nuclei / max(active_s, 0.1),
            nuclei / max(span_s, 0.1),
            nuclei / max(duration, 0.1),
            len(onsets) / max(duration, 0.1),
            mod_peak,
            mod_centroid,
            _pause_ratio(active),
        ]

        spectral = _spectral_stats(power[:, active], frames[active], self.freqs)
        cepstral = _cepstral_stats(logmel[:, active], self.n_mfcc)
        scalars = [duration, active_s, active_ratio, voiced.sum() / max(active_f0.sum(), 1), *f0_stats]
        vec = np.concatenate([scalars, rms_stats, rate_stats, spectral, cepstral])
        return np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _spectral_stats(power: np.ndarray, frames: np.ndarray, freqs: np.ndarray) -> list[float]:
    """Centroid mean/std (kHz), flatness and zero-crossing rate of the active frames."""
    centroid = (freqs[:, None] * power).sum(axis=0) / (power.sum(axis=0) + EPS)
    flatness = np.exp(np.mean(np.log(power + EPS), axis=0)) / (power.mean(axis=0) + EPS)
    zcr = np.mean(np.abs(np.diff(np.signbit(frames), axis=1)), axis=1)
    return [centroid.mean() / 1000, centroid.std() / 1000, flatness.mean(), zcr.mean()]


def _cepstral_stats(logmel: np.ndarray, n_mfcc: int) -> np.ndarray:
    """Log-mel mean/std per band, MFCC mean/std and the spread of their first and second deltas."""
    from scipy.fft import dct  # slow to import: only this path needs it

    mfcc = dct(logmel, type=2, norm="ortho", axis=0)[:n_mfcc]
    d1 = np.gradient(mfcc, axis=1) if mfcc.shape[1] > 1 else np.zeros_like(mfcc)
    d2 = np.gradient(d1, axis=1) if mfcc.shape[1] > 1 else np.zeros_like(mfcc)
    parts = [logmel.mean(axis=1), logmel.std(axis=1), mfcc.mean(axis=1), mfcc.std(axis=1)]
    return np.concatenate([*parts, d1.std(axis=1), d2.std(axis=1)])


def _pitch(y: np.ndarray, sr: int, frame_length: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz) and periodicity of each centred frame, from one normalised autocorrelation per frame.

    The first half of a frame (``width`` samples) is correlated with the frame at every lag in
    [0, width] by FFT; dividing by the energies of the two windows gives the NCCF (~1 voiced, ~0
    noise). The period is the shortest lag in the F0 range whose NCCF is a local peak within 10 % of
    the best one (longer lags that also fit are its multiples: octave errors), refined by a parabola.
    """
    import librosa  # heavy (numba): only the audio encoders need it
    from scipy.fft import irfft, rfft

    frames = librosa.util.frame(np.pad(y, frame_length // 2), frame_length=frame_length, hop_length=hop).T
    width = frame_length // 2  # lags 0..width are free of circular wrap-around with an FFT of frame_length
    spectrum = rfft(frames, axis=1)
    head = rfft(frames[:, :width], n=frame_length, axis=1)
    corr = irfft(np.conj(head) * spectrum, n=frame_length, axis=1)[:, : width + 1]
    energy = np.concatenate([np.zeros((len(frames), 1), np.float32), np.cumsum(frames**2, axis=1)], axis=1)
    tail = energy[:, width : 2 * width + 1] - energy[:, : width + 1]  # energy of frame[lag : lag + width]
    nccf = corr / np.sqrt(energy[:, width : width + 1] * np.maximum(tail, 0.0) + EPS)
    lo, hi = int(np.floor(sr / F0_MAX)), int(np.ceil(sr / F0_MIN))
    inner = nccf[:, lo : hi + 1]
    peak = (inner >= nccf[:, lo - 1 : hi]) & (inner > nccf[:, lo + 1 : hi + 2])
    good = peak & (inner >= 0.9 * inner.max(axis=1, keepdims=True))
    lag = lo + np.where(good.any(axis=1), good.argmax(axis=1), inner.argmax(axis=1))
    rows = np.arange(len(frames))
    left, mid, right = nccf[rows, lag - 1], nccf[rows, lag], nccf[rows, lag + 1]
    bend = left - 2 * mid + right
    shift = np.where(bend < 0, 0.5 * (left - right) / np.where(bend < 0, bend, -1.0), 0.0)
    return (sr / (lag + np.clip(shift, -0.5, 0.5))).astype(np.float64), mid


def _f0_stats(semitones: np.ndarray, hz: np.ndarray) -> list[float]:
    """median mean std p10 p90 range (semitones re 100 Hz), slope (st/s), jitter (st/frame), median Hz."""
    if len(semitones) < 2:
        return [0.0] * 9
    p10, p50, p90 = np.percentile(semitones, [10, 50, 90])
    t = np.arange(len(semitones)) * 0.02
    slope = float(np.polyfit(t, semitones, 1)[0])
    jitter = float(np.median(np.abs(np.diff(semitones))))
    return [p50, semitones.mean(), semitones.std(), p10, p90, p90 - p10, slope, jitter, float(np.median(hz))]


def _modulation(envelope: np.ndarray, active: np.ndarray, frame_rate: float) -> tuple[float, float]:
    """Peak and centroid (Hz) of the envelope's modulation spectrum in 1-12 Hz: a threshold-free rate."""
    if active.sum() < 16:
        return 0.0, 0.0
    first, last = np.flatnonzero(active)[[0, -1]]
    segment = envelope[first : last + 1] - envelope[first : last + 1].mean()
    if segment.std() < 1e-3:
        return 0.0, 0.0
    n = max(256, 1 << int(np.ceil(np.log2(len(segment)))))
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n=n))
    freqs = np.fft.rfftfreq(n, d=1.0 / frame_rate)
    band = (freqs >= 1.0) & (freqs <= 12.0)
    power = spectrum[band] ** 2
    if power.sum() <= 0:
        return 0.0, 0.0
    return float(freqs[band][np.argmax(power)]), float((freqs[band] * power).sum() / power.sum())


def _pause_ratio(active: np.ndarray) -> float:
    """Share of inactive frames between the first and the last active frame (pauses inside speech)."""
    idx = np.flatnonzero(active)
    if len(idx) < 2:
        return 0.0
    inside = active[idx[0] : idx[-1] + 1]
    return float(1.0 - inside.mean())


class HFAudioEncoder(Encoder):
    """A Hugging Face speech model, mean-pooled over the clip's own frames; local files only.

    wav2vec2 / HuBERT / WavLM (raw ``input_values``) run one clip at a time, so padding never leaks
    into a clip's features. Whisper (``input_features``, always padded to 30 s) runs the encoder only,
    batched, and pools just the frames that cover the clip.
    """

    modality = "audio"

    def __init__(self, model: str, sample_rate: int = 16000, **_: Any) -> None:
        from transformers import AutoFeatureExtractor, AutoModel  # heavy optional (torch): only hf: encoders

        self.sample_rate = int(sample_rate)
        self.extractor = load_pretrained(AutoFeatureExtractor, model, "audio")
        loaded = load_pretrained(AutoModel, model, "audio").eval()
        self.spectrogram = self.extractor.model_input_names[0] == "input_features"
        self.model = loaded.get_encoder() if self.spectrogram and hasattr(loaded, "get_encoder") else loaded
        self.model_rate = int(getattr(self.extractor, "sampling_rate", self.sample_rate))
        self.id = f"hf:{model}"
        self.version = f"{type(loaded).__name__};{getattr(loaded.config, '_commit_hash', None) or 'local'}"
        self.dim = int(self.encode([np.zeros(self.sample_rate // 2, np.float32)]).shape[1])
        log.info(
            "features.audio.encoder=hf:%s dim=%d input=%s",
            model,
            self.dim,
            self.extractor.model_input_names[0],
        )

    def encode(self, batch: list[np.ndarray]) -> np.ndarray:
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        clips = [self._prepare(np.asarray(clip, dtype=np.float32).reshape(-1)) for clip in batch]
        return self._encode_spectrogram(clips) if self.spectrogram else self._encode_waveform(clips)

    def _prepare(self, clip: np.ndarray) -> np.ndarray:
        from scipy.signal import resample_poly  # slow to import: only this path needs it

        if self.model_rate != self.sample_rate:
            g = gcd(self.model_rate, self.sample_rate)
            clip = resample_poly(clip, self.model_rate // g, self.sample_rate // g).astype(np.float32)
        minimum = self.model_rate // 40  # 25 ms: the smallest input a wav2vec2 conv stack accepts
        return np.pad(clip, (0, max(0, minimum - len(clip))))

    def _encode_waveform(self, clips: list[np.ndarray]) -> np.ndarray:
        import torch  # heavy optional (torch): only the hf: encoders

        rows = []
        with torch.no_grad():
            for clip in clips:
                inputs = self.extractor(clip, sampling_rate=self.model_rate, return_tensors="pt")
                hidden = self.model(input_values=inputs["input_values"]).last_hidden_state
                rows.append(hidden.mean(dim=1)[0].float().numpy())
        return np.stack(rows).astype(np.float32)

    def _encode_spectrogram(self, clips: list[np.ndarray]) -> np.ndarray:
        import torch  # heavy optional (torch): only the hf: encoders

        inputs = self.extractor(
            clips, sampling_rate=self.model_rate, return_tensors="pt", return_attention_mask=True
        )
        features = inputs["input_features"]
        with torch.no_grad():
            hidden = self.model(input_features=features).last_hidden_state  # (n, frames_out, d)
        valid_in = inputs["attention_mask"].sum(dim=1).float()
        ratio = features.shape[-1] / hidden.shape[1]
        valid_out = torch.clamp(torch.ceil(valid_in / ratio), min=1, max=hidden.shape[1]).long()
        mask = (torch.arange(hidden.shape[1])[None, :] < valid_out[:, None]).float()
        pooled = (hidden * mask[:, :, None]).sum(dim=1) / mask.sum(dim=1, keepdim=True)
        return pooled.float().numpy().astype(np.float32)
