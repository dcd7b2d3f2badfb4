"""Image encoders through their real code paths: classic features, keras applications (random init and a
weights file), Hugging Face models saved tiny and random in tmp_path. Nothing is downloaded."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2gray
from skimage.feature import hog

from babelfuse.errors import BabelfuseError
from babelfuse.features.image import HOG_EDGES, _hsv, _orientation_bins, to_size
from babelfuse.features.registry import get_encoder


def _images(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def _flat(colour: tuple[int, int, int], size: int = 48) -> np.ndarray:
    return np.tile(np.array(colour, np.uint8), (size, size, 1))


def test_classic_has_a_fixed_dim_and_is_deterministic_and_batch_independent():
    encoder = get_encoder(
        "image", "classic", {"encoder": "classic", "size": 48, "batch_size": 8, "weights": None}
    )
    other_size = get_encoder("image", "classic", {"size": 96})
    assert encoder.dim == other_size.dim  # HOG uses a fixed cell grid, so dim does not depend on size
    images = _images(5, 48)
    features = encoder.encode(images)
    assert features.shape == (5, encoder.dim) and features.dtype == np.float32
    assert np.isfinite(features).all()
    assert np.array_equal(features, encoder.encode(images))
    assert np.array_equal(features[2:3], encoder.encode(images[2:3]))
    assert encoder.encode([]).shape == (0, encoder.dim)


def test_classic_separates_colour_and_shape():
    encoder = get_encoder("image", "classic", {"size": 48})
    red, blue, red_again = encoder.encode([_flat((220, 20, 20)), _flat((20, 20, 220)), _flat((221, 20, 20))])
    assert np.linalg.norm(red - blue) > 10 * np.linalg.norm(red - red_again)
    stripes_h = np.zeros((48, 48, 3), np.uint8)
    stripes_h[::8] = 255
    stripes_v = np.ascontiguousarray(stripes_h.transpose(1, 0, 2))
    horizontal, vertical = encoder.encode([stripes_h, stripes_v])
    hog = slice(0, 900)  # same colours, different orientation: only the HOG part differs
    assert np.linalg.norm(horizontal[hog] - vertical[hog]) > 1.0
    assert np.allclose(horizontal[900:940], vertical[900:940])


def test_classic_resizes_inputs_of_another_size_and_greyscale():
    encoder = get_encoder("image", "classic", {"size": 48})
    big = np.kron(_images(1, 24)[0], np.ones((4, 4, 1), np.uint8))  # 96x96
    grey = np.full((30, 50), 128, np.uint8)
    features = encoder.encode([big, grey])
    assert features.shape == (2, encoder.dim)
    with pytest.raises(BabelfuseError, match="RGB"):
        encoder.encode([np.zeros((8, 8, 2), np.uint8)])


def _reference_classic(image: np.ndarray, size: int) -> np.ndarray:
    """The classic features as the original per-image code computed them (skimage HOG, PIL HSV)."""

    def hist(bins, n, weights=None):
        counts = np.bincount(bins, weights=weights, minlength=n)[:n].astype(np.float64)
        return counts / counts.sum() if counts.sum() > 0 else counts

    rgb = to_size(image, size)
    grey = rgb2gray(rgb)
    cell = size // 6
    shape = hog(grey, 9, (cell, cell), (2, 2), block_norm="L2-Hys", feature_vector=True)
    pixels = rgb.reshape(-1, 3)
    rgb_hist = [hist(pixels[:, c].astype(np.int64) * 16 // 256, 16) for c in range(3)]
    hsv = np.asarray(Image.fromarray(rgb).convert("HSV"), dtype=np.int64).reshape(-1, 3)
    hsv_hist = [
        hist(hsv[:, 0] * 18 // 256, 18, hsv[:, 1].astype(np.float64)),
        hist(hsv[:, 1] * 8 // 256, 8),
        hist(hsv[:, 2] * 8 // 256, 8),
    ]
    unit = rgb.astype(np.float32) / 255.0
    moments = np.concatenate([unit.mean(axis=(0, 1)), unit.std(axis=(0, 1)), [grey.mean(), grey.std()]])
    step = size // 4
    layout = unit[: step * 4, : step * 4].reshape(4, step, 4, step, 3).mean(axis=(1, 3))
    return np.concatenate([shape, *rgb_hist, *hsv_hist, moments, layout.ravel()]).astype(np.float32)


def _structured_images(size: int, seed: int = 0) -> list[np.ndarray]:
    """Flat, ramps, stripes, checkerboard, disc, smooth noise, raw noise, posterised noise (ties, exact
    horizontal/vertical gradients, colours with equal channels), other sizes, greyscale and RGBA."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    ramp = np.stack([x * 255 // (size - 1), y * 255 // (size - 1), (x + y) * 255 // (2 * size - 2)], axis=2)
    stripes = np.zeros((size, size, 3), np.uint8)
    stripes[::7] = (250, 30, 90)
    checker = (((x // 5 + y // 5) % 2) * 255).astype(np.uint8)
    disc = np.where(
        ((x - size / 2) ** 2 + (y - size / 3) ** 2 < (size / 4) ** 2)[:, :, None], (20, 200, 60), 240
    )
    smooth = np.kron(rng.integers(0, 256, (size // 8, size // 8, 3)), np.ones((8, 8, 1)))
    images = [_flat((30, 60, 200), size), ramp, stripes, stripes.transpose(1, 0, 2), checker, disc, smooth]
    images += [rng.integers(0, 256, (size, size, 3)) for _ in range(3)]
    images += [
        rng.integers(0, 4, (size, size, 3)) * 85,
        np.repeat(rng.integers(0, 3, (size, size, 1)) * 120, 3, axis=2),
    ]
    images += [rng.integers(0, 256, (size + 13, size - 9, 3)), rng.integers(0, 256, (31, 47))]
    images += [
        rng.integers(0, 256, (size, size, 4)),
        np.kron(rng.integers(0, 256, (6, 6)), np.ones((20, 20))),
    ]
    return [np.ascontiguousarray(image).astype(np.uint8) for image in images]


@pytest.mark.parametrize("size", [96, 100, 42])
def test_classic_equals_the_per_image_skimage_reference_and_is_batch_independent(size):
    encoder = get_encoder("image", "classic", {"size": size})
    images = _structured_images(size)
    features = encoder.encode(images)
    reference = np.stack([_reference_classic(image, size) for image in images])
    assert features.shape == reference.shape == (len(images), encoder.dim)
    np.testing.assert_allclose(features, reference, rtol=1e-5, atol=1e-6)  # HOG: skimage sums in float32
    np.testing.assert_array_equal(features[:, 900:], reference[:, 900:])  # colour features: same arithmetic
    one_at_a_time = np.concatenate([encoder.encode([image]) for image in images])
    np.testing.assert_array_equal(features, one_at_a_time)
    np.testing.assert_array_equal(features[3:], encoder.encode(images[3:]))


def test_classic_hsv_lookup_is_pil_bit_for_bit():
    grid = np.arange(0, 256, 3, dtype=np.uint8)  # 0 and 255, many equal-channel ties
    colours = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)
    colours = np.concatenate(
        [colours, np.random.default_rng(1).integers(0, 256, (200_000, 3), dtype=np.uint8)]
    )
    pil = np.asarray(Image.fromarray(colours[None]).convert("HSV"))[0]
    ours = np.stack(_hsv(*colours.T.copy()), axis=-1)
    np.testing.assert_array_equal(ours, pil)


def test_classic_orientation_bins_follow_skimage_rounding():
    rng = np.random.default_rng(2)
    g_col = rng.normal(size=400_000) * rng.choice([1e-3, 1.0], 400_000)
    g_row = np.concatenate(
        [
            rng.normal(size=100_000),
            np.zeros(100_000),  # horizontal: bin 0 whatever the sign of g_col
            rng.normal(size=100_000) * 1e-17,  # rounds to 0 or 180 (no bin) or stays in bin 8
            g_col[300_000:] * np.tan(np.deg2rad(rng.choice(HOG_EDGES, 100_000))),  # on (rounded) bin edges
        ]
    )
    g_col[::1000] = 0.0  # vertical
    skimage_bins = np.searchsorted(HOG_EDGES, np.rad2deg(np.arctan2(g_row, g_col)) % 180, side="right")
    assert set(np.unique(skimage_bins)) == set(range(10))
    np.testing.assert_array_equal(_orientation_bins(g_row, g_col), skimage_bins)


def test_keras_application_random_init_is_reproducible_and_a_weights_file_round_trips(tmp_path):
    params = {"size": 32, "weights": None}
    first = get_encoder("image", "keras:MobileNetV3Small", params)
    assert first.id == "keras:MobileNetV3Small" and first.dim == 576
    images = _images(3, 32) + _images(1, 40, seed=1)  # the last one is resized to 32 x 32
    reference = first.encode(images)
    assert reference.shape == (4, 576) and reference.dtype == np.float32
    assert np.count_nonzero(reference) > 0.9 * reference.size  # random init: small but not dead
    np.testing.assert_array_equal(
        reference, get_encoder("image", "keras:MobileNetV3Small", params).encode(images)
    )

    path = tmp_path / "mobilenet_notop.weights.h5"
    first.model.save_weights(path)
    other_init = get_encoder("image", "keras:MobileNetV3Small", {**params, "seed": 1})
    assert not np.allclose(other_init.encode(images), reference, rtol=1e-3, atol=0)
    loaded = get_encoder("image", "keras:MobileNetV3Small", {**params, "weights": str(path)})
    np.testing.assert_allclose(loaded.encode(images), reference, rtol=1e-5, atol=0)
    assert "mobilenet_notop.weights.h5@" in loaded.version


@pytest.mark.filterwarnings("ignore:.*input_shape.*:UserWarning")
def test_keras_imagenet_offline_gives_a_clear_error(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: network is unreachable")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(BabelfuseError, match=r"download the no-top weights file .*features\.image\.weights"):
        get_encoder("image", "keras:MobileNetV3Small", {"size": 32, "weights": "imagenet"})


def test_keras_bad_names_and_weights_are_user_errors(tmp_path):
    with pytest.raises(BabelfuseError, match="not a keras.applications model"):
        get_encoder("image", "keras:NoSuchNet", {"size": 32})
    with pytest.raises(BabelfuseError, match="file not found"):
        get_encoder(
            "image", "keras:MobileNetV3Small", {"size": 32, "weights": str(tmp_path / "missing.weights.h5")}
        )
    wrong = tmp_path / "weights.bin"
    wrong.write_bytes(b"\0")
    with pytest.raises(BabelfuseError, match=r"\.weights\.h5"):
        get_encoder("image", "keras:MobileNetV3Small", {"size": 32, "weights": str(wrong)})


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-vit")
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
    )
    ViTModel(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_hf_image_encoder_pools_a_local_model(tiny_vit):
    encoder = get_encoder("image", f"hf:{tiny_vit}", {"size": 32, "weights": None})
    assert encoder.dim == 32 and encoder.id == f"hf:{tiny_vit}"
    images = _images(3, 32)
    features = encoder.encode(images)
    assert features.shape == (3, 32) and features.dtype == np.float32
    np.testing.assert_allclose(features[1:2], encoder.encode(images[1:2]), atol=1e-5)
    assert not np.allclose(features[0], features[1])


def test_hf_missing_model_is_a_clear_error_without_download(tmp_path):
    with pytest.raises(BabelfuseError, match="never downloaded"):
        get_encoder("image", f"hf:{tmp_path / 'no-such-model'}", {"size": 32})
    with pytest.raises(BabelfuseError, match="never downloaded"):
        get_encoder("image", "hf:some-org/some-model-that-is-not-cached", {"size": 32})
