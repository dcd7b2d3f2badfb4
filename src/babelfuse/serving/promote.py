"""The promotion gate against the MLflow registry: score ``challenger`` and ``champion`` on the frozen
test set through their own pyfuncs, decide (:func:`gate.decide`), move the alias, record everything.

Every decision is written three ways: tags on the challenger version (``gate.decision``,
``gate.challenger_macro_f1``, ``gate.champion_macro_f1``, ``gate.worst_drop``, ``gate.reason``, ...),
metrics and tags of the MLflow run that made it, and one JSON line in ``reports/promotions.jsonl``.
A version's scores on a frozen set are kept in its ``gate.scores`` tag (with the set's hash), so a
champion is not re-scored on the same rows every time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from pathlib import Path
from typing import Any

from tqdm import tqdm

from babelfuse.errors import BabelfuseError
from babelfuse.serving import frozen as frozen_mod
from babelfuse.serving import gate

log = logging.getLogger("babelfuse.serving.promote")

CHALLENGER, CHAMPION = "challenger", "champion"
SCORES_TAG = "gate.scores"
BATCH = 256


def version_by_alias(client, name: str, alias: str):
    """The model version an alias points to, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def check_registered(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        raise BabelfuseError(
            f"no registered model '{name}' in the MLflow registry: run the register stage first (dvc repro register)"
        ) from None


def score_version(client, name: str, version: str, test: frozen_mod.FrozenTest) -> dict[str, Any]:
    """Macro-F1 overall and per language of one version's pyfunc on the frozen rows (cached by hash)."""
    import mlflow

    tags = client.get_model_version(name, version).tags
    cached = json.loads(tags[SCORES_TAG]) if SCORES_TAG in tags else None
    if cached and cached.get("hash") == test.hash:
        log.info(
            "%s v%s: scores on frozen test set %s taken from its %s tag", name, version, test.hash, SCORES_TAG
        )
        return cached["scores"]
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    request = frozen_mod.as_request(test.frame)
    labels: list[str | None] = []
    for start in tqdm(
        range(0, len(request), BATCH), desc=f"gate: scoring v{version}", unit="batch", leave=False
    ):
        out = model.predict(request.iloc[start : start + BATCH].reset_index(drop=True))
        labels += [
            None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in out["label"]
        ]
    result = gate.scores(test.frame["label"].tolist(), labels, test.frame["lang"].tolist())
    client.set_model_version_tag(
        name, version, SCORES_TAG, json.dumps({"hash": test.hash, "scores": _clean(result)})
    )
    log.info(
        "%s v%s on frozen test set %s: macro-F1 %.4f %s",
        name,
        version,
        test.hash,
        result["macro_f1"],
        result["per_language"],
    )
    return result


def run_gate(
    model_name: str,
    margin: float,
    tolerance: float,
    manifest: Path | str | None,
    promotions: Path | str,
    client=None,
) -> dict[str, Any]:
    """Compare challenger with champion, promote if the gate passes; returns the recorded decision.

    Needs an active MLflow run (the register stage's, or ``babelfuse promote``'s): the test set is
    frozen into it the first time, and the decision is logged on it.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    check_registered(client, model_name)
    challenger = version_by_alias(client, model_name, CHALLENGER)
    if challenger is None:
        raise BabelfuseError(
            f"registered model '{model_name}' has no '{CHALLENGER}' alias: run the register stage"
        )
    champion = version_by_alias(client, model_name, CHAMPION)
    record: dict[str, Any] = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model_name": model_name,
        "challenger_version": int(challenger.version),
        "champion_version": int(champion.version) if champion else None,
        "margin": margin,
        "tolerance": tolerance,
    }
    run = mlflow.active_run()
    record["run_id"] = run.info.run_id if run else None
    if champion is not None and int(champion.version) == int(challenger.version):
        record.update(decision="none", promote=False, reason=f"v{challenger.version} is already the champion")
        log.info("%s", record["reason"])
        _append(promotions, record)
        return record
    test = frozen_mod.ensure_frozen(client, model_name, manifest)
    ch_scores = score_version(client, model_name, challenger.version, test)
    cp_scores = score_version(client, model_name, champion.version, test) if champion else None
    decision = gate.decide(ch_scores, cp_scores, margin, tolerance)
    if decision.promote:
        client.set_registered_model_alias(model_name, CHAMPION, challenger.version)
    record.update(decision.as_dict())
    record["new_champion_version"] = (
        int(challenger.version) if decision.promote else record["champion_version"]
    )
    record["scores"] = {"challenger": ch_scores, "champion": cp_scores}
    record["test_set"] = test.describe()
    record = _clean(record)
    _tag_version(client, model_name, challenger.version, record)
    if run is not None:
        _log_run(record)
    _append(promotions, record)
    log.info(
        "gate (register.margin=%g, register.tolerance=%g): %s v%s — %s",
        margin,
        tolerance,
        decision.decision.upper(),
        challenger.version,
        decision.reason,
    )
    return record


def _fmt(value: Any) -> str:
    return "none" if value is None else (f"{value:.6f}" if isinstance(value, float) else str(value))


def _tag_version(client, name: str, version: str, record: dict[str, Any]) -> None:
    tags = {
        "gate.decision": record["decision"],
        "gate.challenger_macro_f1": _fmt(record["challenger_macro_f1"]),
        "gate.champion_macro_f1": _fmt(record["champion_macro_f1"]),
        "gate.champion_version": _fmt(record["champion_version"]),
        "gate.worst_drop": _fmt(record["worst_drop"]),
        "gate.worst_language": _fmt(record["worst_language"]),
        "gate.reason": record["reason"][:4000],
        "gate.margin": _fmt(record["margin"]),
        "gate.tolerance": _fmt(record["tolerance"]),
        "gate.test_set_hash": record["test_set"]["hash"],
        "gate.time": record["time"],
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def _log_run(record: dict[str, Any]) -> None:
    import mlflow

    metrics = {
        "gate_challenger_macro_f1": record["challenger_macro_f1"],
        "gate_champion_macro_f1": record["champion_macro_f1"],
        "gate_worst_drop": record["worst_drop"],
        "gate_improvement": record["improvement"],
    }
    mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
    mlflow.set_tags(
        {
            "gate.decision": record["decision"],
            "gate.challenger_version": record["challenger_version"],
            "gate.test_set_hash": record["test_set"]["hash"],
        }
    )


def _append(path: Path | str, record: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(_clean(record), sort_keys=True, allow_nan=False) + "\n")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
