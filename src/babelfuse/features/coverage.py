"""Which languages a text encoder covers, and babelfuse's spelling of language codes.

Light on purpose (standard library only): the config schema, the validate stage and the served
model all read it without loading an encoder.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence

log = logging.getLogger("babelfuse.features.text")

USE_MULTILINGUAL = "use-multilingual"  # features.text.encoder of UseMultilingualEncoder
# The languages USE Multilingual v3 was trained on (its model card): the project's one list of them.
USE_MULTILINGUAL_LANGUAGES: tuple[str, ...] = (
    "ar", "zh-cn", "zh-tw", "nl", "en", "de", "fr", "it", "pt", "es", "ja", "ko", "ru", "pl", "th", "tr",
)  # fmt: skip
ANY_LANGUAGE = "any"  # features.text.languages: any language code is accepted (with a warning)
# Other spellings of the codes babelfuse uses (zh = Mandarin in simplified characters, as in the data).
LANGUAGE_ALIASES: dict[str, str] = {
    "zh-cn": "zh", "zh-hans": "zh", "zh-sg": "zh", "zh-hant": "zh-tw", "zh-hk": "zh-tw", "zh-mo": "zh-tw",
}  # fmt: skip
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$")


def canonical_language(code: str, covered: Collection[str] | None) -> str | None:
    """``code`` in babelfuse's spelling (``pt_BR`` -> ``pt-br``; ``zh-CN`` -> ``zh``); None if no code.

    A region variant becomes its base language when only the base is in ``covered`` (``pt-br`` ->
    ``pt``); with ``covered`` None (any language) the variant is kept.
    """
    value = str(code).strip().lower().replace("_", "-")
    if not _LANGUAGE_CODE.match(value):
        return None
    value = LANGUAGE_ALIASES.get(value, value)
    if covered is None or value in covered:
        return value
    base = value.split("-")[0]
    return base if base in covered else value


def covered_languages(encoder: str, languages: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """The languages text encoder ``encoder`` covers, in babelfuse codes; None means any (warned).

    ``languages`` is ``features.text.languages``: a list narrows/declares the set, ``any`` accepts
    every code, null takes the encoder's own list (``hf:`` encoders have none: any, warned).
    """
    if isinstance(languages, str):  # the schema allows only ANY_LANGUAGE here
        log.warning(
            "features.text.languages=%s: every language code is accepted, though %s may not cover it",
            languages,
            encoder,
        )
        return None
    if languages:
        return tuple(sorted({canonical_language(c, None) or c for c in languages}))
    if encoder == USE_MULTILINGUAL:
        return tuple(sorted({LANGUAGE_ALIASES.get(c, c) for c in USE_MULTILINGUAL_LANGUAGES}))
    log.warning(
        "features.text.encoder=%s does not declare its languages: every language code is accepted "
        "(set features.text.languages to a list of codes)",
        encoder,
    )
    return None
