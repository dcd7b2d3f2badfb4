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
from babelfuse.data import importer, text_gen
from babelfuse.data.generate import counts, generate_dataset
from babelfuse.data.plan import split_sizes
from babelfuse.errors import BabelfuseError, user_errors_exit
from babelfuse.params import load_section

log = logging.getLogger("babelfuse.generate")


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    logs.setup()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=paths.RAW, help="output folder (data/raw)")
    parser.add_argument("--params", type=Path, default=paths.PARAMS)
    args = parser.parse_args(argv)
    seed, data = int(load_section("seed", args.params)), load_section("data", args.params)
    source = data.get("source", "generated")
    params = {"seed": seed, "data": data}
    start = time.perf_counter()
    if source == "manifest":
        manifest_path = Path(data["manifest_path"])
        log.info("data.source=manifest: importing data.manifest_path=%s", manifest_path)
        frame = importer.import_manifest(manifest_path, args.out)
        inputs = [manifest_path]
    elif source == "generated":
        sizes = split_sizes(data)
        log.info("data.source=generated: building the dataset offline from seed=%d", seed)
        log.info("data.size=%s -> %s; data.languages=%s; data.source_langs=%s (train/val only in these)",
                 data.get("size"), sizes, data["languages"], data["source_langs"])  # fmt: skip
        log.info("data.informativeness=%s; data.image_size=%s; data.audio_sample_rate=%s; data.audio_noise_db=%s",
                 data["informativeness"], data["image_size"], data["audio_sample_rate"], data["audio_noise_db"])  # fmt: skip
        frame = generate_dataset(data, seed, args.out)
        inputs = [Path(text_gen.__file__).parent / "languages"]
    else:
        raise BabelfuseError(f"data.source={source!r} must be 'generated' or 'manifest'")
    seconds = time.perf_counter() - start
    log.info("wrote %d posts to %s in %.1f s", len(frame), args.out / "manifest.parquet", seconds)
    with tracking.stage_run("generate", params, inputs=inputs):
        mlflow.log_metrics({**counts(frame), "seconds": seconds})
        mlflow.set_tag("data_source", source)


if __name__ == "__main__":
    main()
