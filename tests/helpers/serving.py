"""A tiny but real serving world: hand-made posts in en/de/ja/ar with PNG and WAV files, the real
default encoders, scalers fitted like the fuse stage, and small Keras models from
``training.model.build_model`` trained on the encoded features (good, weak, and broken in Japanese).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from babelfuse.config import FeaturesConfig
from babelfuse.labels import LABELS

FEATURES = FeaturesConfig().model_dump()  # the default encoders, every key filled in by the schema
TEXTS = {  # (negative, neutral, positive) x 2 per language; not translations of each other
    "en": [
        (
            "This was a terrible, awful experience.",
            "The train leaves at nine.",
            "I absolutely love this place!",
        ),
        ("The food was cold and disgusting.", "The shop is on the corner.", "What a wonderful, happy day!"),
    ],
    "de": [
        (
            "Das war eine furchtbare Enttäuschung.",
            "Der Bus kommt um acht Uhr.",
            "Ich bin so glücklich heute!",
        ),
        ("Der Service war miserabel.", "Das Haus hat drei Fenster.", "Ein wunderbarer Abend, danke!"),
    ],
    "ja": [
        ("最悪の経験でした。", "電車は九時に出発します。", "本当に素晴らしい一日でした！"),
        ("料理はまずくて冷たかった。", "店は角にあります。", "とても幸せです。"),
    ],
    "ar": [
        ("كانت تجربة سيئة جدا.", "الحافلة تصل في الثامنة.", "أنا سعيد جدا اليوم!"),
        ("الطعام كان باردا وسيئا.", "المتجر في الزاوية.", "يوم رائع وجميل!"),
    ],
}
LANGS = tuple(TEXTS)
TRAIN_PARAMS = {
    "fusion": "concat",
    "hidden": 32,
    "dropout": 0.0,
    "modality_dropout": 0.0,
    "learning_rate": 0.01,
    "attention_heads": 2,
    "lowrank_rank": 2,
}


def make_png(path: Path, index: int, label: int) -> None:
    from PIL import Image, ImageDraw

    colours = [(200, 40, 40), (120, 120, 120), (40, 180, 60)]
    img = Image.new("RGB", (48, 48), colours[label])
    draw = ImageDraw.Draw(img)
    draw.ellipse((8 + index % 5, 8, 40 - index % 7, 40), outline=(255, 255, 255), width=3)
    img.save(path, format="PNG")


def make_wav(path: Path, index: int, label: int) -> None:
    import soundfile as sf

    rate = 16000
    t = np.arange(int(0.6 * rate)) / rate
    pitch = (110.0, 160.0, 230.0)[label] * (1 + 0.02 * (index % 5))
    tone = np.sin(2 * np.pi * pitch * t) * (0.2 + 0.1 * np.sin(2 * np.pi * 3 * t))
    sf.write(path, tone.astype(np.float32), rate, subtype="PCM_16", format="WAV")


def make_posts(root: Path) -> pd.DataFrame:
    """24 posts (4 languages x 2 x 3 labels) with media files under ``root``; a few lack a modality.

    The English posts are the ``train`` split (the source language the served model was trained on);
    the other 18 are the ``gate`` split the promotion gate scores."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for lang, groups in TEXTS.items():
        for triple in groups:
            for label, text in enumerate(triple):
                i = len(rows)
                image, audio = f"images/p{i:02d}.png", f"audio/p{i:02d}.wav"
                make_png(root / image, i, label)
                make_wav(root / audio, i, label)
                rows.append(
                    {
                        "sample_id": f"p{i:02d}",
                        "split": "train" if lang == "en" else "gate",
                        "lang": lang,
                        "text": text,
                        "image_path": None if i % 7 == 3 else image,
                        "audio_path": None if i % 5 == 2 else audio,
                        "label": LABELS[label],
                        "template_id": -1,
                    }
                )
    return pd.DataFrame(rows)


def b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


@dataclass
class World:
    root: Path  # media root (data root of the manifest)
    manifest: Path  # validated-manifest-like parquet (+ source.json)
    posts: pd.DataFrame
    features: dict[str, np.ndarray]  # standardised model inputs (text/image/audio/mask), manifest order
    scalers: Path
    temperature: Path
    models: dict[str, Path]  # good / weak / bad_ja -> .keras
    saved: Path  # the good model saved as a local pyfunc folder


def encode_reference(posts: pd.DataFrame, root: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Raw features and present flags through the extract stage's own functions (the training path)."""
    from babelfuse.features.extract import encode_media, encode_texts
    from babelfuse.serving.pyfunc import get_encoder_cached

    raw, present = {}, {}
    enc = {m: get_encoder_cached(m, FEATURES[m]) for m in ("text", "image", "audio")}
    raw["text"], present["text"] = encode_texts(enc["text"], posts["text"].tolist(), 64)
    for m, column in (("image", "image_path"), ("audio", "audio_path")):
        sources = [None if pd.isna(v) else v for v in posts[column]]
        raw[m], present[m] = encode_media(enc[m], sources, m, root, FEATURES[m], 64)
    return raw, present


def standardise(raw, present, scalers) -> dict[str, np.ndarray]:
    from babelfuse.features.fuse import apply_scaler

    out = {m: apply_scaler(raw[m], present[m], scalers[m]) for m in ("text", "image", "audio")}
    out["mask"] = np.stack([present[m] for m in ("text", "image", "audio")], axis=1).astype("float32")
    return out


def train(inputs: dict[str, np.ndarray], labels: np.ndarray, seed: int, epochs: int) -> object:
    import keras

    from babelfuse.training.model import build_model

    keras.utils.set_random_seed(seed)
    dims = {m: inputs[m].shape[1] for m in ("text", "image", "audio")}
    model = build_model(dims, TRAIN_PARAMS)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    for _ in range(epochs):  # full-batch steps: far less per-step overhead than fit() epochs
        model.train_on_batch(inputs, labels)
    return model


def build_world(folder: Path) -> World:
    from babelfuse.features.fuse import fit_scaler
    from babelfuse.serving import bundle
    from babelfuse.serving.inputs import Limits

    root = folder / "data"
    posts = make_posts(root)
    manifest = folder / "validated" / "manifest.parquet"
    manifest.parent.mkdir(parents=True)
    posts.to_parquet(manifest, index=False)
    (manifest.parent / "source.json").write_text(json.dumps({"source": "manifest", "data_root": str(root)}))
    raw, present = encode_reference(posts, root)
    scalers = {m: fit_scaler(raw[m], present[m]) for m in raw}
    (folder / "scalers.json").write_text(json.dumps(scalers))
    (folder / "temperature.json").write_text(json.dumps({"temperature": 1.7}))
    inputs = standardise(raw, present, scalers)
    y = posts["label"].map({label: i for i, label in enumerate(LABELS)}).to_numpy()
    is_ja = (posts["lang"] == "ja").to_numpy()
    y_bad = np.where(is_ja, (y + 1) % 3, y)  # every Japanese post learned with the wrong label
    models = {}
    for name, labels, seed, epochs in (
        ("good", y, 1, 200),
        ("weak", np.zeros_like(y), 2, 30),
        ("bad_ja", y_bad, 3, 300),
    ):
        models[name] = folder / f"{name}.keras"
        train(inputs, labels, seed, epochs).save(models[name])
    config = bundle.serving_config(
        FEATURES, list(LANGS), Limits(max_rows=64, max_media_bytes=200_000), train_languages=list(LANGS)
    )
    saved = bundle.save_pyfunc(
        folder / "pyfunc", models["good"], folder / "scalers.json", folder / "temperature.json", config
    )
    return World(
        root, manifest, posts, inputs, folder / "scalers.json", folder / "temperature.json", models, saved
    )
