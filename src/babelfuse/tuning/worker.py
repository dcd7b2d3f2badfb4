"""One tuning worker: load the study from the shared storage and call ``optimize`` on it.

Run in the stage's own process (``tune.n_workers: 1``) or in spawned processes (several workers).
Each worker limits TF/BLAS to ``threads`` = max(1, cores // n_workers): two workers that each
believe they own both cores oversubscribe them and run slower than one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("babelfuse.tuning")

FUSED = "fused"
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker needs, picklable for ``multiprocessing`` spawn (plain values only)."""

    index: int
    n_trials: int  # this worker's share of the remaining budget
    target_trials: int  # tune.n_trials: COMPLETE + PRUNED trials the study should reach
    timeout_s: float | None
    threads: int
    storage_url: str
    study_name: str
    train_path: str
    val_path: str
    base: dict[str, Any]
    tune: dict[str, Any]
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    parallel: bool = False
    show_progress: bool = False
    model: str = FUSED  # "fused", or the modality of a single-modality baseline study


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_worker(n_workers: int) -> int:
    return max(1, cores() // max(1, n_workers))


@contextlib.contextmanager
def thread_env(threads: int) -> Iterator[None]:
    """Thread-count env vars set while child processes start (they read them at import time)."""
    saved = {k: os.environ.get(k) for k in (*THREAD_ENV, "TF_NUM_INTEROP_THREADS")}
    os.environ.update({k: str(threads) for k in THREAD_ENV})
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def limit_tf_threads(threads: int) -> None:
    """Fix TF's pools at ``threads`` intra-op / 1 inter-op, then start TF so nothing later changes them.

    (``fit_model`` asks for 2 intra-op threads; once TF runs that request is ignored, which is what
    a worker that shares the cores with others needs.)
    """
    import tensorflow as tf  # heavy (TensorFlow, ~4 s): only when a model is built, loaded or run

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        log.debug("TF already initialised in this process: keeping its thread pools")
        return
    tf.zeros((1,))  # initialise the eager context now, with these pools


def run_worker(job: WorkerJob) -> None:
    """Optimize this worker's share of the trials against the shared study."""
    from babelfuse import logs

    logs.setup()
    # fit_model hands Keras a shuffled tf.data set; Keras' note that it ignores shuffle=True is noise.
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    limit_tf_threads(job.threads)
    # Imported only after limit_tf_threads: nothing may start TensorFlow's thread pools before it.
    import mlflow
    import optuna
    from threadpoolctl import threadpool_limits

    from babelfuse.training.fit import load_split
    from babelfuse.tuning import study as st
    from babelfuse.tuning.objective import TrialContext, make_objective
    from babelfuse.tuning.sampling import register_worker
    from babelfuse.tuning.space import model_space, parse_space

    mlflow.set_tracking_uri(job.tracking_uri)
    train, val = load_split(job.train_path), load_split(job.val_path)
    ctx = TrialContext(
        base=job.base,
        space=parse_space(model_space(job.tune["space"], job.model), job.base),
        epochs=int(job.tune["epochs"]),
        seed=int(job.tune["seed"]),
        parent_run_id=job.parent_run_id,
        experiment_id=job.experiment_id,
        study_name=job.study_name,
        worker=job.index,
        model=job.model,
    )
    # Every worker seeds from tune.seed: a trial's draws depend on its slot, not on the worker.
    sampler = st.make_sampler(int(job.tune["seed"]), job.target_trials, job.parallel)
    study = optuna.load_study(
        study_name=job.study_name,
        storage=st.make_storage(job.storage_url),
        sampler=sampler,
        pruner=st.make_pruner(job.tune),
    )
    register_worker(study)  # a trial killed before it recorded its process is then known orphaned
    log.info(
        "worker %d: %d trial(s), %d thread(s) (tune.n_workers, %d cores)",
        job.index,
        job.n_trials,
        job.threads,
        cores(),
    )
    with threadpool_limits(job.threads):
        study.optimize(
            make_objective(ctx, train, val),
            n_trials=job.n_trials,
            timeout=job.timeout_s,
            callbacks=[optuna.study.MaxTrialsCallback(job.target_trials, states=st.COUNTED)],
            catch=(Exception,),
            show_progress_bar=job.show_progress,
        )


def worker_entry(job: WorkerJob) -> None:
    """Target of a spawned process: exit code 0 on success (the parent checks it)."""
    run_worker(job)
