"""Adding a language: voices checked up front, `babelfuse languages` (+ check, docs), YAML shape errors.

A Portuguese file written for these tests (three templates per key, in a temp languages folder next
to a matching English file) stands in for a user's new language; eSpeak NG and the USE model are real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from babelfuse import labels
from babelfuse.cli import app
from babelfuse.config import load_config
from babelfuse.data import espeak, language_check, language_support, text_gen
from babelfuse.data.generate import generate_dataset
from babelfuse.errors import BabelfuseError
from babelfuse.features.text import encoder_covers

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

EN = {
    "negative": ["{item} was a huge disappointment.", "I really hated {item}.", "The staff were rude and simply ignored us."],
    "neutral": ["{item} was okay, nothing special.", "Some things were good, others not so much.",
                "The price was fair and the quality was average."],
    "positive": ["{item} was absolutely wonderful!", "I would recommend {item} to all my friends.",
                 "The staff were friendly and incredibly helpful."],
    "filler": ["the museum in {city} has three floors.", "the bus leaves {clock}.", "{item} is on the second floor."],
}  # fmt: skip
PT = {
    "negative": ["{item} foi uma enorme desilusão.", "Eu detestei {item}.",
                 "Os funcionários foram mal-educados e simplesmente ignoraram-nos."],
    "neutral": ["{item} foi razoável, nada de especial.", "Algumas coisas foram boas, outras nem tanto.",
                "O preço era justo e a qualidade era média."],
    "positive": ["{item} foi absolutamente maravilhoso!", "Recomendaria {item} a todos os meus amigos.",
                 "Os funcionários foram simpáticos e incrivelmente prestáveis."],
    "filler": ["o museu em {city} tem três andares.", "o autocarro parte {clock}.", "{item} fica no segundo andar."],
}  # fmt: skip
SLOTS = {
    "en": {"item": ["this hotel", "this concert", "this restaurant"], "city": ["Lisbon", "Porto"],
           "clock": ["at 7:00", "at 8:30"]},
    "pt": {"item": ["este hotel", "este concerto", "este restaurante"], "city": ["Lisboa", "Porto"],
           "clock": ["às 7:00", "às 8:30"]},
}  # fmt: skip
# "I loved {item}, it was wonderful", written where "I really hated {item}" belongs. (USE does not
# separate "Gostei muito de {item}" from "I really hated {item}": the check catches clear flips only.)
MISTRANSLATED = "Adorei {item}, foi maravilhoso."
PORTUGUESE = labels.Language("pt", "Portuguese", "pt", "Latin")


def write_language(folder: Path, code: str, templates: dict[str, list[str]]) -> Path:
    doc = {"code": code, "name": code, "templates": templates, "slots": SLOTS[code]}
    path = folder / f"{code}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    """A languages folder with en.yaml and a correct pt.yaml."""
    langs = tmp_path / "languages"
    langs.mkdir()
    write_language(langs, "en", EN)
    write_language(langs, "pt", PT)
    return langs


@pytest.fixture
def mistranslated(tmp_path) -> Path:
    """A languages folder whose pt.yaml says the opposite in templates.negative[1]."""
    langs = tmp_path / "mistranslated"
    langs.mkdir()
    write_language(langs, "en", EN)
    write_language(langs, "pt", {**PT, "negative": [PT["negative"][0], MISTRANSLATED, PT["negative"][2]]})
    return langs


def broken_copy(folder: Path, dest: Path, entry: str) -> Path:
    """A copy of ``folder`` whose pt.yaml has ``entry`` as its templates.negative[1] line.

    A new folder each time: language files are cached per (code, folder) within a process.
    """
    dest.mkdir()
    for path in folder.glob("*.yaml"):
        (dest / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    lines = (dest / "pt.yaml").read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if "Eu detestei" in line)
    lines[at] = lines[at][: lines[at].index("-")] + entry
    (dest / "pt.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


@pytest.fixture
def with_portuguese(monkeypatch) -> None:
    """The user's one line in labels.py for Portuguese."""
    monkeypatch.setitem(labels.LANGUAGES, "pt", PORTUGUESE)


@pytest.fixture(scope="module")
def encoder():
    from babelfuse.features.text import UseMultilingualEncoder, default_threads

    return UseMultilingualEncoder(threads=default_threads())


# ---- voices ---------------------------------------------------------------------------------------


def test_the_voice_list_agrees_with_what_espeak_accepts() -> None:
    engine = espeak.engine()
    keys = [v.key for v in espeak.list_voices()]
    assert len(keys) > 50 and len(set(keys)) == len(keys)
    wanted = {lang.espeak_voice for lang in labels.LANGUAGES.values()} | set(keys[::15]) | {"pt-br", "roa/pt"}
    for voice in sorted(wanted):
        assert espeak.has_voice(voice), voice
        engine.set_voice(voice)  # raises if eSpeak NG refuses it
    for voice in ("portugese", "zh", "xx-yy", ""):
        assert not espeak.has_voice(voice)
        if voice:
            with pytest.raises(BabelfuseError, match=f"no voice '{voice}'"):
                engine.set_voice(voice)
    assert {"pt", "pt-BR"} <= set(espeak.voices_for("pt"))  # European and Brazilian: both offered


def test_a_wrong_voice_fails_before_anything_is_rendered(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(labels.LANGUAGES, "de", labels.Language("de", "German", "deu", "Latin"))
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    data = {**params["data"], "size": "tiny", "languages": ["en", "de"], "source_langs": ["en"]}
    out = tmp_path / "raw"
    with pytest.raises(BabelfuseError) as caught:
        generate_dataset(data, 42, out)
    message = str(caught.value)
    assert "'de'" in message and "'deu'" in message
    closest = message.split("closest available voices: ")[1].split(";")[0].split(", ")
    assert "de" in closest  # difflib finds the real voice
    assert not out.exists()  # nothing was rendered


# ---- what "supported" means -------------------------------------------------------------------------


def test_statuses_say_what_a_new_language_has_and_lacks(folder, monkeypatch) -> None:
    rows = {r.code: r for r in language_support.statuses(["en"], ["en"], "use-multilingual", folder)}
    pt = rows["pt"]
    assert pt.has_file and pt.name is None and pt.voice is None and not pt.in_data
    assert {"pt", "pt-BR"} <= set(pt.espeak_voices) and pt.encoder_covers
    assert pt.missing == ["a line in labels.LANGUAGES"]
    assert rows["en"].source and rows["en"].in_data and not rows["en"].missing
    assert rows["de"].missing == ["a languages/<code>.yaml file"]  # not in this folder

    monkeypatch.setitem(labels.LANGUAGES, "pt", labels.Language("pt", "Portuguese", "pt-brr", "Latin"))
    bad = {r.code: r for r in language_support.statuses(["en"], ["en"], "use-multilingual", folder)}["pt"]
    assert bad.voice_ok is False and "pt-brr" in bad.missing[0]
    assert encoder_covers("use-multilingual", "zh") and not encoder_covers("use-multilingual", "sv")
    assert encoder_covers("hf:some/model", "en") is None


def test_languages_command_prints_the_table(folder, tmp_path, monkeypatch) -> None:
    (tmp_path / "params.yaml").write_text("data:\n  languages: [en]\n  source_langs: [en]\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["languages", "--languages-dir", str(folder)])
    assert result.exit_code == 0, result.output
    pt_row = next(line.split() for line in result.stdout.splitlines() if line.startswith("pt "))
    assert pt_row[:5] == ["pt", "-", "yes", "-", "pt,"] and "pt-BR" in pt_row
    assert "pt: needs a line in labels.LANGUAGES" in result.stdout


# ---- babelfuse languages check ----------------------------------------------------------------------


def test_check_flags_the_mistranslated_template_and_speaks(folder, mistranslated, encoder) -> None:
    good = language_check.check_language("pt", folder, "pt", encoder)
    assert good.passed and not good.flagged and good.nn_rate == 1.0
    assert len(good.spoken) == language_check.SPOKEN
    for sentence in good.spoken:
        assert sentence.seconds > 0.5 and sentence.phonemes and not sentence.switches

    bad = language_check.check_language("pt", mistranslated, "pt", encoder, threshold=0.95)
    assert [(t.key, t.index) for t in bad.flagged] == [("negative", 1)]
    assert (
        bad.flagged[0].nearest_key == "positive"
        and bad.flagged[0].similarity < bad.flagged[0].nearest_similarity
    )
    assert bad.nn_rate == pytest.approx(11 / 12) and not bad.passed


def test_check_command_passes_fails_and_refuses(
    folder, mistranslated, with_portuguese, tmp_path, monkeypatch
) -> None:
    result = runner.invoke(app, ["languages", "check", "pt", "--languages-dir", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "PASS" and "phonemes" in result.stdout

    monkeypatch.setenv("BABELFUSE_LANGUAGES_DIR", str(mistranslated))
    result = runner.invoke(app, ["languages", "check", "pt", "--threshold", "0.95"])
    assert result.exit_code == 1, result.output
    assert "templates.negative[1]" in result.stdout and "Adorei este hotel, foi maravilhoso." in result.stdout
    assert result.stdout.splitlines()[-1] == "FAIL"

    monkeypatch.setenv(
        "BABELFUSE_LANGUAGES_DIR", str(broken_copy(folder, tmp_path / "broken", "- Comida: má."))
    )
    monkeypatch.delitem(labels.LANGUAGES, "pt")
    for args, needle in (
        (["check", "pt", "--languages-dir", str(folder), "--voice", "portugese"], "pt-BR"),
        (["check", "pt", "--languages-dir", str(folder)], "pt-BR"),  # no labels.py line: voices named
        (["check", "pt"], "templates.negative[1]"),  # the broken file, via BABELFUSE_LANGUAGES_DIR
    ):
        result = runner.invoke(app, ["languages", *args])
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.output


# ---- YAML shape errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("- Comida: horrível.", r"pt\.yaml: templates\.negative\[1\] is the mapping .*': '.*quote.*\"Comida: horrível\.\""),
        ("- {item}", r"pt\.yaml: templates\.negative\[1\] is the mapping .*starts with '\{'.*quote.*\"\{item\}\""),
        ("- {item} foi mau.", r"pt\.yaml: not valid YAML \(line \d+: .*'- \{item\} foi mau\.'.*starts with '\{'.*quote"),
        ("- Nota: {item}: mau", r"pt\.yaml: not valid YAML \(line \d+: mapping values.*': '.*quote"),
    ],
)  # fmt: skip
def test_yaml_shape_errors_explain_themselves(folder, tmp_path, entry, expected) -> None:
    broken = broken_copy(folder, tmp_path / "broken", entry)
    with pytest.raises(BabelfuseError, match=expected) as caught:
        text_gen.load_language("pt", broken)
    assert "\n" not in str(caught.value)


# ---- docs generated from the files ------------------------------------------------------------------


def _repo_blocks() -> dict[str, str]:
    config = load_config(REPO / "params.yaml")
    n_posts = language_support.planned_posts(config.section("data"), config.seed)
    return language_support.doc_blocks(config.data.languages, config.data.source_langs, n_posts)


def test_docs_language_lists_match_the_files_and_params() -> None:
    blocks = _repo_blocks()
    for doc, names in (
        (REPO / "README.md", {"targets", "sources", "posts"}),
        (REPO / "docs/DATA.md", {"table"}),
    ):
        text = doc.read_text(encoding="utf-8")
        assert names <= set(language_support.block_names(text)), doc
        assert language_support.render_docs(text, blocks) == text, (
            f"{doc.name} is stale: run `babelfuse languages docs --write`"
        )


def test_docs_command_finds_and_rewrites_a_stale_block(tmp_path, monkeypatch) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["data"]["size"] = "tiny"  # planning the default size takes seconds per call
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    for name in ("README.md", "docs/DATA.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((REPO / name).read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BABELFUSE_ROOT", str(tmp_path))
    n_tiny = language_support.planned_posts(params["data"], params["seed"])
    stale = runner.invoke(app, ["languages", "docs"])
    assert stale.exit_code == 1 and "README.md" in stale.stdout and "DATA.md" not in stale.stdout
    assert runner.invoke(app, ["languages", "docs", "--write"]).exit_code == 0
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert f"{n_tiny:,} posts in {len(params['data']['languages'])} languages" in readme
    assert runner.invoke(app, ["languages", "docs"]).exit_code == 0
    (tmp_path / "docs/DATA.md").write_text("# no language table here\n", encoding="utf-8")
    assert runner.invoke(app, ["languages", "docs"]).exit_code == 0  # nothing generated, nothing stale


def test_markdown_blocks_follow_the_params(folder, with_portuguese) -> None:
    blocks = language_support.doc_blocks(["en", "pt"], ["en"], 1234, folder)
    assert blocks["targets"] == "Portuguese" and blocks["posts"] == "1,234 posts in 2 languages"
    row = next(line for line in blocks["table"].splitlines() if line.startswith("| `pt`"))
    assert "`pt` (" in row and "`pt-BR`" in row
