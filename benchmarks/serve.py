"""Benchmark of the served end-to-end model: single-post latency and batched throughput by modality mix.

What is timed is the *loaded pyfunc* (``mlflow.pyfunc.load_model(...).predict(frame)``): MLflow's
schema check, request checks, base64 decoding, image/audio decoding, the three encoders, scaling,
the Keras model and temperature scaling — everything but HTTP. Posts carry their media as base64,
as a client of ``mlflow models serve`` sends them. Mixes: text only, text + image, text + image +
audio. Targets: p50 <= 50 ms for one post, >= 200 posts/s in batches of 256.

Model: the pipeline's ``models/model.keras`` + ``data/fused/scalers.json`` + ``models/temperature.json``
when they exist (posts = the validated manifest's test posts); otherwise a small model of
``params.yaml: train`` fitted for a few epochs on synthetic features, and synthetic posts (sentences
in 8 languages, 96 px PNGs, 2-4 s WAVs) — the timings do not depend on what the model learned.

    .venv/bin/python benchmarks/serve.py                  # writes reports/benchmarks/serve.json
    .venv/bin/python benchmarks/serve.py --single 20 --batches 1   # quick look
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import tempfile
import time
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
    from babelfuse.serving.frozen import as_request, test_rows

    frame = test_rows(manifest)
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


def percentile_ms(values: list[float], q: float) -> float:
    return round(1000 * float(np.percentile(values, q)), 1)


def stage_breakdown(predictor, frame: pd.DataFrame) -> dict[str, float]:
    """Milliseconds per post of each step on one batch (decode, each encoder, Keras)."""
    t = time.perf_counter()
    posts, _ = predictor.decode(frame, "raise")
    out = {"decode_ms": time.perf_counter() - t}
    for modality, encoder in predictor.encoders.items():
        values = [getattr(p, modality) for p in posts if getattr(p, modality) is not None]
        t = time.perf_counter()
        if values:
            encoder.encode(values)
        out[f"encode_{modality}_ms"] = time.perf_counter() - t
    inputs = predictor.encode(posts)
    t = time.perf_counter()
    predictor.probabilities(inputs)
    out["model_ms"] = time.perf_counter() - t
    return {k: round(1000 * v / len(frame), 2) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--single", type=int, default=60, help="single-post requests per mix (after 5 warm-up)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument(
        "--text-threads", type=int, default=None, help="default: params.yaml register.text_threads"
    )
    ap.add_argument("--out", type=Path, default=Path("reports/benchmarks/serve.json"))
    args = ap.parse_args()

    import mlflow

    from babelfuse import logs
    from babelfuse.params import load_section
    from babelfuse.serving import bundle
    from babelfuse.serving.inputs import Limits

    logs.setup()
    features = load_section("features")
    root = Path(".")
    trained = all(
        (root / p).exists()
        for p in ("models/model.keras", "data/fused/scalers.json", "models/temperature.json")
    )
    manifest = root / "data/validated/manifest.parquet"
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
            Limits(max_rows=max(1024, args.batch_size)),
            register.get("text_threads") if args.text_threads is None else args.text_threads,
        )
        t = time.perf_counter()
        saved = bundle.save_pyfunc(Path(tmp) / "pyfunc", model, scalers, temperature, config)
        loaded = mlflow.pyfunc.load_model(str(saved))
        load_s = time.perf_counter() - t
        predictor = loaded.unwrap_python_model().predictor
        results = {}
        for name, mix in MIXES.items():
            frame = with_mix(posts, mix)
            singles = [frame.iloc[[i % len(frame)]].reset_index(drop=True) for i in range(args.single + 5)]
            times = []
            for i, one in enumerate(singles):
                t = time.perf_counter()
                loaded.predict(one)
                if i >= 5:
                    times.append(time.perf_counter() - t)
            batch_times = []
            for _ in range(args.batches):
                t = time.perf_counter()
                out = loaded.predict(frame)
                batch_times.append(time.perf_counter() - t)
                assert out["error"].isna().all(), out["error"].dropna().head()
            results[name] = {
                "single_p50_ms": percentile_ms(times, 50),
                "single_p95_ms": percentile_ms(times, 95),
                "batch_posts_per_s": round(args.batch_size / float(np.median(batch_times)), 1),
                "per_post_ms_in_batch": stage_breakdown(predictor, frame),
            }
            print(
                f"{name:<18} p50 {results[name]['single_p50_ms']:7.1f} ms  p95 {results[name]['single_p95_ms']:7.1f} ms  "
                f"batch {results[name]['batch_posts_per_s']:7.1f} posts/s  {results[name]['per_post_ms_in_batch']}"
            )
    report = {
        "model": source,
        "posts": "pipeline test posts"
        if trained and manifest.exists()
        else "synthetic posts (96 px PNG, 2-4 s WAV)",
        "encoders": {m: features[m]["encoder"] for m in ("text", "image", "audio")},
        "text_threads": config["features"]["text"].get("threads", "encoder default"),
        "load_seconds": round(load_s, 1),
        "batch_size": args.batch_size,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average_1_5_15": [round(x, 1) for x in os.getloadavg()],  # other jobs sharing the cores
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"load (save + load pyfunc) {load_s:.1f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
