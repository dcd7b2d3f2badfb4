"""The few-shot curve: posts from the fewshot pool only, k per class and language, nested, refit per k."""

from __future__ import annotations

import numpy as np

from babelfuse.evaluation.fewshot import few_shot_curve, fewshot_rows


def _pool(n: int = 120) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "lang": np.array(["de", "fr", "en"] * (n // 3)),
        "label": rng.integers(0, 3, n),
        "text": rng.normal(size=(n, 2)),
        "sample_id": np.array([f"p{i}" for i in range(n)]),
    }


def test_rows_are_k_per_class_per_target_language_and_nested() -> None:
    pool = _pool()
    small, big = fewshot_rows(pool, 2, ["de", "fr"], seed=1), fewshot_rows(pool, 5, ["de", "fr"], seed=1)
    assert set(small) <= set(big)
    for code in ("de", "fr"):
        for c in range(3):
            rows = big[(pool["lang"][big] == code) & (pool["label"][big] == c)]
            assert len(rows) == 5
    assert not (pool["lang"][big] == "en").any()


def test_curve_refits_once_per_positive_k_on_train_plus_the_drawn_posts() -> None:
    pool, train = _pool(), _pool(30)
    test = {"label": np.array([0, 1, 2, 0, 1, 2]), "lang": np.array(["en"] * 3 + ["de"] * 3)}
    fitted: list[int] = []

    def fit(split):
        fitted.append(len(split["label"]))
        return lambda inputs: np.eye(3)[test["label"]]  # a perfect model after adaptation

    def zero(inputs):
        return np.eye(3)[np.zeros(6, dtype=int)]

    curve = few_shot_curve([0, 2, 4], fit, zero, train, pool, test, {}, ["en"], seed=3)
    assert curve["k"] == [0, 2, 4] and curve["n_added"] == [0, 6, 12]
    assert fitted == [30 + 6, 30 + 12]
    assert curve["per_language"]["de"][0] < curve["per_language"]["de"][1] == 1.0
    assert few_shot_curve([0, 5], fit, zero, train, None, test, {}, ["en"], 3) is None
