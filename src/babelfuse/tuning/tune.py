"""The tune stage: an Optuna study over ``tune.space`` on the source-language train/val splits.

    python -m babelfuse.tuning.tune --train data/fused/train.npz --val data/fused/val.npz \\
        --out models/best_params.json --metrics metrics/tune.json

Reads exactly the two files it is given (no test split, no target languages) and the ``tune`` and
``train`` sections of params.yaml. The study lives in ``tune.storage`` under the name
``<tune.study_name>-<fingerprint of data, base params, space, epochs, seed, pruner>``: rerunning
after an interruption (or with a larger ``tune.n_trials`` or more workers) resumes it; new data, a new
space or another seed starts afresh.
``tune.n_workers`` processes share the storage; MLflow gets one ``tune`` run with every trial nested.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

from babelfuse import logs, paths, tracking
from babelfuse.errors import BabelfuseError, user_errors_exit
from babelfuse.params import load_section
from babelfuse.tuning import study as st
from babelfuse.tuning.space import parse_space, study_fingerprint
from babelfuse.tuning.worker import WorkerJob, run_worker, thread_env, threads_per_worker, worker_entry

log = logging.getLogger("babelfuse.tuning")


def check_tune(tune: dict[str, Any], train: dict[str, Any]) -> None:
    """User errors in the tune section, caught before any trial runs."""
    for key in ("n_trials", "n_workers", "epochs"):
        value = tune.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BabelfuseError(f"tune.{key}: must be a positive integer, got {value!r}")
    timeout = tune.get("timeout_s")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise BabelfuseError(f"tune.timeout_s: must be a positive number of seconds or null, got {timeout!r}")
    if not isinstance(tune.get("storage"), str) or "://" not in tune["storage"]:
        raise BabelfuseError(
            f"tune.storage: must be an SQLAlchemy URL such as sqlite:///optuna.db, got {tune.get('storage')!r}"
        )
    if str(tune.get("pruner", "median")) not in st.PRUNERS:
        raise BabelfuseError(f"tune.pruner={tune.get('pruner')!r}: expected one of {', '.join(st.PRUNERS)}")
    parse_space(tune.get("space"), train)


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


def run_study(
    train_path: Path,
    val_path: Path,
    tune: dict[str, Any],
    train: dict[str, Any],
    study_name: str,
    parent_run_id: str,
    experiment_id: str,
) -> tuple[Any, dict[str, Any]]:
    """Create/resume the study, run the missing trials on ``tune.n_workers`` workers: (study, counts)."""
    import optuna

    start = time.monotonic()
    n_trials, n_workers, url = int(tune["n_trials"]), int(tune["n_workers"]), str(tune["storage"])
    study = st.create_or_load(
        url, study_name, st.make_sampler(int(tune["seed"]), n_trials, False), st.make_pruner(tune)
    )
    before = st.counts(study)
    done = before["trials_complete"] + before["trials_pruned"]
    parts = st.shares(n_trials - done, n_workers)
    if not parts:
        log.info(
            "study %s already has %d complete/pruned trial(s) >= tune.n_trials: nothing to run",
            study_name,
            done,
        )
    elif done:
        log.info(
            "resuming study %s: %d complete/pruned trial(s) already stored (tune.n_trials=%d)",
            study_name,
            done,
            n_trials,
        )
    threads = threads_per_worker(len(parts) or 1)
    timeout = tune.get("timeout_s")
    jobs = [
        WorkerJob(
            index=i,
            n_trials=share,
            target_trials=n_trials,
            timeout_s=None
            if timeout is None
            else round(max(1.0, float(timeout) - (time.monotonic() - start)), 1),
            threads=threads,
            storage_url=url,
            study_name=study_name,
            train_path=str(train_path),
            val_path=str(val_path),
            base=train,
            tune=tune,
            parent_run_id=parent_run_id,
            experiment_id=experiment_id,
            tracking_uri=tracking.tracking_uri(),
            parallel=len(parts) > 1,
            show_progress=len(parts) == 1,
        )
        for i, share in enumerate(parts)
    ]
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


def best_of(study: Any, counts: dict[str, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(best params, best summary) or a clear error when no trial completed."""
    import optuna

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


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, default=paths.fused_split("train"))
    parser.add_argument("--val", type=Path, default=paths.fused_split("val"))
    parser.add_argument("--out", type=Path, default=paths.BEST_PARAMS)
    parser.add_argument("--metrics", type=Path, default=paths.METRICS / "tune.json")
    args = parser.parse_args(argv)
    logs.setup()
    tune, train = load_section("tune"), load_section("train")
    check_tune(tune, train)
    data = source_languages(args.train, args.val)
    digest = tracking.file_digest([args.train, args.val])
    name = f"{tune['study_name']}-{study_fingerprint(train, tune, digest)}"
    shown = {**tune, "storage": st.masked_url(tune["storage"])}
    log.info(
        "study %s in tune.storage=%s, objective = val macro-F1 on %s (train %d rows, val %d rows)",
        name,
        shown["storage"],
        ",".join(data["val_langs"]),
        data["train_rows"],
        data["val_rows"],
    )
    tags = {"optuna.study": name, "optuna.storage": shown["storage"]}
    with tracking.stage_run(
        "tune", {"tune": shown, "train": train}, [args.train, args.val], extra_tags=tags
    ) as run:
        study, result = run_study(
            args.train, args.val, tune, train, name, run.info.run_id, run.info.experiment_id
        )
        best_params, best = best_of(study, result)
        summary = {**best, **result, "storage": st.storage_kind(tune["storage"]), "study_name": name, **data}
        from babelfuse.tuning.trials_mlflow import log_study_summary

        log_study_summary(study, summary, best_params)
    write_json(args.out, best_params)
    write_json(args.metrics, summary)
    log.info(
        "best trial %d: val macro-F1 %.4f with %s (%d complete, %d pruned, %d failed, %.1f s)",
        best["best_trial"],
        best["best_value"],
        best_params,
        summary["trials_complete"],
        summary["trials_pruned"],
        summary["trials_failed"],
        summary["seconds"],
    )


if __name__ == "__main__":
    main()
