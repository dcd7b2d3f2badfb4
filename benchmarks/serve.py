"""Benchmark of the served end-to-end model: single-post latency and batched throughput by modality mix.

What is timed is the *loaded pyfunc* (``mlflow.pyfunc.load_model(...).predict(frame)``): MLflow's
schema check, request checks, base64 decoding, image/audio decoding, the three encoders, scaling,
the Keras model and temperature scaling — everything but HTTP. Posts carry their media as base64,
as a client of ``mlflow models serve`` sends them. Mixes: text only, text + image, text + image +
audio. Targets: p50 <= 30 ms for one post, >= 200 posts/s in batches of 256.

With ``--http 1,2`` the same saved pyfunc is also served by ``mlflow models serve --workers N`` on
127.0.0.1 (a free port, this venv, ``--env-manager local``) and loaded by a bounded client in this
process: ``--single`` one-post requests in sequence, then ``--batches`` requests of ``--batch-size``
posts from N client threads (``dataframe_split`` JSON, bodies encoded before timing). Server logs go
to ``reports/benchmarks/serve_http_<N>.log``.

Model: the pipeline's ``models/model.keras`` + ``data/fused/scalers.json`` + ``models/temperature.json``
when they exist (posts = the validated manifest's gate posts); otherwise a small model of
``params.yaml: train`` fitted for a few epochs on synthetic features, and synthetic posts (sentences
in 8 languages, 96 px PNGs, 2-4 s WAVs) — the timings do not depend on what the model learned.

    .venv/bin/python benchmarks/serve.py                  # writes reports/benchmarks/serve.json
    .venv/bin/python benchmarks/serve.py --single 20 --batches 1   # quick look
    .venv/bin/python benchmarks/serve.py --mixes text+image+audio --http 1,2 --batches 4
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

SENTENCES = {
    "en": "The staff were friendly and the room was lovely.",
    "de": "Das Essen war leider kalt und das Personal unfreundlich.",
    "fr": "Le train est arrivé à l'heure ce matin.",
    "es": "¡Qué día tan maravilloso en la playa!",
    "ru": "Обслуживание было очень медленным.",
    "ar": "كانت الرحلة ممتعة جدا",
    "zh": "这家餐厅的服务非常好。",
    "ja": "とても楽しい旅行でした。",
}
MIXES = {"text": ("text",), "text+image": ("text", "image"), "text+image+audio": ("text", "image", "audio")}


def synthetic_posts(n: int, seed: int = 0) -> pd.DataFrame:
    """n posts: a sentence, a 96 px PNG and a 2-4 s 16 kHz WAV each, as base64."""
    import soundfile as sf
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    langs = list(SENTENCES)
    rows = []
    for i in range(n):
        img = Image.new("RGB", (96, 96), tuple(int(v) for v in rng.integers(60, 230, 3)))
        draw = ImageDraw.Draw(img)
        draw.ellipse((16, 16, 80, 80), outline=(20, 20, 20), width=3)
        draw.arc((32, 40, 64, 70), 20, 160, fill=(20, 20, 20), width=3)
        png = io.BytesIO()
        img.save(png, format="PNG")
        seconds = rng.uniform(2.0, 4.0)
        t = np.arange(int(seconds * 16000)) / 16000
        f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
        voice = np.sin(2 * np.pi * np.cumsum(f0) / 16000) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
        wav = io.BytesIO()
        sf.write(wav, (0.3 * voice + 0.003 * rng.normal(size=t.size)).astype(np.float32), 16000, format="WAV")
        lang = langs[i % len(langs)]
        rows.append(
            {
                "text": SENTENCES[lang],
                "lang": lang,
                "image": base64.b64encode(png.getvalue()).decode(),
                "audio": base64.b64encode(wav.getvalue()).decode(),
            }
        )
    return pd.DataFrame(rows)


def pipeline_posts(manifest: Path, n: int) -> pd.DataFrame:
    """``n`` posts with image and audio from the manifest's gate split, as a remote caller sends them."""
    from babelfuse.serving.frozen import as_request, gate_rows

    frame = gate_rows(manifest)
    frame = frame[frame["image"].notna() & frame["audio"].notna()]
    return (
        as_request(frame)
        .sample(n=min(n, len(frame)), replace=len(frame) < n, random_state=0)
        .reset_index(drop=True)
    )


def build_artifacts(folder: Path, features: dict, train_params: dict) -> tuple[Path, Path, Path]:
    """A small model of the train params fitted for a few epochs on synthetic features (no pipeline needed)."""
    import keras

    from babelfuse.serving.pyfunc import get_encoder_cached
    from babelfuse.training.model import build_model
    from babelfuse.training.synthetic import synthetic_fused

    dims = {m: get_encoder_cached(m, features[m]).dim for m in ("text", "image", "audio")}
    data = synthetic_fused(192, dims, seed=0)
    model = build_model(dims, train_params)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(
        {k: data[k] for k in ("text", "image", "audio", "mask")},
        data["label"],
        epochs=3,
        batch_size=32,
        verbose=0,
    )
    model.save(folder / "model.keras")
    scalers = {m: {"mean": [0.0] * d, "scale": [1.0] * d} for m, d in dims.items()}
    (folder / "scalers.json").write_text(json.dumps(scalers))
    (folder / "temperature.json").write_text(json.dumps({"temperature": 1.0}))
    return folder / "model.keras", folder / "scalers.json", folder / "temperature.json"


def with_mix(posts: pd.DataFrame, mix: tuple[str, ...]) -> pd.DataFrame:
    out = posts.copy()
    for column in ("image", "audio"):
        if column not in mix:
            out[column] = None
    return out


def cpu_ticks() -> list[int] | None:
    """This machine's CPU time so far (/proc/stat: busy and idle jiffies of all cores), None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return [sum(fields) - idle, idle]


def busy_share(before: list[int] | None) -> float | None:
    """Share of all cores' time spent busy since ``before`` (1.0: every core busy the whole time)."""
    after = cpu_ticks()
    if before is None or after is None or sum(after) == sum(before):
        return None
    busy, idle = after[0] - before[0], after[1] - before[1]
    return round(busy / (busy + idle), 3)


def percentile_ms(values: list[float], q: float) -> float:
    return round(1000 * float(np.percentile(values, q)), 1)


def stage_breakdown(predictor, frame: pd.DataFrame) -> dict[str, float]:
    """Milliseconds per post of each step on one batch, in this process (decode, each encoder, Keras)."""
    from babelfuse.serving.inputs import check_post

    ctx, root, rows = predictor.media_context(), predictor.root(), frame.to_dict("records")
    t = time.perf_counter()
    posts = [
        check_post(i, r, ctx.languages, ctx.limits, root, ctx.image_size, ctx.sample_rate)
        for i, r in enumerate(rows)
    ]
    out = {"decode_ms": time.perf_counter() - t}
    for modality, encoder in predictor.encoders.items():
        values = [getattr(p, modality) for p in posts if getattr(p, modality) is not None]
        t = time.perf_counter()
        if values:
            encoder.encode(values)
        out[f"encode_{modality}_ms"] = time.perf_counter() - t
    inputs, _ = predictor.model_inputs(predictor.decode(frame))
    t = time.perf_counter()
    predictor.probabilities(inputs)
    out["model_ms"] = time.perf_counter() - t
    return {k: round(1000 * v / len(frame), 2) for k, v in out.items()}


def http_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(model_dir: Path, workers: int, log_path: Path) -> tuple[subprocess.Popen, str]:
    """``mlflow models serve`` of the saved pyfunc on 127.0.0.1 with ``workers`` processes; waits for /ping."""
    port = http_free_port()
    cmd = [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", str(model_dir)]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "--workers", str(workers)]
    with log_path.open("wb") as log:
        # the scoring server's own 60 s request timeout cuts 256-post batches on a loaded machine (504)
        env = {"MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT": "900", **os.environ}
        # mlflow runs `uvicorn` from PATH: this venv's, also when the script is run as .venv/bin/python
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow models serve exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=5):
                return proc, url
        except OSError:
            time.sleep(1.0)
    stop_server(proc)
    raise RuntimeError(f"mlflow models serve did not answer /ping within 600 s; see {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's own process group (its workers), SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def invoke(url: str, body: bytes) -> float:
    """One POST /invocations; seconds until the whole answer is read. Fails on any per-row error."""
    request = urllib.request.Request(
        url + "/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    t = time.perf_counter()
    with urllib.request.urlopen(request, timeout=900) as response:
        answer = response.read()
    seconds = time.perf_counter() - t
    errors = [row.get("error") for row in json.loads(answer)["predictions"] if row.get("error")]
    assert not errors, errors[:3]
    return seconds


def request_body(frame: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_split": frame.to_dict(orient="split", index=False)}).encode()


def http_benchmark(url: str, frame: pd.DataFrame, singles: int, batches: int, concurrency: int) -> dict:
    """Bounded load: ``singles`` one-post requests in sequence (after 5 warm-up), then ``batches``
    requests of the whole frame from ``concurrency`` client threads (after one warm-up per thread)."""
    one = [request_body(frame.iloc[[i % len(frame)]]) for i in range(singles + 5)]
    times = [invoke(url, body) for body in one][5:]
    batch = request_body(frame)
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: invoke(url, batch), range(concurrency)))
        t, ticks = time.perf_counter(), cpu_ticks()
        latencies = list(pool.map(lambda _: invoke(url, batch), range(batches)))
        wall, busy = time.perf_counter() - t, busy_share(ticks)
    return {
        "single_p50_ms": percentile_ms(times, 50),
        "single_p95_ms": percentile_ms(times, 95),
        "batch_posts_per_s": round(batches * len(frame) / wall, 1),
        "batch_p50_s": round(float(np.median(latencies)), 2),
        "cores_busy": busy,  # all of this machine's cores, client included
        "request_mb": round(len(batch) / 1e6, 1),
    }


def pyfunc_benchmark(loaded, frame: pd.DataFrame, singles: int, batches: int) -> dict:
    """The loaded pyfunc: ``singles`` one-post calls (after 5 warm-up), then ``batches`` calls on the frame."""
    predictor = loaded.unwrap_python_model().predictor
    one = [frame.iloc[[i % len(frame)]].reset_index(drop=True) for i in range(singles + 5)]
    times = []
    for i, post in enumerate(one):
        t = time.perf_counter()
        loaded.predict(post)
        if i >= 5:
            times.append(time.perf_counter() - t)
    batch_times = []
    ticks = cpu_ticks()
    for _ in range(batches):
        t = time.perf_counter()
        out = loaded.predict(frame)
        batch_times.append(time.perf_counter() - t)
        assert out["error"].isna().all(), out["error"].dropna().head()
    return {
        "single_p50_ms": percentile_ms(times, 50),
        "single_p95_ms": percentile_ms(times, 95),
        "batch_posts_per_s": round(len(frame) / float(np.median(batch_times)), 1),
        "cores_busy": busy_share(ticks),
        "per_post_ms_in_batch": stage_breakdown(predictor, frame),
    }


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--single", type=int, default=60, help="single-post requests per mix (after 5 warm-up)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--batches", type=int, default=2, help="batches per mix (per server for --http)")
    ap.add_argument(
        "--text-threads", type=int, default=None, help="default: params.yaml register.text_threads"
    )
    ap.add_argument("--mixes", default=",".join(MIXES), help=f"comma-separated subset of {','.join(MIXES)}")
    ap.add_argument(
        "--http",
        default="",
        help="also serve the pyfunc with `mlflow models serve --workers N` for each N given (e.g. 1,2) and "
        "load it over HTTP on 127.0.0.1 (N client threads for batches unless --clients)",
    )
    ap.add_argument(
        "--media-processes",
        type=int,
        default=None,
        help="media worker processes per loaded model (default: params.yaml register.media_processes; 0: none)",
    )
    ap.add_argument(
        "--clients",
        type=int,
        default=0,
        help="client threads sending batches to each server (default: one per server worker)",
    )
    ap.add_argument(
        "--no-keep-freed-memory",
        action="store_true",
        help="serving processes return freed memory to the system (params.yaml register.keep_freed_memory off)",
    )
    ap.add_argument("--no-pyfunc", action="store_true", help="skip the in-process pyfunc timings")
    ap.add_argument("--out", type=Path, default=Path("reports/benchmarks/serve.json"))
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    import mlflow

    from babelfuse import logs
    from babelfuse.params import load_section
    from babelfuse.serving import bundle
    from babelfuse.serving.pyfunc import get_encoder_cached
    from babelfuse.serving.register import limits_from

    logs.setup()
    load_before = [round(x, 1) for x in os.getloadavg()]
    features = load_section("features")
    root = Path(".")
    trained = all(
        (root / p).exists()
        for p in ("models/model.keras", "data/fused/scalers.json", "models/temperature.json")
    )
    manifest = root / "data/validated/manifest.parquet"
    mixes = {name: MIXES[name] for name in args.mixes.split(",")}
    workers = [int(w) for w in args.http.split(",") if w]
    with tempfile.TemporaryDirectory() as tmp:
        if trained:
            model, scalers, temperature = (
                root / "models/model.keras",
                root / "data/fused/scalers.json",
                root / "models/temperature.json",
            )
            source = "pipeline outputs (models/model.keras, data/fused/scalers.json, models/temperature.json)"
        else:
            model, scalers, temperature = build_artifacts(Path(tmp), features, load_section("train"))
            source = "models/ absent: a params.yaml train model fitted 3 epochs on synthetic features"
        posts = (
            pipeline_posts(manifest, args.batch_size)
            if trained and manifest.exists()
            else synthetic_posts(args.batch_size)
        )
        langs = sorted(set(posts["lang"]))
        register = load_section("register")
        config = bundle.serving_config(
            features,
            sorted(set(langs) | set(SENTENCES)),
            # the served model's own limits (params.yaml register.*, validate.*): 256 posts with ~6 s
            # clips are ~73 MB of JSON, within the default register.max_request_mb of 128
            limits_from(register, load_section("validate")),
            register.get("text_threads") if args.text_threads is None else args.text_threads,
            train_languages=["en"],  # only decides each answer's lang_seen_in_training flag
        )
        processes = register["media_processes"] if args.media_processes is None else args.media_processes
        config["media_pool"] = {"processes": processes, "min_posts": register["media_pool_min_posts"]}
        config["keep_freed_memory"] = register["keep_freed_memory"] and not args.no_keep_freed_memory
        t = time.perf_counter()
        saved = bundle.save_pyfunc(Path(tmp) / "pyfunc", model, scalers, temperature, config)
        loaded = None if args.no_pyfunc else mlflow.pyfunc.load_model(str(saved))
        load_s = time.perf_counter() - t
        results: dict[str, dict] = {}
        for name, mix in mixes.items():
            if loaded is not None:
                results[name] = pyfunc_benchmark(loaded, with_mix(posts, mix), args.single, args.batches)
                print(f"pyfunc {name:<18} {results[name]}", flush=True)
        http: dict[str, dict] = {}
        for n in workers:
            proc, url = start_server(saved, n, args.out.parent / f"serve_http_{n}.log")
            try:
                for name, mix in mixes.items():
                    clients = args.clients or n
                    key = f"workers={n} clients={clients} {name}"
                    http[key] = http_benchmark(url, with_mix(posts, mix), args.single, args.batches, clients)
                    print(f"http {key:<28} {http[key]}", flush=True)
            finally:
                stop_server(proc)
    report = {
        "model": source,
        "posts": "pipeline gate posts"
        if trained and manifest.exists()
        else "synthetic posts (96 px PNG, 2-4 s WAV)",
        "encoders": {m: features[m]["encoder"] for m in ("text", "image", "audio")},
        "audio_encoder_version": get_encoder_cached("audio", features["audio"]).version,
        "text_threads": config["features"]["text"].get("threads", "encoder default"),
        "media_pool": config["media_pool"],
        "keep_freed_memory": config["keep_freed_memory"],
        # set: overrides media_pool.processes in every loaded model (pyfunc and servers)
        "BABELFUSE_MEDIA_PROCESSES": os.environ.get("BABELFUSE_MEDIA_PROCESSES"),
        "load_seconds": round(load_s, 1),
        "batch_size": args.batch_size,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        # other jobs sharing the cores, at the start and at the end of the run
        "load_average_1_5_15": {"start": load_before, "end": [round(x, 1) for x in os.getloadavg()]},
        "results": results,
        "http": http,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"load (save + load pyfunc) {load_s:.1f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
