"""Planning the generated dataset: every post's label, text, hidden states, face cues, prosody, clip length.

Pure and in memory (no media, no I/O), so the protocol can be tested fast. Every random draw comes
from a generator seeded by stable keys ``(seed, stream, split code, post index, language id)``, where
the language id is a hash of the language code (:func:`lang_key`), never a position in a list: adding,
removing or reordering a language leaves every other language's posts unchanged.

Protocol (zero-shot cross-lingual, content held out):

- The *content* (the sentiment templates of each class and the filler templates) is partitioned once
  per seed into four disjoint pools (:func:`content_pools`, shares ``data.content_split``):
  ``trainval`` (train and val), ``gate``, ``test`` and ``fewshot``. A post only uses templates of its
  split's pool, so no test or gate template, in any language and with any slots, occurs in train/val.
- ``train`` and ``val``: only ``data.source_langs``, classes balanced.
- ``test`` and ``gate``: every language of ``data.languages``, built from translation groups (one
  meaning rendered in every language with the same label and template id; media drawn per post),
  classes balanced in every language.
- ``fewshot``: the target languages (``languages - source_langs``), a labelled pool from its own
  templates for the few-shot curve; never overlapping test or gate.

The generative model itself (informativeness, irony, voice reliability) lives in :mod:`.latent`.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from babelfuse.data import espeak, text_gen
from babelfuse.data.espeak import Prosody
from babelfuse.data.image_gen import FaceCues
from babelfuse.data.latent import (
    Interactions,
    Latent,
    draw_group,
    draw_media,
    interactions,
    lang_key,
    rng,
)
from babelfuse.errors import BabelfuseError
from babelfuse.labels import LABELS, LANGUAGES

if TYPE_CHECKING:
    import pandas as pd

SPLIT_CODE = {"train": 0, "val": 1, "test": 2, "gate": 3, "fewshot": 4}
POOLS: tuple[str, ...] = ("trainval", "gate", "test", "fewshot")
POOL_OF = {"train": "trainval", "val": "trainval", "test": "test", "gate": "gate", "fewshot": "fewshot"}
SIZE_KEYS: tuple[str, ...] = ("train", "val", "test_per_lang", "gate_per_lang", "fewshot_per_lang")
STREAM_LABELS, STREAM_PARTITION, STREAM_TEXT = 5, 6, 1

Pools = dict[str, dict[str, tuple[int, ...]]]  # pool -> template key -> template indices


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
    template_index: int  # index of the template in its key's list (latent.text_key) in every language file
    latent: Latent
    image_seed: int
    audio_seed: int

    @property
    def cues(self) -> FaceCues:
        return self.latent.cues

    @property
    def prosody(self) -> Prosody:
        return self.latent.prosody


def split_sizes(data: dict[str, Any]) -> dict[str, int]:
    """``data.sizes[data.size]`` as {train, val, test_per_lang, gate_per_lang, fewshot_per_lang}."""
    size, sizes = data["size"], data["sizes"]
    if size not in sizes:
        raise BabelfuseError(f"data.size={size!r} is not a key of data.sizes ({', '.join(sizes) or 'none'})")
    chosen = sizes[size]
    missing = [k for k in SIZE_KEYS if k not in chosen]
    if missing:
        raise BabelfuseError(f"data.sizes.{size} lacks {', '.join(missing)}")
    return {k: int(chosen[k]) for k in SIZE_KEYS}


def check_languages(languages: list[str], source_langs: list[str]) -> None:
    """Every language must be known to labels.LANGUAGES and have a text-template YAML."""
    have_yaml = set(text_gen.available_languages())
    for lang in languages:
        if lang not in LANGUAGES:
            raise BabelfuseError(f"data.languages: '{lang}' is not in babelfuse.labels.LANGUAGES")
        if lang not in have_yaml:
            raise BabelfuseError(f"data.languages: '{lang}' has no src/babelfuse/data/languages/{lang}.yaml")
    espeak.check_voices((lang, LANGUAGES[lang].espeak_voice) for lang in languages)  # before any rendering
    extra = [lang for lang in source_langs if lang not in languages]
    if not source_langs or extra:
        raise BabelfuseError(f"data.source_langs must be a non-empty subset of data.languages (not {extra})")


def informativeness(data: dict[str, Any]) -> dict[str, float]:
    """``data.informativeness`` as {text, image, audio} probabilities in [0, 1]."""
    given = data["informativeness"]
    info = {}
    for modality in ("text", "image", "audio"):
        value = given.get(modality) if isinstance(given, dict) else None
        if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
            raise BabelfuseError(f"data.informativeness.{modality} must be a number in [0, 1], not {value!r}")
        info[modality] = float(value)
    return info


def content_shares(data: dict[str, Any]) -> dict[str, float]:
    """``data.content_split`` as {trainval, gate, test, fewshot} shares (positive, normalised to sum 1)."""
    given = data["content_split"]
    shares = {}
    for pool in POOLS:
        value = given.get(pool) if isinstance(given, dict) else None
        if not isinstance(value, int | float) or float(value) <= 0.0:
            raise BabelfuseError(f"data.content_split.{pool} must be a number > 0, not {value!r}")
        shares[pool] = float(value)
    total = sum(shares.values())
    return {pool: value / total for pool, value in shares.items()}


def partition_counts(n: int, shares: dict[str, float], what: str) -> dict[str, int]:
    """How many of ``n`` items each pool gets: largest remainder, at least one per pool."""
    if n < len(shares):
        raise BabelfuseError(
            f"{what} has {n} entries: need at least {len(shares)} to give each of {list(shares)} its own"
        )
    spare = n - len(shares)
    raw = {pool: share * spare for pool, share in shares.items()}
    counts = {pool: 1 + int(np.floor(v)) for pool, v in raw.items()}
    by_remainder = sorted(shares, key=lambda p: (-(raw[p] - np.floor(raw[p])), POOLS.index(p)))
    for pool in by_remainder[: n - sum(counts.values())]:
        counts[pool] += 1
    return counts


def content_pools(seed: int, shares: dict[str, float]) -> Pools:
    """Disjoint template indices per pool and template key, a seeded permutation of each key's list."""
    shape = text_gen.structure()
    pools: Pools = {pool: {} for pool in POOLS}
    for k, key in enumerate(text_gen.TEMPLATE_KEYS):
        n = len(shape.template_slots[key])
        counts = partition_counts(n, shares, f"every language file's templates.{key}")
        order = rng(seed, STREAM_PARTITION, k).permutation(n)
        start = 0
        for pool in POOLS:
            pools[pool][key] = tuple(sorted(int(i) for i in order[start : start + counts[pool]]))
            start += counts[pool]
    return pools


def balanced_labels(n: int, generator: np.random.Generator) -> list[str]:
    """``n`` labels, as equal per class as ``n`` allows, in random order."""
    labels = [LABELS[i % len(LABELS)] for i in range(n)]
    return [labels[i] for i in generator.permutation(n)]


@dataclass(frozen=True)
class Context:
    """What every post of one plan shares."""

    seed: int
    info: dict[str, float]
    inter: Interactions
    pools: Pools
    source_langs: list[str]  # translation groups match sentence lengths in these


def _posts_of_group(
    ctx: Context, split: str, index: int, label: str, langs: list[str], key_lang: str | None
) -> list[Post]:
    """One meaning (label, text spec, group latents) rendered in each of ``langs``.

    ``key_lang`` names the language whose id keys the meaning's draws (train/val/fewshot: the post's
    language; test/gate translation groups: None, the same meaning for every language).
    """
    code = SPLIT_CODE[split]
    group_keys = (code, index) if key_lang is None else (code, index, lang_key(key_lang))
    text_rng = rng(ctx.seed, STREAM_TEXT, *group_keys)
    group = draw_group(label, ctx.info, ctx.inter, text_rng)
    match = [key_lang] if key_lang is not None else ctx.source_langs  # never the language list: stable seeds
    spec = text_gen_spec(label, group.text_key, ctx.pools[POOL_OF[split]], text_rng, match)
    posts = []
    for lang in langs:
        keys = (code, index, lang_key(lang))
        latent, image_seed, audio_seed = draw_media(ctx.seed, keys, label, group, ctx.info, ctx.inter)
        rendered = text_gen.render(spec, lang)
        posts.append(
            Post(
                sample_id=f"{split}-{lang}-{index:05d}",
                split=split,
                lang=lang,
                label=label,
                text=rendered.text,
                spoken=rendered.spoken,
                template_id=int(text_gen.template_id(spec)),
                template_index=spec.template,
                latent=latent,
                image_seed=image_seed,
                audio_seed=audio_seed,
            )
        )
    return posts


def text_gen_spec(
    label: str,
    text_key: str,
    pool: dict[str, tuple[int, ...]],
    generator: np.random.Generator,
    langs: list[str],
) -> text_gen.TextSpec:
    """A text spec of template key ``text_key`` from ``pool``, its length matched across keys.

    A reference template is drawn from the pool's *common-length* templates (:func:`common_references`,
    whatever their key), then the ``text_key`` template whose lengths in ``langs`` (the post's
    language; for translation groups the source languages, so that the language list never changes
    a choice) are nearest to the reference's is taken (ties at random). Every key's lengths follow the same reference
    distribution within a tolerance, so length says little about the label or the informativeness
    (measured in tests/data/test_leakage.py).
    """
    lengths = template_lengths(tuple(langs))
    reference = common_references(pool, tuple(langs))
    target = lengths[reference[int(generator.integers(len(reference)))]]
    candidates = np.array(pool[text_key])
    distance = np.array([_distance(lengths[(text_key, int(i))], target) for i in candidates])
    nearest = candidates[distance <= distance.min() + 1e-12]
    template = int(nearest[int(generator.integers(len(nearest)))])
    shape = text_gen.structure()
    names = shape.template_slots[text_key][template]
    slots = tuple((name, int(generator.integers(shape.slot_sizes[name]))) for name in names)
    if text_key == text_gen.FILLER:
        return text_gen.TextSpec(label, text_gen.FILLER, template, slots)
    return text_gen.TextSpec(text_key, "sentiment", template, slots)  # ironic posts: text_key != label


LENGTH_TOLERANCE = 0.08  # RMS over languages of the log-length difference that counts as "the same length"


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def common_references(pool: dict[str, tuple[int, ...]], langs: tuple[str, ...]) -> list[tuple[str, int]]:
    """The pool's templates (any key) that every key can match within the tolerance (doubled until some are)."""
    return list(_common_references(tuple((key, pool[key]) for key in text_gen.TEMPLATE_KEYS), langs))


@functools.lru_cache(maxsize=256)
def _common_references(items: tuple[tuple[str, tuple[int, ...]], ...], langs: tuple[str, ...]) -> tuple:
    pool = dict(items)
    lengths = template_lengths(langs)
    every = [(key, i) for key in text_gen.TEMPLATE_KEYS for i in pool[key]]
    tolerance = LENGTH_TOLERANCE
    while True:
        common = [
            ref
            for ref in every
            if all(
                min(_distance(lengths[(key, i)], lengths[ref]) for i in pool[key]) <= tolerance
                for key in text_gen.TEMPLATE_KEYS
            )
        ]
        if common:
            return tuple(common)
        tolerance *= 2


@functools.lru_cache(maxsize=64)
def template_lengths(langs: tuple[str, ...]) -> dict[tuple[str, int], np.ndarray]:
    """Per template: the log of its rendered length (average slot fillers) in each of ``langs``."""
    shape = text_gen.structure()
    table: dict[tuple[str, int], list[float]] = {}
    for code in langs:
        lang = text_gen.load_language(code)
        slot_len = {name: float(np.mean([len(p.text) for p in v])) for name, v in lang.slots.items()}
        for key in text_gen.TEMPLATE_KEYS:
            for i, phrase in enumerate(lang.templates[key]):
                names = shape.template_slots[key][i]
                bare = len(text_gen._SLOT.sub("", phrase.text))
                chars = bare + sum(slot_len[n] * phrase.text.count("{" + n + "}") for n in names)
                table.setdefault((key, i), []).append(float(np.log(max(chars, 1.0))))
    return {k: np.asarray(v) for k, v in table.items()}


def plan_posts(data: dict[str, Any], seed: int) -> list[Post]:
    """Decide every post of every split from ``seed`` and the ``data`` params alone."""
    sizes = split_sizes(data)
    languages, source_langs = list(data["languages"]), list(data["source_langs"])
    check_languages(languages, source_langs)
    pools = content_pools(seed, content_shares(data))
    ctx = Context(seed, informativeness(data), interactions(data), pools, source_langs)
    targets = [lang for lang in languages if lang not in source_langs]
    posts: list[Post] = []
    for split in ("train", "val"):
        for li, lang in enumerate(source_langs):
            n = sizes[split] // len(source_langs) + (li < sizes[split] % len(source_langs))
            posts += _language_posts(ctx, split, lang, n)
    for split in ("test", "gate"):
        labels = balanced_labels(sizes[f"{split}_per_lang"], rng(seed, STREAM_LABELS, SPLIT_CODE[split]))
        for g, label in enumerate(labels):
            posts += _posts_of_group(ctx, split, g, label, languages, None)
    for lang in targets:
        posts += _language_posts(ctx, "fewshot", lang, sizes["fewshot_per_lang"])
    return posts


def _language_posts(ctx: Context, split: str, lang: str, n: int) -> list[Post]:
    """``n`` posts of one language with their own meanings (train, val, fewshot), classes balanced."""
    labels = balanced_labels(n, rng(ctx.seed, STREAM_LABELS, SPLIT_CODE[split], lang_key(lang)))
    return [p for i, label in enumerate(labels) for p in _posts_of_group(ctx, split, i, label, [lang], lang)]


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
    """The hidden generative choices per post, for analysis and the ceiling (never a model input)."""
    import pandas as pd

    rows = []
    for p in posts:
        lat = p.latent
        rows.append(
            {
                "sample_id": p.sample_id,
                "split": p.split,
                "lang": p.lang,
                "label": p.label,
                "template_id": p.template_id,
                "text_key": lat.text_key,
                "template_index": p.template_index,
                "text_informative": lat.text_informative,
                "image_informative": lat.image_informative,
                "audio_informative": lat.audio_informative,
                "ironic": lat.ironic,
                "flat_voice": lat.flat,
                "degraded_voice": lat.degraded,
                **{f"face_{k}": v for k, v in asdict(lat.cues).items()},
                **{f"prosody_{k}": v for k, v in asdict(lat.prosody).items()},
                "clip_seconds": lat.clip_seconds,
                "text_chars": len(p.text),
                "spoken": p.spoken,
            }
        )
    return pd.DataFrame(rows)
