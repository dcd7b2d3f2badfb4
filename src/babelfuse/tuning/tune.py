"""The tune stage's library: an Optuna study over ``tune.space`` on the source-language train/val splits.

The entry point is :mod:`babelfuse.stages.tune` (``python -m babelfuse.stages.tune``).
Reads exactly the two files it is given (no test split, no target languages) and the ``tune`` and
``train`` sections of params.yaml. The study lives in ``tune.storage`` under the name
``<tune.study_name>-<fingerprint of data, base params, space, epochs, seed, pruner>``: rerunning
after an interruption (or with a larger ``tune.n_trials`` or more workers) resumes it; new data, a new
space or another seed starts afresh.
``tune.n_workers`` processes share the storage; MLflow gets one ``tune`` run with every trial nested.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

from babelfuse import tracking
from babelfuse.errors import BabelfuseError
from babelfuse.paths import MODALITIES
from babelfuse.tuning import study as st
from babelfuse.tuning.sampling import fail_orphaned_trials
from babelfuse.tuning.space import parse_space
from babelfuse.tuning.worker import (
    FUSED,
    WorkerJob,
    run_worker,
    thread_env,
    threads_per_worker,
    worker_entry,
)

log = logging.getLogger("babelfuse.tuning")


def check_tune(tune: dict[str, Any], train: dict[str, Any]) -> None:
    """The search space as Optuna sees it, built before any trial runs (types and ranges of the tune
    section are checked by :mod:`babelfuse.config` when params.yaml is loaded)."""
    parse_space(tune["space"], train)


def source_languages(train_path: Path, val_path: Path) -> dict[str, Any]:
    """Languages and rows of the two splits; val may only hold languages train has (no target ones)."""
    out: dict[str, Any] = {}
    for split, path in (("train", train_path), ("val", val_path)):
        if not Path(path).is_file():
            raise BabelfuseError(f"--{split} {path}: file not found (run the fuse stage first)")
        with np.load(path, allow_pickle=False) as arrays:
            if "lang" not in arrays.files or "label" not in arrays.files:
                raise BabelfuseError(f"--{split} {path}: not a fused split (needs 'lang' and 'label' arrays)")
            langs = arrays["lang"]
            out[f"{split}_rows"] = int(len(langs))
            out[f"{split}_langs"] = sorted({str(x) for x in langs})
    extra = sorted(set(out["val_langs"]) - set(out["train_langs"]))
    if extra:
        raise BabelfuseError(
            f"--val {val_path}: holds languages {extra} that train does not; the objective must be "
            "source-language val only (target languages are for evaluation)"
        )
    return out


def _spawn(jobs: list[WorkerJob], threads: int) -> None:
    """Start one process per job (spawn: no forked TF state), wait, and fail loudly if one failed."""
    ctx = mp.get_context("spawn")
    with thread_env(threads):
        procs = [
            ctx.Process(target=worker_entry, args=(job,), name=f"tune-worker-{job.index}") for job in jobs
        ]
        for proc in procs:
            proc.start()
    try:
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join()
    failed = [
        f"worker {j.index} exit code {p.exitcode}" for j, p in zip(jobs, procs, strict=True) if p.exitcode
    ]
    if failed:
        raise RuntimeError(f"tune: worker process(es) failed: {', '.join(failed)}")


def _jobs(
    parts: list[int], timeout_s: float | None, base: dict[str, Any], tune: dict[str, Any], **shared: Any
) -> list[WorkerJob]:
    """One WorkerJob per share of the remaining trials (``shared``: the fields every job has alike)."""
    threads = threads_per_worker(len(parts) or 1)
    return [
        WorkerJob(
            index=i,
            n_trials=share,
            target_trials=int(tune["n_trials"]),
            timeout_s=timeout_s,
            threads=threads,
            storage_url=str(tune["storage"]),
            base=base,
            tune=tune,
            tracking_uri=tracking.tracking_uri(),
            parallel=len(parts) > 1,
            show_progress=len(parts) == 1,
            **shared,
        )
        for i, share in enumerate(parts)
    ]


def run_study(
    train_path: Path,
    val_path: Path,
    tune: dict[str, Any],
    train: dict[str, Any],
    study_name: str,
    parent_run_id: str,
    experiment_id: str,
    model: str = FUSED,
) -> tuple[Any, dict[str, Any]]:
    """Create/resume the study of ``model`` (the fused model or one modality's baseline), fail the
    trials a killed process left RUNNING, run the missing trials on ``tune.n_workers`` workers:
    (study, counts). ``tune.timeout_s`` (null: none) caps each study's wall time."""
    import optuna  # heavy: only the tune stage runs studies

    start = time.monotonic()
    n_trials, n_workers, url = int(tune["n_trials"]), int(tune["n_workers"]), str(tune["storage"])
    study = st.create_or_load(
        url, study_name, st.make_sampler(int(tune["seed"]), n_trials, False), st.make_pruner(tune)
    )
    fail_orphaned_trials(study)
    before = st.counts(study)
    done = before["trials_complete"] + before["trials_pruned"]
    parts = st.shares(n_trials - done, n_workers)
    if not parts:
        log.info("study %s already has %d complete/pruned trial(s) >= tune.n_trials", study_name, done)
    elif done:
        log.info(
            "resuming study %s: %d complete/pruned trial(s) stored (tune.n_trials=%d)",
            study_name,
            done,
            n_trials,
        )
    timeout = tune["timeout_s"]
    jobs = _jobs(
        parts,
        None if timeout is None else float(timeout),
        train,
        tune,
        study_name=study_name,
        train_path=str(train_path),
        val_path=str(val_path),
        parent_run_id=parent_run_id,
        experiment_id=experiment_id,
        model=model,
    )
    threads = threads_per_worker(len(parts) or 1)
    log.info(
        "tune.n_workers=%d: %d worker(s) for %s trial(s), %d thread(s) each",
        n_workers,
        len(jobs),
        parts,
        threads,
    )
    if len(jobs) == 1:
        run_worker(jobs[0])
    elif jobs:
        _spawn(jobs, threads)
    study = optuna.load_study(study_name=study_name, storage=st.make_storage(url))
    after = st.counts(study)
    return study, {
        **after,
        "trials_this_run": after["trials_total"] - before["trials_total"],
        "seconds": round(time.monotonic() - start, 2),
        "n_workers": len(jobs) or n_workers,
        "threads_per_worker": threads,
    }


def tune_baselines(
    train_path: Path,
    val_path: Path,
    tune: dict[str, Any],
    train: dict[str, Any],
    study_name: str,
    parent_run_id: str,
    experiment_id: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each single-modality model's own study (``<study_name>-<modality>``: the fused search space
    without the fusion-only keys, the same ``tune.n_trials``) and the LogisticRegression's C (best
    val macro-F1 over ``tune.logreg_c``): (baseline_params.json payload, summary for tune.json)."""
    from babelfuse.training.baselines import tune_logreg_c
    from babelfuse.training.fit import load_split

    params: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for modality in MODALITIES:
        study, counts = run_study(
            train_path,
            val_path,
            tune,
            train,
            f"{study_name}-{modality}",
            parent_run_id,
            experiment_id,
            modality,
        )
        params[modality], best = best_of(study, counts)
        summary[modality] = {**best, **counts}
        log.info("baseline:%s best val macro-F1 %.4f with %s", modality, best["best_value"], params[modality])
    C, scores = tune_logreg_c(
        load_split(train_path), load_split(val_path), list(tune["logreg_c"]), int(tune["seed"])
    )
    params["logreg"] = {"C": C}
    summary["logreg"] = {"C": C, "best_value": scores[C]}
    log.info("baseline:logreg C=%g (val macro-F1 %.4f over C in %s)", C, scores[C], sorted(scores))
    return params, summary


def run_all(
    train_path: Path,
    val_path: Path,
    tune: dict[str, Any],
    train: dict[str, Any],
    study_name: str,
    parent_run_id: str,
    experiment_id: str,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The fused model's study, then (``tune.baselines``) each baseline's own tuning:
    (best_params.json, baseline_params.json, summary for metrics/tune.json)."""
    study, result = run_study(train_path, val_path, tune, train, study_name, parent_run_id, experiment_id)
    best_params, best = best_of(study, result)
    summary = {**best, **result, "storage": st.storage_kind(str(tune["storage"])), "study_name": study_name}
    from babelfuse.tuning.trials_mlflow import log_study_summary

    log_study_summary(study, summary, best_params)
    baseline_params: dict[str, Any] = {}
    if tune["baselines"]:
        started = time.monotonic()
        baseline_params, summary["baselines"] = tune_baselines(
            train_path, val_path, tune, train, study_name, parent_run_id, experiment_id
        )
        summary["baselines_seconds"] = round(time.monotonic() - started, 2)
    return best_params, baseline_params, summary


def best_of(study: Any, counts: dict[str, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(best params, best summary) or a clear error when no trial completed."""
    import optuna  # heavy: only the tune stage runs studies

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        errors = [t.user_attrs["error"] for t in study.get_trials(deepcopy=False) if "error" in t.user_attrs]
        hint = f"; first error: {errors[0]}" if errors else ""
        raise BabelfuseError(
            f"tune: no trial completed in study {study.study_name} ({counts['trials_pruned']} pruned, "
            f"{counts['trials_failed']} failed){hint}. Raise tune.n_trials / tune.timeout_s or use tune.pruner=none."
        )
    best = study.best_trial
    return dict(best.params), {"best_value": float(best.value), "best_trial": int(best.number)}
