"""The ``babelfuse`` command without a model: help, report, and user errors (exit 2, one line)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from babelfuse.cli import app

runner = CliRunner()


def test_help_lists_the_commands_with_examples() -> None:
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    for command in ("predict", "promote", "report"):
        assert command in top.stdout
    for command, needle in (("predict", "--audio"), ("promote", "--tolerance"), ("report", "--open")):
        page = runner.invoke(app, [command, "--help"])
        assert page.exit_code == 0 and needle in page.stdout and "Examples:" in page.stdout
        assert f"babelfuse {command}" in page.stdout


def test_report_prints_the_headline_and_the_report_path(tmp_path) -> None:
    metrics = {
        "n_test": 240,
        "test_macro_f1": 0.8123,
        "test_macro_f1_ci_low": 0.78,
        "test_macro_f1_ci_high": 0.84,
        "test_accuracy": 0.82,
        "source_langs": "en",
        "source_macro_f1": 0.9,
        "target_macro_f1": 0.8,
        "transfer_gap": 0.1,
        "worst_language": "ja",
        "per_language": {
            "en": {
                "macro_f1": 0.9,
                "macro_f1_ci_low": 0.85,
                "macro_f1_ci_high": 0.95,
                "accuracy": 0.9,
                "n": 120,
            },
            "ja": {
                "macro_f1": 0.7,
                "macro_f1_ci_low": 0.6,
                "macro_f1_ci_high": 0.8,
                "accuracy": 0.71,
                "n": 120,
            },
        },
    }
    (tmp_path / "eval.json").write_text(json.dumps(metrics))
    (tmp_path / "eval.html").write_text("<html></html>")
    result = runner.invoke(
        app, ["report", "--metrics", str(tmp_path / "eval.json"), "--report", str(tmp_path / "eval.html")]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert (
        "test macro-F1 0.812 [0.780, 0.840]" in out
        and "transfer gap +0.100" in out
        and "worst language ja" in out
    )
    assert any(line.split()[:2] == ["ja", "0.700"] for line in out.splitlines())
    assert f"full report: {tmp_path / 'eval.html'}" in out


def test_user_errors_are_one_red_line_exit_2_without_traceback(tmp_path, mlflow_uri) -> None:
    cases = [
        ["report", "--metrics", str(tmp_path / "missing.json")],
        ["predict", "--lang", "en", "--text", "hi", "--image", str(tmp_path / "nope.png")],
        [
            "promote",
            "--model-name",
            "nobody",
            "--manifest",
            str(tmp_path / "m.parquet"),
            "--promotions",
            str(tmp_path / "p.jsonl"),
        ],
    ]
    expected = ["missing.json not found", "--image: file not found", "no registered model 'nobody'"]
    for args, needle in zip(cases, expected, strict=True):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        last = result.stderr.strip().splitlines()[-1]  # MLflow may log INFO lines about a new database first
        assert last.startswith("error: ") and needle in last
        assert "Traceback" not in result.output
