"""The ``fuse`` stage: the three feature sets -> ``data/fused/<split>.npz`` + ``scalers.json``.

    python -m babelfuse.stages.fuse --manifest data/validated/manifest.parquet \
        --features data/features --out data/fused

Reads ``params.yaml: fuse``. The join, the train-only scalers and the split: :mod:`babelfuse.features.fuse`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from babelfuse import logs, paths, tracking
from babelfuse.config import add_config_arguments, config_from_args
from babelfuse.errors import BabelfuseError, user_errors_exit
from babelfuse.features.fuse import fuse, read_features, summary
from babelfuse.jsonio import write_json

log = logging.getLogger("babelfuse.fuse")


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=paths.VALIDATED_MANIFEST)
    parser.add_argument("--features", type=Path, default=paths.FEATURES)
    parser.add_argument("--out", type=Path, default=paths.FUSED)
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    logs.setup()
    params: dict[str, Any] = config_from_args(args).section("fuse")
    standardize = bool(params["standardize"])
    log.info("fuse.standardize=%s (scalers fitted on train rows where each modality is present)", standardize)
    if not args.manifest.exists():
        raise BabelfuseError(f"manifest not found: {args.manifest}")
    frame = pd.read_parquet(args.manifest)
    features = {m: read_features(args.features, m) for m in paths.MODALITIES}
    inputs = [args.manifest, *(paths.features_array(m, args.features) for m in paths.MODALITIES)]
    with tracking.stage_run("fuse", params, inputs=inputs):
        splits, scalers = fuse(frame, features, standardize)
        args.out.mkdir(parents=True, exist_ok=True)
        for split, data in splits.items():
            np.savez_compressed(paths.fused_split(split, args.out), **data)
        scalers_file = args.out / "scalers.json"
        write_json(scalers_file, scalers)
        metrics = summary(splits)
        metrics.update({f"{m}_dim": float(features[m][0].shape[1]) for m in paths.MODALITIES})
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(scalers_file))
        log.info("wrote %s: %s", args.out, {s: len(d["label"]) for s, d in splits.items()})


if __name__ == "__main__":
    main()
