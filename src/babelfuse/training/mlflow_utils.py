"""MLflow logging for the train stage: per-epoch curves, dataset inputs with digests, the model."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from babelfuse.training.fit import model_inputs

# history key (Keras) -> MLflow metric name (the split is in the name)
CURVES: dict[str, str] = {
    "loss": "train_loss",
    "accuracy": "train_accuracy",
    "val_loss": "val_loss",
    "val_accuracy": "val_accuracy",
    "val_macro_f1": "val_macro_f1",
}


def log_history(history: dict[str, list[float]]) -> None:
    """Per-epoch curves in one batch call (step = epoch, 1-based)."""
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [
        Metric(key=name, value=float(value), timestamp=now, step=epoch)
        for key, name in CURVES.items()
        for epoch, value in enumerate(history.get(key, []), start=1)
    ]
    run_id = mlflow.active_run().info.run_id
    client = mlflow.MlflowClient()
    for start in range(0, len(metrics), 900):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=metrics[start : start + 900])


def log_datasets(splits: dict[str, tuple[dict[str, np.ndarray], Path]]) -> None:
    """Each split as an MLflow dataset input (features dict + labels, with its digest)."""
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded

    for context, (split, path) in splits.items():
        with (
            warnings.catch_warnings()
        ):  # "" and "file" schemes both map to LocalArtifactDatasetSource: harmless
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            dataset = mlflow.data.from_numpy(
                features=model_inputs(split),
                targets=np.asarray(split["label"]),
                name=Path(path).stem,
                source=str(Path(path).resolve()),
            )
        mlflow.log_input(dataset, context=context)


def pip_requirements() -> list[str]:
    import keras  # heavy (TensorFlow, ~4 s): only when a model is built, loaded or run
    import tensorflow as tf

    return [f"tensorflow-cpu=={tf.__version__}", f"keras=={keras.__version__}", f"numpy=={np.__version__}"]


def log_keras_model(model: Any, example_split: dict[str, np.ndarray], rows: int = 5) -> Any:
    """``mlflow.tensorflow.log_model`` with a signature and an input example (``mlflow.keras.log_model``
    fails with ``input_example`` in MLflow 3.17.2). Loading it needs ``import babelfuse.fusion`` first
    (the custom layers register themselves on import; nothing is pickled)."""
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded
    from mlflow.models import infer_signature

    example = {key: value[:rows] for key, value in model_inputs(example_split).items()}
    signature = infer_signature(example, np.asarray(model.predict_on_batch(example)))
    return mlflow.tensorflow.log_model(
        model, name="model", input_example=example, signature=signature, pip_requirements=pip_requirements()
    )
