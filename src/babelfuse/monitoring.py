"""Opt-in inference log of the served model, and the traffic-vs-training comparison of ``babelfuse monitor``.

With ``register.inference_log: <folder>`` the served model appends one Parquet file per request to
that folder: per post the given language, the detected one (if the model returned it), which
modalities were present, the text length, the answer (label, probabilities, error), the request's
latency and the post's standardised text-embedding vector (what the model saw; never the text, image
or audio themselves).

:func:`compare` sets that traffic against the training split (``data/fused/train.npz``): language mix,
unseen-language share, modality presence, predicted-label distribution and text-embedding drift — the
population stability index (PSI) of the traffic's projections on the training data's first principal
axes, flagged when its largest value exceeds a threshold (0.2 is the usual "significant shift" rule).
"""

from __future__ import annotations

import html
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from babelfuse.errors import BabelfuseError
from babelfuse.labels import LABELS
from babelfuse.paths import MODALITIES

PSI_THRESHOLD = 0.2
PSI_BINS = 10
COMPONENTS = 5


def request_records(
    frame: pd.DataFrame, out: pd.DataFrame, text_vectors: list[np.ndarray | None], latency_ms: float
) -> pd.DataFrame:
    """One log row per post of a request (``frame`` = the request, ``out`` = the model's answer)."""
    n = len(frame)
    column = lambda name: frame[name].tolist() if name in frame else [None] * n  # noqa: E731

    def present(values: list[Any]) -> list[bool]:
        return [v is not None and not (isinstance(v, float) and np.isnan(v)) for v in values]

    texts = column("text")
    records = {
        "time": [datetime.now(UTC).isoformat()] * n,
        "request_id": [uuid.uuid4().hex[:12]] * n,
        "lang": [v if isinstance(v, str) else None for v in column("lang")],
        "lang_detected": out["lang_detected"].tolist() if "lang_detected" in out else [None] * n,
        **{f"has_{m}": present(column(m)) for m in MODALITIES},
        "text_chars": [len(t) if isinstance(t, str) else 0 for t in texts],
        "label": out["label"].tolist(),
        **{f"prob_{c}": pd.to_numeric(out[f"prob_{c}"], errors="coerce").tolist() for c in LABELS},
        "error": out["error"].tolist(),
        "latency_ms": [float(latency_ms)] * n,
        "text_vec": [None if v is None else np.asarray(v, dtype=np.float32).tolist() for v in text_vectors],
    }
    return pd.DataFrame(records)


def append_log(folder: Path | str, records: pd.DataFrame) -> Path:
    """Write the records as a new Parquet file in ``folder`` (one file per request: no locking needed)."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"requests-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}.parquet"
    records.to_parquet(path, index=False)
    return path


def read_log(folder: Path | str) -> pd.DataFrame:
    """Every logged post of ``folder``; a clear error when there is none."""
    files = sorted(Path(folder).glob("*.parquet"))
    if not files:
        raise BabelfuseError(
            f"{folder}: no inference log files (*.parquet); set register.inference_log and serve"
        )
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``current`` against ``reference`` on the reference's quantile bins."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref = np.bincount(np.searchsorted(edges, reference), minlength=len(edges) + 1) / len(reference)
    cur = np.bincount(np.searchsorted(edges, current), minlength=len(edges) + 1) / len(current)
    ref, cur = np.clip(ref, 1e-4, None), np.clip(cur, 1e-4, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def embedding_drift(
    train: np.ndarray, traffic: np.ndarray, threshold: float = PSI_THRESHOLD, components: int = COMPONENTS
) -> dict[str, Any]:
    """PSI of the traffic on each of the training vectors' first principal axes; drift if the max > threshold."""
    if len(traffic) == 0 or len(train) == 0:
        return {"psi": [], "max_psi": None, "threshold": threshold, "drift": None, "n": int(len(traffic))}
    mean = train.mean(axis=0)
    _, _, axes = np.linalg.svd(train - mean, full_matrices=False)
    axes = axes[: min(components, len(axes))]
    ref, cur = (train - mean) @ axes.T, (traffic - mean) @ axes.T
    values = [psi(ref[:, k], cur[:, k]) for k in range(len(axes))]
    return {"psi": values, "max_psi": max(values), "threshold": threshold, "drift": max(values) > threshold,
            "n": int(len(traffic))}  # fmt: skip


def shares(values: Sequence[Any]) -> dict[str, float]:
    """``{value: share}`` of the non-null values, largest first."""
    counts = pd.Series([v for v in values if v is not None], dtype=object).value_counts(normalize=True)
    return {str(k): float(v) for k, v in counts.items()}


def compare(
    traffic: pd.DataFrame, train: dict[str, np.ndarray], threshold: float = PSI_THRESHOLD
) -> dict[str, Any]:
    """Traffic (:func:`read_log`) against the training split (fused ``train.npz`` arrays)."""
    ok = traffic[traffic["error"].isna()]
    langs = [d if isinstance(d, str) else g for g, d in zip(ok["lang"], ok["lang_detected"], strict=True)]
    train_langs = set(np.asarray(train["lang"]).astype(str).tolist())
    vectors = [np.asarray(v, dtype=np.float64) for v in ok["text_vec"] if v is not None]
    traffic_vecs = np.stack(vectors) if vectors else np.zeros((0, train["text"].shape[1]))
    with_text = np.asarray(train["mask"])[:, 0] > 0
    return {
        "posts": int(len(traffic)),
        "errors": int(traffic["error"].notna().sum()),
        "language_mix": {
            "traffic": shares(langs),
            "train": shares(np.asarray(train["lang"]).astype(str).tolist()),
        },
        "unseen_language_share": float(np.mean([c not in train_langs for c in langs])) if langs else None,
        "modality_presence": {
            "traffic": {m: float(ok[f"has_{m}"].mean()) if len(ok) else None for m in MODALITIES},
            "train": {m: float(np.asarray(train["mask"])[:, j].mean()) for j, m in enumerate(MODALITIES)},
        },
        "label_distribution": {
            "traffic": shares(ok["label"].tolist()),
            "train": shares([LABELS[int(i)] for i in np.asarray(train["label"])]),
        },
        "latency_ms_p50": float(np.median(traffic["latency_ms"])) if len(traffic) else None,
        "text_embedding_drift": embedding_drift(
            np.asarray(train["text"])[with_text], traffic_vecs, threshold
        ),
    }


def render_html(summary: dict[str, Any]) -> str:
    """A one-page HTML report of :func:`compare`'s result."""

    def table(title: str, pair: dict[str, dict[str, float]]) -> str:
        keys = sorted(set(pair["traffic"]) | set(pair["train"]))
        cell = lambda d, k: "" if d.get(k) is None else f"{d[k]:.3f}"  # noqa: E731
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{cell(pair['traffic'], k)}</td><td>{cell(pair['train'], k)}</td></tr>"
            for k in keys
        )
        return f"<h2>{html.escape(title)}</h2><table><tr><th></th><th>traffic</th><th>train</th></tr>{rows}</table>"

    drift = summary["text_embedding_drift"]
    verdict = (
        "no traffic with text" if drift["drift"] is None else ("DRIFT" if drift["drift"] else "no drift")
    )
    psis = ", ".join(f"{v:.3f}" for v in drift["psi"])
    return "\n".join([
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>babelfuse monitor</title></head><body>",
        f"<h1>babelfuse traffic monitor</h1><p>{summary['posts']} posts, {summary['errors']} with errors; "
        f"unseen-language share {_fmt(summary['unseen_language_share'])}; latency p50 {_fmt(summary['latency_ms_p50'], '.1f')} ms.</p>",
        f"<h2>Text-embedding drift: {verdict}</h2><p>PSI on the training data's first principal axes: {psis} "
        f"(max {_fmt(drift['max_psi'])}, threshold {drift['threshold']}).</p>",
        table("Language mix", summary["language_mix"]),
        table("Modality presence", summary["modality_presence"]),
        table("Predicted labels (traffic) vs training labels", summary["label_distribution"]),
        "</body></html>",
    ])  # fmt: skip


def _fmt(x: float | None, fmt: str = ".3f") -> str:
    return "n/a" if x is None else format(x, fmt)
