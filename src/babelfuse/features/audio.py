"""Audio encoders: ``prosody`` (pitch, loudness, rate and spectral statistics; offline, fast) and
``hf:<model>`` (wav2vec2 / HuBERT / Whisper encoder through torch, mean-pooled).

Every encoder takes a list of float32 mono arrays at ``sample_rate`` (as :func:`media.decode_audio`
returns) and gives float32 (n, dim), one row per clip, independent of how clips are batched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from math import gcd
from typing import Any

import numpy as np
from scipy.fft import dct, irfft, rfft
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks, firwin, resample_poly
from threadpoolctl import ThreadpoolController

from babelfuse.errors import BabelfuseError
from babelfuse.features.base import Encoder
from babelfuse.features.hf import load_pretrained

log = logging.getLogger("babelfuse.features.audio")

F0_MIN, F0_MAX = 60.0, 400.0  # speech range (Hz)
SPEECH_RATE = 8000  # pitch is tracked on an 8 kHz copy: 4x cheaper, nothing lost below 400 Hz
FRAME_RATE = 100  # 10 ms frames for energy and speech activity
SPECTRUM_STEP = 2  # spectra every 2nd energy frame (20 ms), on the frames pitch is tracked on
SPECTRUM_RATE = FRAME_RATE // SPECTRUM_STEP
F0_FRAME = 320  # pitch frames: 40 ms at 8 kHz; lags up to half of it (20 ms) cover 60 Hz
PERIODIC = 0.5  # normalised autocorrelation at the pitch period above which a frame counts as voiced
EPS = 1e-10
SPAN_MARGIN = 30  # energy frames kept on each side of the speech span (onsets and deltas need context)


class ProsodyAudioEncoder(Encoder):
    """Statistics of log-mel, MFCC (+ deltas), F0 (autocorrelation), RMS energy, voicing and speaking rate.

    Loudness and speech activity come from every 10 ms frame of the clip (a running sum of squares).
    Spectra are computed every 20 ms on the *speech span* only (first to last active frame, plus a
    margin), and pitch on its *active* 20 ms frames only, from an 8 kHz copy of the span. Log-mel is
    referenced to full scale (not to the clip's maximum) so that loudness stays visible. No numba
    code runs while encoding (onsets are picked here, not by librosa). BLAS runs on one thread
    while encoding: its matrices are small, and extra threads only wait for busy cores (3x slower
    per clip on a loaded 2-core machine).
    """

    modality = "audio"
    id = "prosody"
    # 2: F0 from the frames' normalised autocorrelation instead of librosa.yin
    # 3: spectra on the speech span only, pitch on its active frames only (2.5x cheaper than 2)
    # 4: spectra every 20 ms, 40 ms pitch frames, onsets without librosa (docs/PERFORMANCE.md)
    version = "4"

    def __init__(self, sample_rate: int = 16000, n_mels: int = 40, n_mfcc: int = 20, **_: Any) -> None:
        import librosa  # heavy (numba): only the audio encoders need it

        self.sample_rate = int(sample_rate)
        self.n_mels, self.n_mfcc = int(n_mels), int(n_mfcc)
        if self.sample_rate < SPEECH_RATE or self.n_mfcc > self.n_mels:
            raise BabelfuseError(
                f"features.audio: sample_rate={sample_rate} must be >= 8000 and n_mfcc={n_mfcc} <= n_mels={n_mels}"
            )
        sr = self.sample_rate
        self.hop = sr // 100  # energy frames: 10 ms at the clip's own rate
        self.n_fft = 1 << int(np.ceil(np.log2(0.025 * sr)))
        self.mel_basis = librosa.filters.mel(sr=sr, n_fft=self.n_fft, n_mels=self.n_mels, fmin=50.0)
        self.freqs = librosa.fft_frequencies(sr=sr, n_fft=self.n_fft)
        centres = librosa.mel_frequencies(n_mels=self.n_mels + 2, fmin=50.0, fmax=sr / 2)[1:-1]
        self.speech_bands = (centres >= 300) & (centres <= 3000)  # where syllable nuclei carry energy
        self.window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)
        g = gcd(sr, SPEECH_RATE)
        self.ratio = (SPEECH_RATE // g, sr // g)
        # resample_poly's own default low-pass (Kaiser, beta 5), designed once instead of on every clip
        self.low_pass = firwin(20 * max(self.ratio) + 1, 1.0 / max(self.ratio), window=("kaiser", 5.0))
        self.low_pass = self.low_pass.astype(np.float32)
        self.threads = ThreadpoolController()
        self.version = f"4;sr={self.sample_rate};mels={self.n_mels};mfcc={self.n_mfcc}"
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
        sr, hop = self.sample_rate, self.hop
        duration = len(y) / sr
        if len(y) < self.n_fft:
            y = np.pad(y, (0, self.n_fft - len(y)))
        if not np.isfinite(y).all():
            y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
        padded = np.pad(y, self.n_fft // 2)
        rms_db = 10 * np.log10(_frame_power(padded, self.n_fft, hop) + EPS)
        n = len(rms_db)

        # Speech activity: clearly above the clip's own noise floor, within 35 dB of its loudest frame.
        active = rms_db > max(_percentiles(rms_db, (10,))[0] + 6.0, rms_db.max() - 35.0, -80.0)
        active_ratio = float(active.mean())
        if not active.any():  # silence or stationary noise: describe all frames
            active = np.ones(n, bool)
        first, last = np.flatnonzero(active)[[0, -1]]
        lo = max(0, first - SPAN_MARGIN) // SPECTRUM_STEP * SPECTRUM_STEP  # on a pitch frame's centre
        hi = min(n, last + SPAN_MARGIN + 1)
        span = SpanSpectra.of(self, padded, lo, hi, _any_of_pairs(active[lo:hi]))
        voiced = self._voiced(*self._speech_copy(y, first, last + 1), active)
        semitones = 12 * np.log2(voiced[voiced > 0] / 100.0)
        f0_stats = _f0_stats(semitones, voiced[voiced > 0])
        voiced_10ms = np.repeat(voiced > 0, 2)[:n]
        rms_stats = _rms_stats(rms_db, active, voiced_10ms, float(np.dot(y, y)) / len(y))
        span_voiced = voiced[lo // SPECTRUM_STEP :][: len(span.active)] > 0  # pitch frame p: energy frame 2p
        rate_stats = self._rate_stats(span, span_voiced, active, duration)
        spectral = _spectral_stats(span.power[:, span.active], span.zcr[span.active], self.freqs)
        cepstral = _cepstral_stats(span.logmel[:, span.active], self.n_mfcc)
        scalars = [
            duration,
            active.sum() * hop / sr,
            active_ratio,
            (voiced > 0).sum() / max(active[::2].sum(), 1),
            *f0_stats,
        ]
        vec = np.concatenate([scalars, rms_stats, rate_stats, spectral, cepstral])
        return np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def _speech_copy(self, y: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, int]:
        """``y`` at 8 kHz around energy frames ``lo`` .. ``hi - 1`` and zero-padded by ``F0_FRAME // 2``,
        and the 8 kHz index of its first unpadded sample. The stretch includes every sample a pitch
        frame or the resampling filter reaches, so each pitch frame equals an 8 kHz copy's of the
        whole clip."""
        up, down = self.ratio
        context = (F0_FRAME // 2) * down // up + len(self.low_pass) // up + down  # input samples
        start = max(0, lo * self.hop - context) // down * down  # a whole number of output samples
        stop = min(len(y), (hi - 1) * self.hop + context)
        low = y[start:stop]
        if (up, down) == (1, 2):
            low = _halve(low, self.low_pass)
        elif (up, down) != (1, 1):
            low = resample_poly(low, up, down, window=self.low_pass).astype(np.float32)
        return np.pad(low, F0_FRAME // 2), start * up // down

    def _voiced(self, low: np.ndarray, offset: int, active: np.ndarray) -> np.ndarray:
        """F0 (Hz) of every 20 ms pitch frame, 0 where the frame is inactive or not periodic.

        Pitch frame ``p`` is centred on energy frame ``2p``; only the active ones are analysed.
        """
        centres = np.arange(0, len(active), 2)
        todo = centres[active[centres]]
        out = np.zeros(len(centres))
        if len(todo) == 0:
            return out
        starts = todo * (SPEECH_RATE // FRAME_RATE) - offset  # frame k is centred at 8 kHz sample 80 k
        frames = low[starts[:, None] + np.arange(F0_FRAME)]
        f0, periodicity = _nccf_pitch(frames, SPEECH_RATE)
        out[todo // 2] = np.where(periodicity > PERIODIC, f0, 0.0)
        return out

    def _rate_stats(
        self, span: SpanSpectra, span_voiced: np.ndarray, active: np.ndarray, duration: float
    ) -> list[float]:
        """Syllable nuclei (prominent speech-band peaks >= 100 ms apart near voicing) and onsets per second,
        the envelope's modulation peak and centroid, and the pause ratio. ``span_voiced`` is per
        spectrum frame, ``active`` per energy frame of the whole clip."""
        envelope = 10 * np.log10(span.mel[self.speech_bands].sum(axis=0) + EPS)
        envelope = uniform_filter1d(envelope, 3, mode="nearest")  # 60 ms
        peaks, _ = find_peaks(envelope, prominence=3.0, distance=SPECTRUM_RATE // 10)
        peaks = peaks[span.active[peaks]]
        near_voiced = np.convolve(span_voiced.astype(float), np.ones(3), mode="same") > 0
        nuclei = int(near_voiced[peaks].sum())
        active_s = active.sum() / FRAME_RATE
        onsets = _onsets(span.logmel)
        onsets = onsets[span.active[onsets]]
        first, last = np.flatnonzero(active)[[0, -1]]
        span_s = (last - first + 1) / FRAME_RATE
        mod_peak, mod_centroid = _modulation(envelope, span.active, SPECTRUM_RATE)
        return [
            nuclei / max(active_s, 0.1),
            nuclei / max(span_s, 0.1),
            nuclei / max(duration, 0.1),
            len(onsets) / max(duration, 0.1),
            mod_peak,
            mod_centroid,
            _pause_ratio(active),
        ]


@dataclass(frozen=True)
class SpanSpectra:
    """The STFT frames of a clip's speech span: windowed power, mel and log-mel (freq x frame), and
    each frame's zero-crossing rate."""

    power: np.ndarray
    mel: np.ndarray
    logmel: np.ndarray
    zcr: np.ndarray  # (frame,) share of sign changes between neighbouring samples
    active: np.ndarray  # (frame,) bool

    @classmethod
    def of(
        cls, enc: ProsodyAudioEncoder, padded: np.ndarray, lo: int, hi: int, active: np.ndarray
    ) -> SpanSpectra:
        """Every ``SPECTRUM_STEP``-th energy frame from ``lo`` to ``hi - 1`` of the centred
        (``n_fft // 2``-padded) clip."""
        step = SPECTRUM_STEP * enc.hop
        segment = padded[lo * enc.hop : (hi - 1) * enc.hop + enc.n_fft]
        frames = np.lib.stride_tricks.sliding_window_view(segment, enc.n_fft)[::step]
        spectrum = rfft(frames * enc.window, axis=1).T
        power = np.square(spectrum.real) + np.square(spectrum.imag)
        mel = enc.mel_basis @ power
        # sign changes of the segment once, summed per frame by a running count (frames overlap)
        changes = np.concatenate([[0], np.cumsum(np.signbit(segment[1:]) != np.signbit(segment[:-1]))])
        starts = np.arange(len(frames)) * step
        zcr = (changes[starts + enc.n_fft - 1] - changes[starts]) / (enc.n_fft - 1)
        return cls(power, mel, 10 * np.log10(mel + EPS), zcr, active)


def _any_of_pairs(active: np.ndarray) -> np.ndarray:
    """Per spectrum frame: whether either of the two energy frames it starts on is active."""
    pairs = np.zeros(-(-len(active) // SPECTRUM_STEP) * SPECTRUM_STEP, bool)
    pairs[: len(active)] = active
    return pairs.reshape(-1, SPECTRUM_STEP).any(axis=1)


def _frame_power(padded: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """Mean square of every frame (``frame_length`` samples every ``hop``), from block sums.

    Both lengths are whole numbers of blocks of ``gcd(frame_length, hop)`` samples, so each frame's
    sum of squares is a difference of the running sum over blocks (far fewer terms than samples).
    """
    block = gcd(frame_length, hop)
    n = 1 + (len(padded) - frame_length) // hop
    used = padded[: (n - 1) * hop + frame_length]
    sums = np.square(used).reshape(-1, block).sum(axis=1, dtype=np.float64)
    total = np.concatenate([[0.0], np.cumsum(sums)])
    starts = np.arange(n) * (hop // block)
    return np.maximum(total[starts + frame_length // block] - total[starts], 0.0) / frame_length


def _halve(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """``resample_poly(x, 1, 2, window=taps)`` for a symmetric half-band filter (every other tap
    0 but the centre one, as ``firwin(.., 0.5)`` gives): only the outputs kept are computed,
    one multiply per tap pair, ~3x faster. Equal to resample_poly within float32 rounding (tested)."""
    centre = len(taps) // 2
    n = (len(x) + 1) // 2
    padded = np.pad(x, (centre, centre + 1))
    out = taps[centre] * padded[centre : centre + 2 * n : 2]
    for k in range(1, centre + 1, 2):
        pair = padded[centre - k : centre - k + 2 * n : 2] + padded[centre + k : centre + k + 2 * n : 2]
        out += taps[centre + k] * pair
    return out.astype(np.float32, copy=False)


def _percentiles(x: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """``np.percentile(x, qs)`` (linear interpolation) from one sort: the numpy call costs 25x more."""
    ordered = np.sort(x, axis=None)
    position = np.asarray(qs, dtype=np.float64) / 100.0 * (len(ordered) - 1)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, len(ordered) - 1)
    weight = position - below
    return list(ordered[below] * (1.0 - weight) + ordered[above] * weight)


def _rms_stats(rms_db: np.ndarray, active: np.ndarray, voiced: np.ndarray, mean_square: float) -> list[float]:
    """Loudness (dB re full scale) of the active frames, the loudest frame, voiced frames and the clip."""
    rms_active = rms_db[active]
    return [
        rms_active.mean(),
        rms_active.std(),
        *_percentiles(rms_active, (10, 50, 90)),
        rms_db.max(),
        rms_db[voiced].mean() if voiced.any() else rms_active.mean(),
        10 * np.log10(mean_square + EPS),
    ]


def _spectral_stats(power: np.ndarray, zcr: np.ndarray, freqs: np.ndarray) -> list[float]:
    """Centroid mean/std (kHz), flatness and zero-crossing rate of the active frames."""
    centroid = (freqs @ power) / (power.sum(axis=0) + EPS)
    flatness = np.exp(np.mean(np.log(power + EPS), axis=0)) / (power.mean(axis=0) + EPS)
    return [centroid.mean() / 1000, centroid.std() / 1000, flatness.mean(), zcr.mean()]


def _onsets(logmel: np.ndarray) -> np.ndarray:
    """Spectrum frames where the log-mel flux (mean rise over the bands, scaled to [0, 1]) peaks at
    least 0.07 above its mean over +-100 ms, >= 40 ms apart: the rule of librosa's ``onset_detect``
    on its ``onset_strength``, simplified, without its numba peak picker."""
    if logmel.shape[1] < 3:
        return np.zeros(0, dtype=int)
    flux = np.concatenate([[0.0], np.maximum(np.diff(logmel, axis=1), 0.0).mean(axis=0)])
    flux = (flux - flux.min()) / (np.ptp(flux) + EPS)
    peaks, _ = find_peaks(flux, distance=2)
    local_mean = uniform_filter1d(flux, 2 * (SPECTRUM_RATE // 10) + 1, mode="nearest")
    return peaks[flux[peaks] >= local_mean[peaks] + 0.07]


def _cepstral_stats(logmel: np.ndarray, n_mfcc: int) -> np.ndarray:
    """Log-mel mean/std per band, MFCC mean/std and the spread of their first and second deltas."""

    mfcc = dct(logmel, type=2, norm="ortho", axis=0)[:n_mfcc]
    d1 = np.gradient(mfcc, axis=1) if mfcc.shape[1] > 1 else np.zeros_like(mfcc)
    d2 = np.gradient(d1, axis=1) if mfcc.shape[1] > 1 else np.zeros_like(mfcc)
    parts = [logmel.mean(axis=1), logmel.std(axis=1), mfcc.mean(axis=1), mfcc.std(axis=1)]
    return np.concatenate([*parts, d1.std(axis=1), d2.std(axis=1)])


def _nccf_pitch(frames: np.ndarray, sr: float) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz) and periodicity of each frame, from one normalised autocorrelation per frame.

    The first half of a frame (``width`` samples) is correlated with the frame at every lag in
    [0, width] by FFT; dividing by the energies of the two windows gives the NCCF (~1 voiced, ~0
    noise). The period is the shortest lag in the F0 range whose NCCF is a local peak within 10 % of
    the best one (longer lags that also fit are its multiples: octave errors), refined by a parabola.
    """

    frame_length = frames.shape[1]
    width = frame_length // 2  # lags 0..width are free of circular wrap-around with an FFT of frame_length
    spectrum = rfft(frames, axis=1)
    head = rfft(frames[:, :width], n=frame_length, axis=1)
    corr = irfft(np.conj(head) * spectrum, n=frame_length, axis=1)[:, : width + 1]
    energy = np.concatenate([np.zeros((len(frames), 1), np.float32), np.cumsum(frames**2, axis=1)], axis=1)
    tail = energy[:, width : 2 * width + 1] - energy[:, : width + 1]  # energy of frame[lag : lag + width]
    nccf = corr / np.sqrt(energy[:, width : width + 1] * np.maximum(tail, 0.0) + EPS)
    lo, hi = int(np.floor(sr / F0_MAX)), min(int(np.ceil(sr / F0_MIN)), width - 2)
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
    p10, p50, p90 = _percentiles(semitones, (10, 50, 90))
    t = np.arange(len(semitones)) * 0.02
    t = t - t.mean()
    slope = float(np.dot(t, semitones - semitones.mean()) / np.dot(t, t))  # least-squares line
    (jitter,) = _percentiles(np.abs(np.diff(semitones)), (50,))  # the median, as np.median gives it
    (median_hz,) = _percentiles(hz, (50,))
    return [p50, semitones.mean(), semitones.std(), p10, p90, p90 - p10, slope, jitter, median_hz]


def _modulation(envelope: np.ndarray, active: np.ndarray, frame_rate: float) -> tuple[float, float]:
    """Peak and centroid (Hz) of the envelope's modulation spectrum in 1-12 Hz: a threshold-free rate."""
    if active.sum() < 0.16 * frame_rate:
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
