"""``register`` stage: log the end-to-end pyfunc, register it as ``challenger``, run the promotion gate.

    python -m babelfuse.serving.register --model models/model.keras --fused data/fused \
        --temperature models/temperature.json --eval metrics/eval.json \
        --manifest data/validated/manifest.parquet --out metrics/register.json \
        --promotions reports/promotions.jsonl

Reads ``params.yaml: register`` (model name, gate thresholds, request limits) and ``features`` (the
encoders the served model rebuilds). The new version is tagged with the git commit, the data hash
and the evaluate stage's headline numbers; with ``register.auto_promote`` the gate
(:mod:`babelfuse.serving.promote`) then decides whether it becomes ``champion``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from babelfuse import logs, paths, tracking
from babelfuse.errors import BabelfuseError, user_errors_exit
from babelfuse.params import load_section
from babelfuse.serving import bundle
from babelfuse.serving.inputs import Limits

log = logging.getLogger("babelfuse.serving.register")

DESCRIPTION = (
    "babelfuse end-to-end sentiment model. Input: a table with columns text, lang, image, audio "
    "(image/audio: base64 bytes, or a path under BABELFUSE_MEDIA_ROOT; any modality may be null). "
    "Output: label, prob_negative, prob_neutral, prob_positive, error (per-row problems). "
    "Aliases: 'challenger' = latest registered, 'champion' = passed the promotion gate."
)


def limits_from(params: dict[str, Any]) -> Limits:
    """Request limits from ``register.max_rows``, ``max_media_mb``, ``max_text_chars``, ``max_audio_seconds``."""
    default = Limits()
    limits = Limits(
        max_rows=int(params.get("max_rows", default.max_rows)),
        max_media_bytes=int(float(params.get("max_media_mb", default.max_media_bytes / 1e6)) * 1_000_000),
        max_text_chars=int(params.get("max_text_chars", default.max_text_chars)),
        max_audio_seconds=float(params.get("max_audio_seconds", default.max_audio_seconds)),
    )
    for name, value in vars(limits).items():
        if value <= 0:
            raise BabelfuseError(f"params.yaml register.{name} must be > 0, got {value}")
    return limits


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The evaluate stage's headline numbers: overall, source/target, transfer gap, per language."""
    out: dict[str, Any] = {}
    for key in (
        "test_macro_f1",
        "test_accuracy",
        "source_macro_f1",
        "target_macro_f1",
        "transfer_gap",
        "worst_language",
    ):
        if metrics.get(key) is not None:
            out[key] = metrics[key]
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


def register(
    model: Path,
    scalers: Path,
    temperature: Path,
    eval_path: Path,
    manifest: Path,
    promotions: Path,
    params: dict[str, Any],
    features: dict[str, Any],
) -> dict[str, Any]:
    """Log, register, alias and (optionally) gate; returns what goes into ``metrics/register.json``."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from babelfuse.serving.promote import CHALLENGER, run_gate

    name = str(params.get("model_name", "babelfuse"))
    if not eval_path.exists():
        raise BabelfuseError(f"evaluation metrics not found: {eval_path} (run the evaluate stage)")
    eval_metrics = json.loads(eval_path.read_text(encoding="utf-8"))
    config = bundle.serving_config(features, languages_of(manifest), limits_from(params))
    log.info(
        "register.model_name=%s; serving languages %s; limits %s", name, config["languages"], config["limits"]
    )
    inputs = [model, scalers, temperature, eval_path, manifest]
    with tracking.stage_run("register", {"register": params, "features": features}, inputs=inputs) as run:
        info = bundle.log_pyfunc(model, scalers, temperature, config)
        client = MlflowClient()
        tags = version_tags(run.data.tags, run.info.run_id, eval_metrics)
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
        }
        if params.get("auto_promote", True):
            record = run_gate(
                name,
                float(params.get("margin", 0.0)),
                float(params.get("tolerance", 0.05)),
                manifest,
                promotions,
                client,
            )
            result.update(
                decision=record["decision"],
                promoted=bool(record["promote"]),
                reason=record["reason"],
                champion_version=record.get("new_champion_version"),
                challenger_macro_f1=record.get("challenger_macro_f1"),
                champion_macro_f1=record.get("champion_macro_f1"),
                worst_drop=record.get("worst_drop"),
            )
            _consistency(result, record, eval_metrics)
        else:
            log.info("register.auto_promote=false: run `babelfuse promote` to gate v%s", version.version)
            result.update(decision="not-run", promoted=False)
    return result


def _consistency(result: dict[str, Any], record: dict[str, Any], eval_metrics: dict[str, Any]) -> None:
    """The pyfunc on raw test posts should reproduce the evaluate stage's number on the same rows."""
    test_set = record.get("test_set") or {}
    pyfunc_f1, eval_f1 = record.get("challenger_macro_f1"), eval_metrics.get("test_macro_f1")
    if pyfunc_f1 is None or eval_f1 is None or test_set.get("current_differs"):
        return
    gap = abs(float(pyfunc_f1) - float(eval_f1))
    result["pyfunc_vs_eval_macro_f1_gap"] = gap
    if gap > 0.01:
        log.warning(
            "end-to-end pyfunc macro-F1 %.4f on raw test posts differs from the evaluate stage's %.4f on features: "
            "serving preprocessing may not match training",
            pyfunc_f1,
            eval_f1,
        )


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=paths.MODEL)
    parser.add_argument("--fused", type=Path, default=paths.FUSED, help="folder holding scalers.json")
    parser.add_argument("--temperature", type=Path, default=paths.TEMPERATURE)
    parser.add_argument("--eval", type=Path, default=paths.METRICS / "eval.json")
    parser.add_argument("--manifest", type=Path, default=paths.VALIDATED_MANIFEST)
    parser.add_argument("--out", type=Path, default=paths.METRICS / "register.json")
    parser.add_argument("--promotions", type=Path, default=paths.PROMOTIONS)
    parser.add_argument("--params", type=Path, default=paths.PARAMS)
    args = parser.parse_args(argv)
    logs.setup()
    params = load_section("register", args.params)
    features = load_section("features", args.params)
    result = register(
        args.model,
        args.fused / "scalers.json",
        args.temperature,
        args.eval,
        args.manifest,
        args.promotions,
        params,
        features,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    log.info(
        "wrote %s: %s v%s, decision %s", args.out, result["model_name"], result["version"], result["decision"]
    )


if __name__ == "__main__":
    main()
