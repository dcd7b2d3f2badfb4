"""Decoding and media encoding of a request's posts: in the serving process, or split over processes.

Most of a prediction's time is per-post numpy/scipy work that holds the GIL — base64 and media
decoding, the ``image`` and ``audio`` encoders — so threads cannot spread it over cores.
:class:`MediaPool` splits a large batch into contiguous chunks, one per worker process
(``register.media_processes``); every chunk runs :func:`decode_and_encode`, the function the
serving process runs itself on small batches, so the answers are the same row for row whatever the
split (tested). Text stays in the serving process, whose text encoder is already loaded.

Workers start with ``spawn`` (no fork of a process holding TensorFlow's threads), build their own
encoders from the served model's ``serving.json`` and exchange rows (str / bytes / None) and float32
arrays with the server over multiprocessing pipes. Those pipes carry pickles that this server's own
processes wrote; a caller's bytes are never unpickled. A worker that dies (e.g. killed for memory)
costs its request nothing: the pool is rebuilt and that batch is done in the serving process.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from babelfuse.errors import BabelfuseError
from babelfuse.features.base import Encoder
from babelfuse.features.registry import get_encoder
from babelfuse.serving import memory
from babelfuse.serving.inputs import Languages, Limits, Post, PostError, check_post, served_languages

log = logging.getLogger("babelfuse.serving.media_pool")

MEDIA: tuple[str, ...] = ("image", "audio")
ENV = "BABELFUSE_MEDIA_PROCESSES"  # overrides register.media_processes when the model is loaded
RowError = tuple[int, str, str]  # PostError's (row, field, reason): exceptions do not pickle back


@dataclass(frozen=True)
class MediaContext:
    """What :func:`decode_and_encode` needs besides the rows: checks, limits and the media encoders."""

    languages: Languages
    limits: Limits
    image_size: int
    sample_rate: int
    encoders: dict[str, Encoder]

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> MediaContext:
        """From a ``serving.json``, with the image and audio encoders it names (a worker's own)."""
        features = cfg["features"]
        built = {m: get_encoder(m, str(features[m]["encoder"]), features[m]) for m in MEDIA}
        return cls(
            languages=served_languages(cfg),
            limits=Limits.from_config(cfg["limits"]),
            image_size=int(features["image"]["size"]),
            sample_rate=int(features["audio"]["sample_rate"]),
            encoders=built,
        )


@dataclass
class Decoded:
    """Posts after decoding and media encoding; a post's media arrays are dropped once encoded.

    ``media[m]`` is the raw (unscaled) encoder output, zeros where ``present[:, j]`` is False;
    ``errors[i]`` is None or the row's :class:`PostError` as ``(row, field, reason)``.
    """

    posts: list[Post | None]
    errors: list[RowError | None]
    media: dict[str, np.ndarray]
    present: np.ndarray  # (n, len(MEDIA)) bool
    # text vectors (or failure reasons) the serving process computed while workers decoded, by row
    texts: dict[int, np.ndarray | str] | None = None

    @staticmethod
    def concat(parts: list[Decoded]) -> Decoded:
        return Decoded(
            posts=[p for part in parts for p in part.posts],
            errors=[e for part in parts for e in part.errors],
            media={m: np.concatenate([part.media[m] for part in parts]) for m in MEDIA},
            present=np.concatenate([part.present for part in parts]),
        )


def decode_and_encode(
    ctx: MediaContext, root: Path | None, offset: int, rows: list[dict[str, Any]]
) -> Decoded:
    """Check and decode every row (row numbers start at ``offset``), then encode its image and audio."""
    posts: list[Post | None] = []
    errors: list[RowError | None] = []
    for k, row in enumerate(rows):
        try:
            posts.append(
                check_post(offset + k, row, ctx.languages, ctx.limits, root, ctx.image_size, ctx.sample_rate)
            )
            errors.append(None)
        except PostError as err:
            posts.append(None)
            errors.append((err.row, err.field, err.reason))
    media = {m: np.zeros((len(rows), ctx.encoders[m].dim), dtype=np.float32) for m in MEDIA}
    present = np.zeros((len(rows), len(MEDIA)), dtype=bool)
    for j, m in enumerate(MEDIA):
        todo = [k for k, p in enumerate(posts) if p is not None and getattr(p, m) is not None]
        for k, vector in zip(
            todo, encode_each(ctx.encoders[m], [getattr(posts[k], m) for k in todo]), strict=True
        ):
            if isinstance(vector, str):
                errors[k], posts[k] = (offset + k, "post", vector), None
            else:
                media[m][k], present[k, j] = vector, True
    lite = [None if p is None else replace(p, image=None, audio=None) for p in posts]
    return Decoded(lite, errors, media, present)


def encode_each(encoder: Encoder, values: list[Any]) -> list[np.ndarray | str]:
    """The encoder on the whole batch; if that fails, value by value. A failure is its reason (str).

    The traceback goes to the log only; the caller's answer names the post, not the code.
    """
    if not values:
        return []
    try:
        return list(np.asarray(encoder.encode(values), dtype=np.float32))
    except Exception:  # noqa: BLE001 - find the value(s) that break the batch
        log.exception(
            "%s encoder failed on a batch of %d; encoding one by one", encoder.modality, len(values)
        )
    out: list[np.ndarray | str] = []
    for value in values:
        try:
            out.append(np.asarray(encoder.encode([value]), dtype=np.float32)[0])
        except Exception as err:  # noqa: BLE001 - this value's problem only
            out.append(f"cannot encode this post ({type(err).__name__})")
    return out


def pool_settings(cfg: dict[str, Any], override: str | None) -> tuple[int, int]:
    """(processes, min_posts) of a ``serving.json`` (``media_pool``; none: 0), ``override`` = the env value."""
    stored = cfg.get("media_pool") or {}
    processes, min_posts = int(stored.get("processes", 0)), int(stored.get("min_posts", 32))
    if override not in (None, ""):
        if not override.strip().isdigit():
            raise BabelfuseError(
                f"{ENV} must be a whole number >= 0 (0: no media processes), got {override!r}"
            )
        processes = int(override)
    return processes, min_posts


_WORKER: MediaContext | None = None  # per worker process, built by the initializer


def _init_worker(cfg: dict[str, Any]) -> None:
    global _WORKER
    memory.configure(cfg)
    _WORKER = MediaContext.from_config(cfg)
    warm_up(_WORKER.encoders)


def warm_up(encoders: dict[str, Encoder]) -> None:
    """Encode one tiny image and clip, so one-time costs (lookup tables, first-call allocations) are paid at start."""
    samples = {
        "image": np.zeros((8, 8, 3), np.uint8),
        "audio": (0.1 * np.sin(np.arange(4000) * 0.05)).astype(np.float32),
    }
    for modality, encoder in encoders.items():
        if modality in samples:
            encode_each(encoder, [samples[modality]])


def _work(root: Path | None, offset: int, rows: list[dict[str, Any]]) -> Decoded:
    assert _WORKER is not None, "media worker not initialised"
    return decode_and_encode(_WORKER, root, offset, rows)


def _ready() -> bool:
    time.sleep(0.2)  # holds this worker, so the next warm-up task starts another process
    return _WORKER is not None


class MediaPool:
    """``processes`` spawned workers for batches of at least ``min_posts`` posts (smaller ones stay here)."""

    def __init__(self, cfg: dict[str, Any], processes: int, min_posts: int) -> None:
        self.cfg, self.processes, self.min_posts = cfg, int(processes), int(min_posts)
        self.executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        started = time.perf_counter()
        executor = ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.cfg,),
        )
        ready = [
            executor.submit(_ready) for _ in range(self.processes)
        ]  # encoders built before the first request
        if not all(f.result() for f in ready):
            raise RuntimeError("a media worker did not initialise")
        log.info(
            "media pool: %d processes ready in %.1f s (batches of >= %d posts are split over them)",
            self.processes,
            time.perf_counter() - started,
            self.min_posts,
        )
        return executor

    def wanted(self, n: int) -> bool:
        return n >= self.min_posts

    def run(
        self,
        ctx: MediaContext,
        root: Path | None,
        rows: list[dict[str, Any]],
        meanwhile: Callable[[], None] = lambda: None,
    ) -> Decoded:
        """:func:`decode_and_encode` of ``rows`` in contiguous chunks, one per worker, in row order;
        ``meanwhile`` runs in this process while the workers do (the server's own share of the work)."""
        bounds = np.linspace(0, len(rows), self.processes + 1).astype(int)
        try:
            futures = [
                self.executor.submit(_work, root, int(a), rows[a:b])
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)
                if b > a
            ]
            meanwhile()
            return Decoded.concat([f.result() for f in futures])
        except BrokenProcessPool:
            log.exception(
                "a media worker died; restarting the pool and doing this batch in the serving process"
            )
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self._start()
            return decode_and_encode(ctx, root, 0, rows)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
