"""Image encoders through their real code paths: classic features, keras applications (random init and a
weights file), Hugging Face models saved tiny and random in tmp_path. Nothing is downloaded."""

from __future__ import annotations

import numpy as np
import pytest

from babelfuse.errors import BabelfuseError
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
