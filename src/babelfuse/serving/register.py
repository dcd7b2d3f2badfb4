"""The ``register`` stage's library: log the end-to-end pyfunc, register it as ``challenger``, run the gate.

The entry point is :mod:`babelfuse.stages.register` (``python -m babelfuse.stages.register``).

Reads ``params.yaml: register`` (model name, gate thresholds, request limits) and ``features`` (the
encoders the served model rebuilds). The new version is tagged with the git commit, the data hash
and the evaluate stage's headline numbers; with ``register.auto_promote`` the gate
(:mod:`babelfuse.serving.promote`) then decides whether it becomes ``champion``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from babelfuse import tracking
from babelfuse.errors import BabelfuseError, read_json
from babelfuse.features.media import MediaLimits
from babelfuse.serving import bundle, gate
from babelfuse.serving.inputs import Limits
from babelfuse.serving.model_code import HASHES_TAG

log = logging.getLogger("babelfuse.serving.register")

DESCRIPTION = (
    "babelfuse end-to-end sentiment model. Input: a table with columns text, lang, image, audio "
    "(image/audio: base64 bytes, or a path under BABELFUSE_MEDIA_ROOT; any modality may be null). "
    "Output: label, prob_negative, prob_neutral, prob_positive, error (per-row problems). "
    "Aliases: 'challenger' = latest registered, 'champion' = passed the promotion gate."
)


def limits_from(params: dict[str, Any], media_params: dict[str, Any] | None = None) -> Limits:
    """Request limits from ``register.max_*``; per-file bounds from ``validate.*`` (``media_params``).

    The served model takes the validate stage's image bounds (one :class:`MediaLimits`), and
    ``register.max_audio_seconds`` as its clip length.
    """
    limits = Limits(
        max_rows=int(params["max_rows"]),
        max_media_bytes=int(float(params["max_media_mb"]) * 1_000_000),
        max_text_chars=int(params["max_text_chars"]),
        max_request_bytes=int(float(params["max_request_mb"]) * 1_000_000),
        media=MediaLimits.from_params(media_params or {}, audio_max_seconds=params["max_audio_seconds"]),
    )
    for name, value in [*vars(limits).items(), *vars(limits.media).items()]:
        if not isinstance(value, MediaLimits) and value <= 0:
            raise BabelfuseError(f"params.yaml register.{name} must be > 0, got {value}")
    return limits


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The evaluate stage's headline numbers (every scalar of ``metrics/eval.json``: test, source and
    target macro-F1, transfer gap, worst language, fusion gains, ECE, seed spread), plus per-language
    macro-F1 when the given metrics carry a ``per_language`` table."""
    out: dict[str, Any] = {
        key: value
        for key, value in metrics.items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
    }
    for lang, values in (metrics.get("per_language") or {}).items():
        if isinstance(values, dict) and values.get("macro_f1") is not None:
            out[f"macro_f1.{lang}"] = values["macro_f1"]
    return out


def version_tags(run_tags: dict[str, str], run_id: str, eval_metrics: dict[str, Any]) -> dict[str, str]:
    tags = {
        "git_commit": run_tags.get("git_commit", "unknown"),
        "data_hash": run_tags.get("data_hash", ""),
        "run_id": run_id,
    }
    for key, value in headline(eval_metrics).items():
        tags[f"eval.{key}"] = f"{value:.6f}" if isinstance(value, float) else str(value)
    return tags


def languages_of(manifest: Path) -> list[str]:
    if not manifest.exists():
        raise BabelfuseError(f"manifest not found: {manifest} (run the validate stage)")
    return sorted(pd.read_parquet(manifest, columns=["lang"])["lang"].astype(str).unique().tolist())


def train_languages_of(manifest: Path) -> list[str]:
    """The languages of the manifest's train split (the model was trained on these)."""
    frame = pd.read_parquet(manifest, columns=["lang", "split"])
    return sorted(frame.loc[frame["split"] == "train", "lang"].astype(str).unique().tolist())


def register(
    model: Path,
    scalers: Path,
    temperature: Path,
    eval_path: Path,
    manifest: Path,
    promotions: Path,
    params: dict[str, Any],
    features: dict[str, Any],
    validate: dict[str, Any] | None = None,
    *,
    seed: int,
) -> dict[str, Any]:
    """Log, register, alias and (optionally) gate; returns what goes into ``metrics/register.json``.

    ``seed`` (params.yaml ``seed``) seeds the gate's bootstrap draw.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    from babelfuse.serving.promote import CHALLENGER, run_gate  # imports mlflow: kept out of module import

    name = str(params["model_name"])
    if not eval_path.exists():
        raise BabelfuseError(f"evaluation metrics not found: {eval_path} (run the evaluate stage)")
    eval_metrics = read_json(eval_path)
    config = bundle.serving_config(
        features,
        languages_of(manifest),
        limits_from(params, validate),
        params["text_threads"],
        train_languages=train_languages_of(manifest),
    )
    config["media_pool"] = {
        "processes": params["media_processes"],
        "min_posts": params["media_pool_min_posts"],
    }
    config["keep_freed_memory"] = params["keep_freed_memory"]  # serving/memory.py
    config["inference_log"] = params["inference_log"]  # the served model's traffic log folder (None: off)
    log.info(
        "register.model_name=%s; evaluated languages %s, trained on %s, accepting %s; limits %s",
        name,
        config["languages"],
        config["train_languages"],
        config["covered_languages"],
        config["limits"],
    )
    inputs = [model, scalers, temperature, eval_path, manifest]
    with tracking.stage_run("register", {"register": params, "features": features}, inputs=inputs) as run:
        info = bundle.log_pyfunc(model, scalers, temperature, config)
        client = MlflowClient()
        hashes = bundle.logged_file_hashes(info.model_uri)
        tags = {**version_tags(run.data.tags, run.info.run_id, eval_metrics), HASHES_TAG: json.dumps(hashes)}
        version = mlflow.register_model(info.model_uri, name, tags=tags)
        client.update_registered_model(name, description=DESCRIPTION)
        client.set_registered_model_alias(name, CHALLENGER, version.version)
        log.info("registered %s v%s (alias %s) from %s", name, version.version, CHALLENGER, info.model_uri)
        result: dict[str, Any] = {
            "model_name": name,
            "version": int(version.version),
            "model_uri": f"models:/{name}/{version.version}",
            "run_id": run.info.run_id,
            "eval": headline(eval_metrics),
            "files_sha256": hashes,
        }
        if params["auto_promote"]:
            record = run_gate(name, gate.Rule.from_params(params, seed), manifest, promotions, client)
            result.update(
                decision=record["decision"],
                promoted=bool(record["promote"]),
                reason=record["reason"],
                champion_version=record.get("new_champion_version"),
                challenger_macro_f1=record.get("challenger_macro_f1"),
                champion_macro_f1=record.get("champion_macro_f1"),
                worst_drop=record.get("worst_drop"),
                gate_improvement=record.get("improvement"),
                gate_improvement_lower=record.get("improvement_lower"),
            )
        else:
            log.info("register.auto_promote=false: run `babelfuse promote` to gate v%s", version.version)
            result.update(decision="not-run", promoted=False)
    return result
