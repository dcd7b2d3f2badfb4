"""``features.engine: ray``: the extract stages' batches encoded by Ray Data actors.

The same batches as the local engine (:func:`babelfuse.features.extract.plan_batches`), one Ray Data
row per batch (its manifest row numbers and their text or media paths, read from the data root by
the actor). ``map_batches`` with an actor pool (``features.ray.num_actors`` actors,
``num_cpus``/``num_gpus`` each) gives every actor one encoder, loaded once, and each call one
planned batch, encoded by :func:`babelfuse.features.extract.encode_batch`: the same function, so
the same decoding, bad-row handling (zero row, ``present = False``, logged by the actor; Ray forwards
the log lines to the stage) and the same bytes. Results are put back in manifest order here.

``features.ray.address``: ``local`` starts a cluster sized to this machine for the stage and shuts it
down afterwards; anything else is the address of a running cluster (``ray.init(address=...)``), whose
nodes need the locked environment (requirements.lock); the babelfuse package is shipped to them as a
``py_modules`` runtime env. A cluster the caller already started (``ray.init`` in a test or notebook)
is used as is and left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import babelfuse
from babelfuse import logs
from babelfuse.features.base import Encoder
from babelfuse.features.extract import Engine, build_encoder, encode_batch, plan_batches, progress

log = logging.getLogger("babelfuse.features.ray_engine")


class BatchEncoder:
    """A Ray Data actor: builds the modality's encoder once, then encodes one planned batch per call."""

    def __init__(self, modality: str, params: dict, root: str | None) -> None:
        logs.setup()
        self.modality, self.params = modality, params
        self.root = None if root is None else Path(root)
        self.encoder = build_encoder(modality, params)[0]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows_out, features_out, present_out = [], [], []
        for rows, values in zip(batch["rows"], batch["values"], strict=True):
            rows = np.asarray(rows, dtype=np.int64)
            features, present = encode_batch(
                self.encoder, self.modality, rows, list(values), self.root, self.params
            )
            rows_out.append(rows)
            features_out.append(features)
            present_out.append(present)
        return {
            "row": np.concatenate(rows_out),
            "features": np.concatenate(features_out),
            "present": np.concatenate(present_out),
        }


@contextlib.contextmanager
def cluster(address: str) -> Iterator[Any]:
    """Connect to (or start) the Ray cluster of ``features.ray.address``; yields the ``ray`` module."""
    # Imported here, not at the top: Ray is a heavy optional dependency (~2 s import, starts a raylet
    # and worker processes) that only ``features.engine: ray`` needs.
    import ray

    if ray.is_initialized():  # started by the caller: theirs to shut down
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report to the network
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "configure_logging": False}
    if address == "local":  # "local": always a new cluster of this machine's cores, never a running one
        ray.init(address="local", num_cpus=os.cpu_count() or 1, **common)
    else:
        package = str(Path(babelfuse.__file__).parent)
        ray.init(address=address, runtime_env={"py_modules": [package]}, **common)
    log.info("Ray cluster %s: %s", address, ray.cluster_resources())
    try:
        yield ray
    finally:
        ray.shutdown()


def num_actors(ray_params: dict, resources: dict[str, float], batches: int) -> int:
    """``features.ray.num_actors``, or (null) as many as the cluster's CPUs hold; never more than batches."""
    wanted = ray_params["num_actors"] or int(resources.get("CPU", 1) // ray_params["num_cpus"])
    return max(1, min(int(wanted), batches))


def ray_engine(
    encoder: Encoder,
    modality: str,
    values: list,
    root: Path | None,
    params: dict,
    batch_size: int,
    ray_params: dict,
) -> tuple[np.ndarray, np.ndarray]:
    """The planned batches on Ray Data actors -> (float32 (n, dim), bool present) in manifest order.

    ``encoder`` (built by the stage to fail fast and describe itself) gives the width; the actors
    build their own from ``params``. Same signature as the local engine once ``ray_params`` is bound.
    """
    features = np.zeros((len(values), encoder.dim), dtype=np.float32)
    present = np.zeros(len(values), dtype=bool)
    batches = plan_batches(modality, values, batch_size)
    if not batches:
        return features, present
    items = [{"rows": rows.tolist(), "values": [values[i] for i in rows]} for rows in batches]
    with cluster(ray_params["address"]) as ray:
        ray.data.DataContext.get_current().enable_progress_bars = False  # ours below, as locally
        actors = num_actors(ray_params, ray.cluster_resources(), len(items))
        log.info("extract:%s on Ray: %d batches, %d actor(s)", modality, len(items), actors)
        encoded = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            BatchEncoder,
            fn_constructor_args=(modality, params, None if root is None else str(root)),
            batch_size=1,  # one planned batch per call: the local engine's exact batches
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=ray_params["num_cpus"],
            num_gpus=ray_params["num_gpus"] or None,
        )
        with progress(sum(len(b) for b in batches), f"extract:{modality} {encoder.id} (ray)") as bar:
            for out in encoded.iter_batches(batch_size=None, batch_format="numpy"):
                features[out["row"]] = out["features"]
                present[out["row"]] = out["present"]
                bar.update(len(out["row"]))
    return features, present


def engine(ray_params: dict) -> Engine:
    """The Ray engine with ``features.ray`` bound, for :func:`babelfuse.features.extract.extract`."""
    return partial(ray_engine, ray_params=ray_params)
