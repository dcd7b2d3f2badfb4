"""Trials that do not depend on the study's history of crashes: slot-seeded sampling and pruning.

Optuna's seeded samplers draw from one random stream per *process*: a study resumed after
``kill -9`` restarts that stream and repeats earlier trials' params. Here each trial gets a
**slot** — its position among the study's trials that did not fail — stored as the trial's user
attribute ``slot``. The trial's sampler randomness, its fit seed and its Hyperband bracket are all
functions of ``(tune.seed, slot)``, never of the trial number or of what ran before in the process.

A trial killed mid-way (left ``RUNNING`` by a dead process) is marked ``FAIL`` by
:func:`fail_orphaned_trials` before new trials start; failed trials take no slot, so the trial that
redoes it gets the killed trial's slot, sees the same completed history and draws the same params.

With ``tune.n_workers: 1`` a resumed study therefore holds the same COMPLETE/PRUNED trials (params,
values, pruning decisions) as an uninterrupted one. With several workers each trial is still seeded
by its slot, but which history a trial sees (which other trials had finished when it started)
depends on timing, so TPE's picks and the pruner's decisions are not reproducible run to run.
"""

from __future__ import annotations

import binascii
import logging
import warnings
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from babelfuse import tracking

log = logging.getLogger("babelfuse.tuning")

SLOT_ATTR = "slot"
PROCESS_ATTR = "process"  # tracking.process_tag() of the process that ran the trial


def trial_seed(seed: int, slot: int) -> int:
    """A 32-bit seed that depends only on ``(seed, slot)`` (SeedSequence: nearby slots are unrelated)."""
    return int(np.random.SeedSequence([int(seed), int(slot)]).generate_state(1)[0])


def slot_of(trials: list[FrozenTrial], number: int) -> int:
    """How many trials numbered below ``number`` did not fail (completed, pruned or still running)."""
    return sum(1 for t in trials if t.number < number and t.state != TrialState.FAIL)


def stored_slot(trial: FrozenTrial) -> int:
    """The slot recorded on the trial (trials from before slots existed fall back to their number)."""
    return int(trial.user_attrs.get(SLOT_ATTR, trial.number))


class SlotSeededSampler(optuna.samplers.BaseSampler):
    """TPE whose random draws for a trial are seeded from ``(seed, slot)``: one fresh TPESampler per
    trial, so a restarted process draws exactly what an uninterrupted one would for that slot."""

    def __init__(self, seed: int, n_startup_trials: int, constant_liar: bool = False) -> None:
        self.seed = int(seed)
        self.n_startup_trials = int(n_startup_trials)
        self.constant_liar = bool(constant_liar)
        self._per_trial: dict[int, optuna.samplers.TPESampler] = {}

    def _tpe(self, slot: int) -> optuna.samplers.TPESampler:
        with warnings.catch_warnings():  # constant_liar is "experimental" in Optuna 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=trial_seed(self.seed, slot),
                n_startup_trials=self.n_startup_trials,
                constant_liar=self.constant_liar,
            )

    def _for(self, trial: FrozenTrial) -> optuna.samplers.TPESampler:
        if trial.number not in self._per_trial:  # e.g. a trial started by another sampler object
            self._per_trial[trial.number] = self._tpe(stored_slot(trial))
        return self._per_trial[trial.number]

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        slot = slot_of(study.get_trials(deepcopy=False), trial.number)
        study._storage.set_trial_user_attr(trial._trial_id, SLOT_ATTR, slot)
        study._storage.set_trial_user_attr(trial._trial_id, PROCESS_ATTR, tracking.process_tag())
        # ``trial`` is the Trial's cached copy: keep it in step with storage, as Trial.set_user_attr does.
        trial.user_attrs[SLOT_ATTR] = slot
        trial.user_attrs[PROCESS_ATTR] = tracking.process_tag()
        self._per_trial[trial.number] = self._tpe(slot)
        self._per_trial[trial.number].before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._for(trial).after_trial(study, trial, state, values)
        self._per_trial.pop(trial.number, None)


class SlotHyperbandPruner(optuna.pruners.HyperbandPruner):
    """Hyperband whose bracket is picked from the trial's slot (Optuna hashes the trial number) and
    whose rungs ignore failed trials (a killed trial's partial rung values would otherwise count
    twice once it is redone)."""

    def _get_bracket_id(self, study: optuna.Study, trial: FrozenTrial) -> int:
        if trial.state == TrialState.FAIL:
            return -1  # in no bracket: never a competitor
        if len(self._pruners) == 0:
            return 0
        n = (
            binascii.crc32(f"{study.study_name}_{stored_slot(trial)}".encode())
            % self._total_trial_allocation_budget
        )
        for bracket_id, budget in enumerate(self._trial_allocation_budgets):
            n -= budget
            if n < 0:
                return bracket_id
        raise AssertionError("unreachable: the budgets sum to the modulus")


WORKER_PREFIX = "worker_process:"  # study user attrs, one per process that ever ran trials of the study


def register_worker(study: optuna.Study) -> None:
    """Record this process on the study before it runs trials (one key per process: no lost update
    when several workers register at once)."""
    study.set_user_attr(WORKER_PREFIX + tracking.process_tag(), True)


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Mark FAIL every RUNNING trial whose process no longer exists.

    A trial's process is recorded when it starts (user attr ``process``). A trial killed before
    that was written has no such attr: it is failed too when every process registered on the study
    (:func:`register_worker`) is gone. Processes on other hosts cannot be checked from here: their
    trials are left to Optuna's heartbeat, which fails them once silent for its grace period.
    Returns the numbers of the trials failed.
    """
    workers = [k.removeprefix(WORKER_PREFIX) for k in study.user_attrs if k.startswith(WORKER_PREFIX)]
    all_gone = all(tracking.process_gone(tag) for tag in workers)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag = trial.user_attrs.get(PROCESS_ATTR)
        if all_gone if tag is None else tracking.process_gone(str(tag)):
            study._storage.set_trial_user_attr(trial._trial_id, "error", "its process was killed")
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            failed.append(trial.number)
    if failed:
        log.info(
            "study %s: trial(s) %s were left RUNNING by a killed process: marked FAIL, redone",
            study.study_name,
            failed,
        )
    return failed
