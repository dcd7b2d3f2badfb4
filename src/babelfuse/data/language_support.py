"""What "supported" means per language, in one place, and the docs' language facts made from it.

A language takes four things, each checked here: a generator file ``data/languages/<code>.yaml``
(the sentences), a line in ``labels.LANGUAGES`` whose eSpeak NG voice exists (the audio), coverage
by the text encoder (zero-shot transfer and serving read text through it) and a place in
``data.languages`` (the pipeline generates, validates and evaluates it). ``babelfuse languages``
prints :func:`statuses`; the language lists and counts in README.md and docs/DATA.md are the blocks
of :func:`doc_blocks` between ``<!-- languages:NAME -->`` markers (``babelfuse languages docs
--write`` rewrites them; a test fails when they differ from the files and params).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babelfuse.data import espeak, text_gen
from babelfuse.features.text import encoder_covers
from babelfuse.labels import LANGUAGES

SHOWN_VOICES = 4  # eSpeak voices listed per language in the table (en has 9)
DOC_FILES: tuple[Path, ...] = (Path("README.md"), Path("docs/DATA.md"))
_BLOCK = re.compile(
    r"(<!-- languages:(?P<name>[a-z_]+) -->)(?P<body>.*?)(<!-- /languages:(?P=name) -->)", re.S
)


@dataclass(frozen=True)
class LanguageStatus:
    """One language as generation, speech, the text encoder and the pipeline see it."""

    code: str
    name: str | None  # English name from labels.LANGUAGES (None: no line there)
    has_file: bool  # data/languages/<code>.yaml exists
    voice: str | None  # labels.LANGUAGES[code].espeak_voice
    voice_ok: bool | None  # that voice exists in eSpeak NG (None: no voice to check)
    espeak_voices: tuple[str, ...]  # every eSpeak NG voice for the code (pt: pt, pt-BR)
    encoder_covers: bool | None  # the text encoder was trained on it (None: unknown)
    in_data: bool  # listed in data.languages
    source: bool  # listed in data.source_langs

    @property
    def missing(self) -> list[str]:
        """What the language still lacks before ``data.languages`` can list it."""
        needs = [] if self.has_file else ["a languages/<code>.yaml file"]
        if self.name is None:
            needs.append("a line in labels.LANGUAGES")
        elif not self.voice_ok:
            needs.append(f"an existing eSpeak voice (not '{self.voice}')")
        return needs


def statuses(
    languages: list[str], source_langs: list[str], encoder: str, directory: Path = text_gen.LANGUAGES_DIR
) -> list[LanguageStatus]:
    """Every language known anywhere (labels.py, a language file, ``languages``), labels.py order first.

    ``languages``/``source_langs`` are ``data.languages``/``data.source_langs``, ``encoder`` is
    ``features.text.encoder``.
    """
    files = text_gen.available_languages(directory)
    codes = list(dict.fromkeys([*LANGUAGES, *files, *languages]))
    rows = []
    for code in codes:
        known = LANGUAGES.get(code)
        voice = known.espeak_voice if known else None
        rows.append(
            LanguageStatus(
                code=code,
                name=known.name if known else None,
                has_file=code in files,
                voice=voice,
                voice_ok=espeak.has_voice(voice) if voice else None,
                espeak_voices=tuple(espeak.voices_for(code)),
                encoder_covers=encoder_covers(encoder, code),
                in_data=code in languages,
                source=code in source_langs,
            )
        )
    return rows


def _mark(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "?"}[value]


def table_lines(rows: list[LanguageStatus], encoder: str) -> list[str]:
    """The plain-text table of ``babelfuse languages`` and a legend saying what each column is for."""
    header = ("code", "name", "file", "voice", "eSpeak voices for the code", "text encoder", "data.languages")
    body = []
    for r in rows:
        voice = "-" if r.voice is None else r.voice + ("" if r.voice_ok else " (MISSING)")
        in_data = ("yes (source)" if r.source else "yes") if r.in_data else "no"
        if not r.in_data and not r.missing:
            in_data = "no (ready to add)"
        shown = ", ".join(r.espeak_voices[:SHOWN_VOICES]) or "none"
        if len(r.espeak_voices) > SHOWN_VOICES:
            shown += f" (+{len(r.espeak_voices) - SHOWN_VOICES} more)"
        body.append(
            (r.code, r.name or "-", _mark(r.has_file), voice, shown, _mark(r.encoder_covers), in_data)
        )
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
    fmt = lambda row: "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()  # noqa: E731
    lines = [fmt(header), fmt(tuple("-" * w for w in widths)), *map(fmt, body)]
    lines += [
        "",
        "file: data/languages/<code>.yaml (generation);  voice: labels.LANGUAGES espeak_voice (audio);",
        f"text encoder: {encoder} covers the language (zero-shot transfer, serving);  data.languages: in the pipeline.",
    ]
    lines += [
        f"{r.code}: needs {', '.join(r.missing)}" for r in rows if r.missing and (r.in_data or r.has_file)
    ]
    return lines


def _names(codes: list[str]) -> str:
    """English names joined as in a sentence: "German, French and Japanese"."""
    names = [LANGUAGES[c].name for c in codes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _voice_table(languages: list[str], directory: Path) -> str:
    by_key = {v.key: v for v in espeak.list_voices()}
    lines = [
        "| code | language | written as | script | eSpeak NG voice | other eSpeak NG voices for the code |",
        "|---|---|---|---|---|---|",
    ]
    for code in languages:
        known, file = LANGUAGES[code], text_gen.load_language(code, directory)
        voice = by_key.get(known.espeak_voice)
        spoken = f"`{known.espeak_voice}` ({voice.name})" if voice else f"`{known.espeak_voice}`"
        others = [f"`{v}`" for v in espeak.voices_for(code) if v != known.espeak_voice]
        lines.append(
            f"| `{code}` | {known.name} | {file.name} | {known.script} | {spoken} | {', '.join(others) or '-'} |"
        )
    return "\n".join(lines)


def doc_blocks(
    languages: list[str], source_langs: list[str], n_posts: int, directory: Path = text_gen.LANGUAGES_DIR
) -> dict[str, str]:
    """The generated text of each ``<!-- languages:NAME -->`` block in the docs.

    ``n_posts`` is the size of the generated dataset (:func:`planned_posts`).
    """
    targets = [c for c in languages if c not in source_langs]
    return {
        "targets": _names(targets),
        "sources": _names(list(source_langs)),
        "posts": f"{n_posts:,} posts in {len(languages)} languages",
        "table": "\n" + _voice_table(languages, directory) + "\n",
    }


def render_docs(text: str, blocks: dict[str, str]) -> str:
    """``text`` with the body of every known ``<!-- languages:NAME -->`` block replaced."""
    return _BLOCK.sub(lambda m: m.group(1) + blocks.get(m["name"], m["body"]) + m.group(4), text)


def block_names(text: str) -> list[str]:
    """The names of the ``<!-- languages:NAME -->`` blocks in ``text``."""
    return [m["name"] for m in _BLOCK.finditer(text)]


def planned_posts(data: dict[str, Any], seed: int) -> int:
    """How many posts the generate stage makes from the ``data`` section (planned in memory, no media)."""
    from babelfuse.data.plan import plan_posts  # plan imports the media generators: only needed here

    return len(plan_posts(data, seed))
