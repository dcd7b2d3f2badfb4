"""``benchmarks/serve.py`` runs as written on a fresh project (no pipeline outputs): it rotted once unseen."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_serving_benchmark_runs_on_a_fresh_project_and_reports_every_step(tmp_path) -> None:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    out = tmp_path / "serve.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "serve.py"), "--mixes", "text+image+audio", "--single", "2",
           "--batches", "1", "--batch-size", "8", "--media-processes", "1", "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    timings = report["results"]["text+image+audio"]
    assert timings["batch_posts_per_s"] > 0 and timings["single_p50_ms"] > 0
    steps = timings["per_post_ms_in_batch"]
    assert all(steps[f"encode_{m}_ms"] > 0 for m in ("text", "image", "audio")), steps
    assert report["media_pool"]["processes"] == 1 and report["batch_size"] == 8
