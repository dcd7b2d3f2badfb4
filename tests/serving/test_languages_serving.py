"""The served model answers every language its text encoder covers, named or identified from the text.

The tiny world is trained on en/de/ja/ar only; these posts are in languages the bundled data does
not have (pt/it/nl/pl/tr/ko), all inside USE Multilingual's 16.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from babelfuse.serving import bundle
from babelfuse.serving.pyfunc import LANGUAGE_COLUMNS, OUTPUT_COLUMNS
from helpers.languages import UNSEEN
from helpers.serving import LANGS, World

PROBS = ["prob_negative", "prob_neutral", "prob_positive"]


@pytest.fixture(scope="module")
def loaded(world: World):
    import mlflow

    return mlflow.pyfunc.load_model(str(world.saved))


def posts(langs) -> pd.DataFrame:
    return pd.DataFrame({"text": list(UNSEEN.values()), "lang": list(langs)}, dtype=object)


def test_unseen_languages_are_answered_with_their_codes_and_flagged(loaded) -> None:
    out = loaded.predict(posts(UNSEEN))
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert out["error"].isna().all() and out["label"].notna().all()
    assert out["lang_seen_in_training"].tolist() == [False] * len(UNSEEN)
    assert out["lang_detected"].isna().all()  # the caller named the language: nothing was identified
    as_english = loaded.predict(posts(["en"] * len(UNSEEN)))  # what a user had to send before
    np.testing.assert_allclose(out[PROBS].to_numpy(float), as_english[PROBS].to_numpy(float), atol=1e-6)


def test_without_a_code_the_language_is_identified_from_the_text(loaded) -> None:
    out = loaded.predict(posts([None] * len(UNSEEN)))
    assert out["error"].isna().all()
    assert out["lang_detected"].tolist() == list(UNSEEN)
    assert out["lang_seen_in_training"].tolist() == [False] * len(UNSEEN)
    no_column = loaded.predict(pd.DataFrame({"text": ["Das Essen war wirklich ausgezeichnet, danke!"]}))
    assert no_column.loc[0, "lang_detected"] == "de" and no_column.loc[0, "lang_seen_in_training"]


def test_region_variants_and_chinese_spellings_map_to_covered_codes(loaded) -> None:
    codes = ["pt-BR", "zh-CN", "zh_TW", "EN-us", "de", "Ko"]
    texts = [UNSEEN["pt"], "今天的服务很好。", "今天的服務很好。", "Nice.", "Gut.", UNSEEN["ko"]]
    out = loaded.predict(pd.DataFrame({"text": texts, "lang": codes}))
    assert out["error"].isna().all(), out["error"].tolist()
    # the world was trained on en, de, ja, ar: zh (simplified) and zh-tw are covered but unseen
    assert out["lang_seen_in_training"].tolist() == [False, False, False, True, True, False]


def test_a_language_outside_the_coverage_fails_only_its_row_naming_language_and_covered_set(loaded) -> None:
    frame = pd.DataFrame(
        {"text": ["Maten var god.", UNSEEN["it"], "x", "y"], "lang": ["sv", "it", "12!", "q" * 500]}
    )
    out = loaded.predict(frame)
    errors = out["error"].tolist()
    assert errors[1] is None and out.loc[1, "lang_seen_in_training"] is False
    assert errors[0].startswith("row 0: lang: language 'sv' is not covered by the text encoder")
    assert "pt" in errors[0] and "ko" in errors[0] and "zh-tw" in errors[0]  # the covered set
    assert errors[2].startswith("row 2: lang: '12!' is not a language code")
    assert errors[3].startswith("row 3: lang:") and len(errors[3]) < 260  # bounded, whatever was sent
    assert out.loc[0, LANGUAGE_COLUMNS].isna().all() and out.loc[0, "label"] is None


def test_signature_names_every_column_its_type_optionality_and_the_params(world: World) -> None:
    from mlflow.models import Model

    meta = Model.load(str(world.saved))
    columns = {c["name"]: c for c in json.loads(meta.signature.to_dict()["inputs"])}
    assert {n: (c["type"], c["required"]) for n, c in columns.items()} == {
        "text": ("string", True),
        "lang": ("string", False),
        "image": ("string", False),
        "audio": ("string", False),
    }
    params = {p.name: (p.dtype.name, p.default) for p in meta.signature.params.params}
    assert params == {"on_error": ("string", "row"), "explain": ("boolean", False)}
    outputs = [c["name"] for c in json.loads(meta.signature.to_dict()["outputs"])]
    assert set(OUTPUT_COLUMNS) <= set(outputs)


def test_the_input_example_round_trips_and_lang_may_be_missing(world: World, loaded) -> None:
    from mlflow.models import Model

    example = Model.load(str(world.saved)).load_input_example(str(world.saved))

    def cells(frame: pd.DataFrame) -> list[list]:
        return [[None if pd.isna(v) else v for v in row] for row in frame.itertuples(index=False)]

    assert list(example.columns) == list(bundle.example_input(list(LANGS)).columns)
    assert cells(example) == cells(bundle.example_input(list(LANGS)))
    out = loaded.predict(example)
    assert out["error"].isna().all() and out["label"].notna().all()
    assert out.loc[1, "lang_detected"] is not None and out.loc[2, "lang_detected"] is None  # no text


def test_logging_and_loading_raise_no_type_hint_warning(world: World, tmp_path) -> None:
    import mlflow

    a = world.saved / "artifacts"
    config = json.loads((a / "serving.json").read_text())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saved = bundle.save_pyfunc(
            tmp_path / "m", a / "good.keras", a / "scalers.json", a / "temperature.json", config
        )
        mlflow.pyfunc.load_model(str(saved)).predict(pd.DataFrame({"text": ["ok"], "lang": ["en"]}))
    hints = [str(w.message) for w in caught if "type hint" in str(w.message).lower()]
    assert hints == []


def test_defining_the_model_class_raises_no_type_hint_warning() -> None:
    """MLflow warns when the PythonModel subclass is defined: check in a fresh interpreter."""
    code = "import babelfuse.serving.pyfunc"
    done = subprocess.run(
        [sys.executable, "-W", "always::UserWarning", "-c", code], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Add type hints" not in done.stderr
