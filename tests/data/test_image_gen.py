"""Synthetic faces: deterministic, label-driven when informative, label-blind when not."""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.feature import hog
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from babelfuse.data import image_gen
from babelfuse.labels import LABELS


def test_render_face_is_rgb_uint8_and_deterministic_by_seed() -> None:
    cues = image_gen.FaceCues(mouth=0.8, brow=5.0, eyes=0.6)
    a = image_gen.render_face(cues, 64, np.random.default_rng(7))
    b = image_gen.render_face(cues, 64, np.random.default_rng(7))
    c = image_gen.render_face(cues, 64, np.random.default_rng(8))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() > 10  # not a blank canvas


def test_informative_cues_follow_the_label() -> None:
    rng = np.random.default_rng(0)
    mouth = {
        label: np.mean([image_gen.draw_cues(label, True, rng).mouth for _ in range(200)]) for label in LABELS
    }
    assert mouth["negative"] < mouth["neutral"] - 0.4 < mouth["positive"] - 0.8
    brow = {
        label: np.mean([image_gen.draw_cues(label, True, rng).brow for _ in range(200)]) for label in LABELS
    }
    assert brow["negative"] < brow["neutral"] < brow["positive"]


def test_uninformative_cues_ignore_the_label() -> None:
    for seed in range(20):
        drawn = {image_gen.draw_cues(label, False, np.random.default_rng(seed)) for label in LABELS}
        assert len(drawn) == 1  # same randomness, any label -> the same face


def test_png_round_trip(tmp_path) -> None:
    pixels = image_gen.face_image("positive", True, 48, np.random.default_rng(1))
    image_gen.save_png(pixels, tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as img:
        assert img.mode == "RGB" and img.size == (48, 48)
        assert np.array_equal(np.asarray(img), pixels)


def test_a_simple_classifier_reads_the_label_from_informative_faces() -> None:
    rng = np.random.default_rng(3)
    labels = [LABELS[i % 3] for i in range(240)]
    feats = np.array(
        [
            hog(
                image_gen.face_image(label, True, 64, rng).mean(axis=2) / 255,
                pixels_per_cell=(10, 10),
                cells_per_block=(2, 2),
            )
            for label in labels
        ]
    )
    accuracy = cross_val_score(LogisticRegression(C=0.05, max_iter=2000), feats, labels, cv=3).mean()
    assert accuracy > 0.55  # chance is 1/3
