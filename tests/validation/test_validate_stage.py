"""The validate stage end to end (real GX, real MLflow on SQLite): fail and quarantine modes.

Every kind of bad row is planted once in one manifest (rows are checked independently), which is
validated once per mode; each kind then has its own test asserting the expectation, sample_id
and reason it produced. Table-level problems get their own manifests.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from babelfuse.errors import BabelfuseError
from babelfuse.stages.validate import main
from babelfuse.validation.validate import reset_docs
from helpers.validation import LABELS, clean_frame, png_header_only, write_case, write_png, write_wav


@dataclass
class Run:
    code: int
    err: str
    case: dict

    @property
    def metrics(self) -> dict:
        return json.loads(Path(self.case["metrics"]).read_text())

    def out(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(Path(self.case["out"]) / name)


def run_main(case: dict) -> Run:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main(case["argv"])
            code = 0
        except SystemExit as exit_:
            code = exit_.code
    return Run(code, err.getvalue(), case)


# kind -> (expectation name, reason fragment, how to make the row)
def _bad_rows(root: Path) -> dict[str, tuple[str, str, dict]]:
    bad = root / "bad"
    write_png(bad / "ok.png")
    write_wav(bad / "ok.wav")
    write_wav(root.parent / "outside.wav")
    (bad / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    full = write_png(bad / "full.png", size=(64, 64)).read_bytes()
    (bad / "truncated.png").write_bytes(full[: len(full) // 2])
    png_header_only(bad / "pixels.png", 3000, 3000)
    png_header_only(bad / "side.png", 5000, 10)
    png_header_only(bad / "bomb.png", 100_000, 100_000)
    write_wav(bad / "rate.wav", rate=8000)
    write_wav(bad / "short.wav", seconds=0.05)
    write_wav(bad / "long.wav", seconds=2.5)  # the case sets validate.audio_max_seconds=2.0
    write_wav(bad / "silent.wav", amplitude=0.0)
    (bad / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt junk")
    return {
        "null_sample_id": ("sample_id_not_null", "sample_id is missing", {"sample_id": None}),
        "null_split": ("split_not_null", "split is missing", {"split": None}),
        "null_lang": ("lang_not_null", "lang is missing", {"lang": None}),
        "null_text": ("text_not_null", "text is missing", {"text": None}),
        "null_label": ("label_not_null", "label is missing", {"label": None}),
        "empty_sample_id": ("sample_id_length", "sample_id is empty", {"sample_id": ""}),
        "duplicate": ("sample_id_unique", "is duplicated", {"sample_id": "bad-dup"}),
        "bad_label": ("label_in_set", "label 'happy' not in negative|neutral|positive", {"label": "happy"}),
        "bad_split": ("split_in_set", "split 'dev' not in train|val|test", {"split": "dev"}),
        "unsupported_lang": (
            "lang_in_set",
            "lang 'xx' not in the text encoder's languages (features.text)",
            {"lang": "xx"},
        ),
        "empty_text": ("text_length", "text is empty", {"text": ""}),
        "long_text": ("text_length", "text has 501 chars > validate.text_max_chars=500", {"text": "x" * 501}),
        "replacement_char": ("text_encoding", "U+FFFD", {"text": "caf\ufffd au lait"}),
        "absolute_path": ("image_path_ok", "is absolute", {"image_path": str(bad / "ok.png")}),
        "dotdot_escape": ("audio_path_ok", "escapes the data root", {"audio_path": "bad/../../outside.wav"}),
        "missing_file": ("image_path_ok", "file not found", {"image_path": "bad/nope.png"}),
        "corrupt_image": ("image_ok", "image does not decode", {"image_path": "bad/corrupt.png"}),
        "truncated_image": ("image_ok", "image does not decode", {"image_path": "bad/truncated.png"}),
        "image_pixels": ("image_ok", "exceed validate.image_max_pixels", {"image_path": "bad/pixels.png"}),
        "image_side": ("image_ok", "side exceeds validate.image_max_side", {"image_path": "bad/side.png"}),
        "image_bomb": ("image_ok", "decompression bomb", {"image_path": "bad/bomb.png"}),
        "audio_rate": ("audio_ok", "sample rate 8000 Hz", {"audio_path": "bad/rate.wav"}),
        "audio_short": (
            "audio_ok",
            "shorter than validate.audio_min_seconds",
            {"audio_path": "bad/short.wav"},
        ),
        "audio_long": (
            "audio_ok",
            "longer than validate.audio_max_seconds=2.0",
            {"audio_path": "bad/long.wav"},
        ),
        "audio_silent": ("audio_ok", "audio is silent", {"audio_path": "bad/silent.wav"}),
        "audio_corrupt": ("audio_ok", "audio does not decode", {"audio_path": "bad/corrupt.wav"}),
    }


KINDS = [
    "null_sample_id", "null_split", "null_lang", "null_text", "null_label", "empty_sample_id", "duplicate",
    "bad_label", "bad_split", "unsupported_lang", "empty_text", "long_text", "replacement_char",
    "absolute_path", "dotdot_escape", "missing_file", "corrupt_image", "truncated_image", "image_pixels",
    "image_side", "image_bomb", "audio_rate", "audio_short", "audio_long", "audio_silent", "audio_corrupt",
]  # fmt: skip


def _mixed_manifest(root: Path) -> tuple[pd.DataFrame, dict]:
    """A clean balanced manifest plus one bad row per kind (two for the duplicate)."""
    good = clean_frame(root, per_cell=3)
    cases = _bad_rows(root)
    rows = []
    for i, kind in enumerate(KINDS):
        row = {
            "sample_id": f"bad-{kind}",
            "split": "test",
            "lang": "de",
            "text": f"marker {kind}",
            "image_path": "bad/ok.png",
            "audio_path": "bad/ok.wav",
            "label": LABELS[i % 3],
            "template_id": 1000 + i,
        }
        row.update(cases[kind][2])
        rows.append(row)
    dup = dict(rows[KINDS.index("duplicate")], text="marker duplicate twin", label="positive")
    rows.append(dup)
    return pd.concat([good, pd.DataFrame(rows)], ignore_index=True), cases


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, shared_mlflow):
    base = tmp_path_factory.mktemp("mixed")
    root = base / "root"
    frame, cases = _mixed_manifest(root)
    runs = {}
    for mode in ("fail", "quarantine"):
        case = write_case(base / mode, frame, root, on_failure=mode, audio_max_seconds=2.0)
        runs[mode] = run_main(case)
    return runs, cases, frame


def _label(kind: str) -> str:
    """How the stage names the row: its sample_id, or ``<row N>`` when it has none."""
    return {"null_sample_id": "<row ", "empty_sample_id": "<row ", "duplicate": "bad-dup"}.get(
        kind, f"bad-{kind}"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_bad_row_fails_the_stage_naming_expectation_and_sample(mixed, kind):
    runs, cases, _ = mixed
    run = runs["fail"]
    expectation, reason, _ = cases[kind]
    assert run.code == 2 and "Traceback" not in run.err
    line = next(ln for ln in run.err.splitlines() if ln.startswith(f"  - {expectation} ["))
    assert _label(kind) in line
    record = run.metrics["expectations"][expectation]
    assert record["success"] is False
    assert any(_label(kind) in sid for sid in record["first_failing"])
    assert not (Path(run.case["out"]) / "manifest.parquet").exists()  # a failed stage writes no manifest


@pytest.mark.parametrize("kind", KINDS)
def test_bad_row_is_quarantined_with_its_reason(mixed, kind):
    runs, cases, _ = mixed
    run = runs["quarantine"]
    expectation, reason, _ = cases[kind]
    assert run.code == 0, run.err
    quarantine = run.out("quarantine.parquet")
    template = 1000 + KINDS.index(kind)  # the bad rows' template_id identifies them
    row = quarantine[quarantine["template_id"] == template]
    assert len(row) == (2 if kind == "duplicate" else 1)
    assert all(f"{expectation}: " in r and reason in r for r in row["reasons"]), row["reasons"].tolist()
    assert not (run.out("manifest.parquet")["template_id"] == template).any()


def test_quarantine_keeps_exactly_the_good_rows(mixed):
    runs, _, frame = mixed
    run = runs["quarantine"]
    kept, quarantine = run.out("manifest.parquet"), run.out("quarantine.parquet")
    n_bad = len(KINDS) + 1
    assert len(kept) == len(frame) - n_bad and len(quarantine) == n_bad
    assert kept["sample_id"].str.startswith("s-").all()
    assert list(kept.columns) == list(frame.columns)
    assert list(quarantine.columns) == [*frame.columns, "reasons"]
    m = run.metrics
    assert (m["rows_in"], m["rows_passed"], m["rows_quarantined"]) == (len(frame), len(kept), n_bad)
    source = json.loads((Path(run.case["out"]) / "source.json").read_text())
    assert Path(source["data_root"]) == Path(run.case["manifest"]).parent.parent.parent / "root"


def test_a_row_with_several_problems_lists_them_all(tmp_path, shared_mlflow):
    root = tmp_path / "root"
    frame = clean_frame(root)
    frame.loc[0, ["label", "text", "image_path"]] = ["happy", "", "/etc/passwd"]
    run = run_main(write_case(tmp_path / "case", frame, root, on_failure="quarantine"))
    reasons = run.out("quarantine.parquet")["reasons"].tolist()
    assert len(reasons) == 1 and reasons[0].count("; ") == 2
    assert "label_in_set" in reasons[0] and "text_length" in reasons[0] and "image_path_ok" in reasons[0]


@pytest.mark.parametrize("mode", ["fail", "quarantine"])
def test_clean_manifest_passes(tmp_path, shared_mlflow, mode):
    root = tmp_path / "root"
    frame = clean_frame(root)
    run = run_main(write_case(tmp_path / "case", frame, root, on_failure=mode))
    assert run.code == 0, run.err
    kept, quarantine = run.out("manifest.parquet"), run.out("quarantine.parquet")
    pd.testing.assert_frame_equal(kept, frame)
    assert len(quarantine) == 0 and list(quarantine.columns) == [*frame.columns, "reasons"]
    assert str(quarantine["reasons"].dtype) in {"str", "string", "object"}
    m = run.metrics
    assert m["success"] is True and m["rows_passed"] == len(frame) and m["expectations_failed"] == 0
    assert all(e["success"] for e in m["expectations"].values())
    assert {"types", "sample_id_unique", "image_ok", "audio_ok", "class_balance"} <= set(m["expectations"])
    docs = Path(run.case["docs"])
    assert (docs / "index.html").exists()
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 1 and "class_ratio" in pages[0].read_text()
    if mode == "fail":  # a rerun replaces the docs and outputs instead of piling up
        again = run_main(run.case)
        assert again.code == 0 and len(list((docs / "validations").rglob("*.html"))) == 1
        pd.testing.assert_frame_equal(again.out("manifest.parquet"), frame)


def test_docs_folder_that_is_not_a_docs_site_is_not_cleared(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(BabelfuseError, match="not clearing it"):
        reset_docs(tmp_path)
    assert (tmp_path / "keep.txt").exists()


def test_mlflow_run_is_logged(mixed, shared_mlflow):
    frame = mixed[2]
    mlflow.set_tracking_uri(shared_mlflow)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.stage = 'validate'")
    assert len(runs) >= 2
    statuses = set(runs["status"])
    assert {"FINISHED", "FAILED"} <= statuses  # quarantine run finished, fail-mode run failed
    mine = runs[runs["metrics.rows_in"] == len(frame)]
    assert set(mine["tags.on_failure"]) == {"fail", "quarantine"}
    assert set(mine["tags.run_group"]) == {"tests"} and mine["tags.git_commit"].notna().all()
    quarantined = mine[mine["tags.on_failure"] == "quarantine"].iloc[0]
    assert quarantined["metrics.rows_quarantined"] == len(KINDS) + 1
    assert quarantined["metrics.unexpected.audio_ok"] == 5
    client = mlflow.MlflowClient()
    assert "validate.json" in [a.path for a in client.list_artifacts(quarantined["run_id"])]


@pytest.mark.parametrize("mode", ["fail", "quarantine"])
def test_missing_column_fails_both_modes(tmp_path, shared_mlflow, mode):
    root = tmp_path / "root"
    run = run_main(
        write_case(tmp_path / "c", clean_frame(root).drop(columns=["lang"]), root, on_failure=mode)
    )
    assert run.code == 2 and "Traceback" not in run.err
    assert "  - lang_exists [expect_column_to_exist on lang]" in run.err
    assert run.metrics["expectations"]["lang_exists"]["success"] is False


@pytest.mark.parametrize("mode", ["fail", "quarantine"])
def test_wrong_column_type(tmp_path, shared_mlflow, mode):
    root = tmp_path / "root"
    frame = clean_frame(root)
    frame["label"] = np.arange(len(frame)) % 3  # ints, not label names
    run = run_main(write_case(tmp_path / "c", frame, root, on_failure=mode))
    assert run.code == 2 and "Traceback" not in run.err  # quarantine too: no row would be left
    line = next(ln for ln in run.err.splitlines() if ln.startswith("  - types ["))
    assert "s-train-negative-0" in line and "label is int" in line


def test_class_imbalance_fails_or_warns(tmp_path, shared_mlflow):
    root = tmp_path / "root"
    frame = clean_frame(root, per_cell=2)
    extra = frame[(frame["split"] == "train") & (frame["label"] == "positive")].copy()
    extra = pd.concat([extra] * 3, ignore_index=True)
    extra["sample_id"] = [f"extra-{i}" for i in range(len(extra))]
    frame = pd.concat([frame, extra], ignore_index=True)  # train: 2 negative, 2 neutral, 8 positive
    case = write_case(tmp_path / "f", frame, root, on_failure="fail")
    stale = Path(case["out"]) / "manifest.parquet"  # from an earlier, successful run
    stale.parent.mkdir(parents=True)
    frame.to_parquet(stale)
    fail = run_main(case)
    assert fail.code == 2 and not stale.exists()
    line = next(ln for ln in fail.err.splitlines() if ln.startswith("  - class_balance ["))
    assert "split train: ratio 4.00" in line and "positive 8" in line
    assert fail.metrics["class_balance"]["train"]["ratio"] == 4.0
    warn = run_main(write_case(tmp_path / "q", frame, root, on_failure="quarantine"))
    assert warn.code == 0, warn.err
    assert len(warn.out("manifest.parquet")) == len(frame)
    assert warn.metrics["warnings"] and "split train" in warn.metrics["warnings"][0]


@pytest.mark.parametrize("content", [b"PAR1 not really parquet", b""])
def test_unreadable_manifest_is_a_clean_error(tmp_path, shared_mlflow, content):
    root = tmp_path / "root"
    case = write_case(tmp_path / "c", clean_frame(root), root)
    Path(case["manifest"]).write_bytes(content)
    run = run_main(case)
    assert run.code == 2 and "cannot read manifest" in run.err and "Traceback" not in run.err


def test_empty_manifest_fails(tmp_path, shared_mlflow):
    root = tmp_path / "root"
    run = run_main(write_case(tmp_path / "c", clean_frame(root).iloc[0:0], root, on_failure="quarantine"))
    assert run.code == 2 and "row_count" in run.err


def test_module_entry_point_exits_2_without_traceback(tmp_path):
    root = tmp_path / "root"
    case = write_case(tmp_path / "c", clean_frame(root), root)
    Path(case["manifest"]).write_bytes(b"\x00garbage")
    proc = subprocess.run(
        [sys.executable, "-m", "babelfuse.stages.validate", *case["argv"]], capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr
    assert "error: cannot read manifest" in proc.stderr and "Traceback" not in proc.stderr
