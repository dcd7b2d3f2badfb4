"""The task's classes and the languages babelfuse knows.

Adding a language: write ``data/languages/<code>.yaml`` (see ``en.yaml``), add one line to
``LANGUAGES`` below with its eSpeak NG voice (``babelfuse languages`` lists the voices eSpeak offers
for the code, e.g. ``pt`` European and ``pt-BR`` Brazilian Portuguese), check the file with
``babelfuse languages check <code>``, and list the code in ``params.yaml: data.languages``. The text
encoder must cover the language for zero-shot transfer (``features.text.USE_MULTILINGUAL_LANGUAGES``).
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
