"""The ``train`` stage's library: the fused model of ``train.fusion``, its baselines, metrics, curves and MLflow runs.

Params are the ``train`` section, overridden key by key by ``models/best_params.json`` (the tune
stage's best trial) when ``train.use_best_params`` is true and that file holds a JSON object.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from babelfuse import paths, tracking
from babelfuse.errors import BabelfuseError
from babelfuse.jsonio import write_json
from babelfuse.training.fit import FitResult

log = logging.getLogger("babelfuse.train")


def resolve_params(section: dict[str, Any], best_params: Path | None) -> tuple[dict[str, Any], list[str]]:
    """(effective train params, the keys taken from best_params.json)."""
    params = dict(section)
    if not params["use_best_params"]:
        log.info("train.use_best_params=false: using params.yaml train section only")
        return params, []
    if best_params is None or not best_params.exists() or not best_params.read_text(encoding="utf-8").strip():
        log.info("train.use_best_params=true but %s is missing or empty: using params.yaml", best_params)
        return params, []
    best = read_json_object(best_params)
    unknown = sorted(set(best) - set(section))
    if unknown:
        raise BabelfuseError(
            f"{best_params} has key(s) {unknown} that are not train params ({sorted(section)})"
        )
    for key in sorted(best):
        log.info(
            "train.%s=%r from %s (was %r; train.use_best_params=true)",
            key,
            best[key],
            best_params,
            section[key],
        )
    params.update(best)
    return params, sorted(best)


def history_frame(history: dict[str, list[float]]) -> pd.DataFrame:
    """The DVC plot ``plots/train/history.csv``: epoch, train_loss, val_loss, val_macro_f1."""
    epochs = len(history.get("loss", []))
    return pd.DataFrame(
        {
            "epoch": np.arange(1, epochs + 1),
            "train_loss": history.get("loss", [np.nan] * epochs),
            "val_loss": history.get("val_loss", [np.nan] * epochs),
            "val_macro_f1": history.get("val_macro_f1", [np.nan] * epochs),
        }
    )


def summary_metrics(result: FitResult) -> dict[str, float]:
    """What a run reports for its restored (best-epoch) model."""
    return {
        "best_val_macro_f1": result.val_macro_f1,
        "best_val_accuracy": result.val_accuracy,
        "best_val_loss": result.val_loss,
        "best_epoch": float(result.best_epoch),
        "epochs": float(result.epochs),
        "train_seconds": result.seconds,
    }


UNTUNED_C = 1.0  # the LogisticRegression's C when no tuned one is given (scikit-learn's default)


def baseline_params(
    section: dict[str, Any], fused: dict[str, Any], baseline_file: Path | None
) -> dict[str, dict[str, Any]]:
    """Each baseline's train params: ``{text|image|audio: train params, logreg: {"C": c}}``.

    With ``train.use_best_params`` and a ``models/baseline_params.json`` from the tune stage, each
    single-modality model gets the train section overlaid with its own tuned params and the
    LogisticRegression its tuned C; otherwise they train with ``fused`` (the fused model's params)
    and C = 1.
    """
    tuned: dict[str, Any] = {}
    if section["use_best_params"] and baseline_file is not None and baseline_file.exists():
        tuned = read_json_object(baseline_file)
    out: dict[str, dict[str, Any]] = {}
    for modality in paths.MODALITIES:
        own = tuned.get(modality)
        if own is None:
            out[modality] = dict(fused)
            continue
        unknown = sorted(set(own) - set(section))
        if unknown:
            raise BabelfuseError(
                f"{baseline_file}: {modality} has key(s) {unknown} that are not train params"
            )
        out[modality] = {**section, **own}
        log.info("baseline:%s uses its own tuned params %s from %s", modality, own, baseline_file)
    out["logreg"] = {"C": float(tuned.get("logreg", {}).get("C", UNTUNED_C))}
    return out


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object; empty file = ``{}``; anything else a one-line error."""
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        return {}
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise BabelfuseError(f"{path} is not valid JSON ({err}); re-run the tune stage") from None
    if not isinstance(payload, dict):
        raise BabelfuseError(f"{path} must hold a JSON object, got {type(payload).__name__}")
    return payload


def run_baselines(
    params: dict[str, dict[str, Any]], seed: int, train: dict, val: dict, out: Path, inputs: list[Path]
) -> dict[str, dict[str, float]]:
    """Single-modality models (``out/<modality>.keras``) and the LogisticRegression (``out/logreg.json``,
    plain JSON), each a nested run; ``params`` from :func:`baseline_params`."""
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded

    from babelfuse.training.baselines import fit_logreg, fit_single_modality, logreg_to_json
    from babelfuse.training.mlflow_utils import log_history

    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}
    for modality in paths.MODALITIES:
        tags = {"baseline": modality, "seed": str(seed)}
        run_params = {**params[modality], "seed": seed}
        with tracking.stage_run("train", run_params, inputs, f"baseline:{modality}", True, tags):
            result = fit_single_modality(modality, params[modality], train, val, seed)
            result.model.save(out / f"{modality}.keras")
            log_history(result.history)
            mlflow.log_metrics(summary_metrics(result))
        log.info("baseline:%s seed %d val_macro_f1=%.4f", modality, seed, result.val_macro_f1)
        results[modality] = {"val_macro_f1": result.val_macro_f1, "val_accuracy": result.val_accuracy}
    C = params["logreg"]["C"]
    tags = {"baseline": "logreg", "seed": str(seed)}
    with tracking.stage_run(
        "train", {"model": "LogisticRegression", "C": C, "seed": seed}, inputs, "baseline:logreg", True, tags
    ):
        model, logreg = fit_logreg(train, val, seed, C=C)
        write_json(out / "logreg.json", logreg_to_json(model))
        mlflow.log_metrics(
            {
                "best_val_macro_f1": logreg.val_macro_f1,
                "best_val_accuracy": logreg.val_accuracy,
                "best_val_loss": logreg.val_loss,
                "train_seconds": logreg.seconds,
            }
        )
    log.info("baseline:logreg C=%g seed %d val_macro_f1=%.4f", C, seed, logreg.val_macro_f1)
    results["logreg"] = {"val_macro_f1": logreg.val_macro_f1, "val_accuracy": logreg.val_accuracy}
    return results


def seed_summary(per_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds of the fused model's and each baseline's val macro-F1 (population std)."""

    def stats(values: list[float]) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "std": float(np.std(values))}

    out = {"val_macro_f1": stats([m["val_macro_f1"] for m in per_seed.values()])}
    names = sorted({b for m in per_seed.values() for b in m.get("baselines", {})})
    for name in names:
        out[f"baseline_{name}_val_macro_f1"] = stats(
            [m["baselines"][name]["val_macro_f1"] for m in per_seed.values()]
        )
    return out


def publish_first_seed(seed_dir: Path, out: Path) -> None:
    """``models/model.keras`` and ``models/baselines/`` = the first seed's (what register serves)."""
    shutil.copy2(seed_dir / "model.keras", out / "model.keras")
    target = out / "baselines"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(seed_dir / "baselines", target)


def train_metrics(
    result: FitResult, param_count: int, baselines: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """``metrics/train.json``: the fused model, each baseline and the fusion gain (numbers only)."""
    from babelfuse.training.baselines import fusion_gain

    metrics: dict[str, Any] = {
        "val_macro_f1": result.val_macro_f1,
        "val_accuracy": result.val_accuracy,
        "val_loss": result.val_loss,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "seconds": round(result.seconds, 3),
        "params": param_count,
    }
    if baselines:
        metrics["baselines"] = baselines
        best, gain = fusion_gain(
            result.val_macro_f1, {m: baselines[m]["val_macro_f1"] for m in paths.MODALITIES}
        )
        metrics["best_single_modality_val_macro_f1"] = baselines[best]["val_macro_f1"]
        metrics["fusion_gain"] = gain
        log.info("fusion_gain=%+.4f over baseline:%s", gain, best)
    return metrics


def train_one_seed(
    params: dict[str, Any],
    baselines: dict[str, dict[str, Any]] | None,
    seed: int,
    train: dict,
    val: dict,
    seed_dir: Path,
    inputs: list[Path],
) -> tuple[FitResult, dict[str, Any]]:
    """The fused model (``seed_dir/model.keras``) and, unless ``baselines`` is None, every baseline
    (``seed_dir/baselines/``) for one seed: (the fused fit, its metrics/train.json entry)."""
    from babelfuse.training.fit import fit_model

    result = fit_model(params, train, val, seed)
    seed_dir.mkdir(parents=True, exist_ok=True)
    result.model.save(seed_dir / "model.keras")
    log.info(
        "train:%s seed %d val_macro_f1=%.4f after %d epochs (best %d) in %.1f s",
        params["fusion"],
        seed,
        result.val_macro_f1,
        result.epochs,
        result.best_epoch,
        result.seconds,
    )
    scores: dict[str, dict[str, float]] = {}
    if baselines is None:
        (seed_dir / "baselines").mkdir(exist_ok=True)
    else:
        scores = run_baselines(baselines, seed, train, val, seed_dir / "baselines", inputs)
    return result, train_metrics(result, result.model.count_params(), scores)
