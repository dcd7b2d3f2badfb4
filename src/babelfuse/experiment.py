"""The whole pipeline with validated overrides: the MLproject ``main`` entry point.

    python -m babelfuse.experiment --set train.fusion=gated --set train.use_best_params=false

checks the overrides against the params schema (a bad one stops here: one line, exit code 2), then
runs ``dvc exp run -S train.fusion=gated -S train.use_best_params=false``, so only the stages those
params feed rerun and DVC records the experiment. Empty values (MLproject's "keep params.yaml")
are dropped; with none left it runs ``dvc repro``.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

from babelfuse.config import add_config_arguments, config_from_args
from babelfuse.errors import user_errors_exit


def active_overrides(overrides: list[str]) -> list[str]:
    """The overrides that set something (``key=`` with an empty value keeps the file's value)."""
    return [item for item in overrides if item.partition("=")[2].strip()]


def dvc_command(overrides: list[str]) -> list[str]:
    active = active_overrides(overrides)
    if not active:
        return ["dvc", "repro"]
    return ["dvc", "exp", "run", *[arg for item in active for arg in ("-S", item)]]


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, params=False)
    parser.add_argument("--dry", action="store_true", help="print the dvc command instead of running it")
    args = parser.parse_args(argv)
    config_from_args(args)  # validates params.yaml with the overrides before DVC starts
    command = dvc_command(args.overrides)
    print(shlex.join(command), file=sys.stderr)
    if not args.dry:
        raise SystemExit(subprocess.call(command))


if __name__ == "__main__":
    main()
