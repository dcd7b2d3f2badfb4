"""Benchmark of the tune stage (a script, not a test): pruning vs none, and 1 vs 2 worker processes.

    .venv/bin/python benchmarks/tune.py [--fused data/fused] [--trials 12] [--epochs 30] [--repeats 1]

(a) Pruning: the same seeded study with ``tune.pruner=none`` and ``median``; for each, the time from
    the first trial's start until a trial completes with >= 95 % of the best unpruned val macro-F1.
    Target: pruned <= 50 % of the unpruned time.
(b) Workers: wall time of the whole stage with ``tune.n_workers`` 1 and 2 for the same number of
    trials (pruner none). Target: >= 1.7x on 2 cores. Reported twice: with the default space (what
    users run; trial costs differ between the runs because the sampled configs differ) and with a
    single fixed config (every trial costs the same: the pure parallel efficiency).

Every run is the real stage (``python -m babelfuse.stages.tune``) in a fresh temp project with its
own Optuna and MLflow SQLite files. Uses ``data/fused/{train,val}.npz`` when present, else synthetic
data of the default shape (600 train / 150 val rows; dims 512 / 1000 / 150), and says which.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIMS = {"text": 512, "image": 1000, "audio": 150}


def prepare_data(fused: Path, work: Path) -> tuple[Path, Path, str]:
    train, val = fused / "train.npz", fused / "val.npz"
    if train.exists() and val.exists():
        return train.resolve(), val.resolve(), f"pipeline data ({fused}/train.npz, val.npz)"
    from babelfuse.training.synthetic import synthetic_fused

    out = work / "fused"
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "train.npz", **synthetic_fused(600, DEFAULT_DIMS, seed=1))
    np.savez(out / "val.npz", **synthetic_fused(150, DEFAULT_DIMS, seed=2))
    return (
        out / "train.npz",
        out / "val.npz",
        "synthetic data of the default shape (600/150 rows, dims 512/1000/150)",
    )


def run_stage(work: Path, name: str, train: Path, val: Path, tune: dict[str, Any]) -> dict[str, Any]:
    """One stage run in a fresh project folder; returns metrics + wall seconds + per-trial timings."""
    project = work / name
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["tune"] = {**params["tune"], **tune, "storage": f"sqlite:///{project / 'optuna.db'}"}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (project / "dvc.yaml").write_text("stages: {}\n")
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "BABELFUSE_ROOT": str(project),
    }
    env["BABELFUSE_LOG_LEVEL"] = "WARNING"
    cmd = [sys.executable, "-m", "babelfuse.stages.tune", "--train", str(train), "--val", str(val)]
    cmd += ["--out", str(project / "best_params.json"), "--metrics", str(project / "tune.json")]
    load, usage = os.getloadavg()[0], resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    if proc.returncode:
        raise SystemExit(f"{name}: stage failed:\n{proc.stderr[-3000:]}")
    metrics = json.loads((project / "tune.json").read_text())
    study = optuna.load_study(study_name=metrics["study_name"], storage=params["tune"]["storage"])
    trials = [t for t in study.trials if t.datetime_complete is not None]
    t0 = min(t.datetime_start for t in trials)
    timeline = sorted(
        ((t.datetime_complete - t0).total_seconds(), t.state.name, t.value, len(t.intermediate_values))
        for t in trials
    )
    optimize_s = max(s for s, *_ in timeline)
    return {
        "wall_s": round(wall, 1),
        "optimize_s": round(optimize_s, 1),
        "cpu_s": round(cpu, 1),
        "cores_busy": round(cpu / wall, 2),  # average cores this run kept busy
        "load_avg_before": round(load, 2),
        "timeline": timeline,
        **metrics,
    }


def time_to_reach(timeline: list[tuple], threshold: float) -> float | None:
    for seconds, state, value, _ in timeline:
        if state == "COMPLETE" and value is not None and value >= threshold:
            return seconds
    return None


def pruning(work: Path, train: Path, val: Path, trials: int, epochs: int, seed: int) -> dict[str, Any]:
    base = {"n_trials": trials, "epochs": epochs, "n_workers": 1, "seed": seed, "timeout_s": 3600}
    none = run_stage(work, f"prune-none-{seed}", train, val, {**base, "pruner": "none"})
    median = run_stage(work, f"prune-median-{seed}", train, val, {**base, "pruner": "median"})
    reach = {}
    for share in (0.95, 0.99, 1.0):
        threshold = share * none["best_value"] - 1e-9
        t_none, t_median = (
            time_to_reach(none["timeline"], threshold),
            time_to_reach(median["timeline"], threshold),
        )
        reach[f"{share:.2f}"] = {
            "unpruned_s": t_none,
            "pruned_s": t_median,
            "ratio": None if not (t_none and t_median) else round(t_median / t_none, 2),
        }
    return {
        "seed": seed,
        "best_unpruned": round(none["best_value"], 4),
        "best_pruned": round(median["best_value"], 4),
        "time_to_share_of_best_unpruned": reach,
        "optimize_s": [none["optimize_s"], median["optimize_s"]],
        "epochs_trained": [sum(n for *_, n in none["timeline"]), sum(n for *_, n in median["timeline"])],
        "trials_pruned": median["trials_pruned"],
        "load_avg_before": [none["load_avg_before"], median["load_avg_before"]],
        "timeline_unpruned": [
            (round(s, 1), st[0], None if v is None else round(v, 4), n) for s, st, v, n in none["timeline"]
        ],
        "timeline_pruned": [
            (round(s, 1), st[0], None if v is None else round(v, 4), n) for s, st, v, n in median["timeline"]
        ],
    }


def workers(work: Path, train: Path, val: Path, trials: int, epochs: int, fixed: bool) -> dict[str, Any]:
    tune: dict[str, Any] = {"n_trials": trials, "epochs": epochs, "pruner": "none", "timeout_s": 3600}
    if fixed:  # every trial the same config (dropout only varies, in a negligible range): equal cost
        tune["space"] = {"dropout": {"low": 0.2, "high": 0.2000001}}
    label = "fixed" if fixed else "space"
    one = run_stage(work, f"workers1-{label}", train, val, {**tune, "n_workers": 1})
    two = run_stage(work, f"workers2-{label}", train, val, {**tune, "n_workers": 2})
    return {
        "space": "one fixed config" if fixed else "default tune.space",
        "wall_1_worker_s": one["wall_s"],
        "wall_2_workers_s": two["wall_s"],
        "speedup_wall": round(one["wall_s"] / two["wall_s"], 2),
        "optimize_1_worker_s": one["optimize_s"],
        "optimize_2_workers_s": two["optimize_s"],
        "speedup_optimize": round(one["optimize_s"] / two["optimize_s"], 2),
        "threads_per_worker": [one["threads_per_worker"], two["threads_per_worker"]],
        "cores_busy": [one["cores_busy"], two["cores_busy"]],
        "load_avg_before": [one["load_avg_before"], two["load_avg_before"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fused", type=Path, default=REPO / "data" / "fused")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=None, help="default: params.yaml tune.epochs")
    parser.add_argument("--repeats", type=int, default=1, help="pruning comparison with seeds 42, 43, ...")
    parser.add_argument("--only", choices=("pruning", "workers", "workers-fixed"), default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    epochs = args.epochs or int(yaml.safe_load((REPO / "params.yaml").read_text())["tune"]["epochs"])
    results: dict[str, Any] = {"cores": os.cpu_count(), "load_avg_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        work = Path(tmp)
        train, val, source = prepare_data(args.fused, work)
        results.update(data=source, trials=args.trials, epochs=epochs)
        print(f"data: {source}; {args.trials} trials x <= {epochs} epochs", flush=True)
        if args.only in (None, "pruning"):
            results["pruning"] = [
                pruning(work, train, val, args.trials, epochs, 42 + i) for i in range(args.repeats)
            ]
            for row in results["pruning"]:
                print("pruning:", json.dumps(row), flush=True)
        if args.only in (None, "workers", "workers-fixed"):
            kinds = (True,) if args.only == "workers-fixed" else (True, False)
            results["workers"] = [workers(work, train, val, args.trials, epochs, fixed) for fixed in kinds]
            for row in results["workers"]:
                print("workers:", json.dumps(row), flush=True)
    results["load_avg_at_end"] = os.getloadavg()[0]
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
