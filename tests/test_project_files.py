"""The project's entry points agree: every dvc.yaml stage has an MLproject entry with the same command."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _squash(command: str) -> str:
    return re.sub(r"\s+", " ", command).strip()


def test_mlproject_runs_the_same_commands_as_dvc() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    entries = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]
    assert set(stages) <= set(entries)
    for name, stage in stages.items():
        assert _squash(entries[name]["command"]) == _squash(stage["cmd"]), name


def test_every_stage_module_exists() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        module = re.search(r"python -m (\S+)", stage["cmd"]).group(1)
        path = REPO / "src" / (module.replace(".", "/") + ".py")
        assert path.exists(), f"stage {name}: {path} missing"


def test_ci_calls_make_test_and_readme_shows_both_commands() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


def test_code_is_ruff_clean() -> None:
    import subprocess
    import sys

    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "check", "src", "tests", "benchmarks"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:]
