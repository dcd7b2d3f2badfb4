"""Image encoders: ``classic`` (HOG + colour histograms, offline, fast), ``keras:<application>``
(a ``keras.applications`` backbone) and ``hf:<model>`` (a Hugging Face vision model through torch).

Every encoder takes a list of (H, W, 3) uint8 RGB arrays (as :func:`media.decode_image` returns),
resizes any that are not ``size`` x ``size``, and returns float32 (n, dim), one row per image,
independent of how images are batched.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from babelfuse.errors import BabelfuseError
from babelfuse.features.base import Encoder
from babelfuse.features.hf import load_pretrained

log = logging.getLogger("babelfuse.features.image")

HOG_CELLS = 6  # cells per side: the HOG part has the same dim whatever features.image.size is
RGB_BINS = 16
HUE_BINS, SAT_BINS, VAL_BINS = 18, 8, 8
GRID = 4  # mean colour on a GRID x GRID layout


def to_size(image: np.ndarray, size: int) -> np.ndarray:
    """An (H, W[, C]) image array as (size, size, 3) uint8 RGB (greyscale repeated, alpha dropped)."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise BabelfuseError(f"image array must be (H, W, 3) RGB, got shape {arr.shape}")
    arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.shape[:2] != (size, size):
        arr = np.asarray(Image.fromarray(arr).resize((size, size), Image.Resampling.BILINEAR))
    return arr


class ClassicImageEncoder(Encoder):
    """HOG on greyscale (shape) + RGB and HSV histograms + a coarse colour layout: no model, no download."""

    modality = "image"
    id = "classic"
    version = "hog6x6-o9+rgb16+hsv18/8/8+grid4"

    def __init__(self, size: int = 96, **_: Any) -> None:
        self.size = int(size)
        if self.size < 2 * HOG_CELLS:
            raise BabelfuseError(
                f"features.image.size={size} is too small for classic (needs >= {2 * HOG_CELLS})"
            )
        self.cell = self.size // HOG_CELLS
        self.dim = int(self._one(np.zeros((self.size, self.size, 3), np.uint8)).shape[0])

    def encode(self, batch: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(batch), self.dim), dtype=np.float32)
        for i, image in enumerate(batch):
            out[i] = self._one(to_size(image, self.size))
        return out

    def _one(self, rgb: np.ndarray) -> np.ndarray:
        from PIL import Image
        from skimage.color import rgb2gray  # optional (scikit-image): only the classic image encoder
        from skimage.feature import hog

        grey = rgb2gray(rgb)
        shape = hog(
            grey,
            orientations=9,
            pixels_per_cell=(self.cell, self.cell),
            cells_per_block=(2, 2),
            block_norm="L2-Hys",
            feature_vector=True,
        )
        pixels = rgb.reshape(-1, 3)
        rgb_hist = [_hist(pixels[:, c].astype(np.int64) * RGB_BINS // 256, RGB_BINS) for c in range(3)]
        hsv = np.asarray(Image.fromarray(rgb).convert("HSV"), dtype=np.int64).reshape(-1, 3)  # 0..255 each
        hsv_hist = [
            _hist(hsv[:, 0] * HUE_BINS // 256, HUE_BINS, hsv[:, 1].astype(np.float64)),
            _hist(hsv[:, 1] * SAT_BINS // 256, SAT_BINS),
            _hist(hsv[:, 2] * VAL_BINS // 256, VAL_BINS),
        ]
        unit = rgb.astype(np.float32) / 255.0
        moments = np.concatenate([unit.mean(axis=(0, 1)), unit.std(axis=(0, 1)), [grey.mean(), grey.std()]])
        step = self.size // GRID
        layout = unit[: step * GRID, : step * GRID].reshape(GRID, step, GRID, step, 3).mean(axis=(1, 3))
        parts = [shape, *rgb_hist, *hsv_hist, moments, layout.ravel()]
        return np.concatenate(parts).astype(np.float32)


def _hist(bins: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    """A normalised histogram of precomputed bin indices (hue is weighted by saturation: grey has no hue)."""
    counts = np.bincount(bins, weights=weights, minlength=n)[:n].astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


class KerasAppImageEncoder(Encoder):
    """A ``keras.applications`` backbone (include_top=False, average pooling) with its own preprocess_input."""

    modality = "image"

    def __init__(
        self, application: str, size: int = 96, weights: str | None = None, seed: int = 0, **_: Any
    ) -> None:
        import keras  # heavy (TensorFlow, ~4 s): only when a model is built, loaded or run

        constructor = getattr(keras.applications, application, None)
        if not application[:1].isupper() or not callable(constructor):
            known = sorted(n for n in dir(keras.applications) if n[:1].isupper())
            raise BabelfuseError(
                f"features.image.encoder=keras:{application}: not a keras.applications model; known: {', '.join(known)}"
            )
        self.size = int(size)
        self.preprocess = _preprocess_for(application)
        source, tag = _weights_source(weights)
        if source is None:
            keras.utils.set_random_seed(int(seed))  # random init must be reproducible (tests, smoke runs)
        log.info(
            "features.image.encoder=keras:%s features.image.weights=%s size=%d", application, tag, self.size
        )
        try:
            self.model = constructor(
                include_top=False,
                weights=source,
                input_shape=(self.size, self.size, 3),
                pooling="avg",
            )
        except BabelfuseError:
            raise
        except Exception as err:  # noqa: BLE001 - keras raises many kinds; turn them into one clear message
            raise BabelfuseError(_weights_error(application, weights, err)) from None
        self.id = f"keras:{application}"
        self.version = f"keras-{keras.__version__};weights={tag};size={self.size}"
        self.dim = int(self.model.output_shape[-1])

    def encode(self, batch: list[np.ndarray]) -> np.ndarray:
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        x = np.stack([to_size(image, self.size) for image in batch]).astype(np.float32)
        x = self.preprocess(x)
        return np.asarray(self.model(x, training=False), dtype=np.float32)


def _preprocess_for(application: str):
    """The application's own ``preprocess_input``: from the public submodule named like the module
    that defines the model (``keras.src.applications.mobilenet_v3`` -> ``keras.applications.mobilenet_v3``)."""
    import keras  # heavy (TensorFlow, ~4 s): only when a model is built, loaded or run

    defining = getattr(keras.applications, application).__module__.rsplit(".", 1)[-1]
    candidates = [defining] + [n for n in dir(keras.applications) if n[:1].islower()]
    for name in candidates:
        module = getattr(keras.applications, name, None)
        if hasattr(module, "preprocess_input") and (name == defining or hasattr(module, application)):
            return module.preprocess_input
    raise BabelfuseError(f"features.image.encoder=keras:{application}: no preprocess_input found for it")


def _weights_source(weights: str | None) -> tuple[str | None, str]:
    """(what to hand keras, a short tag for the encoder version)."""
    if weights is None or str(weights).strip().lower() in {"", "none", "null", "random"}:
        return None, "random"
    if str(weights).strip().lower() == "imagenet":
        return "imagenet", "imagenet"
    path = Path(str(weights)).expanduser()
    if not path.is_file():
        raise BabelfuseError(
            f"features.image.weights={weights}: file not found (a local .weights.h5/.keras/.h5 path)"
        )
    if not (path.name.endswith(".weights.h5") or path.suffix in {".keras", ".h5"}):
        raise BabelfuseError(f"features.image.weights={weights}: must be a .weights.h5, .keras or .h5 file")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return str(path), f"{path.name}@{digest}"


def _weights_error(application: str, weights: str | None, err: Exception) -> str:
    if str(weights).strip().lower() == "imagenet":
        return (
            f"features.image.encoder=keras:{application} with features.image.weights=imagenet: Keras could not "
            f"get the ImageNet weights ({type(err).__name__}: {err}). This machine does not download models at "
            f"run time: download the no-top weights file for {application} elsewhere (keras.applications "
            f"with include_top=False), copy it here and set features.image.weights to its path."
        )
    return f"features.image.encoder=keras:{application}: cannot build it with weights={weights}: {err}"


class HFImageEncoder(Encoder):
    """A Hugging Face vision model (ViT, DINOv2, ConvNeXt, CLIP vision...) through torch; local files only."""

    modality = "image"

    def __init__(self, model: str, size: int = 96, **_: Any) -> None:
        from transformers import AutoImageProcessor, AutoModel  # heavy optional (torch): hf: only

        self.size = int(size)
        self.processor = load_pretrained(AutoImageProcessor, model, "image")
        self.model = load_pretrained(AutoModel, model, "image").eval()
        self.id = f"hf:{model}"
        self.version = (
            f"{type(self.model).__name__};{getattr(self.model.config, '_commit_hash', None) or 'local'}"
        )
        self.dim = int(self.encode([np.zeros((self.size, self.size, 3), np.uint8)]).shape[1])
        log.info("features.image.encoder=hf:%s dim=%d", model, self.dim)

    def encode(self, batch: list[np.ndarray]) -> np.ndarray:
        import torch  # heavy optional (torch): only the hf: encoders

        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        images = [to_size(image, self.size) for image in batch]
        inputs = self.processor(images=images, return_tensors="pt")
        with torch.no_grad():
            if hasattr(self.model, "get_image_features"):  # CLIP/SigLIP: the image tower's projection
                pooled = self.model.get_image_features(pixel_values=inputs["pixel_values"])
                pooled = getattr(pooled, "pooler_output", pooled)
            else:
                outputs = self.model(**inputs)
                pooled = getattr(outputs, "pooler_output", None)
                if pooled is None:
                    pooled = outputs.last_hidden_state.mean(dim=1)
        return pooled.reshape(len(images), -1).float().numpy().astype(np.float32)
