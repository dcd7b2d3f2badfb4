"""The whole pipeline through real DVC in a temporary copy of the repo, on the `tiny` dataset.

One module-scoped `dvc repro` feeds several checks (outputs, MLflow lineage, registry, selective
re-runs, `dvc exp run` of every fusion method), so the expensive part runs once.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow

FUSIONS = ["concat", "weighted", "attention", "gated", "late", "tensor", "lowrank"]


def shrink_params(root: Path) -> None:
    """The shrunk config every e2e test runs on: tiny data, a two-trial study, few epochs."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["size"] = "tiny"
    params["tune"].update({"n_trials": 2, "epochs": 3, "timeout_s": 120})
    params["train"].update({"epochs": 4, "patience": 2})
    params["evaluate"]["bootstrap"] = 50
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


@pytest.fixture(scope="module")
def repro(tmp_path_factory, make_project) -> tuple[Path, dict[str, str]]:
    root = make_project(tmp_path_factory.mktemp("e2e") / "project")
    shrink_params(root)
    subprocess.run(["git", "commit", "-qam", "tiny params"], cwd=root, check=True)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "BABELFUSE_ROOT": str(root),
        "BABELFUSE_RUN_GROUP": "e2e-group",
    }
    run(["dvc", "repro"], root, env)
    return root, env


def test_every_stage_wrote_its_outputs(repro) -> None:
    root, _ = repro
    manifest = pd.read_parquet(root / "data/validated/manifest.parquet")
    assert set(manifest["lang"]) == {"en", "de", "fr", "es", "ru", "ar", "zh", "ja"}
    assert set(manifest.loc[manifest["split"] != "test", "lang"]) == {"en"}
    for modality in ("text", "image", "audio"):
        assert (root / f"data/features/{modality}.npy").exists()
    for split in ("train", "val", "test"):
        assert (root / f"data/fused/{split}.npz").exists()
    for path in (
        "models/model.keras",
        "models/best_params.json",
        "metrics/train.json",
        "metrics/eval.json",
        "reports/eval.html",
        "metrics/register.json",
        "reports/validation",
    ):
        assert (root / path).exists(), path
    evaluation = json.loads((root / "metrics/eval.json").read_text())
    assert set(evaluation["per_language"]) == {"en", "de", "fr", "es", "ru", "ar", "zh", "ja"}


def test_stage_runs_share_a_group_and_carry_lineage(repro) -> None:
    import mlflow

    root, env = repro
    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("babelfuse")
    runs = client.search_runs([experiment.experiment_id], "tags.run_group = 'e2e-group'", max_results=500)
    stages = {r.data.tags.get("stage") for r in runs}
    dvc_stages = set(yaml.safe_load((root / "dvc.yaml").read_text())["stages"])
    assert dvc_stages <= stages, f"stages without an MLflow run: {dvc_stages - stages}"
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True
    ).stdout.strip()
    for r in runs:
        if r.data.tags.get("stage"):
            assert r.data.tags["git_commit"] == head
            assert len(r.data.tags["params_hash"]) == 16


def test_registry_has_a_champion(repro) -> None:
    import mlflow

    _, env = repro
    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    version = client.get_model_version_by_alias("babelfuse", "champion")
    assert int(version.version) >= 1


def test_a_modality_param_change_reruns_only_that_branch(repro) -> None:
    root, env = repro
    status = json.loads(run(["dvc", "status", "--json"], root, env).stdout or "{}")
    assert status == {}, f"pipeline not up to date after repro: {status}"
    params = yaml.safe_load((root / "params.yaml").read_text())
    original = params["features"]["audio"]["n_mfcc"]
    params["features"]["audio"]["n_mfcc"] = original + 1
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        changed = set(json.loads(run(["dvc", "status", "--json"], root, env).stdout))
        assert "extract_audio" in changed
        assert not changed & {"generate", "validate", "extract_text", "extract_image"}
    finally:
        params["features"]["audio"]["n_mfcc"] = original
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_method_trains_through_dvc_exp_run(repro, fusion: str) -> None:
    root, env = repro
    run(
        [
            "dvc",
            "exp",
            "run",
            "train",
            "-S",
            f"train.fusion={fusion}",
            "-S",
            "train.use_best_params=false",
            "-S",
            "train.baselines=false",
        ],
        root,
        env,
    )
    metrics = json.loads((root / "metrics/train.json").read_text())
    assert metrics["fusion"] == fusion
    assert 0.0 <= metrics["val_macro_f1"] <= 1.0
