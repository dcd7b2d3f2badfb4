"""User-facing errors: a user's mistake ends with a clear message and exit code 2, never a traceback.

Also the checked readers every stage uses for what earlier stages wrote (JSON, ``.npy``/``.npz``,
``.keras``): a missing, truncated or corrupt file is a :class:`BabelfuseError` naming the file, and
``user_errors_exit`` turns out-of-space and permission errors into one line naming the path.
"""

from __future__ import annotations

import errno
import functools
import json
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
DISK_ERRNOS: dict[int, str] = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
}
_DISK_MESSAGES = ("disk i/o error", "database or disk is full", "no space left on device")
MAX_IDS_SHOWN = 5


class BabelfuseError(Exception):
    """A problem with the user's data, params or environment, explained in the message."""


def environment_problem(err: BaseException) -> str | None:
    """One line for a disk-full / permission problem (an ``OSError`` or a wrapped SQLite one), else None."""
    if isinstance(err, OSError) and err.errno in DISK_ERRNOS:
        where = err.filename or "a file"
        return f"{DISK_ERRNOS[err.errno]} writing or reading {where}"
    text = str(err).lower()
    if any(m in text for m in _DISK_MESSAGES):  # SQLite (MLflow's or Optuna's store) when the disk is full
        return f"the disk is full or unwritable ({type(err).__name__}: {str(err).splitlines()[0][:160]})"
    return None


def user_errors_exit(func: Callable[..., T]) -> Callable[..., T]:
    """Decorate a stage ``main``: ``BabelfuseError`` and disk/permission errors print one line, exit 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BabelfuseError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except Exception as err:
            problem = environment_problem(err)
            if problem is None:
                raise
            print(f"error: {problem}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper


def read_json(path: Path | str) -> Any:
    """A JSON file's content; missing, unreadable or malformed is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise BabelfuseError(f"file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise BabelfuseError(
            f"{path} is not valid JSON (line {err.lineno} column {err.colno}: {err.msg}); truncated or corrupt?"
        ) from None
    except UnicodeDecodeError:
        raise BabelfuseError(f"{path} is not UTF-8 text: corrupt?") from None


def load_array(path: Path | str) -> np.ndarray:
    """A ``.npy`` array (never unpickling); missing or corrupt is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise BabelfuseError(f"file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise BabelfuseError(f"{path} is not a readable .npy array ({str(err)[:120]}): corrupt?") from None


def load_npz(path: Path | str) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` (never unpickling); missing or corrupt is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise BabelfuseError(f"file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise BabelfuseError(f"{path} is not a readable .npz archive ({str(err)[:120]}): corrupt?") from None


def check_finite(array: np.ndarray, ids: list[str] | None, what: str) -> None:
    """Refuse NaN/inf rows of a 2-D float array, naming (up to 5 of) their ids or row numbers."""
    if not np.issubdtype(array.dtype, np.floating):
        return
    bad = np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
    if len(bad):
        shown = [ids[i] if ids is not None else int(i) for i in bad[:MAX_IDS_SHOWN]]
        raise BabelfuseError(
            f"{what}: {len(bad)} row(s) hold NaN or infinite values, e.g. {shown}: re-run the stage that wrote it"
        )


def load_keras(path: Path | str):
    """A ``.keras`` model (safe mode): missing is "not found", unreadable is "corrupt", naming the file."""
    path = Path(path)
    if not path.is_file():
        raise BabelfuseError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise BabelfuseError(f"{path} is corrupt: not a .keras archive (truncated or overwritten?)")
    import keras  # heavy (TensorFlow): only callers that load a model pay for it

    import babelfuse.fusion  # noqa: F401  (registers the custom layers the .keras file names)

    try:
        return keras.saving.load_model(str(path), safe_mode=True)
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile, TypeError) as err:
        raise BabelfuseError(
            f"{path} is corrupt or not a babelfuse model ({type(err).__name__}: {str(err)[:120]})"
        ) from None
