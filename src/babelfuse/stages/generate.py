"""The ``generate`` stage: build the synthetic multilingual, multimodal dataset (or import a user's).

``python -m babelfuse.stages.generate --out data/raw`` reads ``seed`` and the ``data`` section of
params.yaml. With ``data.source: generated`` it writes, offline and byte-for-byte reproducibly from
``seed``, what :mod:`babelfuse.data.generate` builds; with ``data.source: manifest`` it imports
``data.manifest_path`` instead (:mod:`babelfuse.data.importer`).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import mlflow

from babelfuse import logs, paths, tracking
from babelfuse.config import add_config_arguments, config_from_args
from babelfuse.data import importer, text_gen
from babelfuse.data.ceiling import write_ceiling, write_unknown_ceiling
from babelfuse.data.generate import counts, generate_dataset
from babelfuse.data.plan import split_sizes
from babelfuse.errors import BabelfuseError, user_errors_exit

log = logging.getLogger("babelfuse.generate")


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    logs.setup()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=paths.RAW, help="output folder (data/raw)")
    parser.add_argument("--ceiling", type=Path, default=paths.CEILING, help="Bayes-optimal ceiling JSON")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    seed, data = cfg.seed, cfg.section("data")
    source = data["source"]
    params = {"seed": seed, "data": data}
    start = time.perf_counter()
    if source == "manifest":
        manifest_path = Path(data["manifest_path"])
        log.info("data.source=manifest: importing data.manifest_path=%s", manifest_path)
        frame = importer.import_manifest(manifest_path, args.out)
        inputs = [manifest_path]
        ceiling_result = write_unknown_ceiling(args.ceiling)
    elif source == "generated":
        sizes = split_sizes(data)
        log.info("data.source=generated: building the dataset offline from seed=%d", seed)
        log.info("data.size=%s -> %s; data.languages=%s; data.source_langs=%s (train/val only in these)",
                 data["size"], sizes, data["languages"], data["source_langs"])  # fmt: skip
        log.info("data.informativeness=%s; data.image_size=%s; data.audio_sample_rate=%s; data.audio_noise_db=%s",
                 data["informativeness"], data["image_size"], data["audio_sample_rate"], data["audio_noise_db"])  # fmt: skip
        frame = generate_dataset(data, seed, args.out)
        inputs = [Path(text_gen.__file__).parent / "languages"]
        ceiling_result = write_ceiling(args.ceiling, data, seed)
        log.info("Bayes-optimal macro-F1 (all modalities): %.3f -> %s",
                 ceiling_result["subsets"]["text+image+audio"]["bayes"], args.ceiling)  # fmt: skip
    else:
        raise BabelfuseError(f"data.source={source!r} must be 'generated' or 'manifest'")
    seconds = time.perf_counter() - start
    log.info("wrote %d posts to %s in %.1f s", len(frame), args.out / "manifest.parquet", seconds)
    with tracking.stage_run("generate", params, inputs=inputs):
        subsets = ceiling_result["subsets"].items()
        ceiling_metrics = {f"ceiling_{m}_{k.replace('+', '_')}": v for k, e in subsets for m, v in e.items()}
        mlflow.log_metrics({**counts(frame), **ceiling_metrics, "seconds": seconds})
        mlflow.set_tag("data_source", source)


if __name__ == "__main__":
    main()
