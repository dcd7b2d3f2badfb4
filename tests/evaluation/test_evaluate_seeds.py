"""evaluate_seeds end to end in memory: numpy 'models', several seeds, the detail, headline, report and RESULTS.md."""

from __future__ import annotations

import json

import numpy as np
import pytest

from babelfuse.evaluation import report, results_doc
from babelfuse.evaluation.evaluate import Labelled, evaluate_seeds
from babelfuse.paths import MODALITIES

LANGS = ["en", "de", "fr"]
DIMS = {"text": 4, "image": 4, "audio": 4}
PARAMS = {"bootstrap": 100, "ci": 0.95, "calibration_bins": 10, "missing_rates": [0.0, 0.5]}


def _split(langs: list[str], per_lang: int, seed: int) -> dict[str, np.ndarray]:
    """Each meaning in every language; text is weaker off the source, image and audio are language-free."""
    rng = np.random.default_rng(seed)
    y = np.tile(rng.integers(0, 3, per_lang), len(langs))
    lang = np.repeat(np.array(langs), per_lang)
    n = len(y)
    strength = {"text": np.where(lang == "en", 2.0, 0.6)[:, None], "image": 1.0, "audio": 0.8}
    out = {m: rng.normal(size=(n, d)).astype("float32") for m, d in DIMS.items()}
    for m in MODALITIES:
        out[m][:, :3] += strength[m] * np.eye(3)[y]
    return {
        **out,
        "mask": np.ones((n, 3), dtype="float32"),
        "label": y,
        "lang": lang,
        "template_id": np.tile(np.arange(per_lang), len(langs)),
    }


def _inputs(split):
    return {k: split[k] for k in (*MODALITIES, "mask")}


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _model(uses: tuple[str, ...], text_weight: float):
    """A softmax over the (masked) first three features of the modalities it uses."""

    def predict(inputs):
        weight = {"text": text_weight, "image": 1.0, "audio": 1.0}
        z = sum(
            weight[m] * inputs[m][:, :3] * inputs["mask"][:, i : i + 1]
            for i, m in enumerate(MODALITIES)
            if m in uses
        )
        return _softmax(z)

    return predict


def _seed_models(text_weight: float):
    """One 'training seed': the fused model weighs text differently; the baselines are the same."""
    return _model(tuple(MODALITIES), text_weight), {m: _model((m,), 1.0) for m in MODALITIES}


@pytest.fixture(scope="module")
def evaluated():
    test, val = _split(LANGS, 60, 0), _split(["en"], 90, 1)
    models = {42: _seed_models(1.0), 43: _seed_models(0.3), 44: _seed_models(3.0)}
    result, head = evaluate_seeds(
        models, Labelled.of(test, _inputs(test)), Labelled.of(val, _inputs(val)), ["en"], PARAMS, "concat"
    )
    return result, head


def test_detail_and_headline_are_valid_json_with_every_section(evaluated) -> None:
    result, head = evaluated
    detail = json.loads(json.dumps(result.metrics, allow_nan=False))
    assert set(detail["models"]) == {"fused", *MODALITIES, "late_fusion"}
    assert set(detail["transfer_gap_by_model"]) == {"fused", *MODALITIES}
    assert detail["bootstrap"]["groups"] == 60
    assert detail["seeds"]["seeds"] == [42, 43, 44]
    json.dumps(head, allow_nan=False)
    assert head["fusion"] == "concat" and head["n_seeds"] == 3
    assert head["test_macro_f1_seed_std"] > 0  # the three seeds' models differ
    assert (
        head["test_macro_f1"] == detail["test_macro_f1"] == detail["seeds"]["per_seed"]["42"]["test_macro_f1"]
    )


def test_text_only_model_loses_most_across_languages(evaluated) -> None:
    """The data make text weaker off the source and image/audio language-free: the paired gaps must say so."""
    by = evaluated[0].metrics["transfer_gap_by_model"]
    assert by["text"]["mean"]["resolved"] and by["text"]["mean"]["diff"] > 0.1
    assert not by["image"]["mean"]["resolved"]
    assert by["text"]["mean"]["diff"] > by["fused"]["mean"]["diff"]


def test_report_and_results_doc_render_from_the_detail(evaluated) -> None:
    result, head = evaluated
    html = report.render(result.metrics, {k: b"png" for k in ("per_language", "ablation", "missing", "reliability", "confusion")}, result.confusion)  # fmt: skip
    assert "late_fusion" in html and "paired" in html
    doc = results_doc.render(head, result.metrics, None, None)
    worse = doc.split("## What came out worse than hoped")[1].split("\n## ")[0]
    assert "resolvably worse than the source in de" in worse  # text carries the label less in de and fr


def test_worse_than_hoped_follows_the_numbers(evaluated) -> None:
    detail = json.loads(json.dumps(evaluated[0].metrics))
    for d in detail["transfer_gap_by_model"]["fused"]["per_language"].values():
        d.update(resolved=False, ci_low=-0.01)
    lines = results_doc.worse_than_hoped(detail, None)
    assert not any("resolvably worse than the source" in line for line in lines)


def test_modality_contributions_follow_the_data_per_language(evaluated) -> None:
    """Text carries the label strongly in en only (image/audio are language-free): its mean Shapley
    contribution is larger in en; the figure and the flat MLflow metrics carry the same numbers."""
    from babelfuse.evaluation import figures, mlflow_metrics

    ex = evaluated[0].metrics["explain"]
    text = {c: ex["per_language"][c]["mean_abs_contribution"]["text"] for c in LANGS}
    assert text["en"] > 1.2 * max(text["de"], text["fr"])
    assert all(0.0 <= ex["per_language"][c]["flip_share_without_top"] <= 1.0 for c in LANGS)
    assert ex["overall"]["n"] == sum(ex["per_language"][c]["n"] for c in LANGS)
    assert figures.contribution_bars(ex).startswith(b"\x89PNG")
    flat = mlflow_metrics.mlflow_metrics(evaluated[0].metrics)
    assert flat["mean_abs_contrib_text.en"] == text["en"]
