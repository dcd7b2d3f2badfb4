"""Synthetic post images: a cartoon face whose mouth, brows and eyes express the post's label.

Why a face: it is a visual sentiment cue that a classic image encoder can pick up but not trivially
(random position, scale, rotation, colours, background clutter and pixel noise get in the way).
When the image is *not informative* for a post each cue (mouth, brows, eyes) follows the
distribution of its own label drawn uniformly and independently of the post's label (a mixture
over classes): the image then carries no class information, and it is not a `neutral` face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from babelfuse.labels import LABELS

# Per-label means of the three cues (negative, neutral, positive) and their standard deviations.
MOUTH_MEAN = {"negative": -0.85, "neutral": 0.0, "positive": 0.85}  # curvature: -1 frown .. +1 smile
BROW_MEAN = {"negative": -18.0, "neutral": 0.0, "positive": 8.0}  # inner-end slant, degrees (- = V)
EYES_MEAN = {"negative": 0.45, "neutral": 0.95, "positive": 0.6}  # eye height / width
MOUTH_SD, BROW_SD, EYES_SD = 0.25, 8.0, 0.15
CUE_LIMITS: dict[str, tuple[float, float]] = {
    "mouth": (-1.2, 1.2),
    "brow": (-40.0, 30.0),
    "eyes": (0.15, 1.3),
}
NOISE_SD = 8.0  # Gaussian pixel noise (0-255 scale)
ROTATION = 12.0  # degrees, uniform in [-ROTATION, ROTATION]
FACE_SCALE = (0.65, 0.9)  # face side / image side, uniform


@dataclass(frozen=True)
class FaceCues:
    """The expression of a face: mouth curvature, brow slant (degrees) and eye openness."""

    mouth: float
    brow: float
    eyes: float


def draw_cues(label: str, informative: bool, rng: np.random.Generator) -> FaceCues:
    """Cues that express ``label`` (informative) or each cue of an independent uniform label (not)."""
    if informative:
        mouth_label = brow_label = eyes_label = label
    else:
        mouth_label, brow_label, eyes_label = (LABELS[i] for i in rng.integers(0, len(LABELS), size=3))
    mouth = rng.normal(MOUTH_MEAN[mouth_label], MOUTH_SD)
    brow = rng.normal(BROW_MEAN[brow_label], BROW_SD)
    eyes = rng.normal(EYES_MEAN[eyes_label], EYES_SD)
    return FaceCues(
        mouth=float(np.clip(mouth, *CUE_LIMITS["mouth"])),
        brow=float(np.clip(brow, *CUE_LIMITS["brow"])),
        eyes=float(np.clip(eyes, *CUE_LIMITS["eyes"])),
    )


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, size=3))


def _face_layer(cues: FaceCues, canvas: int, rng: np.random.Generator) -> Image.Image:
    """The face on a transparent square canvas (drawn large, shrunk later for anti-aliasing)."""
    layer = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    c = canvas
    skin = _colour(rng, 120, 256)
    ink = _colour(rng, 0, 70)
    line = max(2, c // 40)
    draw.ellipse([c * 0.06, c * 0.04, c * 0.94, c * 0.96], fill=(*skin, 255), outline=(*ink, 255), width=line)
    # Eyes: ellipses whose height follows the openness cue, with a pupil.
    eye_w = c * 0.14
    eye_y = c * 0.40
    for centre_x in (c * 0.35, c * 0.65):
        h = eye_w * cues.eyes
        draw.ellipse(
            [centre_x - eye_w / 2, eye_y - h / 2, centre_x + eye_w / 2, eye_y + h / 2],
            fill=(250, 250, 250, 255),
            outline=(*ink, 255),
            width=line,
        )
        pupil = min(h, eye_w) * 0.45
        draw.ellipse(
            [centre_x - pupil / 2, eye_y - pupil / 2, centre_x + pupil / 2, eye_y + pupil / 2],
            fill=(*ink, 255),
        )
    # Brows: straight strokes; the inner end (towards the nose) goes up for positive slant.
    brow_len = c * 0.16
    brow_y = c * 0.27
    rise = math.tan(math.radians(cues.brow)) * brow_len
    for outer_x, inner_x in ((c * 0.26, c * 0.42), (c * 0.74, c * 0.58)):
        draw.line(
            [(outer_x, brow_y + rise / 2), (inner_x, brow_y - rise / 2)], fill=(*ink, 255), width=line + 2
        )
    # Mouth: a parabola; positive curvature lowers the middle (a smile), negative raises it (a frown).
    left, right, mouth_y = c * 0.28, c * 0.72, c * 0.70
    depth = cues.mouth * c * 0.15
    points = []
    for t in np.linspace(-1.0, 1.0, 17):
        x = (left + right) / 2 + t * (right - left) / 2
        points.append((float(x), float(mouth_y + depth * (1 - t * t) - depth / 2)))
    draw.line(points, fill=(*ink, 255), width=line + 3, joint="curve")
    return layer


def _background(size: int, rng: np.random.Generator) -> Image.Image:
    """A flat colour with random clutter: ellipses, rectangles and lines."""
    image = Image.new("RGB", (size, size), _colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 11))):
        x0, y0 = rng.uniform(-0.2, 1.0, size=2) * size
        w, h = rng.uniform(0.05, 0.5, size=2) * size
        kind = int(rng.integers(0, 3))
        box = [float(x0), float(y0), float(x0 + w), float(y0 + h)]
        if kind == 0:
            draw.ellipse(box, fill=_colour(rng))
        elif kind == 1:
            draw.rectangle(box, fill=_colour(rng))
        else:
            draw.line(box, fill=_colour(rng), width=int(rng.integers(1, 4)))
    return image


def render_face(cues: FaceCues, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(size, size, 3)`` uint8 RGB image: clutter, then the face (random scale, angle, place), then noise."""
    image = _background(size, rng)
    canvas = 2 * size
    layer = _face_layer(cues, canvas, rng)
    face_px = max(8, int(round(size * rng.uniform(*FACE_SCALE))))
    layer = layer.resize((face_px, face_px), Image.Resampling.LANCZOS)
    layer = layer.rotate(float(rng.uniform(-ROTATION, ROTATION)), resample=Image.Resampling.BICUBIC)
    slack = size - face_px
    x, y = (int(v) for v in rng.integers(0, slack + 1, size=2)) if slack > 0 else (0, 0)
    image.paste(layer, (x, y), layer)
    pixels = np.asarray(image, dtype=np.float32)
    pixels += rng.normal(0.0, NOISE_SD, size=pixels.shape).astype(np.float32)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def face_image(label: str, informative: bool, size: int, rng: np.random.Generator) -> np.ndarray:
    """One post's image: cues for ``label`` (or ambiguous ones), rendered at ``size`` pixels."""
    return render_face(draw_cues(label, informative, rng), size, rng)


def save_png(pixels: np.ndarray, path: Path | str) -> None:
    """Write a uint8 RGB array as PNG (deterministic bytes for the same pixels)."""
    Image.fromarray(pixels, mode="RGB").save(path, format="PNG")


@dataclass(frozen=True)
class ImageTask:
    """One PNG to write: the face cues and the seed of its random look (place, colours, clutter, noise)."""

    path: str
    cues: FaceCues
    seed: int


def render_chunk(tasks: list[ImageTask], size: int) -> int:
    """Render and write each task (in a worker process); returns how many were written."""
    for task in tasks:
        save_png(render_face(task.cues, size, np.random.default_rng(task.seed)), task.path)
    return len(tasks)
