"""``babelfuse languages check <code>``: is a (new) language file fit to generate posts from?

Loads the file (the loader's checks: keys, slots, layout shared with every other file of its folder),
renders every template, speaks a few sentences through the language's eSpeak NG voice (phonemes shown)
and embeds every template with the text encoder next to the English ones. Template k of a key must
mean what English template k means, so its nearest English template should be its own counterpart;
a template whose nearest English neighbour is another one is a likely mistranslation. The check
passes when the share of templates nearest to their counterpart reaches ``threshold`` and every
spoken sentence gives audio. It is the same cross-lingual sanity the extract_text stage logs on the
test split, made a pass/fail before any data are generated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from babelfuse.data import audio_gen, espeak, text_gen
from babelfuse.errors import BabelfuseError
from babelfuse.labels import LABELS

REFERENCE = "en"
# Share of templates that must be nearest to their English counterpart. The encoder itself confuses
# some parallel antonyms ("simply the worst" / "simply the best"): the bundled languages score
# 0.93 (ja) to 0.99 (ru) with 160 templates each (USE multilingual): flags are for a human to read.
DEFAULT_THRESHOLD = 0.9
SPOKEN = 3  # sentences spoken per check
FILLINGS = 3  # slot fillings each template is rendered with (cosines averaged)
_SWITCH = re.compile(r"\(([a-z]{2,3}(?:-[a-z0-9]+)?)\)")  # eSpeak marks a switch to another language: "(en)"


class TextEncoder(Protocol):
    def encode(self, batch: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class TemplateResult:
    """Template ``key[index]`` rendered in the checked language, against the English templates."""

    key: str
    index: int
    text: str
    english: str  # its English counterpart, same slots
    similarity: float  # cosine with the counterpart
    nearest_key: str
    nearest_index: int
    nearest_english: str
    nearest_similarity: float

    @property
    def ok(self) -> bool:
        return (self.nearest_key, self.nearest_index) == (self.key, self.index)


@dataclass(frozen=True)
class SpokenSentence:
    text: str  # what eSpeak NG was given (the `speak` form)
    phonemes: str
    seconds: float
    switches: tuple[str, ...]  # languages eSpeak switched to (e.g. "en" for unknown script)


@dataclass(frozen=True)
class CheckReport:
    code: str
    name: str  # the file's own `name`
    path: Path
    voice: str
    templates: tuple[TemplateResult, ...]
    spoken: tuple[SpokenSentence, ...]
    threshold: float

    @property
    def flagged(self) -> list[TemplateResult]:
        return [t for t in self.templates if not t.ok]

    @property
    def nn_rate(self) -> float:
        return 1.0 - len(self.flagged) / len(self.templates)

    @property
    def passed(self) -> bool:
        return self.nn_rate >= self.threshold and all(s.seconds > 0 for s in self.spoken)


def _specs(structure: text_gen.Structure, filler: int = 0) -> list[tuple[str, text_gen.TextSpec]]:
    """(key, spec) for every template of every key, each slot filled with its filler ``filler``.

    Every template gets the same fillers: a slot shared only by a template and its counterpart
    would make them look alike whatever the rest of the sentence says.
    """
    specs = []
    for key in text_gen.TEMPLATE_KEYS:
        label, kind = (key, "sentiment") if key in LABELS else (LABELS[0], text_gen.FILLER)
        for k, names in enumerate(structure.template_slots[key]):
            slots = tuple((name, filler % structure.slot_sizes[name]) for name in names)
            specs.append((key, text_gen.TextSpec(label, kind, k, slots)))
    return specs


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def compare_templates(code: str, directory: Path, encoder: TextEncoder) -> tuple[TemplateResult, ...]:
    """Every template of ``code`` against every English template of the same folder (cosine)."""
    if code == REFERENCE:
        raise BabelfuseError(
            f"'{REFERENCE}' is the reference every language is compared with: check another code"
        )
    if not text_gen.language_path(REFERENCE, directory).is_file():
        raise BabelfuseError(
            f"{directory} has no {REFERENCE}.yaml: the check compares each template with English"
        )
    structure = text_gen.structure(directory)
    fillings = []
    for filler in range(FILLINGS):  # cosines averaged over a few slot fillings
        specs = _specs(structure, filler)
        ours = [text_gen.render(s, code, directory).text for _, s in specs]
        english = [text_gen.render(s, REFERENCE, directory).text for _, s in specs]
        fillings.append(_unit(encoder.encode(ours)) @ _unit(encoder.encode(english)).T)
    sims = np.mean(fillings, axis=0)
    specs = _specs(structure)
    ours = [text_gen.render(s, code, directory).text for _, s in specs]
    english = [text_gen.render(s, REFERENCE, directory).text for _, s in specs]
    results = []
    for i, (key, spec) in enumerate(specs):
        j = int(np.argmax(sims[i]))
        results.append(
            TemplateResult(
                key=key,
                index=spec.template,
                text=ours[i],
                english=english[i],
                similarity=float(sims[i, i]),
                nearest_key=specs[j][0],
                nearest_index=specs[j][1].template,
                nearest_english=english[j],
                nearest_similarity=float(sims[i, j]),
            )
        )
    return tuple(results)


def speak_samples(code: str, directory: Path, voice: str, n: int = SPOKEN) -> tuple[SpokenSentence, ...]:
    """Template 0 of the first ``n`` keys spoken with neutral prosody: duration and eSpeak's phonemes."""
    mean = audio_gen.PROSODY_MEAN["neutral"]
    prosody = espeak.Prosody(pitch=int(mean[0]), range=int(mean[1]), rate=int(mean[2]), volume=int(mean[3]))
    specs = [s for _, s in _specs(text_gen.structure(directory)) if s.template == 0][:n]
    spoken = []
    for spec in specs:
        text = text_gen.render(spec, code, directory).spoken
        samples = espeak.synthesize(text, voice, prosody)
        phonemes = espeak.text_to_phonemes(text, voice)
        switches = tuple(dict.fromkeys(_SWITCH.findall(phonemes)))
        spoken.append(SpokenSentence(text, phonemes, samples.size / espeak.sample_rate(), switches))
    return tuple(spoken)


def check_language(
    code: str, directory: Path, voice: str, encoder: TextEncoder, threshold: float = DEFAULT_THRESHOLD
) -> CheckReport:
    """Load, render, speak and compare one language file (see the module docstring)."""
    if not 0.0 < threshold <= 1.0:
        raise BabelfuseError(f"--threshold must be in (0, 1], got {threshold}")
    data = text_gen.load_language(code, directory)
    espeak.check_voices([(code, voice)], origin="--voice or labels.LANGUAGES")
    spoken = speak_samples(code, directory, voice)
    templates = compare_templates(code, directory, encoder)
    return CheckReport(code, data.name, data.path, voice, templates, spoken, threshold)


def report_lines(report: CheckReport, covered: bool | None, encoder: str) -> list[str]:
    """The human-readable report of ``babelfuse languages check``; the last line says PASS or FAIL."""
    counts = {}
    for t in report.templates:
        counts[t.key] = counts.get(t.key, 0) + 1
    lines = [
        f"{report.code} ({report.name}): {report.path} loads and renders "
        f"({', '.join(f'{n} {k}' for k, n in counts.items())} templates)",
        f"voice '{report.voice}' = {espeak.voice_name(report.voice)} (other eSpeak NG voices for '{report.code}': "
        f"{', '.join(v for v in espeak.voices_for(report.code) if v != report.voice) or 'none'})",
    ]
    for s in report.spoken:
        switched = f"   (eSpeak switched to {', '.join(s.switches)} here)" if s.switches else ""
        lines += [f"  spoken {s.seconds:4.1f} s  {s.text}", f"     phonemes  {s.phonemes}{switched}"]
    if covered is False:
        lines.append(
            f"warning: {encoder} does not cover '{report.code}': the meaning check below is unreliable"
        )
    ok = len(report.templates) - len(report.flagged)
    lines.append(
        f"{encoder}: {ok}/{len(report.templates)} templates nearest to their English counterpart "
        f"({report.nn_rate:.0%}; threshold {report.threshold:.0%})"
    )
    for t in report.flagged:
        lines += [
            f"  likely mistranslated: templates.{t.key}[{t.index}]  {t.text}",
            f"     its English counterpart (cosine {t.similarity:.2f}): {t.english}",
            f"     nearest English is templates.{t.nearest_key}[{t.nearest_index}] "
            f"(cosine {t.nearest_similarity:.2f}): {t.nearest_english}",
        ]
    silent = [s.text for s in report.spoken if s.seconds <= 0]
    if silent:
        lines.append(f"eSpeak NG produced no audio for: {'; '.join(silent)}")
    lines.append("PASS" if report.passed else "FAIL")
    return lines
