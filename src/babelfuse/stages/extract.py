"""The ``extract_<modality>`` stages: one modality of the validated manifest -> ``data/features/<modality>.*``.

    python -m babelfuse.stages.extract text --manifest data/validated/manifest.parquet \
        --out data/features --metrics metrics/extract_text.json

Reads only ``params.yaml: features.<modality>``, ``features.engine`` and ``features.ray`` (the Ray
engine: :mod:`babelfuse.features.ray_engine`). How rows are read, decoded and encoded (a missing
modality becomes a zero row with ``present = False``): :mod:`babelfuse.features.extract`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from babelfuse import logs, paths, tracking
from babelfuse.config import add_config_arguments, config_from_args
from babelfuse.data.manifest import load_manifest
from babelfuse.errors import user_errors_exit
from babelfuse.features import crosslingual, ray_engine
from babelfuse.features.extract import build_encoder, encode_rows, extract, input_column, write_outputs
from babelfuse.jsonio import write_json

log = logging.getLogger("babelfuse.features.extract")


def _numeric(record: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in record.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
    }


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modality", choices=paths.MODALITIES)
    parser.add_argument("--manifest", type=Path, default=paths.VALIDATED_MANIFEST)
    parser.add_argument("--out", type=Path, default=paths.FEATURES)
    parser.add_argument("--metrics", type=Path, default=None, help="default: metrics/extract_<modality>.json")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    logs.setup()
    modality: str = args.modality
    section = config_from_args(args).section("features")
    params = section[modality]
    engine = ray_engine.engine(section["ray"]) if section["engine"] == "ray" else encode_rows
    manifest = load_manifest(args.manifest)
    frame = manifest.frame
    inputs = [args.manifest] + ([] if modality == "text" else [args.manifest.parent / "source.json"])
    input_column(modality, frame)
    built = build_encoder(modality, params)
    with tracking.stage_run(
        f"extract_{modality}",
        {"features": {modality: params, "engine": section["engine"], "ray": section["ray"]}},
        inputs=inputs,
        run_name=f"extract:{modality}",
    ) as run:
        features, present, meta = extract(modality, frame, manifest.data_root, params, built, engine)
        meta["engine"] = section["engine"]
        write_outputs(args.out, modality, frame["sample_id"].astype(str).tolist(), features, present, meta)
        metrics = dict(meta)
        mlflow.set_tags({"encoder": meta["encoder"], "encoder_version": meta["encoder_version"]})
        mlflow.log_metrics(_numeric(meta))
        if modality == "text":
            metrics["crosslingual"] = crosslingual.crosslingual_sanity(features, present, frame)
            mlflow.log_metrics(crosslingual.mlflow_metrics(metrics["crosslingual"]))
            log.info("%s", crosslingual.summary(metrics["crosslingual"]))
        metrics_path = args.metrics or paths.METRICS / f"extract_{modality}.json"
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        write_json(metrics_path, metrics)
        log.info(
            "extract:%s: %d rows (%d missing) -> %s in %.1f s (%s rows/s), MLflow run %s",
            modality,
            meta["rows"],
            meta["missing"],
            args.out,
            meta["seconds"],
            meta["rows_per_second"],
            run.info.run_id,
        )


if __name__ == "__main__":
    main()
