"""docs/RESULTS.md is the rendering of the committed metrics: no hand-edited number can drift from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from babelfuse.evaluation import results_doc

ROOT = Path(__file__).resolve().parents[2]


def test_committed_results_doc_equals_the_rendering_of_the_committed_metrics() -> None:
    if not (ROOT / "metrics" / "eval_detail.json").exists():
        pytest.skip("no committed metrics/eval_detail.json yet (make run, then commit metrics/ and docs/)")
    expected = results_doc.render_from(ROOT)
    assert (ROOT / results_doc.DOC).read_text(encoding="utf-8") == expected, (
        "docs/RESULTS.md is out of date: python -m babelfuse.evaluation.results_doc"
    )


def test_missing_or_broken_metrics_are_one_line_errors(tmp_path) -> None:
    from babelfuse.errors import BabelfuseError

    with pytest.raises(BabelfuseError, match="eval.json"):
        results_doc.render_from(tmp_path)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "eval.json").write_text("{not json")
    with pytest.raises(BabelfuseError, match="not valid JSON"):
        results_doc.render_from(tmp_path)
