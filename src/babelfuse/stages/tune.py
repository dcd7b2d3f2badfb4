"""The ``tune`` stage: an Optuna study over ``tune.space`` on the source-language train/val splits.

    python -m babelfuse.stages.tune --train data/fused/train.npz --val data/fused/val.npz \\
        --out models/best_params.json --baseline-out models/baseline_params.json --metrics metrics/tune.json

Reads exactly the two files it is given (no test split, no target languages) and the ``tune`` and
``train`` sections of params.yaml. How the study is named, resumed and run by ``tune.n_workers``
processes: :mod:`babelfuse.tuning.tune`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from babelfuse import logs, paths, tracking
from babelfuse.config import add_config_arguments, config_from_args
from babelfuse.errors import user_errors_exit
from babelfuse.jsonio import write_json
from babelfuse.tuning import study as st
from babelfuse.tuning.space import study_fingerprint
from babelfuse.tuning.tune import check_tune, run_all, source_languages

log = logging.getLogger("babelfuse.tuning")


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, default=paths.fused_split("train"))
    parser.add_argument("--val", type=Path, default=paths.fused_split("val"))
    parser.add_argument("--out", type=Path, default=paths.BEST_PARAMS)
    parser.add_argument("--baseline-out", type=Path, default=paths.BASELINE_PARAMS)
    parser.add_argument("--metrics", type=Path, default=paths.METRICS / "tune.json")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    logs.setup()
    cfg = config_from_args(args)
    tune, train = cfg.section("tune"), cfg.section("train")
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
        best_params, baseline_params, summary = run_all(
            args.train, args.val, tune, train, name, run.info.run_id, run.info.experiment_id
        )
        summary.update(data)
    write_json(args.out, best_params)
    write_json(args.baseline_out, baseline_params)  # {} when tune.baselines is false
    write_json(args.metrics, summary)
    log.info(
        "best trial %d: val macro-F1 %.4f with %s (%d complete, %d pruned, %d failed, %.1f s)",
        summary["best_trial"],
        summary["best_value"],
        best_params,
        summary["trials_complete"],
        summary["trials_pruned"],
        summary["trials_failed"],
        summary["seconds"],
    )


if __name__ == "__main__":
    main()
