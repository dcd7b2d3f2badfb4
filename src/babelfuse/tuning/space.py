"""The search space declared in ``params.yaml: tune.space`` and how a trial's picks become train params.

A list is a categorical choice; ``{low, high, log?}`` is a float range, or an int range when both
bounds are ints. Every key must be a key of the ``train`` section: a trial is the ``train`` section
with the space's picks laid over it, so whatever the tune stage finds, the train stage can use as is.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from babelfuse.errors import BabelfuseError

Space = dict[str, BaseDistribution]
# train keys that do not change what one trial's fit does (tune.epochs replaces train.epochs).
NOT_IN_FIT = frozenset({"epochs", "use_best_params", "baselines"})
# train keys only a fusion layer reads: a single-modality baseline's study leaves them out (its model
# ignores them, build_single_modality_model also turns modality dropout off).
FUSION_ONLY = frozenset({"fusion", "modality_dropout", "lowrank_rank", "tensor_dim", "attention_heads"})
# tune keys that define the search (the rest, n_trials / timeout_s / n_workers / storage, only its budget).
SEARCH_KEYS = ("space", "epochs", "seed", "pruner", "pruner_startup_trials", "pruner_warmup_epochs")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _range(name: str, spec: dict[str, Any]) -> BaseDistribution:
    unknown = set(spec) - {"low", "high", "log"}
    if unknown or "low" not in spec or "high" not in spec:
        raise BabelfuseError(
            f"tune.space.{name}: a range needs 'low' and 'high' (optional 'log'), got keys {sorted(spec)}"
        )
    low, high, log = spec["low"], spec["high"], bool(spec.get("log", False))
    for bound in (low, high):
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            raise BabelfuseError(f"tune.space.{name}: bounds must be numbers, got low={low!r} high={high!r}")
    if not low < high:
        raise BabelfuseError(f"tune.space.{name}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise BabelfuseError(f"tune.space.{name}: a log range needs low > 0, got {low}")
    if _is_int(low) and _is_int(high):
        return IntDistribution(low, high, log=log)
    return FloatDistribution(float(low), float(high), log=log)


def parse_space(space: dict[str, Any], train: dict[str, Any]) -> Space:
    """``tune.space`` -> Optuna distributions; unknown keys and malformed ranges are user errors."""
    if not isinstance(space, dict) or not space:
        raise BabelfuseError("tune.space: must be a non-empty mapping of train keys to choices or ranges")
    dists: Space = {}
    for name, spec in space.items():
        if name not in train:
            raise BabelfuseError(
                f"tune.space.{name}: not a key of the train section (tunable: {', '.join(sorted(train))})"
            )
        if isinstance(spec, list):
            if not spec:
                raise BabelfuseError(f"tune.space.{name}: the list of choices is empty")
            if any(isinstance(c, dict | list) for c in spec):
                raise BabelfuseError(f"tune.space.{name}: choices must be plain values, got {spec!r}")
            dists[name] = CategoricalDistribution(spec)
        elif isinstance(spec, dict):
            dists[name] = _range(name, spec)
        else:
            raise BabelfuseError(
                f"tune.space.{name}: expected a list of choices or {{low, high, log}}, got {spec!r}"
            )
    return dists


def model_space(space: dict[str, Any], model: str) -> dict[str, Any]:
    """``tune.space`` for the fused model (``"fused"``), or without the fusion-only keys for a
    single-modality baseline (the same search otherwise: an equal budget per model)."""
    if model == "fused":
        return dict(space)
    return {k: v for k, v in space.items() if k not in FUSION_ONLY}


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Ask the trial (i.e. the sampler) for one value per dimension, in the declared order."""
    picks: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            picks[name] = trial.suggest_categorical(name, list(dist.choices))
        elif isinstance(dist, IntDistribution):
            picks[name] = trial.suggest_int(name, dist.low, dist.high, log=dist.log)
        elif isinstance(dist, FloatDistribution):
            picks[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        else:  # pragma: no cover - parse_space only builds the three kinds above
            raise TypeError(f"unsupported distribution for {name}: {dist!r}")
    return picks


def overlay(train: dict[str, Any], picks: dict[str, Any]) -> dict[str, Any]:
    """The train section with a trial's picks laid over it (what fit_model receives)."""
    return {**train, **picks}


def study_fingerprint(train: dict[str, Any], tune: dict[str, Any], data_digest: str) -> str:
    """12 hex over what makes earlier trials part of the same search: data, base train params, space,
    epochs, seed and pruner settings.

    Not n_trials / timeout_s / n_workers / storage, so raising n_trials or adding workers continues
    the same study, while new data, a new space or another seed starts a fresh one.
    """
    base = {k: v for k, v in train.items() if k not in NOT_IN_FIT}
    search = {k: tune.get(k) for k in SEARCH_KEYS}
    blob = json.dumps(
        {"train": base, "search": search, "data": data_digest}, sort_keys=True, default=str
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
