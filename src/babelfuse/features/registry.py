"""Encoder registry: ``params.yaml: features.<modality>.encoder`` names one of these.

A spec is a registry key (``use-multilingual``, ``classic``, ``prosody``) or a prefix plus an
argument (``hf:<model id or path>``, ``keras:<application>``). Adding an encoder = one class in
``text.py``/``image.py``/``audio.py`` and one line below. Imports are lazy so that extracting text
never imports TensorFlow or librosa.
"""

from __future__ import annotations

import importlib
from typing import Any

from babelfuse.errors import BabelfuseError
from babelfuse.features.base import Encoder

# (modality, key or prefix) -> "module:Class". A prefix entry ends with ":" and gets the rest of the spec.
ENCODERS: dict[tuple[str, str], str] = {
    ("text", "use-multilingual"): "babelfuse.features.text:UseMultilingualEncoder",
    ("text", "hf:"): "babelfuse.features.text:HFTextEncoder",
    ("image", "classic"): "babelfuse.features.image:ClassicImageEncoder",
    ("image", "keras:"): "babelfuse.features.image:KerasAppImageEncoder",
    ("image", "hf:"): "babelfuse.features.image:HFImageEncoder",
    ("audio", "prosody"): "babelfuse.features.audio:ProsodyAudioEncoder",
    ("audio", "hf:"): "babelfuse.features.audio:HFAudioEncoder",
}


def _load(target: str) -> type[Encoder]:
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def available(modality: str) -> list[str]:
    return [key + ("<name>" if key.endswith(":") else "") for (mod, key) in ENCODERS if mod == modality]


def get_encoder(modality: str, spec: str, params: dict[str, Any] | None = None) -> Encoder:
    """Build the encoder named by ``spec`` with the modality's params section (``features.<modality>``)."""
    params = dict(params or {})
    if (modality, spec) in ENCODERS and not spec.endswith(":"):  # "hf:" alone is a prefix without its name
        return _load(ENCODERS[(modality, spec)])(**_kwargs(params))
    prefix, sep, argument = spec.partition(":")
    if sep and (modality, prefix + ":") in ENCODERS:
        if not argument:
            raise BabelfuseError(f"features.{modality}.encoder '{spec}' needs a name after '{prefix}:'")
        return _load(ENCODERS[(modality, prefix + ":")])(argument, **_kwargs(params))
    raise BabelfuseError(
        f"unknown {modality} encoder '{spec}' (features.{modality}.encoder); known: {', '.join(available(modality))}"
    )


def _kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Encoder constructors take the modality's params minus the keys that are not theirs."""
    return {k: v for k, v in params.items() if k not in {"encoder", "batch_size"}}
