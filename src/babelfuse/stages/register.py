"""The ``register`` stage: log the end-to-end pyfunc, register it as ``challenger``, run the promotion gate.

    python -m babelfuse.stages.register --model models/model.keras --fused data/fused \
        --temperature models/temperature.json --eval metrics/eval.json \
        --manifest data/validated/manifest.parquet --out metrics/register.json \
        --promotions reports/promotions.jsonl

Reads ``params.yaml: register`` (model name, gate thresholds, request limits) and ``features`` (the
encoders the served model rebuilds). What is logged, tagged and gated: :mod:`babelfuse.serving.register`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from babelfuse import logs, paths
from babelfuse.config import add_config_arguments, config_from_args
from babelfuse.errors import user_errors_exit
from babelfuse.jsonio import write_json
from babelfuse.serving.register import register

log = logging.getLogger("babelfuse.serving.register")


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=paths.MODEL)
    parser.add_argument("--fused", type=Path, default=paths.FUSED, help="folder holding scalers.json")
    parser.add_argument("--temperature", type=Path, default=paths.TEMPERATURE)
    parser.add_argument("--eval", type=Path, default=paths.METRICS / "eval.json")
    parser.add_argument("--manifest", type=Path, default=paths.VALIDATED_MANIFEST)
    parser.add_argument("--out", type=Path, default=paths.METRICS / "register.json")
    parser.add_argument("--promotions", type=Path, default=paths.PROMOTIONS)
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    logs.setup()
    cfg = config_from_args(args)
    params, features = cfg.section("register"), cfg.section("features")
    result = register(
        args.model,
        args.fused / "scalers.json",
        args.temperature,
        args.eval,
        args.manifest,
        args.promotions,
        params,
        features,
        cfg.section("validate"),  # the served model's per-file bounds are the validate stage's
        seed=cfg.seed,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    log.info(
        "wrote %s: %s v%s, decision %s", args.out, result["model_name"], result["version"], result["decision"]
    )


if __name__ == "__main__":
    main()
