"""The trust boundary of registered models: file hashes recorded at registration, checked before loading.

Real SQLite registry and artifact store in tmp; the register stage logs the good model; then files of
the *stored* model are changed behind the registry's back, as someone with write access to the
artifact store (but not the registry) could.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from typer.testing import CliRunner

from babelfuse.serving.model_code import HASHES_TAG
from helpers.serving import FEATURES, World


@pytest.fixture
def registered(world: World, tmp_path, mlflow_uri, monkeypatch) -> dict:
    """The good model registered by the register stage (text_threads 1, no auto-promotion)."""
    from babelfuse.stages.register import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BABELFUSE_ROOT", str(tmp_path))
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    params = {
        "register": {"model_name": "trust", "auto_promote": False, "text_threads": 1},
        "features": FEATURES,
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "eval.json").write_text(json.dumps({"test_macro_f1": 1.0}))
    out = tmp_path / "register.json"
    main(
        [
            *("--model", str(world.models["good"]), "--fused", str(world.scalers.parent)),
            *("--temperature", str(world.temperature), "--eval", str(tmp_path / "eval.json")),
            *(
                "--manifest",
                str(world.manifest),
                "--out",
                str(out),
                "--params",
                str(tmp_path / "params.yaml"),
            ),
            *("--promotions", str(tmp_path / "promotions.jsonl")),
        ]
    )
    return json.loads(out.read_text())


def stored_folder(version) -> Path:
    """Where the artifact store keeps a registered version's files (a local file store here)."""
    from mlflow.tracking import MlflowClient

    model_id = str(version.source).rsplit("/", 1)[-1]  # models:/m-...
    location = MlflowClient().get_logged_model(model_id).artifact_location
    return Path(urlparse(location).path)


def predict_cli(uri: str):
    from babelfuse.cli import app

    return CliRunner().invoke(app, ["predict", "-l", "en", "-t", "What a lovely day!", "-m", uri])


def test_registration_records_every_files_hash_and_the_serving_config_carries_text_threads(
    registered,
) -> None:
    from mlflow.tracking import MlflowClient

    version = MlflowClient().get_model_version("trust", str(registered["version"]))
    tagged = json.loads(version.tags[HASHES_TAG])
    assert tagged == registered["files_sha256"]
    assert {"MLmodel", "model_code.py", "artifacts/serving.json"} <= set(tagged)
    assert any(name.startswith("code/babelfuse/serving/") for name in tagged)
    assert not any("__pycache__" in name for name in tagged)
    config = json.loads((stored_folder(version) / "artifacts" / "serving.json").read_text())
    assert config["features"]["text"]["threads"] == 1  # register.text_threads reaches the served model
    assert config["limits"]["media"]["image_max_pixels"] == 4_000_000
    answer = predict_cli("models:/trust/1")
    assert answer.exit_code == 0, answer.output


@pytest.mark.parametrize("tamper", ["add", "change"])
def test_a_version_whose_files_changed_is_refused_naming_the_file(registered, tamper) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    folder = stored_folder(MlflowClient().get_model_version("trust", "1"))
    if tamper == "add":
        (folder / "code" / "babelfuse" / "evil.py").write_text("raise SystemExit('ran')\n")
        reason = "code/babelfuse/evil.py was added after registration"
    else:
        target = folder / "code" / "babelfuse" / "serving" / "pyfunc.py"
        target.write_text(target.read_text() + "\nprint('injected')\n")
        reason = "code/babelfuse/serving/pyfunc.py changed after registration"
    answer = predict_cli("models:/trust/1")
    assert answer.exit_code == 2 and reason in answer.stderr and "Traceback" not in answer.output
    with pytest.raises(Exception, match=reason):  # the served path: model_code.py checks before importing
        mlflow.pyfunc.load_model("models:/trust/1")
