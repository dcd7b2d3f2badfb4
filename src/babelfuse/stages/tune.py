"""The ``tune`` stage: an Optuna study over ``tune.space`` on the source-language train/val splits.

    python -m babelfuse.stages.tune --train data/fused/train.npz --val data/fused/val.npz \\
        --out models/best_params.json --metrics metrics/tune.json

Reads exactly the two files it is given (no test split, no target languages) and the ``tune`` and
``train`` sections of params.yaml. How the study is named, resumed and run by ``tune.n_workers``
processes: :mod:`babelfuse.tuning.tune`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from babelfuse import logs, paths, tracking
from babelfuse.errors import user_errors_exit
from babelfuse.params import load_section
from babelfuse.tuning import study as st
from babelfuse.tuning.space import study_fingerprint
from babelfuse.tuning.trials_mlflow import log_study_summary
from babelfuse.tuning.tune import best_of, check_tune, run_study, source_languages

log = logging.getLogger("babelfuse.tuning")


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
