"""The project's files agree with each other and with the code.

Every dvc.yaml stage has an MLproject entry with the same command; every module a stage imports is one
of its deps; ``tune`` lists only the params it reads, so a train-only change reruns train and what
follows, not the study.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _squash(command: str) -> str:
    return re.sub(r"\s+", " ", command).strip()


def test_mlproject_runs_the_same_commands_as_dvc() -> None:
    """Same stage command; an entry's typed parameters only append ``--set section.key={param}``."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    entries = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]
    assert set(stages) <= set(entries)
    for name, stage in stages.items():
        command = _squash(entries[name]["command"])
        base, _, overrides = command.partition(" --set ")
        assert base == _squash(stage["cmd"]), name
        assert not overrides or re.fullmatch(r"(\S+=\{\w+\})( --set \S+=\{\w+\})*", overrides), name


def test_every_stage_runs_an_entry_module_of_babelfuse_stages() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        module = re.search(r"python -m (\S+)", stage["cmd"]).group(1)
        assert module.startswith("babelfuse.stages."), f"stage {name} runs {module}"
        path = REPO / "src" / (module.replace(".", "/") + ".py")
        assert path.exists(), f"stage {name}: {path} missing"


def test_ci_calls_make_test_and_readme_shows_both_commands() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


def test_code_is_ruff_clean() -> None:
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "check", "src", "tests", "benchmarks"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:]


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _entry_module(stage: dict) -> str:
    return re.search(r"python -m (\S+)", stage["cmd"]).group(1)


def _loaded_files(module: str) -> list[str]:
    """Source files (relative to the repo) of the babelfuse modules ``import module`` loads in a fresh
    interpreter: the stage's own imports, nothing this test process happens to have loaded."""
    code = (
        f"import {module}, sys; print('\\n'.join(m.__file__ for n, m in sys.modules.items()"
        " if n.split('.')[0] == 'babelfuse' and getattr(m, '__file__', None)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return sorted(Path(f).resolve().relative_to(REPO).as_posix() for f in out.stdout.split())


def _covered(file: str, deps: list[str]) -> bool:
    return any(file == dep or file.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.slow  # one fresh interpreter per entry module (train and evaluate import TensorFlow)
def test_every_module_a_stage_imports_is_one_of_its_deps() -> None:
    """Changing any source file a stage imports (labels.py, paths.py, ...) must make that stage stale."""
    stages = _stages()
    loaded = {m: _loaded_files(m) for m in sorted({_entry_module(s) for s in stages.values()})}
    missing = {
        name: [f for f in loaded[_entry_module(stage)] if not _covered(f, stage["deps"])]
        for name, stage in stages.items()
    }
    assert all(not files for files in missing.values()), {k: v for k, v in missing.items() if v}
    for name, stage in stages.items():  # the check above saw real files, not an empty import
        assert f"src/{_entry_module(stage).replace('.', '/')}.py" in loaded[_entry_module(stage)], name


def test_tune_lists_only_the_params_it_reads() -> None:
    """``tune``: its own section plus the train keys a trial keeps fixed; not the keys it searches over,
    not the ones a trial ignores (tuning.space.NOT_IN_FIT), so a train-only change leaves it current."""
    from babelfuse.tuning.space import NOT_IN_FIT

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    fixed = [k for k in params["train"] if k not in params["tune"]["space"] and k not in NOT_IN_FIT]
    assert fixed, "a trial keeps no train key fixed?"
    assert sorted(_stages()["tune"]["params"]) == sorted(["tune", *(f"train.{k}" for k in fixed)])


FAKE_STAGE = """import json, sys, uuid
from pathlib import Path
for target in sys.argv[1:]:
    path = Path(target.rstrip("/"))
    if target.endswith("/"):
        path.mkdir(parents=True, exist_ok=True)
        path = path / "stamp"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": uuid.uuid4().hex}))
"""


def _out_paths(stage: dict) -> list[str]:
    return [
        next(iter(o)) if isinstance(o, dict) else o
        for key in ("outs", "metrics", "plots")
        for o in stage.get(key, [])
    ]


def _fake_pipeline(root: Path) -> None:
    """The real dvc.yaml graph (deps, params, outs) with each cmd replaced by a script that writes
    fresh content to the stage's outs (and to the files other stages read inside its out folders)."""
    (root / "fake_stage.py").write_text(FAKE_STAGE)
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
    deps = [d for s in pipeline["stages"].values() for d in s["deps"]]
    for stage in pipeline["stages"].values():
        targets = []
        for out in _out_paths(stage):
            inside = [d for d in deps if d.startswith(out + "/")]
            is_dir = bool(inside) or not Path(out).suffix
            targets += [out + "/" if is_dir else out, *inside]
        stage["cmd"] = "python fake_stage.py " + " ".join(targets)
    (root / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))


def _ran(root: Path, *cmd: str) -> list[str]:
    result = subprocess.run(["dvc", *cmd], cwd=root, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return re.findall(r"Running stage '(\w+)'", result.stdout)


@pytest.mark.slow  # two `dvc repro` of the ten-stage graph (stages are stand-ins, ~1 s each)
def test_a_train_only_change_reruns_exactly_train_evaluate_register(tmp_path, make_project) -> None:
    root = make_project(tmp_path / "project")
    _fake_pipeline(root)
    assert set(_ran(root, "repro")) == set(_stages())
    assert _ran(root, "repro") == []  # up to date
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["train"]["fusion"] != "gated" and params["train"]["use_best_params"] is True
    params["train"].update(fusion="gated", use_best_params=False)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _ran(root, "repro") == ["train", "evaluate", "register"]
    stale = json.loads(
        subprocess.run(["dvc", "status", "--json"], cwd=root, capture_output=True, text=True).stdout
    )
    assert stale == {}


def _architecture_modules() -> list[str]:
    """Every ``.py`` file (and ``src/`` folder) ARCHITECTURE.md names in backticks, as a repo path.
    Library columns name modules relative to ``src/babelfuse/`` (``data/plan.py``)."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    named = []
    for token in re.findall(r"`([^`\s]+)`", text):
        if "<" in token:  # a pattern such as stages/<stage>.py
            continue
        if token.endswith(".py"):
            repo_relative = token.split("/")[0] in ("src", "tests", "benchmarks")
            named.append(token if repo_relative else f"src/babelfuse/{token}")
        elif token.startswith("src/") and token.endswith("/"):
            named.append(token)
    return named


def test_every_module_architecture_md_names_exists() -> None:
    named = _architecture_modules()
    assert len(named) > 30, named  # the stage table was parsed at all
    assert [m for m in named if not (REPO / m).exists()] == []


def test_architecture_md_maps_every_stage_to_its_entry_module() -> None:
    named = set(_architecture_modules())
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    for name, stage in _stages().items():
        assert f"`{name}`" in text, f"stage {name} missing from the stage table"
        assert f"src/{_entry_module(stage).replace('.', '/')}.py" in named, name
    entry_files = {p.relative_to(REPO).as_posix() for p in (REPO / "src/babelfuse/stages").glob("[!_]*.py")}
    assert entry_files <= named, entry_files - named
