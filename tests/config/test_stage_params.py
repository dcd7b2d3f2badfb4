"""A bad param stops every stage before any work: one line naming the key, exit code 2."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def stage_modules() -> dict[str, tuple[str, list[str]]]:
    """dvc.yaml stage -> (its entry module, the arguments after it), read from each ``cmd``."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    out = {}
    for name, stage in stages.items():
        match = re.search(r"python -m (babelfuse\.stages\.\w+)(.*)", " ".join(stage["cmd"].split()))
        assert match, f"dvc.yaml stage {name} does not run a babelfuse.stages module"
        out[name] = (match.group(1), match.group(2).split())
    return out


TF_IMPORT_NOTICE = re.compile(
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    r"|^I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\."
)


def test_train_stage_subprocess_rejects_a_word_for_an_integer(tmp_path) -> None:
    (tmp_path / "params.yaml").write_text("train:\n  hidden: big\n", encoding="utf-8")
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
    }
    env.pop("BABELFUSE_ROOT", None)
    result = subprocess.run(
        [sys.executable, "-m", "babelfuse.stages.train"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    # On CPUs where TensorFlow turns oneDNN on by default (AVX512_VNNI, AMX, ...) its C++ code prints a
    # notice when it is imported, whatever TF_CPP_MIN_LOG_LEVEL says: those lines only, then the error.
    lines = [line for line in result.stderr.strip().splitlines() if not TF_IMPORT_NOTICE.search(line)]
    assert lines == ["error: params.yaml: train.hidden must be an integer >= 1, got 'big'"], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"], "the stage did work before failing"


@pytest.mark.parametrize("stage", sorted(stage_modules()))
def test_every_stage_validates_the_whole_file_before_any_work(stage, tmp_path, monkeypatch, capsys) -> None:
    """A misspelt key in a section the stage does not even read still stops it, naming the key."""
    module, args = stage_modules()[stage]
    (tmp_path / "params.yaml").write_text("train:\n  fusoin: gated\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("BABELFUSE_ROOT", str(tmp_path))
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: params.yaml: train.fusoin is not a known key; did you mean train.fusion?"
    assert not any("Traceback" in line for line in err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"], "the stage did work before failing"


def test_a_set_override_is_validated_and_named_as_such(tmp_path, monkeypatch, capsys) -> None:
    from babelfuse.stages.fuse import main

    (tmp_path / "params.yaml").write_text("{}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["--set", "fuse.standardize=maybe"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: --set: fuse.standardize must be true or false, got 'maybe'"
    )
