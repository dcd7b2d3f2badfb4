"""Optuna plumbing for the tune stage: storage, sampler, pruner and trial counts.

Workers never talk to each other, only to the storage: each loads the study by name and calls
``optimize`` (Optuna's own distributed mode). SQLite is fine for a few local processes when every
connection waits on the file lock instead of failing at once; PostgreSQL (any SQLAlchemy URL) is
for several machines.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from babelfuse.errors import BabelfuseError
from babelfuse.tuning.sampling import SlotHyperbandPruner, SlotSeededSampler

log = logging.getLogger("babelfuse.tuning")

PRUNERS = ("median", "hyperband", "none")
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)  # what n_trials counts, also across resumes
HEARTBEAT_S = 20  # a RUNNING trial without a heartbeat for GRACE_S is failed by the next worker
GRACE_S = 60


def storage_kind(url: str) -> str:
    """``sqlite``, ``postgresql``, ...: the dialect, never the credentials."""
    return url.split(":", 1)[0].split("+", 1)[0]


def masked_url(url: str) -> str:
    """The storage URL with any password replaced by ``***`` (for logs, MLflow and metrics)."""
    try:
        from sqlalchemy.engine import make_url  # only SQL storages need it

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy understands: show only the dialect
        return storage_kind(url) + "://***"


def _sqlite_file(url: str) -> str | None:
    from sqlalchemy.engine import make_url  # only SQL storages need it

    database = make_url(url).database
    return database if database and database != ":memory:" else None


def _prepare_sqlite(url: str) -> None:
    """Switch the study file to WAL journaling (persistent in the file): readers no longer wait for
    a writer, and a commit appends to the log instead of rewriting pages with two fsyncs. Several
    worker processes on one file then spend far less time waiting on each other's locks."""
    path = _sqlite_file(url)
    if path is None:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, timeout=60)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # WAL-safe; fsync at checkpoints only


def make_storage(url: str) -> optuna.storages.RDBStorage:
    """RDB storage for any SQLAlchemy URL; SQLite in WAL mode, connections wait up to 60 s for a lock."""
    sqlite = storage_kind(url) == "sqlite"
    if sqlite:
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    try:
        if sqlite:
            _prepare_sqlite(url)
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5, and what we want
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S
            )
    except Exception as err:  # bad URL, unreachable server, missing driver
        raise BabelfuseError(f"tune.storage={masked_url(url)}: cannot open the study storage: {err}") from err
    if sqlite:
        from sqlalchemy import event  # only SQL storages need it

        event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # pooled connections from set-up reconnect with the pragma
    return storage


def make_sampler(seed: int, n_trials: int, parallel: bool) -> SlotSeededSampler:
    """Slot-seeded TPE (see :mod:`babelfuse.tuning.sampling`); random start-up for a third of the
    budget (2..10 trials) before TPE takes over.

    ``constant_liar`` makes parallel workers treat each other's running trials as bad, so they do
    not all sample the same promising point.
    """
    startup = max(2, min(10, n_trials // 3))
    return SlotSeededSampler(seed=seed, n_startup_trials=startup, constant_liar=parallel)


def make_pruner(tune: dict[str, Any]) -> optuna.pruners.BasePruner:
    """``tune.pruner``: median | hyperband | none, fed one value per epoch."""
    kind = str(tune["pruner"])
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=int(tune["pruner_startup_trials"]),
            n_warmup_steps=int(tune["pruner_warmup_epochs"]),
        )
    if kind == "hyperband":
        warmup = int(tune["pruner_warmup_epochs"])
        return SlotHyperbandPruner(min_resource=max(1, warmup), max_resource=int(tune["epochs"]))
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise BabelfuseError(f"tune.pruner={kind!r}: expected one of {', '.join(PRUNERS)}")


def create_or_load(url: str, name: str, sampler: optuna.samplers.BaseSampler, pruner) -> optuna.Study:
    """The study ``name`` in ``url``, created on first use and resumed afterwards (load_if_exists)."""
    return optuna.create_study(
        study_name=name,
        storage=make_storage(url),
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials per final state in the whole study (earlier, resumed invocations included)."""
    trials = study.get_trials(deepcopy=False)
    by_state = {s: sum(1 for t in trials if t.state == s) for s in TrialState}
    return {
        "trials_complete": by_state[TrialState.COMPLETE],
        "trials_pruned": by_state[TrialState.PRUNED],
        "trials_failed": by_state[TrialState.FAIL],
        "trials_total": len(trials),
    }


def shares(remaining: int, n_workers: int) -> list[int]:
    """Split the remaining trial budget over the workers, so together they run exactly ``remaining``."""
    if remaining <= 0:
        return []
    n = max(1, min(n_workers, remaining))
    return [remaining // n + (1 if i < remaining % n else 0) for i in range(n)]
