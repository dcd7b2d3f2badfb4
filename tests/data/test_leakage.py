"""Sentence length and clip duration must not tell the label or whether a modality is informative."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
import yaml
from sklearn.metrics import roc_auc_score

from babelfuse.data import generate, plan
from babelfuse.labels import LABELS

REPO = Path(__file__).resolve().parents[2]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def latent() -> pd.DataFrame:
    """The default-size plan's latent frame (no media: planning only)."""
    data = copy.deepcopy(PARAMS["data"])
    return plan.latent_frame(plan.plan_posts({**data, "size": "default"}, seed=42))


def aucs(part: pd.DataFrame, column: str) -> dict[str, float]:
    """AUC of ``column`` for text-informative vs not, and for each label among text-informative posts."""
    out = {"informative": roc_auc_score(part.text_informative, part[column])}
    sentiment = part[part.text_informative]
    for label in LABELS:
        out[label] = roc_auc_score(sentiment.label == label, sentiment[column])
    return out


def test_sentence_length_says_little_about_label_or_informativeness_in_training_data(latent) -> None:
    for lang, part in latent[latent.split == "train"].groupby("lang"):
        for what, auc in aucs(part, "text_chars").items():
            assert 0.4 <= auc <= 0.6, (lang, what, auc)


def test_sentence_length_is_matched_on_average_in_the_held_out_splits_of_the_source_language(latent) -> None:
    """Translation groups are length-matched in the source languages (the only choice that never depends on
    ``data.languages``); held-out pools are small, so single numbers vary: on average they match."""
    source = PARAMS["data"]["source_langs"]
    for split in ("test", "gate"):
        part = latent[(latent.split == split) & latent.lang.isin(source)]
        deviations = [abs(auc - 0.5) for auc in aucs(part, "text_chars").values()]
        assert np.mean(deviations) <= 0.12, (split, np.round(deviations, 2))
    # Not asserted (docs/DATA.md, known limitations): target-language test/gate and fewshot posts, whose
    # pools hold 4-6 templates per key, cannot always be matched (e.g. de fillers are shorter than de
    # sentiment sentences); the length signal is absent from train, so no model can learn it there.


def test_clip_duration_is_independent_of_label_and_of_every_informativeness(latent) -> None:
    assert roc_auc_score(latent.text_informative, latent.clip_seconds) == pytest.approx(0.5, abs=0.04)
    assert roc_auc_score(latent.audio_informative, latent.clip_seconds) == pytest.approx(0.5, abs=0.04)
    for label in LABELS:
        assert roc_auc_score(latent.label == label, latent.clip_seconds) == pytest.approx(0.5, abs=0.04)


def test_rendered_clips_have_the_planned_duration(tmp_path: Path) -> None:
    data = copy.deepcopy(PARAMS["data"])
    data.update(
        size="micro",
        sizes={
            "micro": {"train": 6, "val": 3, "test_per_lang": 3, "gate_per_lang": 3, "fewshot_per_lang": 3}
        },
        languages=["en", "zh"],
        image_size=32,
        interactions={"irony": 0.5, "reliability": 0.5},
    )
    generate.generate_dataset(data, 4, tmp_path, workers=1)
    latent = pd.read_parquet(tmp_path / "latent.parquet")
    manifest = pd.read_parquet(tmp_path / "manifest.parquet")
    for row, path in zip(latent.itertuples(), manifest.audio_path, strict=True):
        samples, rate = soundfile.read(tmp_path / path, dtype="float32")
        assert len(samples) == round(row.clip_seconds * rate), path
        assert np.sqrt(np.mean(samples**2)) > 0.01, path  # speech, not only padding
    degraded = latent.degraded_voice.to_numpy()
    assert degraded.any() and not degraded.all()
    clipped = [np.mean(np.abs(soundfile.read(tmp_path / p)[0]) >= 0.3) for p in manifest.audio_path]
    assert min(np.array(clipped)[degraded]) > max(np.array(clipped)[~degraded])  # degraded = clipped
