"""Modality masking and missing-rate robustness on data where only the text modality carries the label."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from babelfuse.evaluation import ablation, scoring
from babelfuse.evaluation import bootstrap as bs
from babelfuse.evaluation.metrics import f1_by_language
from babelfuse.paths import MODALITIES

DIMS = {"text": 6, "image": 5, "audio": 4}


def _split(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    inputs = {m: rng.normal(size=(n, d)).astype("float32") for m, d in DIMS.items()}
    inputs["text"][:, :3] += 3.0 * np.eye(3)[y]  # only text is informative
    inputs["mask"] = np.ones((n, 3), dtype="float32")
    langs = np.array(["en", "de", "fr"])[np.arange(n) % 3]
    return inputs, y, langs


def _flat(inputs: dict[str, np.ndarray]) -> np.ndarray:
    return np.hstack([inputs["text"], inputs["image"], inputs["audio"], inputs["mask"]])


@pytest.fixture(scope="module")
def predict():
    inputs, y, _ = _split(600, 0)
    clf = LogisticRegression(max_iter=500).fit(_flat(inputs), y)
    return lambda inp: clf.predict_proba(_flat(inp))


def test_mask_modality_zeroes_features_and_mask_without_mutating():
    inputs, _, _ = _split(9, 1)
    rows = np.array([True, False] * 4 + [True])
    out = ablation.mask_modality(inputs, "image", rows)
    assert np.all(out["image"][rows] == 0) and np.all(out["mask"][rows, 1] == 0)
    assert np.all(out["image"][~rows] == inputs["image"][~rows]) and np.all(out["mask"][~rows] == 1)
    assert np.all(out["mask"][:, [0, 2]] == 1) and np.all(inputs["mask"] == 1)
    assert out["text"] is inputs["text"]
    with pytest.raises(ValueError):
        ablation.mask_modality(inputs, "video")


def test_masking_the_informative_modality_lowers_f1(predict):
    inputs, y, langs = _split(300, 5)
    preds = {"fused": predict(inputs).argmax(1)}
    preds.update(
        {scoring.without(m): predict(ablation.mask_modality(inputs, m)).argmax(1) for m in MODALITIES}
    )
    out = scoring.ablation_drops(y, preds, langs, ["en", "de", "fr"], bs.draw(np.arange(len(y)), 50, 0), 0.95)
    assert set(out) == {"text", "image", "audio"}
    for d in (out["text"]["overall"], *out["text"]["per_language"].values()):
        assert d["diff"] > 0.4 and d["resolved"]
    for m in ("image", "audio"):
        for d in (out[m]["overall"], *out[m]["per_language"].values()):
            assert abs(d["diff"]) < 0.1


def test_missing_rows_stratified_and_nested():
    langs = np.array(["en"] * 40 + ["de"] * 20)
    r25, r50 = ablation.missing_rows(langs, 0.25, 7), ablation.missing_rows(langs, 0.5, 7)
    assert r25[langs == "en"].sum() == 10 and r25[langs == "de"].sum() == 5
    assert r50[langs == "en"].sum() == 20 and r50[langs == "de"].sum() == 10
    assert np.all(r50[r25])  # 25 % missing is a subset of 50 % missing
    assert not ablation.missing_rows(langs, 0.0, 7).any() and ablation.missing_rows(langs, 1.0, 7).all()


def test_missing_rate_robustness_degrades_with_text_missing(predict):
    inputs, y, langs = _split(300, 6)
    rates = [0.0, 0.25, 0.5, 1.0]
    out = ablation.missing_rate_robustness(predict, inputs, y, langs, rates, seed=1)
    assert list(out["text"]) == ["missing_0", "missing_25", "missing_50", "missing_100"]
    text = [out["text"][ablation.rate_key(r)]["overall"] for r in rates]
    assert text[0] > text[1] > text[2] > text[3]
    without_text = f1_by_language(y, predict(ablation.mask_modality(inputs, "text")), langs)
    assert text[3] == pytest.approx(without_text["overall"])
    assert out["audio"]["missing_0"] == out["text"]["missing_0"]
    with pytest.raises(ValueError):
        ablation.missing_rate_robustness(predict, inputs, y, langs, [1.5])


def test_best_baseline_ties_go_to_modality_order():
    assert ablation.select_best_baseline({"text": 0.6, "image": 0.7, "audio": 0.7}) == "image"
