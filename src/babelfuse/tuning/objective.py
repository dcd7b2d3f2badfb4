"""The objective: train the trial's config with ``fit_model`` and score it on the source-language val split.

Only the ``train`` and ``val`` arrays handed in are used: the score is val macro-F1, never test or
target-language data, so the study cannot select hyper-parameters by peeking at the zero-shot
languages. The pruner sees ``val_macro_f1`` after every epoch through ``KerasPruningCallback``
(``fit_model`` puts it into the epoch logs before our callbacks run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import optuna
from optuna_integration import KerasPruningCallback

from babelfuse.training.baselines import single_modality_builder
from babelfuse.tuning.sampling import SLOT_ATTR
from babelfuse.tuning.space import Space, overlay, suggest
from babelfuse.tuning.trials_mlflow import TrialRun, trial_run

log = logging.getLogger("babelfuse.tuning")

MONITOR = "val_macro_f1"


class EpochRecorder(keras.callbacks.Callback):
    """Hands each epoch's logs to the trial's MLflow run (it must run before the pruning callback,
    so the epoch a trial is pruned at is still recorded)."""

    def __init__(self, run: TrialRun) -> None:
        super().__init__()
        self.run = run
        self.missing_warned = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if MONITOR not in logs and not self.missing_warned:
            log.warning("fit_model did not put %s into the epoch logs: the pruner sees nothing", MONITOR)
            self.missing_warned = True
        self.run.add_epoch(epoch, logs)


@dataclass(frozen=True)
class TrialContext:
    """What every trial of one worker shares."""

    base: dict[str, Any]  # the train section
    space: Space
    epochs: int  # tune.epochs: the per-trial epoch budget
    seed: int  # tune.seed; a trial's fit uses seed + its slot (see tuning/sampling.py)
    parent_run_id: str
    experiment_id: str
    study_name: str
    worker: int = 0  # which worker process ran the trial (a user attr, for the dashboard and tests)
    model: str = "fused"  # or the modality of a single-modality baseline study


def make_objective(
    ctx: TrialContext,
    train: dict[str, np.ndarray],
    val: dict[str, np.ndarray],
    fit: Callable[..., Any] | None = None,
) -> Callable[[optuna.Trial], float]:
    """``trial -> val macro-F1`` of the train section with the trial's picks laid over it."""
    if fit is None:
        from babelfuse.training.fit import fit_model as fit
    build = None if ctx.model == "fused" else single_modality_builder(ctx.model)  # None: the fused model

    def objective(trial: optuna.Trial) -> float:
        picks = suggest(trial, ctx.space)
        seed = ctx.seed + int(trial.user_attrs[SLOT_ATTR])  # the slot, not the number: same after a resume
        trial.set_user_attr("worker", ctx.worker)
        params = overlay(ctx.base, picks)
        name = f"trial:{trial.number}" if ctx.model == "fused" else f"trial:{ctx.model}:{trial.number}"
        with trial_run(trial, picks, ctx.parent_run_id, ctx.experiment_id, ctx.study_name, name) as run:
            callbacks = [EpochRecorder(run), KerasPruningCallback(trial, MONITOR)]
            try:
                result = fit(
                    params, train, val, seed=seed, callbacks=callbacks, epochs=ctx.epochs, build=build
                )
            except optuna.TrialPruned:
                raise
            except Exception as err:
                trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:500])
                raise
            finally:
                keras.backend.clear_session(free_memory=False)  # drop graph state; a full gc costs ~1 s
            value = float(result.val_macro_f1)
            trial.set_user_attr("epochs", int(result.epochs))
            trial.set_user_attr("seconds", round(float(result.seconds), 3))
            import mlflow  # heavy (~1 s): imported only when something is logged or loaded

            mlflow.log_metrics({"best_val_macro_f1": value, "epochs": float(result.epochs)})
            if not np.isfinite(value):
                raise ValueError(f"trial {trial.number}: val macro-F1 is {value}")
            return value

    return objective
