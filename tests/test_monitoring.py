"""The inference log and ``babelfuse monitor`` on synthetic training data and traffic logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from babelfuse import monitoring
from babelfuse.cli import app
from babelfuse.labels import LABELS

DIM = 8


def train_split(n: int = 600, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((n, 3), dtype=np.float32)
    mask[: n // 4, 2] = 0.0  # a quarter without audio
    return {
        "text": rng.normal(size=(n, DIM)).astype(np.float32),
        "mask": mask,
        "label": rng.integers(0, 3, n),
        "lang": np.array(["en"] * n),
    }


def traffic(folder, n: int, shift: float, langs: list[str], seed: int) -> None:
    """Requests of 20 posts: text vectors from the training distribution moved by ``shift``."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, 20):
        k = min(20, n - start)
        frame = pd.DataFrame({"text": ["a post"] * k, "lang": [langs[(start + i) % len(langs)] for i in range(k)],
                              "image": ["aGVsbG8="] * k, "audio": [None] * k})  # fmt: skip
        probs = rng.dirichlet(np.ones(3), k)
        out = pd.DataFrame({"label": [LABELS[int(i)] for i in probs.argmax(1)],
                            **{f"prob_{c}": probs[:, j] for j, c in enumerate(LABELS)}, "error": [None] * k})  # fmt: skip
        vectors = list(rng.normal(size=(k, DIM)) + shift)
        monitoring.append_log(folder, monitoring.request_records(frame, out, vectors, latency_ms=12.0))


def test_log_holds_metadata_and_vectors_never_the_media(tmp_path) -> None:
    traffic(tmp_path, 40, 0.0, ["en"], 1)
    log = monitoring.read_log(tmp_path)
    assert len(log) == 40 and len(list(tmp_path.glob("*.parquet"))) == 2
    assert log["has_image"].all() and not log["has_audio"].any()
    assert (log["text_chars"] == len("a post")).all()
    assert "aGVsbG8=" not in log.astype(str).to_numpy().ravel().tolist()  # the image itself is not kept
    assert len(log["text_vec"][0]) == DIM


def test_in_distribution_traffic_is_not_flagged_and_shifted_traffic_is(tmp_path) -> None:
    train = train_split()
    same, shifted = tmp_path / "same", tmp_path / "shifted"
    traffic(same, 400, 0.0, ["en"], 2)
    traffic(shifted, 400, 0.8, ["en", "pt", "ko"], 3)
    calm = monitoring.compare(monitoring.read_log(same), train)
    moved = monitoring.compare(monitoring.read_log(shifted), train)
    assert calm["text_embedding_drift"]["drift"] is False
    assert moved["text_embedding_drift"]["drift"] is True
    assert calm["unseen_language_share"] == 0.0
    assert abs(moved["unseen_language_share"] - 2 / 3) < 0.01  # pt and ko were never trained on
    assert moved["modality_presence"]["train"]["audio"] == 0.75
    assert moved["modality_presence"]["traffic"]["audio"] == 0.0


def test_psi_is_zero_for_the_same_sample_and_grows_with_the_shift() -> None:
    x = np.random.default_rng(4).normal(size=2000)
    values = [monitoring.psi(x, x + s) for s in (0.0, 0.3, 1.0)]
    assert values[0] == 0.0 and values[0] < values[1] < values[2]


def test_monitor_command_writes_the_report_and_exits_1_on_drift(tmp_path) -> None:
    np.savez(tmp_path / "train.npz", **train_split())
    traffic(tmp_path / "same", 200, 0.0, ["en"], 5)
    traffic(tmp_path / "shifted", 200, 1.0, ["en"], 6)
    runner = CliRunner()
    for name, code in (("same", 0), ("shifted", 1)):
        report = tmp_path / f"{name}.html"
        args = [
            "monitor",
            str(tmp_path / name),
            "--train",
            str(tmp_path / "train.npz"),
            "--report",
            str(report),
        ]
        result = runner.invoke(app, args)
        assert result.exit_code == code, result.output
        assert report.stat().st_size > 0
    missing = runner.invoke(
        app, ["monitor", str(tmp_path / "nothing"), "--train", str(tmp_path / "train.npz")]
    )
    assert missing.exit_code == 2
