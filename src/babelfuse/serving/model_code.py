"""The pyfunc as code (MLflow "models from code"): logging stores this file, loading runs it.

Nothing is pickled: the served model is :class:`~babelfuse.serving.pyfunc.BabelfuseModel` plus its
artifacts. Loading a model runs its code, so before this file imports anything from the model's
``code/`` folder it checks every file of the model folder against the SHA-256 digests the
``register`` stage recorded as the version tag :data:`HASHES_TAG` in the registry, and refuses a
version whose files changed (naming the file). Only the standard library and the installed MLflow
are used until then. The same functions verify a download in ``babelfuse predict``.

Imported as ``babelfuse.serving.model_code`` (by the register stage and the CLI) the module only
defines the functions; run by MLflow as a model file it verifies and then sets the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

HASHES_TAG = "babelfuse.files_sha256"  # JSON {relative path: sha256 hex} of every file of the model
# Written by MLflow itself into a model folder it loads from the registry (name and version, no code).
UNHASHED: frozenset[str] = frozenset({"registered_model_meta"})
_CHUNK = 1 << 20
log = logging.getLogger("babelfuse.serving")


class ModelFilesChanged(Exception):
    """A registered model's files differ from what was recorded at registration."""


def file_hashes(folder: Path | str) -> dict[str, str]:
    """SHA-256 of every file below ``folder`` (but :data:`UNHASHED`), keyed by its relative path."""
    root = Path(folder)
    out: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        if path.relative_to(root).as_posix() in UNHASHED:
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(block)
        out[path.relative_to(root).as_posix()] = digest.hexdigest()
    return out


def changed_file(folder: Path | str, expected: dict[str, str]) -> str | None:
    """A one-line reason naming the first file that differs from ``expected``, or None."""
    actual = file_hashes(folder)
    for name in sorted(set(actual) | set(expected)):
        if name not in expected:
            return f"{name} was added after registration"
        if name not in actual:
            return f"{name} is missing"
        if actual[name] != expected[name]:
            return f"{name} changed after registration (sha256 {actual[name][:12]}..., registered {expected[name][:12]}...)"
    return None


def verify(folder: Path | str, tag_value: str | None, what: str) -> None:
    """Raise :class:`ModelFilesChanged` unless ``folder`` matches the recorded ``tag_value``."""
    if not tag_value:
        raise ModelFilesChanged(f"{what} has no {HASHES_TAG} tag: its files cannot be verified")
    reason = changed_file(folder, json.loads(tag_value))
    if reason is not None:
        raise ModelFilesChanged(f"{what}: refusing to load it: {reason}")


def registered_hashes(folder: Path | str) -> tuple[str, str | None] | None:
    """``(which version, its hashes tag)`` of the registry version logged as ``folder``; None if none.

    The version is found from the ``MLmodel`` file's ``model_id`` (MLflow 3 logged model) or run id,
    in the tracking server MLflow itself uses (``MLFLOW_TRACKING_URI``).
    """
    from mlflow.models import Model  # heavy (~1 s): imported only when something is logged or loaded
    from mlflow.tracking import MlflowClient

    meta = Model.load(str(Path(folder) / "MLmodel"))
    model_id, run_id = getattr(meta, "model_id", None), meta.run_id
    if not (model_id or run_id):
        return None
    client = MlflowClient()
    query = f"run_id = '{run_id}'" if run_id else ""
    for version in client.search_model_versions(query):
        if model_id and not str(version.source).endswith(model_id):  # another model of the same run
            continue
        return f"model {version.name} v{version.version}", version.tags.get(HASHES_TAG)
    return None


def verify_folder(folder: Path | str) -> str:
    """Check a local model folder against its registry version; returns what was verified.

    Raises :class:`ModelFilesChanged` when a file changed or the registry cannot be asked (fail
    closed); a folder that is no registered version (a local ``save_model``) is only logged.
    """
    folder = Path(folder).resolve()
    if not (folder / "MLmodel").is_file():  # MLflow runs this file from the source tree when logging
        return "not a model folder"
    try:
        found = registered_hashes(folder)
    except Exception as err:  # noqa: BLE001 - fail closed: no registry answer, no unverified code
        raise ModelFilesChanged(
            f"cannot look up the registered hashes of the model in {folder.name} "
            f"({type(err).__name__}: {str(err)[:200]}); set MLFLOW_TRACKING_URI to its registry"
        ) from None
    if found is None:
        log.warning("%s is not a registered model version: its files are not verified", folder)
        return "unregistered"
    verify(folder, found[1], found[0])
    return found[0]


if not __name__.startswith("babelfuse."):  # run by MLflow as the model file
    verify_folder(Path(__file__).parent)
    from mlflow.models import set_model  # heavy (~1 s): imported only when something is logged or loaded

    from babelfuse.serving.pyfunc import BabelfuseModel

    set_model(BabelfuseModel())
