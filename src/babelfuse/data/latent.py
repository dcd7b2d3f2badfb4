"""The generative model of a post's hidden state: what each modality says and whether it can be trusted.

One post with label ``y`` (classes balanced per split):

- *Meaning level* (shared by the translations of a test/gate meaning): the text is informative with
  probability ``data.informativeness.text`` (a template of ``y``; otherwise a sentiment-free filler).
  With probability ``data.interactions.irony`` the post is spoken with a **flat voice** (a prosody of
  its own, the same for every label, so the voice alone says nothing). A flat-voiced *negative* post
  with informative text is **ironic**: its words are glowing (a *positive* template) while its face
  shows the true (negative) expression when informative. A flat-voiced positive post is never
  glowing (its text is a filler). So glowing words mean `positive` with a lively voice and
  `negative` with a flat one: a conjunction that adding per-modality evidence cannot represent.
- *Post level*: with probability ``data.interactions.reliability`` the voice is **degraded** (loud
  noise, hard clipping; rendered so by ``audio_gen``): it carries no label and the face is then
  always informative ("a noisy voice means the face decides"). Otherwise the image and audio are
  informative with probability ``data.informativeness.image`` / ``.audio``.
- Uninformative face cues and prosody settings are each drawn from the distribution of a label
  picked uniformly and independently of ``y`` (a mixture over classes): they carry no class
  information and are distinct from `neutral`.
- The clip length is drawn uniformly from ``CLIP_SECONDS`` independently of everything else (the
  speech is padded with noise to it), so duration says nothing about the label or the text.

Every draw comes from ``numpy.random.default_rng([seed, stream, *keys])`` with stable keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from babelfuse.data import audio_gen, image_gen
from babelfuse.data.espeak import Prosody
from babelfuse.data.image_gen import FaceCues
from babelfuse.errors import BabelfuseError
from babelfuse.labels import LABELS

STREAM_IMAGE, STREAM_AUDIO, STREAM_FLAGS, STREAM_CLIP = 2, 3, 4, 7
CLIP_SECONDS: tuple[float, float] = (4.5, 7.5)  # every clip's length, uniform, independent of the post
FILLER = "filler"


@dataclass(frozen=True)
class Interactions:
    irony: float  # share of posts spoken with a flat voice (negative + informative text: ironic)
    reliability: float  # share of posts whose voice is degraded (then the face decides)


@dataclass(frozen=True)
class Group:
    """The meaning-level latents (shared by all translations of a test/gate meaning)."""

    text_informative: bool
    flat: bool
    ironic: bool
    text_key: str  # the template list the text comes from: a label or "filler"


@dataclass(frozen=True)
class Latent:
    """Every hidden choice of one post (``latent.parquet``; the ceiling is computed from these)."""

    text_key: str
    text_informative: bool
    image_informative: bool
    audio_informative: bool
    ironic: bool
    flat: bool
    degraded: bool
    cues: FaceCues
    prosody: Prosody
    clip_seconds: float


def rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *(int(k) for k in keys)])


def lang_key(code: str) -> int:
    """A stable id of a language code (first 4 bytes of its SHA-256): never its position in a list."""
    return int.from_bytes(hashlib.sha256(code.encode("utf-8")).digest()[:4], "big")


def interactions(data: dict[str, Any]) -> Interactions:
    """``data.interactions`` as shares in [0, 1]."""
    given = data["interactions"]
    values = {}
    for key in ("irony", "reliability"):
        value = given.get(key) if isinstance(given, dict) else None
        if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
            raise BabelfuseError(f"data.interactions.{key} must be a number in [0, 1], not {value!r}")
        values[key] = float(value)
    return Interactions(**values)


def expected_text_key(label: str, informative: bool, flat: bool) -> str:
    """The template list of a post's text: glowing if ironic, a filler if flat positive or not informative."""
    if not informative or (flat and label == "positive"):
        return FILLER
    return "positive" if flat and label == "negative" else label


def draw_group(
    label: str, info: dict[str, float], inter: Interactions, generator: np.random.Generator
) -> Group:
    """Text informativeness, flat voice and irony of one meaning (two uniform draws)."""
    u = generator.random(2)
    informative, flat = bool(u[0] < info["text"]), bool(u[1] < inter.irony)
    ironic = flat and informative and label == "negative"
    text_key = expected_text_key(label, informative, flat)
    return Group(informative, flat, ironic, text_key)


def draw_media(
    seed: int, keys: tuple[int, ...], label: str, group: Group, info: dict[str, float], inter: Interactions
) -> tuple[Latent, int, int]:
    """One post's face cues, prosody, voice state and clip length; plus its image and audio seeds."""
    u = rng(seed, STREAM_FLAGS, *keys).random(3)
    degraded = bool(u[0] < inter.reliability)
    image_informative = degraded or bool(u[1] < info["image"])
    audio_informative = not (degraded or group.flat) and bool(u[2] < info["audio"])
    image_rng, audio_rng = rng(seed, STREAM_IMAGE, *keys), rng(seed, STREAM_AUDIO, *keys)
    cues = image_gen.draw_cues(label, image_informative, image_rng)
    prosody = (
        audio_gen.draw_flat_prosody(audio_rng)
        if group.flat
        else audio_gen.draw_prosody(label, audio_informative, audio_rng)
    )
    clip = float(np.round(rng(seed, STREAM_CLIP, *keys).uniform(*CLIP_SECONDS), 3))
    latent = Latent(
        text_key=group.text_key,
        text_informative=group.text_informative,
        image_informative=image_informative,
        audio_informative=audio_informative,
        ironic=group.ironic,
        flat=group.flat,
        degraded=degraded,
        cues=cues,
        prosody=prosody,
        clip_seconds=clip,
    )
    return latent, int(image_rng.integers(0, 2**31 - 1)), int(audio_rng.integers(0, 2**31 - 1))


def sample_latents(
    n: int, info: dict[str, float], inter: Interactions, seed: int, stream: int = 99
) -> tuple[np.ndarray, list[Latent]]:
    """``n`` posts' (label index, latent) drawn exactly as the planner draws them (for the ceiling)."""
    labels = np.arange(n) % len(LABELS)
    rng(seed, stream).shuffle(labels)
    latents = []
    for i, y in enumerate(labels):
        label = LABELS[int(y)]
        group = draw_group(label, info, inter, rng(seed, stream, 1, i))
        latents.append(draw_media(seed, (stream, i), label, group, info, inter)[0])
    return labels.astype(np.int64), latents
