"""``features.engine: ray`` gives the local engine's bytes, on the `tiny` data of a temp project.

One module-scoped ``dvc repro`` of the extract stages (local engine) feeds both tests: the Ray engine
in this process on a 2-CPU cluster the test starts and stops (with a corrupt image row added), and
``dvc exp run -S features.engine=ray`` of the real pipeline (each stage starts its own local cluster).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from babelfuse.config import load_config
from babelfuse.features import ray_engine
from babelfuse.features.extract import build_encoder, extract

pytestmark = pytest.mark.slow

EXTRACT = ["extract_text", "extract_image", "extract_audio"]
FILES = [
    f"{m}{suffix}" for m in ("text", "image", "audio") for suffix in (".npy", ".present.npy", ".ids.txt")
]


def _dvc(args: list[str], root: Path, env: dict[str, str]) -> None:
    done = subprocess.run(["dvc", *args], cwd=root, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, make_project) -> tuple[Path, dict[str, str], dict[str, bytes]]:
    """A temp project on `tiny` data with the extract stages run by DVC on the local engine."""
    tmp = tmp_path_factory.mktemp("ray")
    root = make_project(tmp / "project")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["size"] = "tiny"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "commit", "-qam", "tiny"], cwd=root, check=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}", "BABELFUSE_ROOT": str(root)}
    _dvc(["repro", *EXTRACT], root, env)
    return root, env, {name: (root / "data/features" / name).read_bytes() for name in FILES}


@pytest.fixture
def two_cpu_cluster():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def test_ray_engine_matches_local_bytes_with_a_corrupt_image(local_run, tmp_path, two_cpu_cluster) -> None:
    root, _, _ = local_run
    data_root = tmp_path / "raw"
    shutil.copytree(root / "data/raw", data_root)
    (data_root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))  # a PNG header, no image
    frame = pd.read_parquet(root / "data/validated/manifest.parquet")
    frame.loc[1, "image_path"] = "corrupt.png"
    frame.loc[2, "image_path"] = None
    features = load_config(root / "params.yaml", []).section("features")
    params = features["image"]
    ray_params = {**features["ray"], "num_actors": 2}
    local = extract("image", frame, data_root, params, build_encoder("image", params))
    on_ray = extract("image", frame, data_root, params, None, ray_engine.engine(ray_params))
    assert local[0].tobytes() == on_ray[0].tobytes() and local[1].tobytes() == on_ray[1].tobytes()
    assert not on_ray[1][1] and not on_ray[1][2] and not on_ray[0][[1, 2]].any()
    assert on_ray[1].sum() > len(frame) / 2  # most rows really encoded, not all zero rows
    for key in ("rows", "present", "missing", "missing_null", "undecodable", "dim"):
        assert local[2][key] == on_ray[2][key], key
    assert on_ray[2]["undecodable"] >= 1 and on_ray[2]["missing_null"] >= 1


def test_dvc_exp_run_with_the_ray_engine_writes_the_same_bytes(local_run) -> None:
    root, env, local = local_run
    _dvc(["exp", "run", "-S", "features.engine=ray", *EXTRACT], root, env)
    for name in FILES:
        assert (root / "data/features" / name).read_bytes() == local[name], name
    meta = json.loads((root / "data/features/image.json").read_text())
    assert meta["engine"] == "ray"  # the stages really ran on Ray, not from the run cache
    assert np.load(root / "data/features/text.present.npy").any()
