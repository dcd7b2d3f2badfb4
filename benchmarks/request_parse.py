"""What the scoring server does to one large request before the model sees a row, step by step.

The body is the one ``benchmarks/serve.py`` sends: 256 posts with text, a base64 PNG and a base64
WAV (~73 MB of ``dataframe_split`` JSON; pipeline gate posts when the pipeline has run, else
synthetic ones). Each step runs ``--rounds`` times in a fresh process, once with the serving
processes' memory setting (``serving/memory.py``: freed memory kept) and once without; the figure
is the median ms per request:

* ``join``: the body's ~64 kB chunks joined into one ``bytes`` (what the bounded reader does);
* ``body_checks``: :func:`babelfuse.serving.inputs.body_problem` (row and depth bounds before
  parsing); ``body_checks_by_split``: the same bounds by dropping escapes and splitting the body on
  quotes, as babelfuse did before (it copies every string);
* ``json_parse``: what the server parses the body with (``pyfunc._parse_json``: ``json.loads`` and
  the lone-surrogate marking), in a thread as MLflow's server does;
* ``frame_arrow`` / ``frame_object``: MLflow's ``dataframe_from_parsed_json`` plus
  :func:`inputs.check_request`, with pandas' Arrow-backed strings and with object columns.

    .venv/bin/python benchmarks/request_parse.py          # writes reports/benchmarks/request_parse.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve  # noqa: E402 - the serving benchmark's posts and request body

from babelfuse.serving import inputs, memory, pyfunc  # noqa: E402
from babelfuse.serving.inputs import Limits  # noqa: E402

MANIFEST = Path("data/validated/manifest.parquet")


def split_scan(data: bytes, limits: Limits) -> int:
    """The bounds' structure the old way: escapes dropped, strings cut out by splitting on quotes."""
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b" ".join(data.split(b'"')[0::2])
    return max(outside.count(b","), outside.count(b"["), outside.count(b"{"))


def in_thread(step):
    """``step`` run in a new thread (MLflow's server parses and predicts in ``asyncio.to_thread``)."""
    out = {}
    worker = threading.Thread(target=lambda: out.update(value=step()))
    worker.start()
    worker.join()
    return out["value"]


def frame(parsed: dict, limits: Limits, infer_string: bool) -> pd.DataFrame:
    from mlflow.utils.proto_json_utils import dataframe_from_parsed_json  # heavy: mlflow

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the option's deprecation (pandas 4)
        with pd.option_context("future.infer_string", infer_string):
            built = dataframe_from_parsed_json(parsed["dataframe_split"], pandas_orient="split")
            return inputs.check_request(built, limits)


def measure(body: bytes, rounds: int) -> dict[str, float]:
    """Median ms per request of each step, in this process."""
    limits = Limits(max_rows=1024, max_request_bytes=len(body) + 1)
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    parsed = json.loads(body)
    steps = {
        "join": lambda: b"".join(chunks),
        "body_checks": lambda: in_thread(lambda: inputs.body_problem(body, "application/json", limits)),
        "body_checks_by_split": lambda: in_thread(lambda: split_scan(body, limits)),
        "json_parse": lambda: in_thread(lambda: pyfunc._parse_json(body)),
        "frame_arrow": lambda: in_thread(lambda: frame(parsed, limits, True)),
        "frame_object": lambda: in_thread(lambda: frame(parsed, limits, False)),
    }
    out = {}
    for name, step in steps.items():
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            step()
            times.append(1000 * (time.perf_counter() - start))
        out[name] = round(float(np.median(times)), 1)
    return out


def child(keep: bool, rounds: int, batch_size: int) -> None:
    """One process's measurements, as JSON on stdout."""
    if keep:
        memory.keep_freed_memory()
    posts = (
        serve.pipeline_posts(MANIFEST, batch_size) if MANIFEST.exists() else serve.synthetic_posts(batch_size)
    )
    body = serve.request_body(posts)
    print(json.dumps({"request_mb": round(len(body) / 1e6, 1), "ms": measure(body, rounds)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("reports/benchmarks/request_parse.json"))
    ap.add_argument("--child", choices=["keep", "default"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child == "keep", args.rounds, args.batch_size)
        return
    report: dict = {"posts": args.batch_size, "rounds": args.rounds}
    for mode in ("default", "keep"):
        cmd = [sys.executable, __file__, "--child", mode, "--rounds", str(args.rounds)]
        done = subprocess.run(cmd + ["--batch-size", str(args.batch_size)], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(done.stderr[-3000:])
        result = json.loads(done.stdout.strip().splitlines()[-1])
        report["request_mb"] = result["request_mb"]
        report["freed_memory_kept" if mode == "keep" else "freed_memory_returned"] = result["ms"]
        print(f"{mode:8s} {result['ms']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
