"""Image encoders: ``classic`` (HOG + colour histograms, offline, fast), ``keras:<application>``
(a ``keras.applications`` backbone) and ``hf:<model>`` (a Hugging Face vision model through torch).

Every encoder takes a list of (H, W, 3) uint8 RGB arrays (as :func:`media.decode_image` returns),
resizes any that are not ``size`` x ``size``, and returns float32 (n, dim), one row per image,
independent of how images are batched.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from babelfuse.errors import BabelfuseError
from babelfuse.features.base import Encoder
from babelfuse.features.hf import load_pretrained

log = logging.getLogger("babelfuse.features.image")

HOG_CELLS = 6  # cells per side: the HOG part has the same dim whatever features.image.size is
HOG_BINS = 9  # unsigned orientations of 20 degrees (odd: 90 degrees is inside the middle bin)
RGB_BINS = 16
HUE_BINS, SAT_BINS, VAL_BINS = 18, 8, 8
GRID = 4  # mean colour on a GRID x GRID layout
# Pixels computed together: enough to amortise numpy's per-call overhead, while a chunk's temporaries
# (peak ~5 MB at 8 x 96 x 96) stay under glibc's trim threshold (twice the largest block freed so far:
# >= 9 MB once _hsv_tables has run), so freed heap is reused, not handed back to the kernel and faulted
# in again for every chunk (that doubled the time at 16 x 96 x 96)
CHUNK_PIXELS = 8 * 96 * 96
GREY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])  # skimage.color.rgb2gray's luminance
HOG_EDGES = 180.0 / HOG_BINS * np.arange(1, HOG_BINS + 1)  # upper edges (degrees) of skimage's bins
HOG_TANGENTS = np.tan(np.deg2rad(HOG_EDGES[: HOG_BINS // 2]))  # tan 20, 40, 60, 80 degrees


def to_size(image: np.ndarray, size: int) -> np.ndarray:
    """An (H, W[, C]) image array as (size, size, 3) uint8 RGB (greyscale repeated, alpha dropped)."""
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
    """HOG on greyscale (shape) + RGB and HSV histograms + a coarse colour layout: no model, no download.

    Images are computed a chunk (about ``CHUNK_PIXELS`` pixels) at a time with numpy; every reduction
    runs per image in a fixed order, so a row does not depend on the batch. The features are those of
    the original per-image code (skimage ``rgb2gray`` + ``hog(orientations=9, pixels_per_cell=(cell,
    cell), cells_per_block=(2, 2), block_norm="L2-Hys")``, PIL HSV, float32 numpy moments): equal
    except for the HOG, which differs by ~1e-7 (skimage sums each cell in float32);
    tests/features/test_image.py checks both against that code.
    """

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
        self.dim = int(self._features(np.zeros((1, self.size, self.size, 3), np.uint8)).shape[1])

    def encode(self, batch: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(batch), self.dim), dtype=np.float32)
        chunk = max(1, CHUNK_PIXELS // (self.size * self.size))
        for start in range(0, len(batch), chunk):
            rgb = np.stack([to_size(image, self.size) for image in batch[start : start + chunk]])
            out[start : start + len(rgb)] = self._features(rgb)
        return out

    def _features(self, rgb: np.ndarray) -> np.ndarray:
        """float32 (n, dim) features of (n, size, size, 3) uint8 images: HOG, RGB histograms, HSV
        histograms, colour moments (RGB mean, RGB std, grey mean, grey std), the GRID x GRID layout."""
        n = len(rgb)
        grey = _grey(rgb)
        unit = np.empty((self.size * self.size, n, 3), np.float32)  # pixel-major: one column per channel
        np.divide(rgb.reshape(n, -1, 3).transpose(1, 0, 2), np.float32(255.0), out=unit)
        colour = [_moments(unit, grey), _layout(unit.reshape(self.size, self.size, n, 3))]
        del unit  # before the HOG's temporaries: a smaller peak (see CHUNK_PIXELS)
        shape = _hog(grey, self.cell)
        histograms = _histograms(*np.ascontiguousarray(np.moveaxis(rgb, -1, 0)))
        return np.concatenate([shape, histograms, *colour], axis=1).astype(np.float32)


def _grey(rgb: np.ndarray) -> np.ndarray:
    """float64 (n, H, W) luminance, bit for bit ``skimage.color.rgb2gray`` (img_as_float, then ``@``)."""
    return np.multiply(rgb, 1.0 / 255, dtype=np.float64) @ GREY_WEIGHTS


def _hog(grey: np.ndarray, cell: int) -> np.ndarray:
    """(n, 900) HOG of (n, H, W) greyscale: 6 x 6 cells of ``cell`` pixels, 9 orientations, L2-Hys
    normalised 2 x 2-cell blocks in skimage's order (block row, block col, cell row, cell col, bin)."""
    hist = _hog_cell_histograms(grey, cell)  # (n, 6, 6, 9)
    blocks = np.stack([hist[:, :-1, :-1], hist[:, :-1, 1:], hist[:, 1:, :-1], hist[:, 1:, 1:]], axis=3)
    blocks = blocks.reshape(len(grey), -1, 4 * HOG_BINS)  # (n, 25 blocks, 36)
    eps = 1e-5
    out = blocks / np.sqrt(np.sum(blocks**2, axis=-1, keepdims=True) + eps**2)
    out = np.minimum(out, 0.2)
    out = out / np.sqrt(np.sum(out**2, axis=-1, keepdims=True) + eps**2)
    return out.reshape(len(grey), -1)


def _hog_cell_histograms(grey: np.ndarray, cell: int) -> np.ndarray:
    """(n, 6, 6, 9) per-cell orientation histograms as skimage's ``hog_histograms`` computes them:
    gradient magnitudes summed per cell and orientation bin over the top-left 6 cell x 6 cell pixels,
    divided by the cell area."""
    n, side = len(grey), cell * HOG_CELLS
    g_row, g_col = _gradients(grey, side)
    bins = _orientation_bins(g_row, g_col)
    magnitude = g_row * g_row
    magnitude += g_col * g_col
    np.sqrt(magnitude, out=magnitude)
    slots = HOG_BINS + 1  # slot HOG_BINS collects the pixels skimage puts in no bin
    cell_of = np.arange(side) // cell
    index = (cell_of[:, None] * HOG_CELLS + cell_of[None, :]) * slots + bins
    index += np.arange(n)[:, None, None] * (HOG_CELLS * HOG_CELLS * slots)
    sums = np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=n * HOG_CELLS * HOG_CELLS * slots)
    return sums.reshape(n, HOG_CELLS, HOG_CELLS, slots)[..., :HOG_BINS] / (cell * cell)


def _gradients(grey: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """skimage's HOG gradients (row, column) of (n, H, W) greyscale on its top-left side x side pixels:
    central differences, 0 on the image border."""
    n, size = grey.shape[:2]
    last = min(side, size - 1)  # rows (columns) 1 .. last - 1 have both neighbours
    g_row = np.empty((n, side, side))
    g_col = np.empty((n, side, side))
    g_row[:, [0, *range(last, side)], :] = 0.0
    g_col[:, :, [0, *range(last, side)]] = 0.0
    np.subtract(grey[:, 2 : last + 1, :side], grey[:, : last - 1, :side], out=g_row[:, 1:last, :])
    np.subtract(grey[:, :side, 2 : last + 1], grey[:, :side, : last - 1], out=g_col[:, :, 1:last])
    return g_row, g_col


def _orientation_bins(g_row: np.ndarray, g_col: np.ndarray) -> np.ndarray:
    """uint8 orientation bin 0..9 of each gradient as skimage's: i when 20 i <= orientation < 20 (i + 1)
    for orientation = ``rad2deg(arctan2(g_row, g_col)) % 180``; 9 when that rounds to 180 (no bin).

    Without arctan2: the angle a in [0, 90] of (|g_col|, |g_row|) passes 20 k degrees when
    |g_row| >= tan(20 k) |g_col|; the orientation is a (bin c) or, when the signs differ, 180 - a
    (bin 8 - c). Gradients within 1e-9 of a bin edge (horizontal ones too, where rounding decides
    between bins 0, 8 and none) take skimage's formula itself, so rounding never makes the two differ.
    """
    across = np.abs(g_row)
    along = np.abs(g_col)
    tolerance = across + along
    tolerance *= 1e-9
    near = across <= tolerance
    bins = np.zeros(g_row.shape, np.uint8)
    for tangent in HOG_TANGENTS:
        edge = tangent * along
        bins += across >= edge
        edge -= across
        near |= np.abs(edge, out=edge) <= tolerance
    mirrored = ((g_row < 0) != (g_col < 0)).view(np.uint8)
    bins += mirrored * (HOG_BINS - 1 - 2 * bins)
    near = np.flatnonzero(near)
    if near.size:
        orientation = np.rad2deg(np.arctan2(g_row.ravel()[near], g_col.ravel()[near])) % 180
        bins.ravel()[near] = np.searchsorted(HOG_EDGES, orientation, side="right")
    return bins


def _histograms(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 3 * 16 + 18 + 8 + 8) normalised histograms of (n, H, W) uint8 channels: R, G, B, then PIL's
    HSV: hue weighted by saturation (grey has no hue), saturation, value. Value v is in bin
    v * bins // 256."""
    n, pixels = len(r), r[0].size
    code = _coarse(r, RGB_BINS)
    for channel in (g, b):
        code *= RGB_BINS
        code += _coarse(channel, RGB_BINS)
    joint = _counts(code, RGB_BINS**3).reshape(n, RGB_BINS, RGB_BINS, RGB_BINS)
    rgb_counts = [joint.sum(axis=(2, 3)), joint.sum(axis=(1, 3)), joint.sum(axis=(1, 2))]
    hue, sat, value = _hsv(r, g, b)
    hue_sat = _counts((_coarse(hue, HUE_BINS) << 8) | sat, HUE_BINS * 256).reshape(n, HUE_BINS, 256)
    hue_weight = hue_sat @ np.arange(256.0)  # each pixel counts its saturation in its hue bin
    hue_total = hue_weight.sum(axis=1, keepdims=True)
    parts = [
        np.concatenate(rgb_counts, axis=1) / pixels,
        np.divide(hue_weight, hue_total, out=np.zeros_like(hue_weight), where=hue_total > 0),
        hue_sat.sum(axis=1) @ _bin_matrix(SAT_BINS) / pixels,
        _counts(_coarse(value, VAL_BINS), VAL_BINS) / pixels,
    ]
    return np.concatenate(parts, axis=1)


def _coarse(values: np.ndarray, bins: int) -> np.ndarray:
    """uint16 bin v * bins // 256 of uint8 values v."""
    return (values.astype(np.uint16) * bins) >> 8


def _counts(codes: np.ndarray, size: int) -> np.ndarray:
    """float64 (n, size): per image, how many of its (n, ...) integer ``codes`` (0 <= code < size) are
    each code; exact whatever the order."""
    n = len(codes)
    index = codes.reshape(n, -1) + np.arange(n)[:, None] * size
    return np.bincount(index.ravel(), minlength=n * size).reshape(n, size).astype(np.float64)


def _bin_matrix(bins: int) -> np.ndarray:
    """(256, bins) 0/1 matrix sending value v to bin v * bins // 256."""
    return (np.arange(256)[:, None] * bins // 256 == np.arange(bins)).astype(np.float64)


def _hsv(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PIL's ``convert("HSV")`` of uint8 channels, bit for bit: (hue, saturation, value) uint8, the
    first two looked up in :func:`_hsv_tables` (hue by max channel and distances below the max,
    saturation by max and max - min)."""
    hue_table, sat_table = _hsv_tables()
    value = np.maximum(np.maximum(r, g), b)
    dr, dg, db = value - r, value - g, value - b
    r_max, g_max = dr == 0, dg == 0
    b_max = ~(r_max | g_max)
    key = (~r_max).astype(np.int32)  # branch: 0 r is the max, 1 g is (r is not), 2 b is
    key += b_max
    key <<= 8
    key |= dr + dg * r_max  # r max: dg, else dr
    key <<= 8
    key |= db + (dg - db) * b_max  # b max: dg, else db (uint8 wraps back)
    sat_key = value.astype(np.int32) << 8
    sat_key |= np.maximum(np.maximum(dr, dg), db)
    return np.take(hue_table, key), np.take(sat_table, sat_key), value


@functools.cache
def _hsv_tables() -> tuple[np.ndarray, np.ndarray]:
    """PIL's HSV hue and saturation as uint8 lookup tables, filled by PIL itself.

    PIL's hue depends only on which channel is the maximum (r first, then g, then b) and on how far
    r, g, b are below it: ``hue[branch << 16 | first << 8 | second]`` for branch 0 (r max; first,
    second = dg, db), 1 (g max; dr, db) and 2 (b max; dr, dg). Its saturation depends only on the
    maximum and max - min: ``sat[max << 8 | max - min]``.
    """
    first, second = (a.ravel() for a in np.meshgrid(np.arange(256), np.arange(256), indexing="ij"))
    top = np.full_like(first, 255)
    cases = [
        (top, top - first, top - second),
        (top - first, top, top - second),
        (top - first, top - second, top),
    ]
    hue = _pil_hsv(np.concatenate([np.stack(case, axis=-1) for case in cases]))[:, 0]
    spread = np.minimum(second, first)  # (max, max - spread, max - spread); spread > max does not occur
    sat = _pil_hsv(np.stack([first, first - spread, first - spread], axis=-1))[:, 1]
    return hue, sat


def _pil_hsv(rgb: np.ndarray) -> np.ndarray:
    """PIL's HSV (uint8, 0..255 each) of an (..., 3) RGB array."""
    flat = np.ascontiguousarray(rgb, dtype=np.uint8).reshape(1, -1, 3)
    return np.asarray(Image.fromarray(flat).convert("HSV")).reshape(rgb.shape)


def _moments(unit: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """(n, 8): mean and standard deviation of each RGB channel of pixel-major (H * W, n, 3) float32
    ``unit`` (summed pixel by pixel in float32, as numpy reduces one (H, W, 3) image), then those of
    the (n, H, W) greyscale."""
    n = len(grey)
    columns = unit.reshape(-1, n * 3)
    flat = grey.reshape(n, -1)
    rgb_moments = [columns.mean(axis=0).reshape(n, 3), columns.std(axis=0).reshape(n, 3)]
    return np.concatenate([*rgb_moments, flat.mean(axis=1)[:, None], flat.std(axis=1)[:, None]], axis=1)


def _layout(unit: np.ndarray) -> np.ndarray:
    """(n, GRID * GRID * 3) mean colour of each cell of a GRID x GRID grid (row-major) of (H, W, n, 3)
    float32 ``unit``, summed row by row in float32 as numpy reduces one image's cell."""
    size, _, n, _ = unit.shape
    step = size // GRID
    cells = unit[: step * GRID, : step * GRID].reshape(GRID, step, GRID, step, n * 3)
    columns = np.ascontiguousarray(cells.transpose(1, 3, 0, 2, 4)).reshape(step * step, -1)
    means = columns.mean(axis=0).reshape(GRID, GRID, n, 3)
    return means.transpose(2, 0, 1, 3).reshape(n, -1)


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
