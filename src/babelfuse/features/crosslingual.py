"""Cross-lingual sanity check of a text encoder, before any model is trained.

Zero-shot transfer from English only works if a sentence and its translation land close together.
On the test split, for every sentence with a ``template_id`` (same id = same meaning in every
language), we look up its nearest neighbour (cosine) among the test sentences of the *other*
languages and count how often that neighbour is one of its translations. Chance level is the share
of translations among the candidates. Without translation pairs (e.g. a user's own manifest) we fall
back to the mean cosine of same-label vs different-label cross-language pairs.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from babelfuse.labels import LANGUAGES

CHUNK = 1024  # query rows per similarity block: memory stays O(CHUNK * n), not O(n^2)


def _unit(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _script(lang: str) -> str:
    return LANGUAGES[lang].script if lang in LANGUAGES else "unknown"


def _rates(hits: np.ndarray, chance: np.ndarray) -> dict[str, float | int]:
    return {"nn_rate": float(hits.mean()), "chance": float(chance.mean()), "queries": int(hits.size)}


def translation_nn(
    features: np.ndarray, langs: np.ndarray, template_ids: np.ndarray
) -> dict[str, Any] | None:
    """Nearest-other-language-neighbour translation rate, overall, per language and per script.

    Only sentences with at least one translation among the other languages count as queries.
    Returns None when there is no such sentence.
    """
    langs = np.asarray(langs).astype(str)
    tids = np.asarray(template_ids, dtype=np.int64)
    unit = _unit(features)
    queries = np.flatnonzero(tids >= 0)
    hits: list[bool] = []
    chance: list[float] = []
    used: list[int] = []
    for start in range(0, queries.size, CHUNK):
        rows = queries[start : start + CHUNK]
        sims = unit[rows] @ unit.T
        for k, i in enumerate(rows):
            other = langs != langs[i]
            same = other & (tids == tids[i])
            if not same.any():
                continue
            sim = np.where(other, sims[k], -np.inf)
            nn = int(np.argmax(sim))  # first index on ties: deterministic
            hits.append(bool(tids[nn] == tids[i]))
            chance.append(float(same.sum() / other.sum()))
            used.append(int(i))
    if not used:
        return None
    hit_arr, chance_arr, used_arr = np.array(hits), np.array(chance), np.array(used)
    query_langs = langs[used_arr]
    scripts = np.array([_script(lang) for lang in query_langs])
    return {
        "method": "translation_nn",
        **_rates(hit_arr, chance_arr),
        "per_language": {
            str(lang): _rates(hit_arr[query_langs == lang], chance_arr[query_langs == lang])
            for lang in sorted(set(query_langs))
        },
        "per_script": {
            str(script): _rates(hit_arr[scripts == script], chance_arr[scripts == script])
            for script in sorted(set(scripts))
        },
    }


def label_cosine(features: np.ndarray, langs: np.ndarray, labels: np.ndarray) -> dict[str, Any] | None:
    """Mean cosine of cross-language pairs with the same label vs a different label.

    Computed from per-(language, label) sums of unit vectors, so it is O(n * d), not O(n^2).
    Returns None with fewer than two languages.
    """
    langs = np.asarray(langs).astype(str)
    labels = np.asarray(labels).astype(str)
    if len(set(langs)) < 2:
        return None
    unit = _unit(features)
    groups = sorted({(lang, label) for lang, label in zip(langs, labels, strict=True)})
    sums = {g: unit[(langs == g[0]) & (labels == g[1])].sum(axis=0) for g in groups}
    counts = {g: int(((langs == g[0]) & (labels == g[1])).sum()) for g in groups}
    same_sum = diff_sum = 0.0
    same_n = diff_n = 0
    for a in groups:
        for b in groups:
            if a[0] == b[0]:
                continue
            dot = float(sums[a] @ sums[b])
            pairs = counts[a] * counts[b]
            if a[1] == b[1]:
                same_sum, same_n = same_sum + dot, same_n + pairs
            else:
                diff_sum, diff_n = diff_sum + dot, diff_n + pairs
    same = same_sum / same_n if same_n else None  # None, not NaN: metrics JSON must stay strict JSON
    diff = diff_sum / diff_n if diff_n else None
    gap = same - diff if same is not None and diff is not None else None
    return {"same_label_cosine": same, "diff_label_cosine": diff, "label_cosine_gap": gap}


def crosslingual_sanity(
    features: np.ndarray, present: np.ndarray, frame: pd.DataFrame, split: str = "test"
) -> dict[str, Any]:
    """The sanity figures on one split of a manifest whose rows align with ``features``.

    Uses rows of ``split`` whose text is present. Reports the translation nearest-neighbour rate
    when ``template_id`` gives translation pairs, else (``method: label_cosine``) the label cosines.
    """
    mask = np.asarray(present, dtype=bool) & (frame["split"].astype(str).to_numpy() == split)
    sub = frame.loc[mask]
    feats = np.asarray(features)[mask]
    result: dict[str, Any] = {
        "split": split,
        "rows": int(mask.sum()),
        "languages": sorted(set(sub["lang"].astype(str))),
    }
    nn = None
    if "template_id" in sub.columns:
        tids = pd.to_numeric(sub["template_id"], errors="coerce").fillna(-1).astype("int64").to_numpy()
        nn = translation_nn(feats, sub["lang"].to_numpy(), tids)
    if nn is not None:
        result.update(nn)
    labels = label_cosine(feats, sub["lang"].to_numpy(), sub["label"].to_numpy()) if len(sub) else None
    if labels is not None:
        result.update(labels)
        if nn is None:
            result["method"] = "label_cosine"
    if nn is None and labels is None:
        result["method"] = "none"
        result["reason"] = f"the {split} split has fewer than two languages with present text"
    return result


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def mlflow_metrics(result: dict[str, Any]) -> dict[str, float]:
    """Flat numeric metrics named with the split, e.g. ``test_xling_nn_rate_lang_ru``."""
    prefix = f"{result.get('split', 'test')}_xling"
    flat: dict[str, float] = {}
    for key in ("nn_rate", "chance", "queries", "same_label_cosine", "diff_label_cosine", "label_cosine_gap"):
        if isinstance(result.get(key), int | float) and np.isfinite(result[key]):
            flat[f"{prefix}_{key}"] = float(result[key])
    for group, tag in (("per_language", "lang"), ("per_script", "script")):
        for name, figures in result.get(group, {}).items():
            flat[f"{prefix}_nn_rate_{tag}_{_key(name)}"] = float(figures["nn_rate"])
    return flat


def summary(result: dict[str, Any]) -> str:
    """One log line saying what the sanity check found."""
    if result.get("method") == "translation_nn":
        per_lang = ", ".join(f"{k}={v['nn_rate']:.2f}" for k, v in result["per_language"].items())
        return (
            f"cross-lingual sanity ({result['split']} split): the nearest other-language neighbour is the "
            f"translation for {100 * result['nn_rate']:.1f}% (chance {100 * result['chance']:.1f}%); "
            f"per language: {per_lang}"
        )
    if result.get("method") == "label_cosine" and None not in (
        result["same_label_cosine"],
        result["diff_label_cosine"],
    ):
        return (
            f"cross-lingual sanity ({result['split']} split, no translation pairs): same-label cosine "
            f"{result['same_label_cosine']:.3f} vs different-label {result['diff_label_cosine']:.3f}"
        )
    return f"cross-lingual sanity not computed: {result.get('reason') or 'too few cross-language pairs per label'}"
