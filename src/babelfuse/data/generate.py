"""The ``generate`` stage's library: build the synthetic multilingual, multimodal dataset.

The entry point :mod:`babelfuse.stages.generate` (``python -m babelfuse.stages.generate --out data/raw``)
reads ``seed`` and the ``data`` section of params.yaml. With ``data.source: generated`` it writes, offline and byte-for-byte reproducibly from
``seed``: ``manifest.parquet``, ``images/*.png``, ``audio/*.wav``, ``latent.parquet`` (the hidden
generative choices: which modalities carry the label, face cues, prosody) and ``source.json``.
With ``data.source: manifest`` it imports ``data.manifest_path`` instead (see ``importer.py``).

What goes into each post (and the split protocol) is decided in ``plan.py``; this module renders
the media in worker processes and writes the files.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from babelfuse.data import audio_gen, image_gen
from babelfuse.data.plan import Post, latent_frame, manifest_frame, plan_posts
from babelfuse.labels import LANGUAGES

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("babelfuse.generate")

AUDIO_CHUNK = 300  # posts per fresh worker process (fixed, so output never depends on worker count)
IMAGE_CHUNK = 600  # each chunk pays ~1 s of process start-up, so chunks are large


def worker_count() -> int:
    """At most 2 worker processes (the project's machines have 2 cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(2, cores))


def render_media(posts: list[Post], out: Path, data: dict[str, Any], workers: int) -> list[float]:
    """Write every PNG and WAV in worker processes; returns the audio durations in post order.

    Audio chunks are fixed lists of one voice each (:func:`audio_gen.voice_chunks`) and each runs in a
    fresh process (eSpeak keeps state between utterances), so bytes never depend on ``workers`` nor
    on which other languages are generated.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    order = sorted(posts, key=lambda p: (LANGUAGES[p.lang].espeak_voice, p.sample_id))
    audio_tasks = [
        audio_gen.AudioTask(
            str(out / f"audio/{p.sample_id}.wav"),
            p.spoken,
            LANGUAGES[p.lang].espeak_voice,
            p.prosody,
            p.audio_seed,
            p.latent.clip_seconds,
            p.latent.degraded,
        )
        for p in order
    ]
    image_tasks = [
        image_gen.ImageTask(str(out / f"images/{p.sample_id}.png"), p.cues, p.image_seed) for p in posts
    ]
    rate, noise_db = int(data["audio_sample_rate"]), float(data["audio_noise_db"])
    size = int(data["image_size"])
    context = multiprocessing.get_context("spawn")
    durations: dict[str, float] = {}
    with (
        ProcessPoolExecutor(max_workers=workers, mp_context=context, max_tasks_per_child=1) as pool,
        tqdm(total=2 * len(posts), desc="media (png + wav)", unit="file", leave=False) as bar,
    ):
        futures = {}
        for chunk in audio_gen.voice_chunks(audio_tasks, AUDIO_CHUNK):
            futures[pool.submit(audio_gen.render_chunk, chunk, rate, noise_db)] = chunk
        for i in range(0, len(image_tasks), IMAGE_CHUNK):
            futures[pool.submit(image_gen.render_chunk, image_tasks[i : i + IMAGE_CHUNK], size)] = None
        for future in as_completed(futures):
            result, chunk = future.result(), futures[future]
            if chunk is not None:
                durations.update(zip((t.path for t in chunk), result, strict=True))
            bar.update(len(chunk) if chunk is not None else result)
    return [durations[str(out / f"audio/{p.sample_id}.wav")] for p in posts]


def clear_outputs(out: Path) -> None:
    """Remove what an earlier run of this stage wrote into ``out`` (nothing else)."""
    for folder in ("images", "audio"):
        shutil.rmtree(out / folder, ignore_errors=True)
    for name in ("manifest.parquet", "latent.parquet", "source.json"):
        (out / name).unlink(missing_ok=True)


def generate_dataset(data: dict[str, Any], seed: int, out: Path, workers: int | None = None) -> pd.DataFrame:
    """Plan, render and write the generated dataset into ``out``; returns the manifest frame."""
    from babelfuse.data.manifest import write_source

    posts = plan_posts(data, seed)
    clear_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    durations = render_media(posts, out, data, workers or worker_count())
    frame = manifest_frame(posts)
    frame.to_parquet(out / "manifest.parquet", index=False)
    latent = latent_frame(posts)
    latent["audio_seconds"] = np.round(durations, 4)
    latent.to_parquet(out / "latent.parquet", index=False)
    write_source(out / "source.json", "generated", out, seed=seed, size=data["size"])
    return frame


def counts(frame: pd.DataFrame) -> dict[str, float]:
    """Posts per split, per split and language, per split and label (MLflow metrics)."""
    metrics: dict[str, float] = {"n_posts": float(len(frame))}
    for split, part in frame.groupby("split"):
        metrics[f"n_{split}"] = float(len(part))
        for lang, n in part["lang"].value_counts().items():
            metrics[f"n_{split}_{lang}"] = float(n)
        for label, n in part["label"].value_counts().items():
            metrics[f"n_{split}_{label}"] = float(n)
    return metrics
