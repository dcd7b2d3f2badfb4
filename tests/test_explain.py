"""Exact Shapley modality contributions (babelfuse.explain) on constructed models with known answers."""

from __future__ import annotations

import itertools
from math import factorial

import numpy as np
import pytest

from babelfuse import explain
from babelfuse.paths import MODALITIES
from helpers.fusion import DIMS, make_batch


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def interacting_model(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """A non-additive pure function of the inputs: per-modality logits plus a text x audio interaction."""
    rng = np.random.default_rng(7)
    w = {m: rng.normal(size=(d, 3)) for m, d in DIMS.items()}
    z = sum(inputs[m] @ w[m] for m in MODALITIES) + np.array([0.2, -0.1, 0.0])
    z = z + 0.5 * (inputs["mask"][:, :1] * inputs["mask"][:, 2:3]) * np.array([1.0, -1.0, 0.5])
    return softmax(z)


def brute_force_shapley(predict, inputs: dict[str, np.ndarray], row: int, label: int) -> np.ndarray:
    """The textbook definition: average marginal gain of each modality over all 3! join orders."""
    one = {k: v[row : row + 1] for k, v in inputs.items()}

    def value(members: set[int]) -> float:
        keep = np.array([[1.0 if j in members else 0.0 for j in range(3)]], dtype=np.float32)
        masked = {m: one[m] * keep[:, j : j + 1] for j, m in enumerate(MODALITIES)}
        masked["mask"] = one["mask"] * keep
        return float(predict(masked)[0, label])

    phi = np.zeros(3)
    for order in itertools.permutations(range(3)):
        members: set[int] = set()
        for j in order:
            before = value(members)
            members.add(j)
            phi[j] += value(members) - before
    return phi / factorial(3)


def test_matches_the_permutation_definition_and_is_efficient():
    batch = make_batch(12, seed=1)
    result = explain.explain(interacting_model, batch)
    full = interacting_model(batch)
    none = {m: np.zeros_like(batch[m]) for m in MODALITIES} | {"mask": np.zeros_like(batch["mask"])}
    empty = interacting_model(none)
    for i in range(12):
        label = int(np.argmax(full[i]))
        assert result.label[i] == label
        np.testing.assert_allclose(
            result.contrib[i], brute_force_shapley(interacting_model, batch, i, label), atol=1e-9
        )
        assert result.contrib[i].sum() == pytest.approx(full[i, label] - empty[i, label], abs=1e-9)


def test_absent_modalities_get_zero():
    batch = make_batch(12, seed=2)
    result = explain.explain(interacting_model, batch)
    assert np.all(result.contrib[batch["mask"] == 0] == 0.0)
    assert np.all(result.contrib[3] == 0.0)  # row 3 has no modality at all


def test_symmetric_modalities_get_equal_values_and_a_dummy_gets_zero():
    """text and image enter identically (same weights, same features); audio is ignored by the model."""
    rng = np.random.default_rng(3)
    d = 6
    w = rng.normal(size=(d, 3))

    def model(inputs):
        z = inputs["text"] @ w + inputs["image"] @ w + 0.8 * inputs["mask"][:, :1] * inputs["mask"][:, 1:2]
        return softmax(z)

    x = rng.normal(size=(10, d)).astype(np.float32)
    batch = {"text": x, "image": x.copy(), "audio": rng.normal(size=(10, 4)).astype(np.float32),
             "mask": np.ones((10, 3), dtype=np.float32)}  # fmt: skip
    result = explain.explain(model, batch)
    np.testing.assert_allclose(result.contrib[:, 0], result.contrib[:, 1], atol=1e-12)
    np.testing.assert_allclose(result.contrib[:, 2], 0.0, atol=1e-12)
    assert np.abs(result.contrib[:, 0]).max() > 1e-3  # the symmetric pair does carry the decision


def test_one_batched_call_of_eight_coalitions_per_post():
    calls: list[int] = []

    def counting(inputs):
        calls.append(len(inputs["mask"]))
        return interacting_model(inputs)

    explain.explain(counting, make_batch(5))
    assert calls == [5 * 8]


def test_flip_without_top_contributor_and_summary():
    """Only text decides: removing it (the top contributor) flips every post to the bias class."""
    bias = np.array([0.0, 2.0, 0.0])  # alone, the model says class 1

    def model(inputs):
        return softmax(bias + 10.0 * inputs["mask"][:, :1] * np.array([1.0, 0.0, 0.0]))

    batch = make_batch(12, seed=4)
    batch["mask"][:] = 1.0
    langs = np.array(["en"] * 6 + ["de"] * 6)
    summary = explain.contribution_summary(model, batch, langs, ["en", "de"])
    assert summary["overall"]["flip_share_without_top"] == 1.0
    assert summary["per_language"]["de"]["mean_abs_contribution"]["image"] == pytest.approx(0.0, abs=1e-12)
    assert summary["per_language"]["en"]["mean_abs_contribution"]["text"] > 0.5
