"""Predicting one post from local files with a registered model (what ``babelfuse predict`` runs).

Local image and audio files are read here and sent to the model as base64, exactly as a remote
client would send them to ``mlflow models serve``; so the model never needs access to the caller's
disk, and the same checks apply. Any problem (missing file, unknown language, undecodable clip, no
such model) is a :class:`BabelfuseError` with one clear line.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from babelfuse.errors import BabelfuseError
from babelfuse.labels import LABELS
from babelfuse.paths import MODALITIES
from babelfuse.serving import model_code

DEFAULT_MODEL_URI = "models:/babelfuse@champion"
MAX_FILE_BYTES = 200_000_000  # a sanity cap before reading; the model applies its own, smaller limit


def read_media(path: Path | None, what: str) -> str | None:
    """A local file's bytes as base64 text (None when no path is given)."""
    if path is None:
        return None
    path = Path(path).expanduser()
    if not path.is_file():
        raise BabelfuseError(f"--{what}: file not found: {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise BabelfuseError(f"--{what}: {path} is {path.stat().st_size:,} bytes, far too large for one post")
    return base64.b64encode(path.read_bytes()).decode("ascii")


def load(model_uri: str):
    """``mlflow.pyfunc.load_model`` against the project's tracking store, with a clear error."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded
    from mlflow.exceptions import MlflowException

    from babelfuse import tracking

    mlflow.set_tracking_uri(tracking.tracking_uri())
    local = tempfile.mkdtemp(prefix="babelfuse-model-")
    atexit.register(shutil.rmtree, local, ignore_errors=True)
    try:
        folder = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=local)
        model_code.verify_folder(folder)  # before anything of the model is imported
        return mlflow.pyfunc.load_model(folder)
    except model_code.ModelFilesChanged as err:
        raise BabelfuseError(f"model {model_uri}: {err}") from None
    except MlflowException as err:
        raise BabelfuseError(
            f"cannot load model {model_uri} from {tracking.tracking_uri()}: {first_line(err.message)}"
        ) from None


def first_line(message: str) -> str:
    """The useful part of an MLflow message (no data dumps or stack traces)."""
    text = str(message).strip()
    if "Error: " in text and text.startswith("Failed to"):
        text = text.split("Error: ", 1)[1]
    return text.splitlines()[0] if text else "unknown error"


def predict_post(
    model,
    text: str | None,
    lang: str,
    image: Path | None = None,
    audio: Path | None = None,
    explained: bool = False,
) -> dict[str, Any]:
    """Label and probabilities of one post (``model`` = a loaded pyfunc); with ``explained`` also
    each modality's contribution (Shapley value) to the predicted class's probability."""
    from mlflow.exceptions import MlflowException

    frame = pd.DataFrame(
        [
            {
                "text": text,
                "lang": lang,
                "image": read_media(image, "image"),
                "audio": read_media(audio, "audio"),
            }
        ]
    )
    try:
        out = model.predict(frame, params={"on_error": "raise", "explain": explained})
    except MlflowException as err:
        raise BabelfuseError(first_line(err.message)) from None
    row = out.iloc[0]
    if isinstance(row.get("error"), str):
        raise BabelfuseError(row["error"])
    result = {
        "label": str(row["label"]),
        "probabilities": {label: float(row[f"prob_{label}"]) for label in LABELS},
        "lang": lang,
        "modalities": [m for m, v in (("text", text), ("image", image), ("audio", audio)) if v is not None],
    }
    if explained:
        result["contributions"] = {m: float(row[f"contrib_{m}"]) for m in MODALITIES}
    return result
