"""ModalityDropout: masks whole modalities in training only, never all of a sample's modalities."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from babelfuse.fusion import ModalityDropout
from babelfuse.fusion.masking import masked_mean, masked_softmax


def random_mask(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = (rng.random((n, 3)) < 0.8).astype("float32")
    mask[:5] = 0.0  # a few samples with nothing at all
    return mask


def test_inference_passes_the_mask_through() -> None:
    mask = random_mask(200, 0)
    out = np.asarray(ModalityDropout(0.5, seed=1)(mask, training=False))
    np.testing.assert_array_equal(out, mask)


def test_training_drops_modalities_but_never_all_and_never_adds_one() -> None:
    mask = random_mask(20_000, 1)
    out = np.asarray(ModalityDropout(0.3, seed=1)(mask, training=True))
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert np.all(out <= mask)  # an absent modality is never switched on
    had_any = mask.sum(axis=1) > 0
    assert np.all(out[had_any].sum(axis=1) >= 1)  # never everything
    assert np.all(out[~had_any] == 0)
    dropped_share = 1.0 - out.sum() / mask.sum()
    assert 0.2 < dropped_share < 0.3  # ~rate, a little less because of the never-all fallback


def test_rate_zero_is_identity_in_training() -> None:
    mask = random_mask(100, 2)
    np.testing.assert_array_equal(np.asarray(ModalityDropout(0.0)(mask, training=True)), mask)


def test_bad_rate_and_config_round_trip() -> None:
    with pytest.raises(ValueError, match="rate"):
        ModalityDropout(1.0)
    layer = ModalityDropout(0.25, seed=3, name="md")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, ModalityDropout) and clone.rate == 0.25 and clone.seed == 3


def test_masked_softmax_and_mean_ignore_absent_entries() -> None:
    logits = np.array([[5.0, 1.0, 2.0], [0.0, 0.0, 0.0]], dtype="float32")
    mask = np.array([[0, 1, 1], [0, 0, 0]], dtype="float32")
    weights = np.asarray(masked_softmax(logits, mask))
    assert weights[0, 0] == 0 and np.isclose(weights[0].sum(), 1.0)
    np.testing.assert_array_equal(weights[1], 0.0)  # nothing present: all zero, not NaN
    stacked = np.arange(12, dtype="float32").reshape(2, 3, 2)
    mean = np.asarray(masked_mean(stacked, mask))
    np.testing.assert_allclose(mean[0], stacked[0, 1:].mean(axis=0))
    np.testing.assert_array_equal(mean[1], 0.0)
