"""docs/RESULTS.md is the rendering of the committed metrics: no hand-edited number can drift from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from babelfuse.errors import BabelfuseError
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
    with pytest.raises(BabelfuseError, match="eval.json"):
        results_doc.render_from(tmp_path)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "eval.json").write_text("{not json")
    with pytest.raises(BabelfuseError, match="not valid JSON"):
        results_doc.render_from(tmp_path)


def _method(f1: float, vs_best: float, resolved: bool) -> dict:
    return {
        "test_macro_f1": f1, "seed_std": 0.01, "ci_low": f1 - 0.05, "ci_high": f1 + 0.05,
        "vs_best": {"diff": vs_best, "ci_low": vs_best - 0.01, "ci_high": vs_best + 0.01, "resolved": resolved},
        "vs_ceiling": {"diff": f1 - 0.9, "ci_low": f1 - 0.92, "ci_high": f1 - 0.88, "resolved": True},
    }  # fmt: skip


def _bench(variant: str, methods: dict, best: str) -> dict:
    return {
        "config": {"data": variant, "interactions": {"irony": 0.3}, "rows": {"test": 10}, "seeds": [0, 1], "trials": 2},
        "seconds": 1.0, "best": best, "methods": methods,
        "ceiling_on_test": {"bayes": {"value": 0.9, "ci_low": 0.85, "ci_high": 0.95},
                            "late": {"value": 0.85, "ci_low": 0.8, "ci_high": 0.9}},
    }  # fmt: skip


def test_fusion_benchmark_table_orders_methods_by_score_and_bolds_only_resolved_differences() -> None:
    result = _bench("with", {"late": _method(0.80, -0.05, True), "gated": _method(0.85, 0.0, False),
                             "concat": _method(0.84, -0.01, False)}, "gated")  # fmt: skip
    rows = [
        line
        for line in results_doc.fusion_benchmark_table(result)
        if line.startswith("| ") and "method" not in line
    ]
    assert [r.split(" | ")[0] for r in rows] == ["| gated (best)", "| concat", "| late"]
    assert "**-0.050 [-0.060, -0.040]**" in rows[2] and "**" not in rows[1].split(" | ")[3]


def test_the_benchmark_findings_follow_the_paired_cis() -> None:
    resolved_win = _bench(
        "with", {"late": _method(0.80, -0.05, True), "gated": _method(0.85, 0.0, False)}, "gated"
    )
    tie = _bench("with", {"late": _method(0.84, -0.01, False), "gated": _method(0.85, 0.0, False)}, "gated")
    late_best = _bench("without", {"late_calibrated": _method(0.9, 0.0, False), "gated": _method(0.89, -0.01, False)}, "late_calibrated")  # fmt: skip
    lines = {
        name: results_doc.fusion_benchmark_lines({b["config"]["data"]: b})[-2]
        for name, b in {"win": resolved_win, "tie": tie, "late_best": late_best}.items()
    }
    assert "`gated` beats late fusion by a margin the paired CI resolves" in lines["win"]
    assert "nothing beats late fusion" in lines["tie"] and "worse than hoped" in lines["tie"]
    assert "late fusion (`late_calibrated`) is the best method" in lines["late_best"]
