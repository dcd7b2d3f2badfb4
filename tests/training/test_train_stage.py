"""End to end: the fuse and train mains on synthetic features, real MLflow (SQLite) and real Keras."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from babelfuse.stages import fuse, train
from babelfuse.training.fit import load_split, model_inputs
from babelfuse.training.synthetic import synthetic_manifest, write_synthetic_features

REPO = Path(__file__).resolve().parents[2]
DIMS = {"text": 24, "image": 16, "audio": 8}


def write_project(root: Path, fusion: str) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"].update(
        fusion=fusion,
        hidden=32,
        epochs=25,
        patience=6,
        batch_size=32,
        learning_rate=0.005,
        modality_dropout=0.1,
    )
    params["evaluate"]["seeds"] = [42, 43]
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    frame = synthetic_manifest({"train": 300, "val": 150, "test": 30}, seed=3)
    frame = write_synthetic_features(frame, root / "data/features", DIMS, seed=3, informative=0.5, signal=4.0)
    (root / "data/validated").mkdir(parents=True)
    frame.to_parquet(root / "data/validated/manifest.parquet")
    (root / "models").mkdir()
    (root / "models/best_params.json").write_text(json.dumps({"hidden": 24}))
    baselines = {
        "text": {"hidden": 12},
        "image": {"hidden": 16},
        "audio": {"hidden": 8},
        "logreg": {"C": 0.1},
    }
    (root / "models/baseline_params.json").write_text(json.dumps(baselines))


@pytest.mark.slow
def test_fuse_then_train_logs_everything_and_fusion_beats_single_modalities(
    tmp_path, mlflow_uri, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BABELFUSE_ROOT", str(tmp_path))
    monkeypatch.setenv("BABELFUSE_RUN_GROUP", "test-group")
    write_project(tmp_path, "gated")
    fuse.main(
        [
            "--manifest",
            "data/validated/manifest.parquet",
            "--features",
            "data/features",
            "--out",
            "data/fused",
        ]
    )
    scalers = json.loads(Path("data/fused/scalers.json").read_text())
    assert {m: len(scalers[m]["mean"]) for m in DIMS} == DIMS
    assert len(load_split("data/fused/test.npz")["label"]) == 30

    train.main(
        [
            "--train",
            "data/fused/train.npz",
            "--val",
            "data/fused/val.npz",
            "--best-params",
            "models/best_params.json",
        ]
        + ["--out", "models", "--metrics", "metrics/train.json", "--plots", "plots/train"]
    )
    metrics = json.loads(Path("metrics/train.json").read_text())
    singles = {m: metrics["baselines"][m]["val_macro_f1"] for m in DIMS}
    assert metrics["fusion_gain"] == pytest.approx(metrics["val_macro_f1"] - max(singles.values()))
    assert metrics["fusion_gain"] > 0.05, metrics  # each modality alone sees the label on ~half the samples
    assert 0 < metrics["baselines"]["logreg"]["val_macro_f1"] <= 1
    assert metrics["epochs"] >= metrics["best_epoch"] >= 1 and metrics["params"] > 0

    history = pd.read_csv("plots/train/history.csv")
    assert list(history.columns) == ["epoch", "train_loss", "val_loss", "val_macro_f1"]
    assert len(history) == metrics["epochs"] and history["val_macro_f1"].max() == pytest.approx(
        metrics["val_macro_f1"]
    )

    val = load_split("data/fused/val.npz")
    model = keras.saving.load_model("models/model.keras", safe_mode=True)
    assert model.get_layer("fusion").hidden == 24  # from best_params.json
    for m, hidden in (("text", 12), ("image", 16), ("audio", 8)):  # each baseline's own tuned params
        for folder in ("models/baselines", "models/seeds/42/baselines", "models/seeds/43/baselines"):
            layer = keras.saving.load_model(f"{folder}/{m}.keras", safe_mode=True).get_layer("fusion")
            assert (layer.modality, layer.hidden) == (m, hidden)
    assert json.loads(Path("models/baselines/logreg.json").read_text())["C"] == 0.1
    assert sorted(metrics["seeds"]) == ["42", "43"] and metrics["seed"] == 42
    assert metrics["seeds"]["42"]["val_macro_f1"] == metrics["val_macro_f1"]
    assert metrics["seeds"]["43"]["val_macro_f1"] != metrics["val_macro_f1"]  # another seed, another model
    for seed in ("42", "43"):
        assert Path(f"models/seeds/{seed}/model.keras").exists()

    runs = mlflow.search_runs(experiment_names=["babelfuse"], output_format="list")
    by_name = {r.info.run_name: r for r in runs if r.data.tags.get("seed", "42") == "42"}
    assert set(by_name) == {
        "fuse",
        "train:gated",
        "baseline:text",
        "baseline:image",
        "baseline:audio",
        "baseline:logreg",
    }
    assert {r.info.run_name for r in runs if r.data.tags.get("seed") == "43"} == {
        "train:gated:seed=43",
        "baseline:text",
        "baseline:image",
        "baseline:audio",
        "baseline:logreg",
    }
    assert {r.data.tags["run_group"] for r in runs} == {"test-group"}
    parent = by_name["train:gated"]
    for name in ("baseline:text", "baseline:image", "baseline:audio", "baseline:logreg"):
        assert by_name[name].data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert "best_val_macro_f1" in by_name[name].data.metrics
    assert parent.data.params["hidden"] == "24" and parent.data.tags["best_params_keys"] == "hidden"
    for tag in ("stage", "git_commit", "params_hash", "data_hash"):
        assert tag in parent.data.tags
    client = mlflow.MlflowClient()
    curve = client.get_metric_history(parent.info.run_id, "val_macro_f1")
    assert sorted(p.step for p in curve) == list(range(1, metrics["epochs"] + 1))
    assert parent.data.metrics["best_val_macro_f1"] == pytest.approx(metrics["val_macro_f1"])
    assert parent.data.metrics["fusion_gain"] == pytest.approx(metrics["fusion_gain"])
    inputs = parent.inputs.dataset_inputs
    assert sorted(i.tags[0].value for i in inputs) == ["training", "validation"]
    assert all(len(i.dataset.digest) >= 8 for i in inputs)

    logged = mlflow.tensorflow.load_model(f"runs:/{parent.info.run_id}/model")
    example = {k: v[:8] for k, v in model_inputs(val).items()}
    np.testing.assert_allclose(np.asarray(logged(example)), np.asarray(model(example)), rtol=1e-6)
    signature = mlflow.models.get_model_info(f"runs:/{parent.info.run_id}/model").signature
    assert {s.name for s in signature.inputs.inputs} == {"text", "image", "audio", "mask"}
