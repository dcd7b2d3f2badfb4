"""The one Hugging Face loader of the ``hf:<model>`` encoders (text, image, audio).

Local files only (a folder, or the local HF cache: nothing is downloaded at run time, whatever
``HF_HUB_OFFLINE`` says) and model weights from safetensors only (never unpickled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babelfuse.errors import BabelfuseError


def load_pretrained(cls: Any, name: str, modality: str) -> Any:
    """``cls.from_pretrained(name)`` (``cls`` an ``AutoModel``/``AutoTokenizer``/... class) from local files.

    A missing model or one without safetensors weights is a :class:`BabelfuseError` naming
    ``features.<modality>.encoder``.
    """
    path = Path(name).expanduser()
    where = str(path) if path.exists() else name
    kwargs: dict[str, Any] = {"local_files_only": True}
    if cls.__name__.startswith("AutoModel"):
        kwargs["use_safetensors"] = True
    try:
        return cls.from_pretrained(where, **kwargs)
    except (OSError, ValueError) as err:
        raise BabelfuseError(
            f"features.{modality}.encoder=hf:{name}: cannot load {cls.__name__} from local files ({err}). "
            f"Models are never downloaded at run time: download it elsewhere (with safetensors weights), "
            f"copy the folder here and set features.{modality}.encoder to hf:<that folder>."
        ) from None
