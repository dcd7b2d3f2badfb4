"""Scoring every model from one shared draw: val decides, test only reports; paired gaps; late fusion."""

from __future__ import annotations

import numpy as np
import pytest

from babelfuse.evaluation import scoring
from babelfuse.evaluation.evaluate import Labelled, headline, score_seed, seed_summary, with_seeds
from babelfuse.evaluation.metrics import macro_f1
from babelfuse.paths import MODALITIES
from babelfuse.probabilities import apply_temperature

PARAMS = {"bootstrap": 200, "ci": 0.95, "calibration_bins": 10}
LANGS = ["en", "de", "fr"]


def _probs(y: np.ndarray, right: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities whose argmax is right on a share ``right`` of rows."""
    pred = np.where(rng.random(len(y)) < right, y, (y + 1) % 3)
    return np.eye(3)[pred] * 0.6 + 0.4 / 3


def _split(langs: list[str], per_lang: int, seed: int) -> Labelled:
    rng = np.random.default_rng(seed)
    y_one = rng.integers(0, 3, per_lang)
    n = per_lang * len(langs)
    mask = np.ones((n, 3), dtype="float32")
    return Labelled(
        y=np.tile(y_one, len(langs)),
        langs=np.repeat(np.array(langs), per_lang),
        groups=np.tile(np.arange(per_lang), len(langs)),  # each meaning in every language
        inputs={"mask": mask},
    )


@pytest.fixture
def disagreeing():
    """On val image is the best single modality; on test text is, in every language."""
    rng = np.random.default_rng(0)
    test, val = _split(LANGS, 90, 1), _split(["en"], 120, 2)
    accuracy = {
        "test": {"text": 0.85, "image": 0.55, "audio": 0.45},
        "val": {"text": 0.5, "image": 0.8, "audio": 0.4},
    }
    probs = {}
    for name, data in (("test", test), ("val", val)):
        probs[name] = {m: _probs(data.y, accuracy[name][m], rng) for m in MODALITIES}
        probs[name]["fused"] = _probs(data.y, 0.95, rng)
    probs["test"].update({scoring.without(m): _probs(test.y, 0.7, rng) for m in MODALITIES})
    return test, val, probs


def test_the_val_chosen_baseline_is_the_val_winner_not_the_test_winner(disagreeing) -> None:
    test, val, probs = disagreeing
    scored = score_seed(probs["test"], probs["val"], test, val, ["en"], PARAMS, 42)
    assert scored["val_chosen"] == "image"
    gains = scored["fusion_gain"]
    assert gains["vs_val_chosen"]["baseline"] == "image"
    assert gains["vs_val_chosen"]["overall"]["diff"] == pytest.approx(
        macro_f1(test.y, probs["test"]["fused"].argmax(1))
        - macro_f1(test.y, probs["test"]["image"].argmax(1))
    )
    best = gains["vs_best_single_per_language"]
    assert {d["baseline"] for d in best["per_language"].values()} == {"text"}
    assert (
        best["min_gain"] < gains["vs_val_chosen"]["overall"]["diff"]
    )  # the oracle baseline is harder to beat


def test_every_model_is_scored_overall_and_per_language_with_intervals(disagreeing) -> None:
    test, val, probs = disagreeing
    scored = score_seed(probs["test"], probs["val"], test, val, ["en"], PARAMS, 42)
    assert set(scored["models"]) == {"fused", *MODALITIES, "late_fusion"}
    for d in scored["models"].values():
        assert list(d["per_language"]) == LANGS
        for s in (d["overall"], *d["per_language"].values()):
            assert s["macro_f1_ci_low"] <= s["macro_f1"] <= s["macro_f1_ci_high"]
    assert set(scored["fused_vs"]) == {*MODALITIES, "late_fusion"}
    assert set(scored["ablation"]) == set(MODALITIES)


def test_transfer_gap_is_paired_and_zero_when_targets_copy_the_source() -> None:
    test = _split(LANGS, 60, 3)
    rng = np.random.default_rng(4)
    one = _probs(test.y[:60], 0.7, rng)
    same = np.tile(one, (3, 1))  # the model makes the same call on every translation
    probs = {m: same for m in ("fused", *MODALITIES)}
    scored = score_seed(
        probs, {m: p[:60] for m, p in probs.items()}, test, _split(["en"], 60, 3), ["en"], PARAMS, 1
    )
    for model in ("fused", *MODALITIES):
        gap = scored["transfer_gap"][model]
        assert (gap["mean"]["diff"], gap["mean"]["ci_low"], gap["mean"]["ci_high"]) == (0.0, 0.0, 0.0)
        assert set(gap["per_language"]) == {"de", "fr"}


def test_late_fusion_multiplies_calibrated_probabilities_of_present_modalities_only() -> None:
    rng = np.random.default_rng(5)
    probs = {m: rng.dirichlet([2, 2, 2], size=4) for m in MODALITIES}
    mask = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=float)
    temps = {"text": 2.0, "image": 0.5, "audio": 1.0}
    out = scoring.late_fusion(probs, mask, temps)
    cal = {m: apply_temperature(probs[m], temps[m]) for m in MODALITIES}
    expect = cal["text"][1] * cal["audio"][1]
    np.testing.assert_allclose(out[1], expect / expect.sum())
    np.testing.assert_allclose(out[2], [1 / 3] * 3)
    np.testing.assert_allclose(out[3], cal["image"][3] / cal["image"][3].sum())


def test_seed_summary_gives_mean_and_sample_std_of_headline_numbers() -> None:
    heads = {42: {"test_macro_f1": 0.7}, 43: {"test_macro_f1": 0.8}, 44: {"test_macro_f1": 0.9}}
    summary = seed_summary(heads)
    assert summary["mean"]["test_macro_f1"] == pytest.approx(0.8)
    assert summary["std"]["test_macro_f1"] == pytest.approx(0.1)
    head = with_seeds({"test_macro_f1": 0.7}, summary)
    assert head["n_seeds"] == 3 and head["test_macro_f1_seed_std"] == pytest.approx(0.1)
    assert seed_summary({42: {"test_macro_f1": 0.7}})["std"]["test_macro_f1"] is None


def test_headline_is_short_and_names_the_worst_language(disagreeing) -> None:
    from babelfuse.evaluation.evaluate import legacy_view

    test, val, probs = disagreeing
    scored = score_seed(probs["test"], probs["val"], test, val, ["en"], PARAMS, 42)
    detail = {**legacy_view(scored, ["en"], len(test.y)), "fusion_gains": scored["fusion_gain"]}
    detail["calibration"] = scored["calibration"]
    head = headline(detail)
    assert len(head) <= 16 and all(not isinstance(v, dict) for v in head.values())
    worst = min(LANGS, key=lambda c: scored["models"]["fused"]["per_language"][c]["macro_f1"])
    assert head["worst_language"] == worst
    assert head["worst_language_macro_f1"] == scored["models"]["fused"]["per_language"][worst]["macro_f1"]
    assert head["val_chosen_baseline"] == "image"
