"""Planning the generated dataset: every post's label, text, informativeness, face cues and prosody.

Pure and in memory (no media, no I/O), so the protocol can be tested fast. Every random draw comes
from a generator seeded by ``(seed, stream, split, index, language)``, so a post never depends on
how many other posts there are or in which order media get rendered.

Protocol (zero-shot cross-lingual): train and val only in ``data.source_langs``; test in every
language of ``data.languages``, built from translation groups: each test meaning is rendered in every
language with the same label and template id, while image and audio are drawn per post.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from babelfuse.data import audio_gen, image_gen, text_gen
from babelfuse.data.espeak import Prosody
from babelfuse.errors import BabelfuseError
from babelfuse.labels import LABELS, LANGUAGES

if TYPE_CHECKING:
    import pandas as pd

MODALITY_STREAM = {"text": 1, "image": 2, "audio": 3, "flags": 4}
SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class Post:
    """Everything decided about one post before any media is rendered."""

    sample_id: str
    split: str
    lang: str
    label: str
    text: str
    spoken: str
    template_id: int
    text_informative: bool
    image_informative: bool
    audio_informative: bool
    cues: image_gen.FaceCues
    prosody: Prosody
    image_seed: int
    audio_seed: int


def split_sizes(data: dict[str, Any]) -> dict[str, int]:
    """``data.sizes[data.size]`` as {train, val, test_per_lang}; a clear error for an unknown size."""
    size = data.get("size", "default")
    sizes = data.get("sizes") or {}
    if size not in sizes:
        raise BabelfuseError(f"data.size={size!r} is not a key of data.sizes ({', '.join(sizes) or 'none'})")
    chosen = sizes[size]
    missing = [k for k in ("train", "val", "test_per_lang") if k not in chosen]
    if missing:
        raise BabelfuseError(f"data.sizes.{size} lacks {', '.join(missing)}")
    return {k: int(chosen[k]) for k in ("train", "val", "test_per_lang")}


def check_languages(languages: list[str], source_langs: list[str]) -> None:
    """Every language must be known to labels.LANGUAGES and have a text-template YAML."""
    have_yaml = set(text_gen.available_languages())
    for lang in languages:
        if lang not in LANGUAGES:
            raise BabelfuseError(f"data.languages: '{lang}' is not in babelfuse.labels.LANGUAGES")
        if lang not in have_yaml:
            raise BabelfuseError(f"data.languages: '{lang}' has no src/babelfuse/data/languages/{lang}.yaml")
    extra = [lang for lang in source_langs if lang not in languages]
    if not source_langs or extra:
        raise BabelfuseError(f"data.source_langs must be a non-empty subset of data.languages (not {extra})")


def informativeness(data: dict[str, Any]) -> dict[str, float]:
    """``data.informativeness`` as {text, image, audio} probabilities in [0, 1]."""
    given = data.get("informativeness") or {}
    info = {}
    for modality in ("text", "image", "audio"):
        value = given.get(modality)
        if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
            raise BabelfuseError(f"data.informativeness.{modality} must be a number in [0, 1], not {value!r}")
        info[modality] = float(value)
    return info


def balanced_labels(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` labels, as equal per class as ``n`` allows, in random order."""
    labels = [LABELS[i % len(LABELS)] for i in range(n)]
    return [labels[i] for i in rng.permutation(n)]


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


def _post(
    seed: int,
    keys: tuple[int, ...],
    sample_id: str,
    split: str,
    lang: str,
    label: str,
    spec: text_gen.TextSpec,
    info: dict[str, float],
) -> Post:
    """One post of a spec in one language; image and audio choices are drawn per post."""
    flags = _rng(seed, MODALITY_STREAM["flags"], *keys).random(2)
    image_informative, audio_informative = bool(flags[0] < info["image"]), bool(flags[1] < info["audio"])
    image_rng = _rng(seed, MODALITY_STREAM["image"], *keys)
    audio_rng = _rng(seed, MODALITY_STREAM["audio"], *keys)
    rendered = text_gen.render(spec, lang)
    return Post(
        sample_id=sample_id,
        split=split,
        lang=lang,
        label=label,
        text=rendered.text,
        spoken=rendered.spoken,
        template_id=int(text_gen.template_id(spec)),
        text_informative=spec.kind == "sentiment",
        image_informative=image_informative,
        audio_informative=audio_informative,
        cues=image_gen.draw_cues(label, image_informative, image_rng),
        prosody=audio_gen.draw_prosody(label, audio_informative, audio_rng),
        image_seed=int(image_rng.integers(0, 2**31 - 1)),
        audio_seed=int(audio_rng.integers(0, 2**31 - 1)),
    )


def plan_posts(data: dict[str, Any], seed: int) -> list[Post]:
    """Decide every post (labels, texts, informativeness, face cues, prosody) from ``seed`` alone."""
    sizes = split_sizes(data)
    languages, source_langs = list(data["languages"]), list(data["source_langs"])
    check_languages(languages, source_langs)
    info = informativeness(data)
    posts: list[Post] = []
    for split in ("train", "val"):
        code = SPLIT_CODE[split]
        for li, lang in enumerate(source_langs):
            n = sizes[split] // len(source_langs) + (li < sizes[split] % len(source_langs))
            labels = balanced_labels(n, _rng(seed, 0, code, li))
            for i, label in enumerate(labels):
                keys = (code, i, li)
                text_rng = _rng(seed, MODALITY_STREAM["text"], *keys)
                spec = text_gen.draw_spec(label, bool(text_rng.random() < info["text"]), text_rng)
                posts.append(_post(seed, keys, f"{split}-{lang}-{i:05d}", split, lang, label, spec, info))
    code = SPLIT_CODE["test"]
    for g, label in enumerate(balanced_labels(sizes["test_per_lang"], _rng(seed, 0, code))):
        text_rng = _rng(seed, MODALITY_STREAM["text"], code, g)
        spec = text_gen.draw_spec(label, bool(text_rng.random() < info["text"]), text_rng)
        for lang in languages:
            keys = (code, g, list(LANGUAGES).index(lang))
            posts.append(_post(seed, keys, f"test-{lang}-{g:05d}", "test", lang, label, spec, info))
    return posts


def manifest_frame(posts: list[Post]) -> pd.DataFrame:
    """The manifest (ARCHITECTURE.md contract) of the planned posts; media paths relative to the out folder."""
    import pandas as pd

    return pd.DataFrame(
        {
            "sample_id": [p.sample_id for p in posts],
            "split": [p.split for p in posts],
            "lang": [p.lang for p in posts],
            "text": [p.text for p in posts],
            "image_path": [f"images/{p.sample_id}.png" for p in posts],
            "audio_path": [f"audio/{p.sample_id}.wav" for p in posts],
            "label": [p.label for p in posts],
            "template_id": np.array([p.template_id for p in posts], dtype=np.int64),
        }
    )


def latent_frame(posts: list[Post]) -> pd.DataFrame:
    """The hidden generative choices per post, for analysis (not a model input)."""
    import pandas as pd

    rows = []
    for p in posts:
        rows.append(
            {
                "sample_id": p.sample_id,
                "text_informative": p.text_informative,
                "image_informative": p.image_informative,
                "audio_informative": p.audio_informative,
                **{f"face_{k}": v for k, v in asdict(p.cues).items()},
                **{f"prosody_{k}": v for k, v in asdict(p.prosody).items()},
                "spoken": p.spoken,
            }
        )
    return pd.DataFrame(rows)
