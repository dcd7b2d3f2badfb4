"""Large batches split over media worker processes give the answers of the serving process, row for row."""

from __future__ import annotations

import os
import signal

import pandas as pd
import pytest

from babelfuse.errors import BabelfuseError
from babelfuse.serving import media_pool
from babelfuse.serving.inputs import PostError
from babelfuse.serving.pyfunc import Predictor
from helpers.serving import b64


def _batch(world) -> pd.DataFrame:
    """Every world post with its media, twice, plus rows that fail in decoding and in checking."""
    posts = world.posts

    def media(path) -> str | None:
        return b64(world.root / path) if isinstance(path, str) else None

    rows = [
        {"text": t, "lang": lang, "image": media(i), "audio": media(a)}
        for t, lang, i, a in zip(
            posts["text"], posts["lang"], posts["image_path"], posts["audio_path"], strict=True
        )
    ] * 2  # 48 posts; some lack a modality
    rows[3] = {**rows[3], "image": "bm90IGFuIGltYWdl"}  # base64 of "not an image"
    rows[5] = {"text": None, "lang": "en", "image": None, "audio": None}
    return pd.DataFrame(rows, dtype=object)


@pytest.fixture
def pooled(world):
    a = world.saved / "artifacts"
    predictor = Predictor.from_files(
        a / "good.keras", a / "scalers.json", a / "temperature.json", a / "serving.json"
    )
    predictor.start_pool(2, min_posts=2)
    yield predictor
    predictor.pool.close()


def test_a_batch_split_over_two_processes_answers_like_the_serving_process(world, predictor, pooled) -> None:
    frame = _batch(world)
    assert pooled.pool is not None and pooled.pool.wanted(len(frame))
    want, got = predictor.predict(frame), pooled.predict(frame)
    assert want["error"].notna().sum() == 2, "the fixture should hold a decode failure and an empty post"
    assert got["error"][3].startswith("row 3: image:") and got["error"][5].startswith("row 5:")
    pd.testing.assert_frame_equal(got, want)
    with pytest.raises(PostError, match=r"^row 3: image:"):
        pooled.predict(frame, on_error="raise")


def test_a_killed_worker_costs_its_request_nothing(world, predictor, pooled) -> None:
    frame = _batch(world)
    for pid in list(pooled.pool.executor._processes):  # the executor's own process table
        os.kill(pid, signal.SIGKILL)
    pd.testing.assert_frame_equal(pooled.predict(frame), predictor.predict(frame))
    pd.testing.assert_frame_equal(pooled.predict(frame), predictor.predict(frame))  # the rebuilt pool serves


def test_pool_settings_come_from_the_bundle_and_the_environment_overrides_them() -> None:
    cfg = {"media_pool": {"processes": 2, "min_posts": 16}}
    assert media_pool.pool_settings(cfg, None) == (2, 16)
    assert media_pool.pool_settings(cfg, "0") == (0, 16)
    assert media_pool.pool_settings({}, None) == (0, 32)  # a bundle registered before the pool existed
    with pytest.raises(BabelfuseError, match="BABELFUSE_MEDIA_PROCESSES must be a whole number"):
        media_pool.pool_settings(cfg, "two")
