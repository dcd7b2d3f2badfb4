"""The promotion gate's decision, as pure functions: scores in, decision out (no MLflow here).

A challenger replaces the champion only if its macro-F1 on the frozen test set improves by at least
``register.margin`` **and** no language's macro-F1 drops by more than ``register.tolerance`` — a
model that is better on average but breaks one language is refused. The first model (no champion)
is promoted. Ties within 1e-9 count as meeting a threshold (float noise must not flip a decision).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from babelfuse.labels import LABELS

EPS = 1e-9


@dataclass(frozen=True)
class Decision:
    promote: bool
    decision: str  # "promote" | "refuse"
    reason: str
    challenger_macro_f1: float
    champion_macro_f1: float | None
    improvement: float | None
    worst_drop: float | None  # largest per-language drop (champion - challenger); negative = all improved
    worst_language: str | None
    per_language_delta: dict[str, float] = field(default_factory=dict)  # challenger - champion

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def scores(y_true: list[str] | np.ndarray, y_pred: list[str | None], langs: list[str] | np.ndarray) -> dict:
    """Macro-F1 overall and per language from label names; an unanswered row (None) counts as wrong."""
    index = {label: i for i, label in enumerate(LABELS)}
    truth = np.array([index[str(y)] for y in y_true], dtype=np.int64)
    pred = np.array([index.get(str(p), -1) if p is not None else -1 for p in y_pred], dtype=np.int64)
    langs = np.asarray(langs).astype(str)
    labels = list(range(len(LABELS)))

    def f1(rows: np.ndarray) -> float:
        return float(f1_score(truth[rows], pred[rows], labels=labels, average="macro", zero_division=0.0))

    everything = np.ones(len(truth), dtype=bool)
    return {
        "macro_f1": f1(everything) if len(truth) else float("nan"),
        "per_language": {lang: f1(langs == lang) for lang in sorted(set(langs.tolist()))},
        "n": int(len(truth)),
        "unanswered": int((pred < 0).sum()),
    }


def decide(challenger: dict, champion: dict | None, margin: float, tolerance: float) -> Decision:
    """Promote or refuse; ``challenger``/``champion`` are :func:`scores` dicts on the same rows."""
    ch = float(challenger["macro_f1"])
    if champion is None:
        return Decision(True, "promote", "first model: there is no champion yet", ch, None, None, None, None)
    cp = float(champion["macro_f1"])
    improvement = ch - cp
    ch_lang, cp_lang = challenger["per_language"], champion["per_language"]
    missing = sorted(set(cp_lang) - set(ch_lang))
    delta = {lang: float(ch_lang[lang]) - float(cp_lang[lang]) + 0.0 for lang in cp_lang if lang in ch_lang}
    worst_language = min(delta, key=delta.get) if delta else None
    worst_drop = 0.0 - delta[worst_language] if worst_language is not None else None  # 0.0 - x: never -0.0
    problems = []
    if missing:
        problems.append(f"no score for language(s) {missing} that the champion was scored on")
    if improvement < margin - EPS:
        problems.append(
            f"macro-F1 {ch:.4f} vs champion {cp:.4f}: improvement {improvement:+.4f} < margin {margin:g}"
        )
    if worst_drop is not None and worst_drop > tolerance + EPS:
        problems.append(
            f"{worst_language} drops by {worst_drop:.4f} ({cp_lang[worst_language]:.4f} -> "
            f"{ch_lang[worst_language]:.4f}) > tolerance {tolerance:g}"
        )
    if problems:
        reason = "; ".join(problems)
    else:
        reason = (
            f"macro-F1 {ch:.4f} vs champion {cp:.4f} ({improvement:+.4f} >= margin {margin:g}); "
            f"worst language {worst_language} changes by {delta.get(worst_language, 0.0):+.4f} (tolerance {tolerance:g})"
        )
    return Decision(
        promote=not problems,
        decision="refuse" if problems else "promote",
        reason=reason,
        challenger_macro_f1=ch,
        champion_macro_f1=cp,
        improvement=improvement,
        worst_drop=worst_drop,
        worst_language=worst_language,
        per_language_delta=delta,
    )
