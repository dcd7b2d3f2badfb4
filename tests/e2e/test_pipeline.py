"""The whole pipeline through real DVC in a temporary copy of the repo, on the `tiny` dataset.

One module-scoped `dvc repro` feeds several checks (outputs, MLflow lineage, registry, selective
re-runs, `dvc exp run` with other fusion methods, serving, push/pull, and a second run from scratch
that must give the same results), so the expensive part runs once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import postgres, servers

pytestmark = pytest.mark.slow

# `dvc exp run -S train.fusion=...` is the same path for every method; two methods unlike the default
# (attention) go through it here. Every one of the seven trains end to end in
# tests/training/test_training_fit.py (in process, real Keras).
EXP_FUSIONS = ["concat", "lowrank"]
# Compared between two runs from scratch; wall-clock figures differ from run to run by nature.
COMPARED = ("models/best_params.json", "models/baseline_params.json", "metrics/eval.json", "metrics/train.json")
TIMINGS = {"seconds", "train_seconds", "baselines_seconds", "rows_per_second"}


def shrink_params(root: Path) -> None:
    """The shrunk config every e2e test runs on: tiny data, a two-trial study stopped on its trial count
    only (a timeout would make the count depend on the machine's load), few epochs, two seeds."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["size"] = "tiny"
    params["tune"].update({"n_trials": 2, "epochs": 3, "timeout_s": None})
    params["train"].update({"epochs": 4, "patience": 2})
    params["evaluate"].update({"bootstrap": 50, "few_shot": [0, 5], "seeds": [42, 43]})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> Iterator[str]:
    """Where the e2e pipeline logs: a real ``mlflow server`` on a fresh PostgreSQL database with
    proxied artifacts when a PostgreSQL server is reachable (CI starts one), else SQLite."""
    folder = tmp_path_factory.mktemp("tracking")
    if not postgres.reachable():
        yield f"sqlite:///{folder / 'mlflow.db'}"
        return
    with (
        postgres.fresh_database("babelfuse_e2e") as db,
        servers.mlflow_tracking_server(db, folder / "artifacts", folder / "server.log") as url,
    ):
        yield url


@pytest.fixture(scope="module")
def repro(tmp_path_factory, make_project, tracking) -> tuple[Path, dict[str, str]]:
    root = make_project(tmp_path_factory.mktemp("e2e") / "project")
    shrink_params(root)
    subprocess.run(["git", "commit", "-qam", "tiny params"], cwd=root, check=True)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking,
        "BABELFUSE_ROOT": str(root),
        "BABELFUSE_RUN_GROUP": "e2e-group",
    }
    run(["dvc", "repro"], root, env)
    first = root.parent / "first-run"  # what later tests (dvc exp run) may overwrite in the workspace
    for name in COMPARED:
        (first / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, first / name)
    return root, env


def test_every_stage_wrote_its_outputs(repro) -> None:
    root, _ = repro
    manifest = pd.read_parquet(root / "data/validated/manifest.parquet")
    assert set(manifest["lang"]) == {"en", "de", "fr", "es", "ru", "ar", "zh", "ja"}
    assert set(manifest.loc[manifest["split"].isin(["train", "val"]), "lang"]) == {"en"}  # zero-shot
    assert set(manifest["split"]) == {"train", "val", "test", "gate", "fewshot"}
    assert "en" not in set(manifest.loc[manifest["split"] == "fewshot", "lang"])
    for modality in ("text", "image", "audio"):
        assert (root / f"data/features/{modality}.npy").exists()
    for split in ("train", "val", "test", "gate", "fewshot"):
        assert (root / f"data/fused/{split}.npz").exists()
    for path in (
        "models/model.keras",
        "models/best_params.json",
        "metrics/train.json",
        "metrics/eval.json",
        "metrics/eval_detail.json",
        "reports/eval.html",
        "metrics/register.json",
        "reports/validation",
    ):
        assert (root / path).exists(), path
    evaluation = json.loads((root / "metrics/eval_detail.json").read_text())
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


def test_a_second_client_sees_runs_trials_versions_and_aliases(repro, tracking) -> None:
    """From a fresh client of the same tracking URI: the stage runs, the tune stage's nested trial runs,
    the registered versions and the champion alias (on CI: a real server with a PostgreSQL store)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("babelfuse")
    runs = client.search_runs([experiment.experiment_id], "tags.run_group = 'e2e-group'", max_results=500)
    tune = [r for r in runs if r.data.tags.get("stage") == "tune" and "mlflow.parentRunId" not in r.data.tags]
    assert len(tune) == 1
    nested = f"tags.mlflow.parentRunId = '{tune[0].info.run_id}'"
    trials = client.search_runs([experiment.experiment_id], nested, max_results=500)
    assert len(trials) >= 2 and all(r.info.run_name.startswith("trial") for r in trials)
    versions = client.search_model_versions("name = 'babelfuse'")
    assert versions and client.get_model_version_by_alias("babelfuse", "champion").version in {
        v.version for v in versions
    }
    artifacts = client.list_artifacts(client.get_model_version_by_alias("babelfuse", "champion").run_id)
    assert artifacts, "the register run's artifacts are reachable through the tracking URI"


def test_the_champion_serves_from_the_registry(repro, tracking, tmp_path) -> None:
    """``mlflow models serve -m models:/babelfuse@champion`` against the pipeline's tracking URI."""
    _, env = repro
    serve_env = servers.venv_env(MLFLOW_TRACKING_URI=tracking)
    serve_env.pop("BABELFUSE_MEDIA_ROOT", None)
    with servers.model_server("models:/babelfuse@champion", tmp_path / "serve.log", serve_env) as url:
        body = json.dumps({"dataframe_records": [{"text": "Das war wunderbar!", "lang": "de"}]}).encode()
        request = urllib.request.Request(f"{url}/invocations", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
    row = answer["predictions"][0]
    assert row["label"] in {"negative", "neutral", "positive"} and not row.get("error")


def test_push_then_a_fresh_clone_pulls_to_a_clean_status(repro) -> None:
    """The shipped default DVC remote: commit, ``dvc push``, clone elsewhere, ``dvc pull``: nothing
    is stale and ``dvc repro`` has nothing to do."""
    root, env = repro
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "pipeline outputs"], root, env)
    run(["dvc", "push"], root, env)
    clone = root.parent / "clone"
    run(["git", "clone", "-q", str(root), str(clone)], root.parent, env)
    clone_env = {**env, "BABELFUSE_ROOT": str(clone)}
    run(["dvc", "pull"], clone, clone_env)
    status = json.loads(run(["dvc", "status", "--json"], clone, clone_env).stdout or "{}")
    assert status == {}, f"a fresh clone after dvc pull is not up to date: {status}"
    assert "up to date" in run(["dvc", "repro"], clone, clone_env).stdout
    assert (clone / "models/model.keras").read_bytes() == (root / "models/model.keras").read_bytes()


@pytest.mark.parametrize("fusion", EXP_FUSIONS)
def test_other_fusion_methods_train_through_dvc_exp_run(repro, fusion: str) -> None:
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


def test_the_readme_serving_commands_work_as_written(repro, tmp_path) -> None:
    """The README's own commands (read from its code blocks) against the tiny pipeline's registry:
    venv activation, ``make serve`` with a bounded wait, its ``curl`` ping and request,
    ``make predict``, ``babelfuse predict`` with media, ``babelfuse promote``."""
    from babelfuse.labels import LABELS
    from helpers.readme import readme_command, shell

    root, env = repro
    repo = Path(__file__).resolve().parents[2]
    readme = repo / "README.md"
    for name in ("Makefile", "README.md", "requirements.lock"):
        shutil.copy2(repo / name, root / name)
    if not (root / ".venv").exists():
        (root / ".venv").symlink_to(repo / ".venv")
    shutil.copy2(sorted((root / "data/raw/images").glob("*.png"))[0], root / "face.png")
    shutil.copy2(sorted((root / "data/raw/audio").glob("*.wav"))[0], root / "clip.wav")
    assert readme_command(readme, "source .venv/bin/activate") == "source .venv/bin/activate"
    port = str(servers.free_port())
    local = lambda cmd: cmd.replace("5001", port)  # noqa: E731  (the README's port may be taken here)
    no_install = "-o install"  # the venv exists: make must not try to rebuild it in the temp copy
    serve = f"{readme_command(readme, 'make serve')} {no_install} SERVE_PORT={port}"
    cmd = ["bash", "-c", f"cd {root} && source .venv/bin/activate && exec {serve}"]
    with servers.background_server(cmd, f"http://127.0.0.1:{port}/ping", tmp_path / "serve.log", env, 300):
        for command in ("curl -s 127.0.0.1:5001/ping", "curl -s 127.0.0.1:5001/invocations"):
            answer = shell(local(readme_command(readme, command)), root, env)
            assert answer.returncode == 0, answer.stderr
        rows = json.loads(answer.stdout)["predictions"]
        assert len(rows) == 1 and rows[0]["label"] in LABELS and rows[0]["error"] is None
    predict = readme_command(readme, "make predict").replace("make predict", f"make predict {no_install}", 1)
    for command in (
        predict,
        readme_command(readme, "babelfuse predict"),
        readme_command(readme, "babelfuse promote"),
    ):
        result = shell(command, root, env)
        assert result.returncode == 0, f"{command}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        if "predict" in command:
            assert any(label in result.stdout for label in LABELS), result.stdout


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def test_a_second_run_from_scratch_gives_the_same_params_and_metrics(repro, tmp_path, make_project) -> None:
    """Same commit, same params, same machine -> same results: a fresh copy with fresh MLflow (SQLite)
    and Optuna stores, run from scratch, gives the module's run's tuned params and metrics."""
    first, _ = repro
    root = make_project(tmp_path / "second")
    shrink_params(root)
    subprocess.run(["git", "commit", "-qam", "tiny params"], cwd=root, check=True)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "BABELFUSE_ROOT": str(root),
        "BABELFUSE_RUN_GROUP": "repro-twice",
    }
    run(["dvc", "repro"], root, env)
    assert (root / "optuna.db").exists()  # the study lived in this copy's own storage
    for name in COMPARED:
        a, b = (json.loads(path.read_text()) for path in (first.parent / "first-run" / name, root / name))
        assert without_timings(a) == without_timings(b), name
    baselines = json.loads((root / "models/baseline_params.json").read_text())
    assert set(baselines) == {"text", "image", "audio", "logreg"}  # each baseline tuned on its own
    assert not {"fusion", "modality_dropout"} & {k for m in ("text", "image", "audio") for k in baselines[m]}
    assert baselines["logreg"]["C"] in yaml.safe_load((root / "params.yaml").read_text())["tune"]["logreg_c"]
