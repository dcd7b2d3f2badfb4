"""The evaluate stage end to end: tiny fused npz files, tiny trained Keras models, real MLflow on SQLite."""

from __future__ import annotations

import json

import numpy as np
import pytest

from babelfuse.paths import MODALITIES

DIMS = {"text": 6, "image": 5, "audio": 4}
LANGS = ["en", "de", "fr"]


def _split(langs: list[str], per_lang: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Text carries the label (weaker in the zero-shot languages), image a little, audio nothing."""
    lang = np.repeat(np.array(langs), per_lang)
    n = len(lang)
    y = rng.integers(0, 3, n)
    strength = np.select([lang == "en", lang == "de"], [3.0, 2.0], 1.0)[:, None]
    out = {m: rng.normal(size=(n, d)).astype("float32") for m, d in DIMS.items()}
    out["text"][:, :3] += strength * np.eye(3)[y]
    out["image"][:, :3] += 0.8 * np.eye(3)[y]
    mask = np.ones((n, 3), dtype="float32")
    mask[rng.random(n) < 0.1, 2] = 0.0  # some audio genuinely missing
    out["audio"][mask[:, 2] == 0] = 0.0
    out.update(
        mask=mask,
        label=y.astype("int64"),
        lang=lang,
        sample_id=np.array([f"s{i}" for i in range(n)]),
        template_id=np.full(n, -1, dtype="int64"),
    )
    return out


def _model(uses: tuple[str, ...]):
    import keras

    ins = {m: keras.Input((d,), name=m) for m, d in DIMS.items()}
    ins["mask"] = keras.Input((3,), name="mask")
    x = keras.layers.Concatenate()([ins[m] for m in uses] + [ins["mask"]])
    x = keras.layers.Dense(16, activation="relu")(x)
    model = keras.Model(ins, keras.layers.Dense(3, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("eval_inputs")
    rng = np.random.default_rng(0)
    splits = {
        "train": _split(["en"], 240, rng),
        "val": _split(["en"], 90, rng),
        "test": _split(LANGS, 60, rng),
    }
    fused = root / "data" / "fused"
    fused.mkdir(parents=True)
    for name, split in splits.items():
        np.savez(fused / f"{name}.npz", **split)
    train = splits["train"]
    x = {k: train[k] for k in (*MODALITIES, "mask")}
    (root / "models" / "baselines").mkdir(parents=True)
    for uses, path in [(MODALITIES, root / "models" / "model.keras")] + [
        ((m,), root / "models" / "baselines" / f"{m}.keras") for m in MODALITIES
    ]:
        model = _model(uses)
        model.fit(x, train["label"], epochs=12, batch_size=48, verbose=0)
        model.save(path)
    return root


@pytest.mark.slow  # ~20 s of CPU: TF import, four tiny models trained, a fresh MLflow SQLite store
def test_evaluate_stage_end_to_end(stage_inputs, tmp_path, monkeypatch, mlflow_uri):
    import mlflow

    from babelfuse.evaluation import evaluate

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BABELFUSE_ROOT", str(tmp_path))
    (tmp_path / "params.yaml").write_text(
        "seed: 42\nevaluate:\n  bootstrap: 60\n  ci: 0.95\n  missing_rates: [0.0, 0.25, 0.5, 1.0]\n"
        "  calibration_bins: 10\n"
    )
    src = stage_inputs
    evaluate.main(
        ["--fused", str(src / "data/fused"), "--model", str(src / "models/model.keras"),
         "--baselines", str(src / "models/baselines"), "--metrics", "metrics/eval.json",
         "--report", "reports/eval.html", "--plots", "plots/eval", "--temperature", "models/temperature.json"]
    )  # fmt: skip

    m = json.loads((tmp_path / "metrics/eval.json").read_text())
    assert m["source_langs"] == "en" and m["target_langs"] == "de,fr" and m["n_test"] == 180
    assert list(m["per_language"]) == LANGS
    for code in LANGS:
        d = m["per_language"][code]
        assert d["n"] == 60
        assert d["macro_f1_ci_low"] <= d["macro_f1"] <= d["macro_f1_ci_high"]
        assert d["accuracy_ci_low"] <= d["accuracy"] <= d["accuracy_ci_high"]
        for mod in MODALITIES:
            assert set(m["ablation"][mod]["per_language"][code]) == {"macro_f1", "drop"}
            assert set(m["missing_modality"][mod]) == {"missing_0", "missing_25", "missing_50", "missing_100"}
            assert code in m["missing_modality"][mod]["missing_50"]["per_language"]
        assert set(m["fusion_gain"]["per_language"][code]) == {"fused", "baseline", "gain"}
        for when in ("before", "after"):
            assert set(m["calibration"][when]["per_language"][code]) == {"ece", "brier", "nll"}
    # the synthetic signal is strongest in the source language and lives mostly in text
    assert m["source_macro_f1"] > m["target_macro_f1"] and m["transfer_gap"] > 0
    assert m["worst_language"] == "fr"
    assert m["ablation"]["text"]["overall"]["drop"] > m["ablation"]["audio"]["overall"]["drop"]
    assert m["fusion_gain"]["best_baseline"] == "text" and m["fusion_gain"]["selected_on"] == "val"

    temp = json.loads((tmp_path / "models/temperature.json").read_text())
    assert temp["fitted_on"] == "val" and temp["temperature"] > 0
    assert temp["val_nll_after"] <= temp["val_nll_before"] + 1e-9
    assert m["calibration"]["temperature"] == pytest.approx(temp["temperature"])

    html = (tmp_path / "reports/eval.html").read_text()
    assert html.count("data:image/png;base64,") >= 5
    for name in ("English (en)", "German (de)", "French (fr)"):
        assert name in html
    assert "carry" in html and "What does each modality add?" in html

    plots = tmp_path / "plots/eval"
    for name in ("per_language.csv", "ablation.csv", "missing_modality.csv", "missing_overall.csv", "reliability/before.csv", "reliability/after.csv", "confusion.csv",
                 "confusion/de.csv", "per_language.png", "reliability.png", "confusion.png"):  # fmt: skip
        assert (plots / name).stat().st_size > 0, name
    assert (plots / "confusion.csv").read_text().splitlines()[0] == "actual,predicted"
    assert len((plots / "confusion.csv").read_text().splitlines()) == 181

    mlflow.set_tracking_uri(mlflow_uri)
    runs = mlflow.search_runs(experiment_names=["babelfuse"], output_format="list")
    assert len(runs) == 1 and runs[0].info.run_name == "evaluate"
    run = runs[0]
    metrics = run.data.metrics
    assert metrics["test_macro_f1"] == pytest.approx(m["test_macro_f1"])
    for key in ("transfer_gap", "source_macro_f1", "target_macro_f1", "test_macro_f1.de", "test_macro_f1.fr",
                "test_ece_calibrated.de", "test_macro_f1_without_text.fr", "fusion_gain.de", "temperature"):  # fmt: skip
        assert key in metrics, key
    assert run.data.tags["stage"] == "evaluate" and run.data.tags["worst_language"] == "fr"
    client = mlflow.MlflowClient(mlflow_uri)
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "eval")}
    assert {"eval/eval.json", "eval/eval.html", "eval/temperature.json"} <= arts
    assert "plots/per_language.png" in {a.path for a in client.list_artifacts(run.info.run_id, "plots")}


def test_evaluate_rejects_bad_params():
    from babelfuse.errors import BabelfuseError
    from babelfuse.evaluation.evaluate import check_params

    with pytest.raises(BabelfuseError, match="evaluate.ci"):
        check_params({"ci": 1.5})
    with pytest.raises(BabelfuseError, match="missing_rates"):
        check_params({"missing_rates": [0.0, 2.0]})
