"""The promotion gate against the MLflow registry: score ``challenger``, ``champion`` and the first
champion on the frozen ``gate`` split (never ``test``) through their own pyfuncs, decide
(:func:`gate.decide`), move the alias, record everything.

Every decision is written three ways: tags on the challenger version (``gate.decision``,
``gate.challenger_macro_f1``, ``gate.champion_macro_f1``, ``gate.worst_drop``, ``gate.reason``, ...),
metrics and tags of the MLflow run that made it, and one JSON line in ``reports/promotions.jsonl``.
A version's predictions on a frozen set are kept in its ``gate.predictions`` tag (with the set's
hash), so a champion is not re-scored on the same rows every time. ``promotions.jsonl`` records the
split name, its hash, the paired difference with its interval, and the decision.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from tqdm import tqdm

from babelfuse import jsonio
from babelfuse.errors import BabelfuseError
from babelfuse.serving import frozen as frozen_mod
from babelfuse.serving import gate

log = logging.getLogger("babelfuse.serving.promote")

CHALLENGER, CHAMPION = "challenger", "champion"
PREDICTIONS_TAG = "gate.predictions"
FIRST_CHAMPION_TAG = "gate.first_champion_version"
TAG_LIMIT = 7500  # MLflow tag values are capped (8,000 chars in the SQL stores); larger sets are re-scored
BATCH = 256


def version_by_alias(client, name: str, alias: str):
    """The model version an alias points to, or None."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def check_registered(client, name: str) -> None:
    try:
        client.get_registered_model(name)
    except MlflowException:
        raise BabelfuseError(
            f"no registered model '{name}' in the MLflow registry: run the register stage first (dvc repro register)"
        ) from None


def predict_version(client, name: str, version: str, frozen: frozen_mod.FrozenSet) -> np.ndarray:
    """One version's predicted label codes on the frozen gate rows, through its own pyfunc.

    Cached in the version's ``gate.predictions`` tag with the set's hash (one character per row),
    so a champion is not re-scored on the same rows every time.
    """
    tags = client.get_model_version(name, version).tags
    cached = json.loads(tags[PREDICTIONS_TAG]) if PREDICTIONS_TAG in tags else None
    if cached and cached.get("hash") == frozen.hash and len(cached.get("pred", "")) == len(frozen.frame):
        log.info(
            "%s v%s: predictions on gate set %s from its %s tag", name, version, frozen.hash, PREDICTIONS_TAG
        )
        return _decode(cached["pred"])
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    request = frozen_mod.as_request(frozen.frame)
    labels: list[str | None] = []
    for start in tqdm(
        range(0, len(request), BATCH), desc=f"gate: scoring v{version}", unit="batch", leave=False
    ):
        out = model.predict(request.iloc[start : start + BATCH].reset_index(drop=True))
        labels += [
            None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in out["label"]
        ]
    pred = gate.codes(labels)
    encoded = _encode(pred)
    if len(encoded) < TAG_LIMIT:
        client.set_model_version_tag(
            name, version, PREDICTIONS_TAG, json.dumps({"hash": frozen.hash, "pred": encoded})
        )
    return pred


def _encode(pred: np.ndarray) -> str:
    return "".join("-" if p == gate.UNANSWERED else str(int(p)) for p in pred)


def _decode(text: str) -> np.ndarray:
    return np.array([gate.UNANSWERED if c == "-" else int(c) for c in text], dtype=np.int64)


def first_champion(client, name: str, champion) -> str | None:
    """The version that was champion first (registered-model tag, set at the first promotion)."""
    tags = client.get_registered_model(name).tags
    if FIRST_CHAMPION_TAG in tags:
        return tags[FIRST_CHAMPION_TAG]
    if champion is not None:  # a registry from before this tag existed: its champion is the first known
        client.set_registered_model_tag(name, FIRST_CHAMPION_TAG, str(champion.version))
        return str(champion.version)
    return None


def run_gate(
    model_name: str,
    rule: gate.Rule,
    manifest: Path | str | None,
    promotions: Path | str,
    client=None,
) -> dict[str, Any]:
    """Compare challenger with champion on the frozen gate split, promote if the gate passes.

    Needs an active MLflow run (the register stage's, or ``babelfuse promote``'s): the gate set is
    frozen into it the first time, and the decision is logged on it. Returns the recorded decision.
    """
    client = client or MlflowClient()
    check_registered(client, model_name)
    challenger = version_by_alias(client, model_name, CHALLENGER)
    if challenger is None:
        raise BabelfuseError(
            f"registered model '{model_name}' has no '{CHALLENGER}' alias: run the register stage"
        )
    champion = version_by_alias(client, model_name, CHAMPION)
    run = mlflow.active_run()
    record: dict[str, Any] = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model_name": model_name,
        "challenger_version": int(challenger.version),
        "champion_version": int(champion.version) if champion else None,
        **asdict(rule),
        "run_id": run.info.run_id if run else None,
    }
    if champion is not None and int(champion.version) == int(challenger.version):
        return _no_decision(record, f"v{challenger.version} is already the champion", promotions)
    try:
        frozen = frozen_mod.ensure_frozen(client, model_name, manifest)
    except frozen_mod.NoGateRows as err:
        return _no_decision(record, f"not promoted: {err}", promotions)
    gate_set = gate.GateSet.from_labels(frozen.frame["label"], frozen.frame["lang"], frozen.frame["group"])
    first = first_champion(client, model_name, champion)
    preds = {"challenger": predict_version(client, model_name, challenger.version, frozen)}
    if champion is not None:
        preds["champion"] = predict_version(client, model_name, champion.version, frozen)
    if first is not None and champion is not None and first != str(champion.version):
        preds["first_champion"] = predict_version(client, model_name, first, frozen)
    decision = gate.decide(
        gate_set, preds["challenger"], preds.get("champion"), preds.get("first_champion"), rule
    )
    if decision.promote:
        client.set_registered_model_alias(model_name, CHAMPION, challenger.version)
        if first is None:
            client.set_registered_model_tag(model_name, FIRST_CHAMPION_TAG, str(challenger.version))
    record.update(decision.as_dict())
    record["first_champion_version"] = int(first) if first is not None else int(challenger.version)
    record["new_champion_version"] = (
        int(challenger.version) if decision.promote else record["champion_version"]
    )
    record["scores"] = {who: gate.scores(gate_set, p) for who, p in preds.items()}
    record["gate_set"] = frozen.describe()
    record = jsonio.json_safe(record)
    _tag_version(client, model_name, challenger.version, record)
    if run is not None:
        _log_run(record)
    _append(promotions, record)
    log.info(
        "gate on split %s (register.margin=%g, alpha=%g, tolerance=%g): %s v%s — %s",
        frozen_mod.SPLIT, rule.margin, rule.alpha, rule.tolerance,
        decision.decision.upper(), challenger.version, decision.reason,
    )  # fmt: skip
    return record


def _no_decision(record: dict[str, Any], reason: str, promotions: Path | str) -> dict[str, Any]:
    record.update(decision="none", promote=False, reason=reason)
    log.info("%s", reason)
    _append(promotions, record)
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
        "gate.alpha": _fmt(record["alpha"]),
        "gate.tolerance": _fmt(record["tolerance"]),
        "gate.improvement": _fmt(record["improvement"]),
        "gate.improvement_lower": _fmt(record["improvement_lower"]),
        "gate.worst_drop_vs_first": _fmt(record["worst_drop_vs_first"]),
        "gate.first_champion_version": _fmt(record["first_champion_version"]),
        "gate.split": record["gate_set"]["split"],
        "gate.set_hash": record["gate_set"]["hash"],
        "gate.time": record["time"],
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def _log_run(record: dict[str, Any]) -> None:
    metrics = {
        "gate_challenger_macro_f1": record["challenger_macro_f1"],
        "gate_champion_macro_f1": record["champion_macro_f1"],
        "gate_worst_drop": record["worst_drop"],
        "gate_improvement": record["improvement"],
        "gate_improvement_lower": record["improvement_lower"],
        "gate_worst_drop_vs_first": record["worst_drop_vs_first"],
    }
    mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
    mlflow.set_tags(
        {
            "gate.decision": record["decision"],
            "gate.challenger_version": record["challenger_version"],
            "gate.split": record["gate_set"]["split"],
            "gate.set_hash": record["gate_set"]["hash"],
        }
    )


def _append(path: Path | str, record: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(jsonio.dumps(record, indent=None) + "\n")
