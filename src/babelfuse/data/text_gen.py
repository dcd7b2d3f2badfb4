"""Multilingual sentence generator for the bundled dataset.

Everything language-specific lives in ``data/languages/<code>.yaml``: this module only loads,
checks and fills templates, so adding a language is one data file (see ``en.yaml`` for the rules).
A :class:`TextSpec` is the language-independent meaning of a sentence (template k of a key, slot
filler i of a slot); rendering one spec in two languages gives a translation pair, which is why
:func:`template_id` depends on the spec only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from babelfuse.errors import BabelfuseError
from babelfuse.labels import LABELS, LANGUAGES

LANGUAGES_DIR = Path(__file__).resolve().parent / "languages"
FILLER = "filler"
KINDS: tuple[str, ...] = ("sentiment", FILLER)
TEMPLATE_KEYS: tuple[str, ...] = (*LABELS, FILLER)
_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


@dataclass(frozen=True)
class TextSpec:
    """The language-independent meaning of one sentence."""

    label: str  # the post's label (negative|neutral|positive)
    kind: str  # "sentiment" (text expresses `label`) | "filler" (sentiment-free text)
    template: int  # index into the language's templates[label] (sentiment) or fillers
    slots: tuple[tuple[str, int], ...]  # (slot name, filler index), sorted by name


@dataclass(frozen=True)
class RenderedText:
    text: str  # written sentence
    spoken: str  # what eSpeak NG is given (kana for Japanese; else == text)


@dataclass(frozen=True)
class Phrase:
    """A template or slot filler: how it is written and what eSpeak NG reads."""

    text: str
    speak: str


@dataclass(frozen=True)
class LanguageFile:
    """One parsed and checked ``languages/<code>.yaml``."""

    code: str
    name: str
    path: Path
    templates: dict[str, tuple[Phrase, ...]]  # key (label or "filler") -> templates
    slots: dict[str, tuple[Phrase, ...]]  # slot name -> fillers


@dataclass(frozen=True)
class Structure:
    """What all languages share, so that any spec renders in every language."""

    template_slots: dict[str, tuple[tuple[str, ...], ...]]  # key -> slot names of each template
    slot_sizes: dict[str, int]  # slot name -> number of fillers


def slot_names(template: str) -> tuple[str, ...]:
    """The sorted distinct ``{slot}`` names a template uses."""
    return tuple(sorted(set(_SLOT.findall(template))))


QUOTE_HINT = "quote the whole entry"


def _as_written(mapping: dict) -> str:
    """Best guess at the unquoted line YAML turned into ``mapping`` ("The food: awful.", "{item}")."""
    parts = [f"{{{k}}}" if v is None else f"{k}: {v}" for k, v in mapping.items()]
    return ", ".join(parts)


def _mapping_entry_error(value: dict, where: str) -> BabelfuseError:
    """A sentence YAML read as a mapping: an unquoted ': ' inside it, or a leading '{'."""
    written = _as_written(value)
    cause = (
        "an unquoted entry that starts with '{' is a YAML mapping"
        if any(v is None for v in value.values())
        else "YAML reads an unquoted ': ' inside a sentence as 'key: value'"
    )
    return BabelfuseError(
        f'{where} is the mapping {value!r}, not a sentence ({cause}); {QUOTE_HINT}: - "{written}"'
    )


def _phrase(value: Any, where: str) -> Phrase:
    """A YAML entry is a string or ``{text: ..., speak: ...}`` (speak optional)."""
    if isinstance(value, str) and value.strip():
        return Phrase(value, value)
    if isinstance(value, dict) and "text" not in value and value:
        raise _mapping_entry_error(value, where)
    if isinstance(value, dict) and isinstance(value.get("text"), str) and value["text"].strip():
        unknown = set(value) - {"text", "speak"}
        if unknown:
            raise BabelfuseError(
                f"{where}: unknown key(s) {sorted(unknown)}; allowed: text, speak "
                f"(if a sentence contains ': ', {QUOTE_HINT})"
            )
        speak = value.get("speak", value["text"])
        if not isinstance(speak, str) or not speak.strip():
            raise BabelfuseError(f"{where}: 'speak' must be a non-empty string")
        if slot_names(speak) != slot_names(value["text"]):
            raise BabelfuseError(
                f"{where}: 'speak' uses slots {list(slot_names(speak))} but 'text' uses "
                f"{list(slot_names(value['text']))}; they must match"
            )
        return Phrase(value["text"], speak)
    raise BabelfuseError(f"{where}: expected a non-empty string or a mapping {{text: ..., speak: ...}}")


def _phrase_list(value: Any, where: str) -> tuple[Phrase, ...]:
    if not isinstance(value, list) or not value:
        raise BabelfuseError(f"{where}: expected a non-empty list")
    return tuple(_phrase(item, f"{where}[{i}]") for i, item in enumerate(value))


def _mapping(doc: dict, key: str, where: str) -> dict:
    value = doc.get(key)
    if not isinstance(value, dict) or not value:
        raise BabelfuseError(f"{where}: missing or empty mapping '{key}'")
    return value


def language_path(code: str, directory: Path = LANGUAGES_DIR) -> Path:
    """``<directory>/<code>.yaml``; refuses codes that are not plain language codes."""
    if not isinstance(code, str) or not _CODE.match(code):
        raise BabelfuseError(f"invalid language code {code!r}: expected e.g. 'en' or 'zh'")
    return Path(directory) / f"{code}.yaml"


def available_languages(directory: Path = LANGUAGES_DIR) -> list[str]:
    """Codes with a ``languages/<code>.yaml``: those in ``labels.LANGUAGES`` first, in its order."""
    codes = {p.stem for p in Path(directory).glob("*.yaml") if _CODE.match(p.stem)}
    return [c for c in LANGUAGES if c in codes] + sorted(codes - set(LANGUAGES))


def _yaml_error_hint(err: yaml.YAMLError, path: Path) -> str:
    """One line: where the YAML broke, what on that line, and the usual fix for sentences."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    if mark is None:
        return f"({problem})"
    lines = path.read_text(encoding="utf-8").splitlines()
    line = lines[mark.line].strip() if mark.line < len(lines) else ""
    entry = line[1:].strip() if line.startswith("-") else line.partition(": ")[2].strip()
    hint = ""
    if entry.startswith("{") and not entry.rstrip().endswith("}"):
        hint = f"; an unquoted entry that starts with '{{' is a YAML mapping: {QUOTE_HINT}"
    elif "mapping values" in problem or "unhashable" in problem:
        hint = f"; YAML reads an unquoted ': ' or '{{' inside a sentence as a mapping: {QUOTE_HINT}"
    return f"(line {mark.line + 1}: {problem}): {line!r}{hint}"


@functools.lru_cache(maxsize=64)
def load_language(code: str, directory: Path = LANGUAGES_DIR) -> LanguageFile:
    """Parse and check one language file (cached: files are read once per process)."""
    path = language_path(code, directory)
    if not path.is_file():
        known = ", ".join(available_languages(directory)) or "none"
        raise BabelfuseError(f"unknown language '{code}': no file {path} (available: {known})")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise BabelfuseError(f"{path}: not valid YAML {_yaml_error_hint(err, path)}") from None
    if not isinstance(doc, dict):
        raise BabelfuseError(f"{path}: expected a mapping with keys code, name, templates, slots")
    if doc.get("code") != code:
        raise BabelfuseError(f"{path}: key 'code' is {doc.get('code')!r}, expected '{code}' (the file name)")
    raw_templates = _mapping(doc, "templates", str(path))
    raw_slots = _mapping(doc, "slots", str(path))
    missing = [k for k in TEMPLATE_KEYS if k not in raw_templates]
    extra = sorted(set(raw_templates) - set(TEMPLATE_KEYS))
    if missing or extra:
        raise BabelfuseError(
            f"{path}: key 'templates' must have exactly {list(TEMPLATE_KEYS)} (missing {missing}, unknown {extra})"
        )
    templates = {k: _phrase_list(raw_templates[k], f"{path}: templates.{k}") for k in TEMPLATE_KEYS}
    slots = {str(name): _phrase_list(v, f"{path}: slots.{name}") for name, v in raw_slots.items()}
    for name, fillers in slots.items():
        for i, filler in enumerate(fillers):
            if "{" in filler.text + filler.speak or "}" in filler.text + filler.speak:
                raise BabelfuseError(f"{path}: slots.{name}[{i}]: a slot filler may not contain braces")
    for key, phrases in templates.items():
        for i, phrase in enumerate(phrases):
            undefined = [s for s in slot_names(phrase.text) if s not in slots]
            if undefined:
                raise BabelfuseError(
                    f"{path}: templates.{key}[{i}] uses slot(s) {undefined} not defined under 'slots'"
                )
    name = doc.get("name", code)
    return LanguageFile(code, str(name), path, templates, slots)


def _shape(lang: LanguageFile) -> Structure:
    return Structure(
        template_slots={k: tuple(slot_names(p.text) for p in v) for k, v in lang.templates.items()},
        slot_sizes={name: len(v) for name, v in lang.slots.items()},
    )


@functools.lru_cache(maxsize=8)
def structure(directory: Path = LANGUAGES_DIR) -> Structure:
    """The shared template/slot layout, checked to be identical in every language file."""
    codes = available_languages(directory)
    if not codes:
        raise BabelfuseError(f"no language files (*.yaml) in {directory}")
    langs = [load_language(c, directory) for c in codes]
    ref = langs[0]
    shape = _shape(ref)
    for lang in langs[1:]:
        other = _shape(lang)
        for key in TEMPLATE_KEYS:
            ours, theirs = other.template_slots[key], shape.template_slots[key]
            if len(ours) != len(theirs):
                raise BabelfuseError(
                    f"{lang.path}: templates.{key} has {len(ours)} entries but {ref.path.name} has "
                    f"{len(theirs)}; template k must exist (and mean the same) in every language"
                )
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
                if a != b:
                    raise BabelfuseError(
                        f"{lang.path}: templates.{key}[{i}] uses slots {list(a)} but {ref.path.name} "
                        f"uses {list(b)}; template k must use the same slots in every language"
                    )
        if other.slot_sizes != shape.slot_sizes:
            raise BabelfuseError(
                f"{lang.path}: key 'slots' has sizes {other.slot_sizes} but {ref.path.name} has "
                f"{shape.slot_sizes}; filler i of a slot must exist (and mean the same) in every language"
            )
    return shape


def _key(spec: TextSpec) -> str:
    """The template list a spec indexes: its label (sentiment) or "filler"."""
    if spec.label not in LABELS:
        raise BabelfuseError(f"unknown label {spec.label!r}: expected one of {list(LABELS)}")
    if spec.kind not in KINDS:
        raise BabelfuseError(f"unknown text kind {spec.kind!r}: expected one of {list(KINDS)}")
    return spec.label if spec.kind == "sentiment" else FILLER


def draw_spec(label: str, informative: bool, rng: np.random.Generator) -> TextSpec:
    """A random sentence meaning: a `label` template if informative, else a sentiment-free filler.

    Slots are drawn uniformly; the layout is shared by all languages, so the spec renders in each.
    """
    if label not in LABELS:
        raise BabelfuseError(f"unknown label {label!r}: expected one of {list(LABELS)}")
    shape = structure()
    key = label if informative else FILLER
    template = int(rng.integers(len(shape.template_slots[key])))
    names = shape.template_slots[key][template]
    slots = tuple((name, int(rng.integers(shape.slot_sizes[name]))) for name in names)
    return TextSpec(label, "sentiment" if informative else FILLER, template, slots)


def _capitalize_first(text: str) -> str:
    """Upper-case the first letter (fillers start lower-case); no-op for scripts without case."""
    for i, char in enumerate(text):
        if char.isalpha():
            upper = char.upper()
            return text[:i] + upper + text[i + 1 :] if len(upper) == 1 else text
    return text


def render(spec: TextSpec, lang: str, directory: Path = LANGUAGES_DIR) -> RenderedText:
    """Write a spec in one language (and the form eSpeak NG should read)."""
    data = load_language(lang, directory)
    key = _key(spec)
    templates = data.templates[key]
    if not 0 <= spec.template < len(templates):
        raise BabelfuseError(
            f"{data.path.name}: templates.{key} has {len(templates)} entries, spec asks for {spec.template}"
        )
    phrase = templates[spec.template]
    chosen = dict(spec.slots)
    needed = slot_names(phrase.text)
    if sorted(chosen) != list(needed):
        raise BabelfuseError(
            f"{data.path.name}: templates.{key}[{spec.template}] needs slots {list(needed)}, "
            f"spec gives {sorted(chosen)}"
        )
    fillers: dict[str, Phrase] = {}
    for name, index in chosen.items():
        options = data.slots[name]
        if not 0 <= index < len(options):
            raise BabelfuseError(
                f"{data.path.name}: slots.{name} has {len(options)} entries, spec asks for {index}"
            )
        fillers[name] = options[index]
    text = _SLOT.sub(lambda m: fillers[m.group(1)].text, phrase.text)
    spoken = _SLOT.sub(lambda m: fillers[m.group(1)].speak, phrase.speak)
    return RenderedText(_capitalize_first(text), _capitalize_first(spoken))


def template_id(spec: TextSpec) -> int:
    """A stable non-negative int64 naming the sentence, identical in every language.

    Filler specs ignore the post's label: the same filler sentence gets the same id whatever post
    it is attached to. Uses SHA-256, not Python's per-process salted ``hash()``.
    """
    key = _key(spec)
    blob = json.dumps([spec.kind, key, spec.template, sorted([n, i] for n, i in spec.slots)])
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big") >> 1
