"""The promotion gate's decision, as pure functions: per-post predictions in, decision out (no MLflow).

The gate scores models only on the frozen ``gate`` split (all languages, disjoint by meaning from
``train``/``val`` and from ``test``); ``test`` is for reporting and decides nothing. A challenger
replaces the champion only if

1. it is better: the paired bootstrap over translation groups (a meaning with all its languages is
   resampled as one unit, the same draw for both models) puts the one-sided lower
   ``register.alpha`` bound of ``macro-F1(challenger) - macro-F1(champion)`` above
   ``register.margin`` — an equal challenger (difference 0 in every resample) is refused; and
2. no language is worse by more than ``register.tolerance`` than the current champion **or than the
   first champion**, so small losses cannot add up release after release.

The first model (no champion yet) is promoted. A post a model did not answer counts as wrong (it is
scored as the class after the true one, so it costs recall of its class and precision of another).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from babelfuse.evaluation import bootstrap
from babelfuse.labels import LABELS

EPS = 1e-9
UNANSWERED = -1


@dataclass(frozen=True)
class Rule:
    """The gate's thresholds (``params.yaml: register``)."""

    margin: float  # required improvement of macro-F1 (lower bound of the paired CI must exceed it)
    alpha: float  # one-sided level of that bound
    tolerance: float  # largest allowed per-language drop vs the champion and vs the first champion
    n_boot: int = 1000  # bootstrap resamples
    seed: int = 0  # seed of the bootstrap draw

    @classmethod
    def from_params(cls, register: dict[str, Any], seed: int, **override: float) -> Rule:
        """From the validated ``register`` section (and the global seed); ``override`` wins if not None."""
        values = {
            "margin": register["margin"],
            "alpha": register["alpha"],
            "tolerance": register["tolerance"],
        }
        values.update({k: v for k, v in override.items() if v is not None})
        return cls(
            **{k: float(v) for k, v in values.items()}, n_boot=int(register["gate_bootstrap"]), seed=seed
        )


@dataclass(frozen=True)
class GateSet:
    """The frozen gate rows as arrays: true label codes, languages, translation groups."""

    truth: np.ndarray  # (n,) int label codes
    langs: np.ndarray  # (n,) str
    groups: np.ndarray  # (n,) int; a meaning with all its translations shares one id

    @classmethod
    def from_labels(cls, labels: Sequence[str], langs: Sequence[str], groups: Sequence[int]) -> GateSet:
        return cls(codes(labels), np.asarray(langs).astype(str), np.asarray(groups).astype(np.int64))


@dataclass(frozen=True)
class Decision:
    promote: bool
    decision: str  # "promote" | "refuse"
    reason: str
    challenger_macro_f1: float
    champion_macro_f1: float | None
    improvement: float | None  # challenger - champion (point estimate)
    improvement_ci: tuple[float, float] | None  # two-sided (1 - 2 alpha) paired interval
    improvement_lower: float | None  # one-sided lower alpha bound, compared with the margin
    worst_drop: float | None  # largest per-language drop vs the champion (negative = all improved)
    worst_language: str | None
    worst_drop_vs_first: float | None  # the same against the first champion
    worst_language_vs_first: str | None
    per_language_delta: dict[str, float] = field(default_factory=dict)  # challenger - champion

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def codes(labels: Sequence[str | None]) -> np.ndarray:
    """Label names to codes; None (or an unknown name) -> ``UNANSWERED``."""
    index = {label: i for i, label in enumerate(LABELS)}
    return np.array(
        [index.get(str(v), UNANSWERED) if v is not None else UNANSWERED for v in labels], np.int64
    )


def _scored(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Predictions with unanswered rows replaced by a wrong class."""
    pred = np.asarray(pred, dtype=np.int64)
    return np.where(pred == UNANSWERED, (truth + 1) % len(LABELS), pred)


def scores(gate_set: GateSet, pred: np.ndarray) -> dict[str, Any]:
    """Macro-F1 overall and per language of one model's predictions on the gate rows."""
    y = _scored(pred, gate_set.truth)
    n = len(y)
    overall = bootstrap.point(bootstrap.weighted_macro_f1, (gate_set.truth, y), n) if n else float("nan")
    per_lang = {
        lang: bootstrap.point(bootstrap.weighted_macro_f1, (gate_set.truth, y, gate_set.langs == lang), n)
        for lang in sorted(set(gate_set.langs.tolist()))
    }
    return {
        "macro_f1": overall,
        "per_language": per_lang,
        "n": n,
        "unanswered": int((pred == UNANSWERED).sum()),
    }


def _worst(challenger: dict[str, float], reference: dict[str, float]) -> tuple[str | None, float | None]:
    drops = {
        lang: float(reference[lang]) - float(challenger[lang]) for lang in reference if lang in challenger
    }
    if not drops:
        return None, None
    lang = max(drops, key=drops.get)
    return lang, drops[lang] + 0.0


def improvement_ci(
    gate_set: GateSet, challenger: np.ndarray, champion: np.ndarray, rule: Rule
) -> dict[str, float]:
    """Paired group-bootstrap difference of macro-F1 (challenger - champion), two-sided (1 - 2 alpha)."""
    draws = bootstrap.draw_weights(gate_set.groups, rule.n_boot, rule.seed)
    a = (gate_set.truth, _scored(challenger, gate_set.truth))
    b = (gate_set.truth, _scored(champion, gate_set.truth))
    return bootstrap.paired_ci(bootstrap.weighted_macro_f1, a, b, draws, 1.0 - 2.0 * rule.alpha)


def decide(
    gate_set: GateSet,
    challenger: np.ndarray,
    champion: np.ndarray | None,
    first_champion: np.ndarray | None,
    rule: Rule,
) -> Decision:
    """Promote or refuse; each model is given as its predicted label codes on the gate rows."""
    ch = scores(gate_set, challenger)
    if champion is None:
        return Decision(
            True, "promote", "first model: there is no champion yet", ch["macro_f1"],
            None, None, None, None, None, None, None, None,
        )  # fmt: skip
    cp = scores(gate_set, champion)
    diff = improvement_ci(gate_set, challenger, champion, rule)
    worst_language, worst_drop = _worst(ch["per_language"], cp["per_language"])
    first = scores(gate_set, first_champion) if first_champion is not None else cp
    first_language, first_drop = _worst(ch["per_language"], first["per_language"])
    missing = sorted(set(cp["per_language"]) - set(ch["per_language"]))
    problems = _problems(diff, rule, (worst_language, worst_drop), (first_language, first_drop), missing)
    reason = "; ".join(problems) or (
        f"macro-F1 {ch['macro_f1']:.4f} vs champion {cp['macro_f1']:.4f}: paired difference "
        f"{diff['diff']:+.4f}, lower {rule.alpha:g} bound {diff['ci_low']:+.4f} > margin {rule.margin:g}; "
        f"worst language {worst_language} {-(worst_drop or 0.0):+.4f} vs champion, "
        f"{first_language} {-(first_drop or 0.0):+.4f} vs first champion (tolerance {rule.tolerance:g})"
    )
    return Decision(
        promote=not problems,
        decision="refuse" if problems else "promote",
        reason=reason,
        challenger_macro_f1=ch["macro_f1"],
        champion_macro_f1=cp["macro_f1"],
        improvement=diff["diff"],
        improvement_ci=(diff["ci_low"], diff["ci_high"]),
        improvement_lower=diff["ci_low"],
        worst_drop=worst_drop,
        worst_language=worst_language,
        worst_drop_vs_first=first_drop,
        worst_language_vs_first=first_language,
        per_language_delta={
            lang: float(ch["per_language"][lang] - cp["per_language"][lang]) + 0.0
            for lang in cp["per_language"]
            if lang in ch["per_language"]
        },
    )


def _problems(
    diff: dict[str, float],
    rule: Rule,
    vs_champion: tuple[str | None, float | None],
    vs_first: tuple[str | None, float | None],
    missing: list[str],
) -> list[str]:
    """Why the challenger is refused (empty: it passes)."""
    problems = []
    if missing:
        problems.append(f"no score for language(s) {missing} that the champion was scored on")
    if not diff["ci_low"] > rule.margin + EPS:
        problems.append(
            f"paired difference {diff['diff']:+.4f} (lower {rule.alpha:g} bound {diff['ci_low']:+.4f}) "
            f"does not exceed margin {rule.margin:g}"
        )
    for (lang, drop), whom in ((vs_champion, "the champion"), (vs_first, "the first champion")):
        if drop is not None and drop > rule.tolerance + EPS:
            problems.append(f"{lang} drops by {drop:.4f} vs {whom} > tolerance {rule.tolerance:g}")
    return problems
