"""Audio encoders: prosody features respond to pitch, loudness and rate the way the dataset needs;
Hugging Face speech models (wav2vec2, Whisper) saved tiny and random in tmp_path. Nothing is downloaded."""

from __future__ import annotations

import numpy as np
import pytest

from babelfuse.errors import BabelfuseError
from babelfuse.features.audio import F0_FRAME
from babelfuse.features.registry import get_encoder

SR = 16_000


def speech_like(f0=120.0, rate=4.0, amp=0.3, seconds=3.0, sr=SR, noise_db=-30.0, seed=0) -> np.ndarray:
    """A harmonic source with a gently moving pitch, cut into `rate` syllables per second, plus white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t))) / sr
    source = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * rate * t), 0, None) ** 2
    inside = (t > 0.2) & (t < seconds - 0.2)
    noise = 10 ** (noise_db / 20) * rng.standard_normal(len(t))
    return (amp * source * syllables * inside + noise).astype(np.float32)


@pytest.fixture(scope="module")
def prosody():
    return get_encoder(
        "audio", "prosody", {"encoder": "prosody", "sample_rate": SR, "n_mels": 40, "n_mfcc": 20}
    )


def _features(encoder, clips) -> list[dict[str, float]]:
    return [dict(zip(encoder.names, row, strict=True)) for row in encoder.encode(clips)]


def test_prosody_dim_names_determinism_and_batch_independence(prosody):
    assert prosody.dim == len(prosody.names) == len(set(prosody.names))
    clips = [speech_like(seed=1), speech_like(f0=180, seconds=1.3, seed=2), speech_like(rate=6, seed=3)]
    features = prosody.encode(clips)
    assert features.shape == (3, prosody.dim) and features.dtype == np.float32
    assert np.isfinite(features).all()
    np.testing.assert_array_equal(features, prosody.encode(clips))
    np.testing.assert_array_equal(features[1:2], prosody.encode(clips[1:2]))
    smaller = get_encoder("audio", "prosody", {"n_mels": 32, "n_mfcc": 13})
    assert smaller.dim == prosody.dim - 2 * (40 - 32) - 4 * (20 - 13)


def test_higher_pitch_gives_higher_f0_features(prosody):
    low, high = _features(prosody, [speech_like(f0=90.0), speech_like(f0=220.0)])
    assert low["f0_median_hz"] == pytest.approx(90.0, rel=0.06)
    assert high["f0_median_hz"] == pytest.approx(220.0, rel=0.06)
    assert high["f0_median"] - low["f0_median"] == pytest.approx(12 * np.log2(220 / 90), abs=1.0)
    assert high["f0_p10"] > low["f0_p90"]
    assert low["voiced_ratio"] > 0.8 and high["voiced_ratio"] > 0.8


def test_pitch_tracker_finds_the_period_not_its_multiples_and_rejects_noise():
    """The autocorrelation pitch tracker on 8 kHz frames: a harmonic tone gives its own F0 (a lag of
    2 or 3 periods correlates as well, so picking the largest peak would halve the pitch), a tone
    with a weak fundamental still gives it, and white noise has periodicity near 0."""
    from babelfuse.features.audio import _nccf_pitch

    def _pitch(y, sr, frame_length, hop):  # every centred frame of y, as the encoder frames a clip
        padded = np.pad(y, frame_length // 2)
        starts = np.arange(0, len(y) + 1, hop)
        return _nccf_pitch(padded[starts[:, None] + np.arange(frame_length)], sr)

    sr, t = 8000, np.arange(8000) / 8000
    for f0 in (65.0, 110.0, 180.0, 390.0):
        tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6)).astype(np.float32)
        hz, periodicity = _pitch(tone, sr, F0_FRAME, 160)
        inner = slice(3, -3)  # frames that lie wholly inside the signal
        assert np.median(hz[inner]) == pytest.approx(f0, rel=0.01)
        assert periodicity[inner].min() > 0.9
    weak_fundamental = (
        0.3 * np.sin(2 * np.pi * 120 * t) + np.sin(2 * np.pi * 240 * t) + np.sin(2 * np.pi * 360 * t)
    )
    hz, _ = _pitch(weak_fundamental.astype(np.float32), sr, F0_FRAME, 160)
    assert np.median(hz[3:-3]) == pytest.approx(120.0, rel=0.01)
    noise = np.random.default_rng(0).standard_normal(sr).astype(np.float32)
    _, periodicity = _pitch(noise, sr, F0_FRAME, 160)
    assert np.median(periodicity) < 0.3
    _, silent = _pitch(np.zeros(sr, np.float32), sr, F0_FRAME, 160)
    assert np.isfinite(silent).all() and silent.max() == 0


def test_louder_gives_higher_rms_features(prosody):
    quiet, loud = _features(prosody, [speech_like(amp=0.1), speech_like(amp=0.4)])
    gain_db = 20 * np.log10(4)
    assert loud["rms_db_max"] - quiet["rms_db_max"] == pytest.approx(gain_db, abs=1.0)
    assert loud["rms_db_p90"] - quiet["rms_db_p90"] == pytest.approx(gain_db, abs=1.5)
    assert loud["rms_db_clip"] > quiet["rms_db_clip"] + 6
    assert loud["f0_median_hz"] == pytest.approx(quiet["f0_median_hz"], rel=0.06)  # contour spans +-8 %


def test_faster_speech_gives_higher_rate_features(prosody):
    slow, fast = _features(prosody, [speech_like(rate=2.5), speech_like(rate=6.0)])
    assert slow["nuclei_per_span_s"] == pytest.approx(2.5, rel=0.3)
    assert fast["nuclei_per_span_s"] == pytest.approx(6.0, rel=0.3)
    assert fast["mod_peak_hz"] > slow["mod_peak_hz"] + 2
    assert fast["f0_median_hz"] == pytest.approx(slow["f0_median_hz"], rel=0.05)  # rate is not pitch


def test_noise_silence_and_tiny_clips_are_finite_and_unvoiced(prosody):
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal(SR)).astype(np.float32)
    silence = np.zeros(SR, np.float32)
    tiny = speech_like(seconds=0.03)
    rows = _features(prosody, [noise, silence, tiny])
    assert all(np.isfinite(list(row.values())).all() for row in rows)
    assert rows[0]["voiced_ratio"] == 0 and rows[1]["voiced_ratio"] == 0
    assert rows[1]["rms_db_max"] < -80
    assert rows[2]["duration_s"] == pytest.approx(0.03)


def test_prosody_works_at_other_sample_rates_and_rejects_bad_params():
    encoder = get_encoder("audio", "prosody", {"sample_rate": 22_050})
    (row,) = _features(encoder, [speech_like(f0=150.0, sr=22_050)])
    assert row["f0_median_hz"] == pytest.approx(150.0, rel=0.06)
    with pytest.raises(BabelfuseError, match="sample_rate"):
        get_encoder("audio", "prosody", {"sample_rate": 4000})


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    config = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(16, 16, 16),
        conv_stride=(5, 4, 4),
        conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(
        sampling_rate=SR, do_normalize=True, return_attention_mask=False
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-whisper")
    config = WhisperConfig(
        vocab_size=64,
        num_mel_bins=80,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=100,  # 2 s windows (200 mel frames) instead of 30 s
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        suppress_tokens=[],
        begin_suppress_tokens=[],
    )
    WhisperModel(config).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80, sampling_rate=SR, chunk_length=2).save_pretrained(folder)
    return folder


def test_hf_wav2vec2_mean_pools_each_clip_on_its_own(tiny_wav2vec2):
    encoder = get_encoder("audio", f"hf:{tiny_wav2vec2}", {"sample_rate": SR, "n_mels": 40})
    assert encoder.dim == 16
    clips = [
        speech_like(seconds=0.5, seed=1),
        speech_like(f0=200, seconds=0.8, seed=2),
        np.zeros(100, np.float32),
    ]
    features = encoder.encode(clips)
    assert features.shape == (3, 16) and features.dtype == np.float32 and np.isfinite(features).all()
    np.testing.assert_allclose(features[:1], encoder.encode(clips[:1]), atol=1e-5)  # no padding leaks in
    assert not np.allclose(features[0], features[1])


def test_hf_wav2vec2_resamples_when_the_model_rate_differs(tiny_wav2vec2):
    encoder = get_encoder("audio", f"hf:{tiny_wav2vec2}", {"sample_rate": 8000})
    at_8k = encoder.encode([speech_like(seconds=0.5, sr=8000)])
    assert at_8k.shape == (1, 16) and np.isfinite(at_8k).all()


def test_hf_whisper_uses_the_encoder_and_pools_only_the_clip(tiny_whisper):
    encoder = get_encoder("audio", f"hf:{tiny_whisper}", {"sample_rate": SR})
    assert encoder.dim == 16
    short, longer = speech_like(seconds=0.4, seed=1), speech_like(seconds=1.5, seed=2)
    features = encoder.encode([short, longer])
    assert features.shape == (2, 16) and np.isfinite(features).all()
    np.testing.assert_allclose(features[:1], encoder.encode([short]), atol=1e-5)
    # Pooling covers only the clip: appending silence to fill the window changes the features.
    padded = np.concatenate([short, np.zeros(SR, np.float32)])
    assert not np.allclose(encoder.encode([padded]), features[:1], atol=1e-4)


def test_halving_equals_resample_poly_with_the_same_half_band_filter():
    """The prosody encoder's 16 -> 8 kHz shortcut computes only the kept outputs of the same filter."""
    from scipy.signal import firwin, resample_poly

    from babelfuse.features.audio import _halve

    taps = firwin(41, 0.5, window=("kaiser", 5.0)).astype(np.float32)
    for n in (7, 1000, 1001, 48_001):
        x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
        expected = resample_poly(x, 1, 2, window=taps)
        halved = _halve(x, taps)
        assert halved.shape == expected.shape and halved.dtype == np.float32
        np.testing.assert_allclose(halved, expected, atol=2e-6)


def test_speech_copy_frames_equal_those_of_an_8khz_copy_of_the_whole_clip(prosody):
    """Spectra and pitch read an 8 kHz copy of the speech span only: each of its frames must be the
    frame an 8 kHz copy of the whole clip gives (the resampling filter's context is included)."""
    from scipy.signal import resample_poly

    clip = speech_like(seconds=4.0, seed=5)
    whole = np.pad(resample_poly(clip, 1, 2, window=prosody.low_pass).astype(np.float32), F0_FRAME // 2)
    for lo, hi in ((0, 50), (120, 260), (300, 401)):
        low, offset = prosody._speech_copy(clip, lo, hi)
        for k in range(lo, hi):
            mine = low[k * 80 - offset : k * 80 - offset + F0_FRAME]
            np.testing.assert_allclose(mine, whole[k * 80 : k * 80 + F0_FRAME], atol=2e-6)


def test_span_zero_crossing_rate_from_the_running_count_equals_counting_each_frame(prosody):
    """Spectrum frames overlap, so the encoder counts the span's sign changes once and takes each
    frame's share from a running count: it must equal counting inside every frame."""
    from babelfuse.features.audio import SPECTRUM_STEP, SpanSpectra

    clip = speech_like(seconds=2.0, seed=7)
    padded = np.pad(clip, prosody.n_fft // 2)
    lo, hi = 10, 171
    span = SpanSpectra.of(prosody, padded, lo, hi, np.ones(-(-(hi - lo) // SPECTRUM_STEP), bool))
    step = SPECTRUM_STEP * prosody.hop
    starts = lo * prosody.hop + np.arange(len(span.zcr)) * step
    frames = padded[starts[:, None] + np.arange(prosody.n_fft)]
    assert starts[-1] <= (hi - 1) * prosody.hop  # the last frame starts on energy frame hi - 1 or before
    np.testing.assert_array_equal(span.zcr, np.mean(np.diff(np.signbit(frames), axis=1), axis=1))
    assert span.power.shape == (prosody.n_fft // 2 + 1, len(span.zcr))


def test_onsets_are_the_frames_where_the_spectrum_rises_and_none_in_a_steady_one():
    from babelfuse.features.audio import _onsets

    frames = np.arange(80)
    logmel = np.full((40, 80), -60.0)
    for start in (10, 30, 52):  # three bursts that rise at once and decay over 8 frames
        logmel[:, start : start + 8] += 30.0 - 3.0 * (frames[start : start + 8] - start)
    np.testing.assert_array_equal(_onsets(logmel), [10, 30, 52])
    assert len(_onsets(np.full((40, 80), -60.0))) == 0
    assert len(_onsets(logmel[:, :2])) == 0  # too short to hold a rise
