"""``babelfuse predict`` on a real saved end-to-end model (local files sent as bytes)."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from babelfuse.cli import app
from helpers.serving import World, b64


def test_predict_prints_label_and_probabilities_like_the_model(world: World, predictor) -> None:
    image, audio = world.root / "images/p06.png", world.root / "audio/p06.wav"
    args = [
        "predict",
        "--lang",
        "de",
        "--text",
        "Das war eine furchtbare Enttäuschung.",
        "--model-uri",
        str(world.saved),
    ]
    result = CliRunner().invoke(app, [*args, "--image", str(image), "--audio", str(audio), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    frame = pd.DataFrame([{"text": args[4], "lang": "de", "image": b64(image), "audio": b64(audio)}])
    want = predictor.predict(frame).iloc[0]
    assert answer["label"] == want["label"] == "negative"
    assert answer["probabilities"]["negative"] == want["prob_negative"]
    assert answer["modalities"] == ["text", "image", "audio"]
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0 and table.stdout.splitlines()[0].startswith("negative")
    assert "positive" in table.stdout and "#" in table.stdout


def test_predict_user_errors_are_one_red_line_and_exit_2(world: World) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["predict", "-l", "sv", "-t", "Hej", "-m", str(world.saved)])
    assert unknown.exit_code == 2
    assert (
        unknown.stderr.strip()
        == "error: row 0: lang: language 'sv' is not covered by the text encoder use-multilingual; "
        "covered: ar, de, en, es, fr, it, ja, ko, nl, pl, pt, ru, th, tr, zh, zh-tw"
    )
    nothing = runner.invoke(app, ["predict", "-l", "en", "-m", str(world.saved)])
    assert nothing.exit_code == 2 and "no text, image or audio" in nothing.stderr
    bad_audio = world.root / "images/p00.png"  # a PNG given as audio
    wrong = runner.invoke(
        app, ["predict", "-l", "en", "-t", "hi", "-a", str(bad_audio), "-m", str(world.saved)]
    )
    assert wrong.exit_code == 2 and wrong.stderr.startswith("error: row 0: audio: cannot decode audio")
    for r in (unknown, nothing, wrong):
        assert "Traceback" not in r.output and len(r.stderr.strip().splitlines()) == 1


def test_predict_explain_prints_the_served_models_contributions(world: World, predictor) -> None:
    image = world.root / "images/p06.png"
    text = "Das war eine furchtbare Enttäuschung."
    args = ["predict", "-l", "de", "-t", text, "-i", str(image), "-m", str(world.saved), "--explain"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    frame = pd.DataFrame([{"text": text, "lang": "de", "image": b64(image), "audio": None}])
    want = predictor.predict(frame, explained=True).iloc[0]
    assert answer["contributions"] == {m: want[f"contrib_{m}"] for m in ("text", "image", "audio")}
    assert answer["contributions"]["audio"] == 0.0  # no clip given
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0
    assert f"{want['contrib_text']:+6.3f}" in table.stdout
