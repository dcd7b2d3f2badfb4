"""Naming the language of a post sent without ``lang``: py3langid (langid.py), offline.

py3langid ships its naive-Bayes model inside its wheel (97 languages), so nothing is downloaded. The
identifier is restricted to the text encoder's covered languages (an answer is always one the
model accepts) and loaded once per process, on the first post that needs it (~1-5 s: most requests
name their language).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from babelfuse.errors import BabelfuseError

_IDENTIFIERS: dict[tuple[str, ...] | None, LanguageIdentifier] = {}


class LanguageIdentifier:
    """``identify(text)`` -> a babelfuse language code within ``covered`` (None: any py3langid knows)."""

    def __init__(self, covered: Collection[str] | None) -> None:
        from py3langid.langid import MODEL_FILE  # optional until a post comes without its language
        from py3langid.langid import LanguageIdentifier as Identifier

        self._model = Identifier.from_model_file(MODEL_FILE, norm_probs=False)
        known = set(self._model.nb_classes)
        # py3langid writes Chinese as zh (either script); babelfuse's zh is the simplified one.
        self._to_babelfuse: dict[str, str] = {}
        for code in sorted(covered or known, key=lambda c: (len(c), c)):
            base = code.split("-")[0]
            if base in known:
                self._to_babelfuse.setdefault(base, code)
        if not self._to_babelfuse:
            raise BabelfuseError(f"py3langid knows none of the covered languages {sorted(covered or [])}")
        self._model.set_languages(sorted(self._to_babelfuse))

    def identify(self, text: str) -> str:
        code, _score = self._model.classify(text)
        return self._to_babelfuse[code]


def identifier(covered: Collection[str] | None) -> LanguageIdentifier:
    """The process's identifier for ``covered`` (built on first use)."""
    key = None if covered is None else tuple(sorted(covered))
    if key not in _IDENTIFIERS:
        _IDENTIFIERS[key] = LanguageIdentifier(covered)
    return _IDENTIFIERS[key]


def identify_within(covered: Collection[str] | None) -> Callable[[str], str]:
    """A ``text -> code`` function that loads the identifier only when first called."""
    frozen = None if covered is None else tuple(sorted(covered))

    def identify(text: str) -> str:
        return identifier(frozen).identify(text)

    return identify
