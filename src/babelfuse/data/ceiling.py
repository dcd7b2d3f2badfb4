"""The Bayes-optimal ceiling: the best macro-F1 any model can reach from each subset of modalities.

Computed exactly from the generative model of :mod:`babelfuse.data.latent` on its latent variables
(the template key of the text, the three face cues, the four prosody settings and whether the voice
is degraded): a model sees these only through rendered media and encoders, so its score cannot
exceed this (up to sampling noise). For each post and modality subset ``S`` the posterior is

    P(y | x_S) ∝ P(y) Σ_h P(h) Π_{m ∈ S} p(x_m | y, h),   h = (text informative, flat voice, degraded voice)

with each modality's likelihood a mixture over its own informativeness (uninformative cues: a
uniform mixture over the labels' distributions; clipping and rounding handled as point masses and
bins). The prediction is the argmax. Beside it, ``late`` is *late fusion of the exact
single-modality posteriors* (the product of the per-modality likelihoods, each marginalised over
``h`` on its own): the best any additive fusion can do. ``bayes - late`` is what the interactions
are worth; without interactions it is 0.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from babelfuse.data import audio_gen, image_gen, latent
from babelfuse.evaluation.metrics import macro_f1
from babelfuse.jsonio import write_json
from babelfuse.labels import LABEL_TO_INDEX, LABELS
from babelfuse.paths import MODALITIES

TEXT_KEYS: tuple[str, ...] = (*LABELS, latent.FILLER)
CUES: tuple[tuple[str, dict[str, float], float], ...] = (
    ("mouth", image_gen.MOUTH_MEAN, image_gen.MOUTH_SD),
    ("brow", image_gen.BROW_MEAN, image_gen.BROW_SD),
    ("eyes", image_gen.EYES_MEAN, image_gen.EYES_SD),
)
PROSODY: tuple[str, ...] = ("pitch", "range", "rate", "volume")
STATES = list(itertools.product((False, True), repeat=3))  # (text informative, flat, degraded)
N_SAMPLES = 5000  # posts drawn for metrics/ceiling.json (~2.5 ms each; SE of a macro-F1 ~0.006)


def _cdf(x: np.ndarray | float, mean: float, sd: float) -> np.ndarray:
    return ndtr((np.asarray(x, dtype=float) - mean) / sd)


def _pdf(x: np.ndarray, mean: float, sd: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))


def _clipped_density(x: np.ndarray, mean: float, sd: float, low: float, high: float) -> np.ndarray:
    """Density of clip(N(mean, sd)) at x: tail masses at the bounds, the pdf inside."""
    inside = _pdf(x, mean, sd)
    below, above = _cdf(low, mean, sd), 1.0 - _cdf(high, mean, sd)
    return np.where(x <= low + 1e-9, below, np.where(x >= high - 1e-9, above, inside))


def _rounded_prob(x: np.ndarray, mean: float, sd: float, low: float, high: float) -> np.ndarray:
    """P(round(clip(N(mean, sd))) = x) for integer x."""
    upper = np.where(x >= high, np.inf, x + 0.5)
    lower = np.where(x <= low, -np.inf, x - 0.5)
    return _cdf(upper, mean, sd) - _cdf(lower, mean, sd)


def _face_terms(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) likelihood of the face given each label when informative, and (n,) when not."""
    given = np.ones((len(frame), len(LABELS)))
    mixture = np.ones(len(frame))
    for name, means, sd in CUES:
        x = frame[f"face_{name}"].to_numpy(float)
        per = np.stack([_clipped_density(x, means[y], sd, *image_gen.CUE_LIMITS[name]) for y in LABELS], 1)
        given *= per
        mixture *= per.mean(axis=1)
    return given, mixture


def _voice_terms(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prosody likelihood (n, 3) per label when informative, (n,) for the class mixture, (n,) flat."""
    given = np.ones((len(frame), len(LABELS)))
    mixture, flat = np.ones(len(frame)), np.ones(len(frame))
    for j, name in enumerate(PROSODY):
        x = frame[f"prosody_{name}"].to_numpy(float)
        low, high = audio_gen.LIMITS[j]
        sd = audio_gen.PROSODY_SD[j]
        per = np.stack([_rounded_prob(x, audio_gen.PROSODY_MEAN[y][j], sd, low, high) for y in LABELS], 1)
        given *= per
        mixture *= per.mean(axis=1)
        flat *= _rounded_prob(x, audio_gen.FLAT_MEAN[j], audio_gen.FLAT_SD[j], low, high)
    return given, mixture, flat


def likelihoods(
    frame: pd.DataFrame, info: dict[str, float], inter: latent.Interactions
) -> dict[str, np.ndarray]:
    """Per modality, ``p(x_m | y, h)`` as an array (n, labels, states) (see the module docstring)."""
    n, k, s = len(frame), len(LABELS), len(STATES)
    key = frame["text_key"].map({name: i for i, name in enumerate(TEXT_KEYS)}).to_numpy()
    face_given, face_mix = _face_terms(frame)
    voice_given, voice_mix, voice_flat = _voice_terms(frame)
    degraded = frame["degraded_voice"].to_numpy(bool)
    out = {m: np.zeros((n, k, s)) for m in MODALITIES}
    for y, label in enumerate(LABELS):
        for h, (informative, flat, deg) in enumerate(STATES):
            expected = latent.expected_text_key(label, informative, flat)
            out["text"][:, y, h] = key == TEXT_KEYS.index(expected)
            q = 1.0 if deg else info["image"]
            out["image"][:, y, h] = q * face_given[:, y] + (1 - q) * face_mix
            if flat:
                voice = voice_flat
            else:
                a = 0.0 if deg else info["audio"]
                voice = a * voice_given[:, y] + (1 - a) * voice_mix
            out["audio"][:, y, h] = voice * (degraded == deg)
    return out


def state_prior(info: dict[str, float], inter: latent.Interactions) -> np.ndarray:
    """P(h) for each state of :data:`STATES`."""
    p = []
    for informative, flat, deg in STATES:
        p.append(
            (info["text"] if informative else 1 - info["text"])
            * (inter.irony if flat else 1 - inter.irony)
            * (inter.reliability if deg else 1 - inter.reliability)
        )
    return np.asarray(p)


def posteriors(
    lik: dict[str, np.ndarray], prior: np.ndarray, subset: tuple[str, ...], late: bool = False
) -> np.ndarray:
    """(n, labels) posterior from the modalities in ``subset``: exact, or ``late`` (per-modality product)."""
    if late:
        score = np.ones(lik[subset[0]].shape[:2])
        for m in subset:
            score = score * (lik[m] * prior).sum(axis=2)
    else:
        joint = np.ones_like(lik[subset[0]]) * prior
        for m in subset:
            joint = joint * lik[m]
        score = joint.sum(axis=2)
    total = score.sum(axis=1, keepdims=True)
    return np.where(total > 0, score / np.where(total > 0, total, 1), 1.0 / len(LABELS))


def subsets() -> list[tuple[str, ...]]:
    return [c for r in range(1, len(MODALITIES) + 1) for c in itertools.combinations(MODALITIES, r)]


def latent_table(latents: list[latent.Latent]) -> pd.DataFrame:
    """The latent-frame columns the ceiling reads, from :class:`Latent` objects."""
    rows = []
    for lat in latents:
        rows.append(
            {
                "text_key": lat.text_key,
                "degraded_voice": lat.degraded,
                **{f"face_{k}": v for k, v in asdict(lat.cues).items()},
                **{f"prosody_{k}": v for k, v in asdict(lat.prosody).items()},
            }
        )
    return pd.DataFrame(rows)


def ceiling_scores(
    labels: np.ndarray, frame: pd.DataFrame, info: dict[str, float], inter: latent.Interactions
) -> dict[str, Any]:
    """{subset name: {"bayes": macro-F1, "late": macro-F1 (2+ modalities)}} on the given posts."""
    lik, prior = likelihoods(frame, info, inter), state_prior(info, inter)
    out: dict[str, Any] = {}
    for subset in subsets():
        entry = {"bayes": macro_f1(labels, posteriors(lik, prior, subset).argmax(axis=1))}
        if len(subset) > 1:
            entry["late"] = macro_f1(labels, posteriors(lik, prior, subset, late=True).argmax(axis=1))
        out["+".join(subset)] = {k: round(v, 4) for k, v in entry.items()}
    return out


def compute_ceiling(data: dict[str, Any], seed: int, n: int = N_SAMPLES) -> dict[str, Any]:
    """The ``metrics/ceiling.json`` content: ceilings on ``n`` posts drawn from the generator of ``data``."""
    from babelfuse.data.plan import informativeness

    info, inter = informativeness(data), latent.interactions(data)
    labels, latents = latent.sample_latents(n, info, inter, seed)
    scores = ceiling_scores(labels, latent_table(latents), info, inter)
    return {
        "what": "Bayes-optimal macro-F1 per modality subset from the generator's latent variables "
        "(bayes); late = product of exact single-modality posteriors (best additive fusion)",
        "n_posts": n,
        "informativeness": info,
        "interactions": asdict(inter),
        "chance": round(1.0 / len(LABELS), 4),
        "subsets": scores,
    }


def oracle_features(
    frame: pd.DataFrame, seed: int, noise: dict[str, float]
) -> dict[str, dict[str, np.ndarray]]:
    """Fused-split dicts (train, val, test; the ``data/fused`` keys) of what an oracle encoder sees.

    Text: the one-hot template key; image: the face cues; audio: the prosody settings and the
    degraded-voice flag. Standardised on train, then N(0, ``noise[m]``) noise is added (an imperfect
    encoder of modality m). For tests and ``benchmarks/fusion.py``: fusion without rendering and encoding.
    """
    rng = np.random.default_rng(seed)
    raw = {
        "text": np.eye(len(TEXT_KEYS))[frame["text_key"].map(TEXT_KEYS.index).to_numpy()],
        "image": frame[[f"face_{c}" for c, _, _ in CUES]].to_numpy(float),
        "audio": np.column_stack([frame[[f"prosody_{p}" for p in PROSODY]], frame["degraded_voice"]]).astype(
            float
        ),
    }
    train = (frame["split"] == "train").to_numpy()
    out = {}
    for split in ("train", "val", "test"):
        rows = (frame["split"] == split).to_numpy()
        part = {}
        for m, x in raw.items():
            mean, sd = x[train].mean(0), x[train].std(0) + 1e-6
            z = (x[rows] - mean) / sd
            part[m] = (z + rng.normal(0.0, noise[m], size=z.shape)).astype("float32")
        part["mask"] = np.ones((int(rows.sum()), len(MODALITIES)), dtype="float32")
        part["label"] = frame.loc[rows, "label"].map(LABEL_TO_INDEX).to_numpy(np.int64)
        part["lang"] = frame.loc[rows, "lang"].to_numpy().astype(str)
        part["sample_id"] = frame.loc[rows, "sample_id"].to_numpy().astype(str)
        part["template_id"] = frame.loc[rows, "template_id"].to_numpy(np.int64)
        part["group"] = part["template_id"]
        out[split] = part
    return out


def write_ceiling(path: Path, data: dict[str, Any], seed: int) -> dict[str, Any]:
    """Compute the ceiling of the generator of ``data`` and write it as JSON (the generate stage's metric)."""
    result = compute_ceiling(data, seed)
    write_json(path, result)
    return result


def write_unknown_ceiling(path: Path) -> dict[str, Any]:
    """A user's manifest has no known generative model: the ceiling file says so (no subsets)."""
    result = {
        "what": "unknown: data.source=manifest has no generative model to compute it from",
        "subsets": {},
    }
    write_json(path, result)
    return result
