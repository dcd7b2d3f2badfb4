"""The register stage and the promotion gate against a real MLflow registry on SQLite.

v1 (a weak model) becomes champion as the first model; v2 (better everywhere) is promoted; v3 (better
than v1 but broken in Japanese) is refused by ``babelfuse promote`` although the overall margin is
waived, because one language drops by more than the tolerance. All scoring is on the ``gate`` rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from babelfuse.labels import LABELS
from helpers.serving import FEATURES, World


def eval_json(world: World, model: Path, path: Path) -> dict:
    """A minimal metrics/eval.json with the model's real numbers on the gate rows (the world has no
    test split; the evaluate stage would report test)."""
    import keras

    from babelfuse.serving.gate import GateSet, codes, scores

    probs = np.asarray(keras.saving.load_model(model, safe_mode=True).predict(world.features, verbose=0))
    gate = (world.posts["split"] == "gate").to_numpy()
    rows = GateSet.from_labels(world.posts["label"][gate], world.posts["lang"][gate], range(int(gate.sum())))
    s = scores(rows, codes([LABELS[i] for i in probs[gate].argmax(1)]))
    metrics = {
        "test_macro_f1": s["macro_f1"],
        "source_macro_f1": s["per_language"]["de"],
        "transfer_gap": 0.0,
        "per_language": {lang: {"macro_f1": f1} for lang, f1 in s["per_language"].items()},
    }
    path.write_text(json.dumps(metrics))
    return metrics


def params_file(folder: Path, auto_promote: bool) -> Path:
    params = {
        "register": {
            "model_name": "babelfuse",
            "auto_promote": auto_promote,
            "margin": 0.0,
            "tolerance": 0.05,
        },
        "features": FEATURES,
    }
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture
def workdir(tmp_path, mlflow_uri, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # MLflow's ./mlruns artifact store and the relative outputs live here
    monkeypatch.setenv("BABELFUSE_ROOT", str(tmp_path))
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return tmp_path


def register(world: World, workdir: Path, model: str, auto_promote: bool) -> dict:
    from babelfuse.stages.register import main

    eval_path = workdir / f"eval_{model}.json"
    eval_json(world, world.models[model], eval_path)
    out = workdir / f"register_{model}.json"
    main(
        [
            *("--model", str(world.models[model]), "--fused", str(world.scalers.parent)),
            *("--temperature", str(world.temperature), "--eval", str(eval_path)),
            *("--manifest", str(world.manifest), "--out", str(out)),
            *(
                "--promotions",
                str(workdir / "reports/promotions.jsonl"),
                "--params",
                str(params_file(workdir, auto_promote)),
            ),
        ]
    )
    return json.loads(out.read_text())


def test_first_model_becomes_champion_a_better_one_is_promoted_a_regressing_one_refused(
    world, workdir
) -> None:
    from mlflow.tracking import MlflowClient

    from babelfuse.cli import app

    client = MlflowClient()
    first = register(world, workdir, "weak", auto_promote=True)
    assert first["version"] == 1 and first["decision"] == "promote" and first["champion_version"] == 1
    assert "first model" in first["reason"]
    model = client.get_registered_model("babelfuse")
    assert model.tags["gate.frozen_set_rows"] == "18" and len(model.tags["gate.frozen_set_hash"]) == 16
    assert model.tags["gate.first_champion_version"] == "1"
    v1 = client.get_model_version("babelfuse", "1")
    assert v1.tags["eval.macro_f1.ja"] and v1.tags["run_id"] == first["run_id"] and "git_commit" in v1.tags
    assert client.get_run(first["run_id"]).data.tags["stage"] == "register"

    second = register(world, workdir, "good", auto_promote=True)
    assert second["decision"] == "promote" and second["champion_version"] == 2
    assert second["challenger_macro_f1"] == pytest.approx(1.0)
    assert second["champion_macro_f1"] == pytest.approx(float(v1.tags["eval.test_macro_f1"]), abs=1e-6)
    assert second["gate_improvement_lower"] > 0.0  # the paired bootstrap resolves the gain
    assert int(client.get_model_version_by_alias("babelfuse", "champion").version) == 2

    third = register(world, workdir, "bad_ja", auto_promote=False)
    assert (
        third["decision"] == "not-run"
        and int(client.get_model_version_by_alias("babelfuse", "challenger").version) == 3
    )
    result = CliRunner().invoke(
        app,
        [
            *("promote", "--margin", "-1", "--tolerance", "0.05"),
            *("--manifest", str(world.manifest), "--promotions", str(workdir / "reports/promotions.jsonl")),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "REFUSE: babelfuse v3" in result.output and "ja drops by 1.0000" in result.output
    assert int(client.get_model_version_by_alias("babelfuse", "champion").version) == 2

    lines = [json.loads(line) for line in (workdir / "reports/promotions.jsonl").read_text().splitlines()]
    assert [(r["challenger_version"], r["decision"]) for r in lines] == [
        (1, "promote"),
        (2, "promote"),
        (3, "refuse"),
    ]
    refused = lines[-1]
    assert refused["worst_language"] == "ja" and refused["worst_drop"] == pytest.approx(1.0)
    assert refused["scores"]["champion"]["per_language"]["ja"] == pytest.approx(1.0)
    assert (
        refused["gate_set"]["hash"] == lines[0]["gate_set"]["hash"] and not refused["gate_set"]["frozen_now"]
    )
    tags = client.get_model_version("babelfuse", "3").tags
    assert tags["gate.decision"] == "refuse" and tags["gate.worst_drop"] == "1.000000"
    assert tags["gate.champion_macro_f1"] == "1.000000" and float(
        tags["gate.challenger_macro_f1"]
    ) == pytest.approx(refused["scores"]["challenger"]["macro_f1"], abs=1e-6)
    assert refused["scores"]["challenger"]["per_language"]["ja"] == pytest.approx(0.0)
    assert "ja drops" in tags["gate.reason"] and tags["gate.set_hash"] == refused["gate_set"]["hash"]
    assert (
        "gate.predictions" in client.get_model_version("babelfuse", "2").tags
    )  # champion scored once, then cached


def test_the_frozen_gate_set_is_used_when_the_manifest_changes(world, workdir) -> None:
    import mlflow
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from babelfuse.serving import frozen

    client = MlflowClient()
    client.create_registered_model("frozen-check")
    mlflow.set_experiment("frozen")
    with mlflow.start_run():
        first = frozen.ensure_frozen(client, "frozen-check", world.manifest)
    assert first.created and first.frame["image"].map(type).isin([bytes, type(None)]).all()
    changed = pd.read_parquet(world.manifest)
    changed.loc[changed["split"] == "gate", "text"] = "A different sentence now."
    other = workdir / "validated" / "manifest.parquet"
    other.parent.mkdir()
    changed.to_parquet(other)
    (other.parent / "source.json").write_text((world.manifest.parent / "source.json").read_text())
    again = frozen.ensure_frozen(client, "frozen-check", other)
    assert not again.created and again.hash == first.hash and again.changed
    assert "differs from the frozen one" in again.note
    assert again.frame["text"].tolist() == first.frame["text"].tolist()
