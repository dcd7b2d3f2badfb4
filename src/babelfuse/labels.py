"""The task's classes and the languages babelfuse knows.

Adding a language: write ``data/languages/<code>.yaml`` (see ``en.yaml``), add one line to
``LANGUAGES`` below with its eSpeak NG voice, and list the code in ``params.yaml: data.languages``.
Every language must be one the Universal Sentence Encoder Multilingual covers
(ar, zh, nl, en, de, fr, it, pt, es, ja, ko, ru, pl, th, tr).
"""

from __future__ import annotations

from dataclasses import dataclass

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
LABEL_TO_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    espeak_voice: str
    script: str


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "English", "en", "Latin"),
        Language("de", "German", "de", "Latin"),
        Language("fr", "French", "fr", "Latin"),
        Language("es", "Spanish", "es", "Latin"),
        Language("ru", "Russian", "ru", "Cyrillic"),
        Language("ar", "Arabic", "ar", "Arabic"),
        Language("zh", "Chinese", "cmn", "Han"),
        Language("ja", "Japanese", "ja", "Kana/Han"),
    )
}
