"""The params.yaml schema: types, ranges, allowed values, unknown keys, and no drift from params.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from babelfuse import config
from babelfuse.errors import BabelfuseError
from babelfuse.params import load_params, load_section

REPO = Path(__file__).resolve().parents[2]


def _committed() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def _error(overrides: list[str]) -> str:
    """The one-line message for the committed params.yaml with ``overrides`` laid over it."""
    with pytest.raises(BabelfuseError) as info:
        config.validate(config.apply_overrides(_committed(), overrides))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("params.yaml: ")
    return message


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_leaves(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): tree}


# -------------------------------------------------------------------- one place for defaults
def test_committed_params_validate_without_changing_a_value():
    """The committed params.yaml passes the schema, and every value it writes comes back unchanged
    (the schema neither rejects nor silently coerces what the pipeline runs with)."""
    raw = _committed()
    validated = _leaves(config.validate(raw).as_dict())
    written = _leaves(raw)
    changed = {
        key: (value, validated.get(key)) for key, value in written.items() if validated.get(key) != value
    }
    assert changed == {}, f"params.yaml values the schema changed: {changed}"


def test_every_schema_default_is_what_params_yaml_says():
    """Defaults live in the schema; params.yaml repeats each (DVC tracks only keys it sees): no drift."""
    defaults = _leaves(config.Config().as_dict())
    written = _leaves(_committed())
    # `log` of a tune.space range is optional in the file (a range is linear unless it says so).
    optional = {key for key, value in defaults.items() if key.endswith(".log") and value is False}
    assert set(written) == set(defaults) - (optional - set(written)), "params.yaml and schema keys differ"
    drift = {key: (written[key], defaults[key]) for key in written if written[key] != defaults[key]}
    assert drift == {}, f"params.yaml value != schema default: {drift}"


def test_fusion_and_pruner_names_match_their_implementations():
    from babelfuse.fusion import FUSIONS
    from babelfuse.tuning.study import PRUNERS

    assert set(get_args(config.FusionName)) == set(FUSIONS)
    assert set(get_args(config.PrunerName)) == set(PRUNERS)


# ------------------------------------------------------------------------------------- types
def test_a_word_for_an_integer_names_key_rule_and_value():
    assert _error(["train.hidden=big"]) == "params.yaml: train.hidden must be an integer >= 1, got 'big'"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.hidden='64'", "train.hidden"),  # a quoted number is a string, not coerced
        ("train.hidden=6.5", "train.hidden"),
        ("train.use_best_params=1", "train.use_best_params"),
        ("train.learning_rate=fast", "train.learning_rate"),
        ("features.image.weights=3", "features.image.weights"),
        ("data.sizes.tiny.train=x", "data.sizes.tiny.train"),
        ("evaluate.missing_rates=0.5", "evaluate.missing_rates"),
        ("train=3", "train"),
    ],
)
def test_wrong_types_are_rejected_naming_the_key(override, key):
    assert _error([override]).startswith(f"params.yaml: {key} must be ")


def test_null_is_accepted_only_where_allowed():
    assert (
        config.validate(config.apply_overrides(_committed(), ["tune.timeout_s=null"])).tune.timeout_s is None
    )
    assert "train.hidden must be" in _error(["train.hidden=null"])


# ------------------------------------------------------------------------------------ ranges
@pytest.mark.parametrize(
    ("override", "key", "rule"),
    [
        ("tune.n_trials=-3", "tune.n_trials", ">= 1"),
        ("train.dropout=1.5", "train.dropout", "in [0, 1)"),
        ("data.informativeness.text=2", "data.informativeness.text", "in [0, 1]"),
        ("evaluate.ci=1", "evaluate.ci", "in (0, 1)"),
        ("evaluate.missing_rates=[0, 2]", "evaluate.missing_rates", "in [0, 1]"),
        ("seed=-1", "seed", ">= 0"),
        ("data.languages=[]", "data.languages", "non-empty"),
    ],
)
def test_out_of_range_values_are_rejected(override, key, rule):
    message = _error([override])
    assert message.startswith(f"params.yaml: {key} must be ")
    assert rule in message


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.fusion=foo", "train.fusion"),
        ("tune.pruner=always", "tune.pruner"),
        ("validate.on_failure=ignore", "validate.on_failure"),
        ("features.text.encoder=bert", "features.text.encoder"),
        ("data.size=huge", "data.size"),
        ("tune.space.fusion=[concat, foo]", "tune.space.fusion"),
        ("tune.space.dropout={low: 0.5, high: 0.1}", "tune.space.dropout.low"),
        ("tune.space.hidden=3", "tune.space.hidden"),
        ("data.source_langs=[xx]", "data.source_langs"),
        ("validate.audio_min_seconds=40", "validate.audio_min_seconds"),
    ],
)
def test_values_outside_the_allowed_set_are_rejected(override, key):
    message = _error([override])
    assert message.startswith(f"params.yaml: {key} ")
    assert "got " in message


def test_allowed_values_pass():
    ok = ["train.fusion=gated", "features.image.encoder=keras:MobileNetV3Small", "tune.space={hidden: [8]}"]
    cfg = config.validate(config.apply_overrides(_committed(), ok))
    assert cfg.train.fusion == "gated"
    assert config.validate(config.apply_overrides(_committed(), ok)).section("tune")["space"] == {
        "hidden": [8]
    }


# ------------------------------------------------------------------------------ unknown keys
@pytest.mark.parametrize(
    ("override", "typo", "meant"),
    [
        ("train.fusoin=gated", "train.fusoin", "train.fusion"),
        ("trian.hidden=3", "trian", "train"),
        ("tune.space.hiden=[8]", "tune.space.hiden", "tune.space.hidden"),
        ("data.sizes.tiny.trian=3", "data.sizes.tiny.trian", "data.sizes.tiny.train"),
        ("features.audio.n_mfc=13", "features.audio.n_mfc", "features.audio.n_mfcc"),
    ],
)
def test_unknown_keys_get_the_nearest_known_name(override, typo, meant):
    assert _error([override]) == f"params.yaml: {typo} is not a known key; did you mean {meant}?"


def test_an_unknown_key_with_no_near_name_lists_the_known_ones():
    message = _error(["register.zzzzzz=1"])
    assert "register.zzzzzz is not a known key" in message
    assert "model_name" in message


# ----------------------------------------------------------------- loading, sections, overrides
def test_load_section_fills_defaults_for_keys_the_file_leaves_out(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 7\ntrain:\n  hidden: 128\n", encoding="utf-8")
    train = load_section("train", path)
    assert train["hidden"] == 128
    assert train["fusion"] == config.TrainConfig().fusion
    assert load_section("seed", path) == 7
    assert load_section("evaluate", path) == config.EvaluateConfig().model_dump()
    assert load_params(path)["register"]["model_name"] == config.RegisterConfig().model_name
    assert config.load_config(path).train.hidden == 128


def test_load_section_rejects_a_bad_value_elsewhere_in_the_file(tmp_path):
    """The whole file is validated up front, not only the section a stage asks for."""
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  hidden: big\n", encoding="utf-8")
    with pytest.raises(BabelfuseError, match="train.hidden"):
        load_section("evaluate", path)


def test_unknown_section_name_is_a_user_error(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("{}\n", encoding="utf-8")
    with pytest.raises(BabelfuseError, match="no section 'trian'"):
        load_section("trian", path)


def test_malformed_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  hidden: [1, 2\n", encoding="utf-8")
    with pytest.raises(BabelfuseError) as info:
        config.load_config(path)
    assert "\n" not in str(info.value)
    assert "not valid YAML" in str(info.value)


def test_overrides_are_parsed_as_yaml_and_an_empty_value_keeps_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  hidden: 32\n  fusion: late\n", encoding="utf-8")
    cfg = config.load_config(path, ["train.hidden=128", "train.fusion=", "train.baselines=false"])
    assert (cfg.train.hidden, cfg.train.fusion, cfg.train.baselines) == (128, "late", False)
    with pytest.raises(BabelfuseError, match="train.hidden must be an integer"):
        config.load_config(path, ["train.hidden=big"])
    with pytest.raises(BabelfuseError, match="section.key=value"):
        config.load_config(path, ["train.hidden"])
