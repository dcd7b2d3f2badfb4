"""The evaluate stage end to end: tiny fused npz files, tiny trained Keras models, real MLflow on SQLite."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from babelfuse.paths import MODALITIES

DIMS = {"text": 6, "image": 5, "audio": 4}
LANGS = ["en", "de", "fr"]
SEEDS = (42, 43)


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
        template_id=np.tile(np.arange(per_lang), len(langs)),  # each meaning in every language
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


def _save_logreg(train: dict[str, np.ndarray], path) -> None:
    from babelfuse.training.baselines import fit_logreg, logreg_to_json

    model, _ = fit_logreg(train, train, seed=0)
    path.write_text(json.dumps(logreg_to_json(model)))


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory):
    """Fused splits (with a target-language fewshot pool) and two seeds' models under models/seeds/."""
    import keras

    root = tmp_path_factory.mktemp("eval_inputs")
    rng = np.random.default_rng(0)
    splits = {
        "train": _split(["en"], 240, rng),
        "val": _split(["en"], 90, rng),
        "test": _split(LANGS, 60, rng),
        "fewshot": _split(["de", "fr"], 30, rng),
    }
    fused = root / "data" / "fused"
    fused.mkdir(parents=True)
    for name, split in splits.items():
        np.savez(fused / f"{name}.npz", **split)
    train = splits["train"]
    x = {k: train[k] for k in (*MODALITIES, "mask")}
    seeds = root / "models" / "seeds"
    for seed in SEEDS:  # the fused model differs per seed; the second seed reuses the first's baselines
        keras.utils.set_random_seed(seed)
        first = seed == SEEDS[0]
        (seeds / str(seed)).mkdir(parents=True)
        jobs = [(MODALITIES, seeds / str(seed) / "model.keras")]
        if first:
            (seeds / str(seed) / "baselines").mkdir()
            jobs += [((m,), seeds / str(seed) / "baselines" / f"{m}.keras") for m in MODALITIES]
        for uses, path in jobs:
            model = _model(uses)
            model.fit(x, train["label"], epochs=10, batch_size=48, verbose=0)
            model.save(path)
        if first:
            _save_logreg(train, seeds / str(seed) / "baselines" / "logreg.json")
        else:
            shutil.copytree(seeds / str(SEEDS[0]) / "baselines", seeds / str(seed) / "baselines")
    return root


@pytest.mark.slow  # ~40 s of CPU: TF import, five tiny models, one few-shot refit, a fresh MLflow store
def test_evaluate_stage_end_to_end(stage_inputs, tmp_path, monkeypatch, mlflow_uri):
    import mlflow

    from babelfuse.stages import evaluate

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BABELFUSE_ROOT", str(tmp_path))
    (tmp_path / "params.yaml").write_text(
        "seed: 42\nevaluate:\n  bootstrap: 60\n  ci: 0.95\n  missing_rates: [0.0, 0.25, 0.5, 1.0]\n"
        "  calibration_bins: 10\n  seeds: [42, 43]\n  few_shot: [0, 5]\n"
        "train:\n  fusion: concat\n  hidden: 8\n  epochs: 3\n  patience: 2\n  use_best_params: false\n"
    )
    src = stage_inputs
    evaluate.main(
        ["--fused", str(src / "data/fused"), "--models", str(src / "models"), "--metrics", "metrics/eval.json",
         "--detail", "metrics/eval_detail.json", "--report", "reports/eval.html", "--plots", "plots/eval",
         "--temperature", "models/temperature.json"]
    )  # fmt: skip

    head = json.loads((tmp_path / "metrics/eval.json").read_text())
    assert all(not isinstance(v, dict | list) for v in head.values()), "eval.json must stay flat and short"
    assert head["fusion"] == "concat" and head["n_seeds"] == 2 and head["worst_language"] == "fr"
    m = json.loads((tmp_path / "metrics/eval_detail.json").read_text())
    assert m["source_langs"] == "en" and m["target_langs"] == "de,fr" and m["n_test"] == 180
    assert set(m["models"]) == {"fused", *MODALITIES, "logreg", "late_fusion"}
    assert m["bootstrap"]["groups"] == 60  # meanings, not rows, are resampled
    for code in LANGS:
        d = m["per_language"][code]
        assert d["n"] == 60
        assert d["macro_f1_ci_low"] <= d["macro_f1"] <= d["macro_f1_ci_high"]
        for name in m["models"]:
            assert code in m["models"][name]["per_language"]
    # the synthetic signal is strongest in the source language and lives mostly in text
    gap = m["transfer_gap_by_model"]["text"]["mean"]
    assert gap["diff"] > 0 and gap["ci_low"] <= gap["diff"] <= gap["ci_high"]
    assert m["ablation"]["text"]["overall"]["drop"] > m["ablation"]["audio"]["overall"]["drop"]
    assert m["seeds"]["seeds"] == [42, 43]
    assert m["few_shot"]["k"] == [0, 5] and m["few_shot"]["n_added"] == [0, 30]
    assert m["few_shot"]["per_language"]["en"][0] == pytest.approx(m["per_language"]["en"]["macro_f1"])

    temp = json.loads((tmp_path / "models/temperature.json").read_text())
    assert temp["fitted_on"] == "val" and temp["temperature"] > 0
    assert temp["val_nll_after"] <= temp["val_nll_before"] + 1e-9
    assert m["calibration"]["temperature"] == pytest.approx(temp["temperature"])

    html = (tmp_path / "reports/eval.html").read_text()
    assert html.count("data:image/png;base64,") >= 7  # five figures, the few-shot curve, contributions
    assert set(m["explain"]["per_language"]) == set(m["per_language"])
    for name in ("English (en)", "German (de)", "French (fr)", "late_fusion", "logreg"):
        assert name in html

    plots = tmp_path / "plots/eval"
    for name in ("per_language.csv", "ablation.csv", "missing_overall.csv", "reliability/after.csv",
                 "confusion.csv", "models.csv", "few_shot.csv", "few_shot.png", "per_language.png",
                 "explain.png"):  # fmt: skip
        assert (plots / name).stat().st_size > 0, name
    assert len((plots / "confusion.csv").read_text().splitlines()) == 181

    mlflow.set_tracking_uri(mlflow_uri)
    runs = mlflow.search_runs(experiment_names=["babelfuse"], output_format="list")
    assert len(runs) == 1 and runs[0].info.run_name == "evaluate"
    run = runs[0]
    assert run.data.metrics["test_macro_f1"] == pytest.approx(head["test_macro_f1"])
    for key in (
        "transfer_gap",
        "test_macro_f1.de",
        "fusion_gain_vs_val_chosen",
        "test_macro_f1_seed_std",
        "mean_abs_contrib_text.de",
        "flip_share_without_top",
    ):
        assert key in run.data.metrics, key
    assert run.data.tags["stage"] == "evaluate" and run.data.tags["seeds"] == "42,43"
    client = mlflow.MlflowClient(mlflow_uri)
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "eval")}
    assert {"eval/eval.json", "eval/eval_detail.json", "eval/eval.html", "eval/temperature.json"} <= arts
