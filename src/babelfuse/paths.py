"""Every path the pipeline reads or writes, in one place (cookiecutter-data-science style).

Paths are relative to the project root (the folder holding ``dvc.yaml``), which is the working
directory of every DVC stage. ``dvc.yaml`` repeats them on each ``cmd`` line so that the file alone
documents the data flow; stage ``main()`` functions take them as arguments with these as defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

MODALITIES: tuple[str, ...] = ("text", "image", "audio")
# gate: read only by the promotion gate; fewshot: the target-language pool of the few-shot curve
SPLITS: tuple[str, ...] = ("train", "val", "test", "gate", "fewshot")

PARAMS = Path("params.yaml")

DATA = Path("data")
RAW = DATA / "raw"
RAW_MANIFEST = RAW / "manifest.parquet"
RAW_SOURCE = RAW / "source.json"  # {"source", "data_root", ...}: where media paths are relative to
RAW_IMAGES = RAW / "images"
RAW_AUDIO = RAW / "audio"

VALIDATED = DATA / "validated"
VALIDATED_MANIFEST = VALIDATED / "manifest.parquet"
VALIDATED_SOURCE = VALIDATED / "source.json"
QUARANTINE = VALIDATED / "quarantine.parquet"

FEATURES = DATA / "features"
FUSED = DATA / "fused"

MODELS = Path("models")
MODEL = MODELS / "model.keras"
BASELINES = MODELS / "baselines"
BEST_PARAMS = MODELS / "best_params.json"
BASELINE_PARAMS = MODELS / "baseline_params.json"  # tune: each baseline's own tuned params
SEEDS = MODELS / "seeds"  # train: models/seeds/<seed>/{model.keras,baselines/} per evaluate.seeds
TEMPERATURE = MODELS / "temperature.json"

METRICS = Path("metrics")
CEILING = METRICS / "ceiling.json"  # Bayes-optimal macro-F1 per modality subset (generate stage)
PLOTS = Path("plots")
REPORTS = Path("reports")
VALIDATION_DOCS = REPORTS / "validation"
EVAL_REPORT = REPORTS / "eval.html"
PROMOTIONS = REPORTS / "promotions.jsonl"

OPTUNA_DB = Path("optuna.db")
MLFLOW_DB = Path("mlflow.db")


def features_array(modality: str, root: Path = FEATURES) -> Path:
    """``data/features/<modality>.npy``: float32, one row per validated-manifest row."""
    return root / f"{modality}.npy"


def features_ids(modality: str, root: Path = FEATURES) -> Path:
    """``data/features/<modality>.ids.txt``: the ``sample_id`` of each row, one per line."""
    return root / f"{modality}.ids.txt"


def features_present(modality: str, root: Path = FEATURES) -> Path:
    """``data/features/<modality>.present.npy``: bool, False where the modality was missing."""
    return root / f"{modality}.present.npy"


def features_meta(modality: str, root: Path = FEATURES) -> Path:
    """``data/features/<modality>.json``: encoder id/version, dim, rows, seconds, rows/s."""
    return root / f"{modality}.json"


def fused_split(split: str, root: Path = FUSED) -> Path:
    return root / f"{split}.npz"


def project_root() -> Path:
    """The folder holding dvc.yaml: ``BABELFUSE_ROOT`` if set, else the nearest parent of cwd."""
    env = os.environ.get("BABELFUSE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").exists():
            return folder
    return here
