"""``python -m babelfuse.experiment`` (MLproject ``main``): validated overrides become ``dvc exp run -S``."""

from __future__ import annotations

import pytest

from babelfuse.experiment import dvc_command, main


def test_set_overrides_become_dvc_set_params_and_empty_ones_are_dropped() -> None:
    overrides = ["train.fusion=gated", "tune.n_trials=", "train.use_best_params=false"]
    assert dvc_command(overrides) == [
        "dvc", "exp", "run", "-S", "train.fusion=gated", "-S", "train.use_best_params=false",
    ]  # fmt: skip
    assert dvc_command(["train.fusion=", "data.size="]) == ["dvc", "repro"]


def test_a_bad_override_stops_before_dvc_runs(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "params.yaml").write_text("{}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["--dry", "--set", "tune.n_trials=-3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --set: tune.n_trials must be an integer >= 1, got -3"]
