"""The served model's opt-in inference log (``register.inference_log``): metadata only, never media.

Called after each answered request; a logging failure goes to the server log and never fails the
request. The text vectors are the standardised text-encoder features the model saw (re-encoded here:
the log costs one extra text encoding per post, only when enabled).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from babelfuse import monitoring
from babelfuse.serving import inputs

log = logging.getLogger("babelfuse.serving")


def text_vectors(predictor: Any, frame: pd.DataFrame, out: pd.DataFrame) -> list[np.ndarray | None]:
    """The standardised text features of every answered post with text (None for the others)."""
    texts = frame["text"].tolist() if "text" in frame else [None] * len(frame)
    rows = [i for i, t in enumerate(texts) if isinstance(t, str) and out["error"].iloc[i] is None]
    vectors: list[np.ndarray | None] = [None] * len(frame)
    if rows:
        scaler = predictor.scalers["text"]
        raw = np.asarray(predictor.encoders["text"].encode([texts[i] for i in rows]), dtype=np.float64)
        for i, v in zip(rows, (raw - scaler["mean"]) / scaler["scale"], strict=True):
            vectors[i] = v
    return vectors


def log_request(predictor: Any, model_input: Any, out: pd.DataFrame, latency_s: float, folder: str) -> None:
    try:
        frame = inputs.check_request(model_input, predictor.limits)
        vectors = text_vectors(predictor, frame, out)
        monitoring.append_log(folder, monitoring.request_records(frame, out, vectors, latency_s * 1000.0))
    except Exception:  # noqa: BLE001 - monitoring must never break serving
        log.exception("could not append to the inference log %s", folder)
