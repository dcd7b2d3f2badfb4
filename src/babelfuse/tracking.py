"""MLflow set-up shared by every stage: one experiment, lineage tags on every run.

Every stage run carries the tags ``stage``, ``git_commit``, ``params_hash``, ``data_hash`` and
``run_group`` so a run can be traced back to ``git checkout <sha> && dvc repro`` and all runs of one
``dvc repro`` can be filtered together in the UI (``tags.run_group = '...'``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from babelfuse import paths
from babelfuse.params import params_hash

EXPERIMENT = "babelfuse"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else SQLite at ``<project>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.project_root() / paths.MLFLOW_DB}"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=paths.project_root()
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def file_digest(files: Iterable[Path | str]) -> str:
    """sha256 (16 hex) over the bytes of the given files (folders: every file inside, sorted)."""
    digest = hashlib.sha256()
    for item in files:
        item = Path(item)
        members = sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
        for member in members:
            if not member.exists():
                continue
            digest.update(str(member.name).encode())
            with open(member, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def run_group() -> str:
    """Shared by all stage runs of one ``dvc repro``: ``BABELFUSE_RUN_GROUP`` (``make run`` sets it)
    or else a hash of the commit and params.yaml, which every stage of one repro sees alike."""
    env = os.environ.get("BABELFUSE_RUN_GROUP")
    if env:
        return env
    params_file = paths.project_root() / paths.PARAMS
    blob = git_commit().encode() + (params_file.read_bytes() if params_file.exists() else b"")
    return "cfg-" + hashlib.sha256(blob).hexdigest()[:12]


PROCESS_TAG = "babelfuse.process"  # host:pid:start time of the process that ran the run


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc``), or None when it does not
    exist or is a zombie (killed, not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return None if fields[0] in ("Z", "X") else fields[19]


def process_tag(pid: int | None = None) -> str:
    """``host:pid:start`` of this process: with the start time a reused pid is not taken for it."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def process_gone(tag: str) -> bool:
    """True when ``tag`` (a :func:`process_tag`) names a process of this host that no longer runs;
    False for live processes and for other hosts (which cannot be checked from here)."""
    host, _, rest = tag.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if not Path("/proc").is_dir():  # no /proc (not Linux): signal 0 only tells whether the pid exists
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return _start_time(int(pid)) != start


def mark_killed_runs(stage: str) -> list[str]:
    """Runs of ``stage`` (and their nested runs) left RUNNING by a process that was killed: set to
    KILLED. Called when the stage starts again; runs of live processes or other hosts are left."""
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded

    client = mlflow.MlflowClient()
    experiment = mlflow.get_experiment_by_name(os.environ.get("BABELFUSE_EXPERIMENT", EXPERIMENT))
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.stage = '{stage}' and attributes.status = 'RUNNING'",
        max_results=1000,
    )
    killed = [r.info.run_id for r in runs if process_gone(r.data.tags.get(PROCESS_TAG, ""))]
    for run_id in killed:
        client.set_terminated(run_id, status="KILLED")
    return killed


# MLflow 3's UI opens an experiment by its kind; untagged it shows the GenAI traces view. This value
# is the UI's "custom model development" kind: it opens on the runs and their training metrics.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def configure() -> None:
    """Tracking URI and experiment (created on first use and marked as a model-training experiment)."""
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded

    mlflow.set_tracking_uri(tracking_uri())
    experiment = mlflow.set_experiment(os.environ.get("BABELFUSE_EXPERIMENT", EXPERIMENT))
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        mlflow.set_experiment_tag(EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` for ``mlflow.log_params``."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def launcher_tags() -> dict[str, str]:
    """Under ``mlflow run`` (which sets ``MLFLOW_RUN_ID``), do not resume its run: that run holds
    the ``-P`` values as given (empty = params.yaml's), the stage's own run the values it used.
    The stage run is nested under it when both are in the same experiment."""
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded

    launcher = os.environ.pop("MLFLOW_RUN_ID", None)
    if not launcher:
        return {}
    tags = {"mlflow_project_run_id": launcher}
    experiment = mlflow.get_experiment_by_name(os.environ.get("BABELFUSE_EXPERIMENT", EXPERIMENT))
    if experiment is not None and mlflow.get_run(launcher).info.experiment_id == experiment.experiment_id:
        tags["mlflow.parentRunId"] = launcher
    return tags


@contextlib.contextmanager
def stage_run(
    stage: str,
    params: dict[str, Any],
    inputs: Iterable[Path | str] = (),
    run_name: str | None = None,
    nested: bool = False,
    extra_tags: dict[str, str] | None = None,
) -> Iterator[Any]:
    """Start an MLflow run for a stage with params logged and lineage tags set."""
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded

    configure()
    if not nested:
        mark_killed_runs(stage)
        extra_tags = {**launcher_tags(), **(extra_tags or {})}
    tags = {
        "stage": stage,
        PROCESS_TAG: process_tag(),
        "git_commit": git_commit(),
        "params_hash": params_hash(params),
        "data_hash": file_digest(inputs),
        "run_group": run_group(),
        **(extra_tags or {}),
    }
    with mlflow.start_run(run_name=run_name or stage, nested=nested, tags=tags) as run:
        flat = {k: str(v)[:500] for k, v in flatten(params).items()}
        if flat:
            mlflow.log_params(flat)
        yield run
