"""Per-row media checks: safe paths, images and audio clips that decode within the limits.

Each check returns ``None`` when the row is fine or a short reason naming the params key that
decided it, so the reason can go straight into ``quarantine.parquet``. Files are opened one at a
time (streaming): nothing holds more than one decoded clip in memory.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image
from tqdm import tqdm

from babelfuse.data.manifest import resolve_inside
from babelfuse.errors import BabelfuseError
from babelfuse.features.media import IMAGE_FORMATS, MediaLimits

MEDIA_COLUMNS: dict[str, str] = {"image": "image_path", "audio": "audio_path"}


def check_path(root: Path, relative: str, column: str) -> tuple[Path | None, str | None]:
    """``(full path, None)`` for an existing file inside ``root``, else ``(None, reason)``."""
    if relative.strip() == "":
        return None, f"{column} is empty"
    try:
        full = resolve_inside(root, relative)
    except BabelfuseError:
        where = "is absolute" if Path(relative).is_absolute() else "escapes the data root"
        return None, f"{column} {relative!r} {where}"
    except (OSError, ValueError, RuntimeError) as err:  # NUL bytes, symlink loops
        return None, f"{column} {relative!r} is not a usable path ({type(err).__name__})"
    if not full.is_file():
        return None, f"{column} {relative!r}: file not found under the data root"
    return full, None


def check_image(path: Path, limits: MediaLimits) -> str | None:
    """Header size first (decompression-bomb guard, nothing decoded), then a full decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as im:
                width, height = im.size
                if max(width, height) > limits.image_max_side:
                    return f"image {width}x{height}: side exceeds validate.image_max_side={limits.image_max_side}"
                if width * height > limits.image_max_pixels:
                    return (
                        f"image {width}x{height}: {width * height} pixels exceed "
                        f"validate.image_max_pixels={limits.image_max_pixels}"
                    )
                if width < 1 or height < 1:
                    return f"image {width}x{height} is empty"
                im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        return f"image refused as a decompression bomb: {err}"
    except Exception as err:  # any decoder failure is a property of the file, not a bug
        return f"image does not decode: {type(err).__name__}: {str(err)[:120]}"
    return None


def check_audio(path: Path, limits: MediaLimits) -> str | None:
    """Header (rate, duration) before reading samples, then the RMS of the whole clip."""
    try:
        with sf.SoundFile(path) as clip:
            rate, frames = clip.samplerate, clip.frames
            if clip.channels > limits.audio_max_channels:
                return f"audio has {clip.channels} channels; at most {limits.audio_max_channels} are accepted"
            if rate != limits.audio_sample_rate:
                return f"audio sample rate {rate} Hz != validate.audio_sample_rate={limits.audio_sample_rate}"
            seconds = frames / rate
            if seconds < limits.audio_min_seconds:
                return f"audio {seconds:.3f} s shorter than validate.audio_min_seconds={limits.audio_min_seconds}"
            if seconds > limits.audio_max_seconds:
                return (
                    f"audio {seconds:.3f} s longer than validate.audio_max_seconds={limits.audio_max_seconds}"
                )
            samples = clip.read(dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile errors, truncated files
        return f"audio does not decode: {type(err).__name__}: {str(err)[:120]}"
    if samples.shape[0] == 0:
        return "audio has no samples"
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    if not math.isfinite(rms):
        return "audio has non-finite samples"
    if rms < limits.audio_min_rms:
        return f"audio is silent: RMS {rms:.5f} < validate.audio_min_rms={limits.audio_min_rms}"
    return None


CHECKERS = {"image": check_image, "audio": check_audio}


def media_columns(
    paths_by_modality: dict[str, pd.Series], root: Path, limits: MediaLimits, progress: bool = True
) -> tuple[pd.DataFrame, float]:
    """Derived check columns per row, and the rows/s of the loop.

    For each modality: ``<m>_path_ok`` (safe, existing file), ``<m>_ok`` (decodes within the limits)
    and ``<m>_reason``. A null path (missing modality) gives null checks, which expectations skip;
    ``<m>_ok`` is also null when the path itself is bad, so one problem counts once.
    """
    index = next(iter(paths_by_modality.values())).index if paths_by_modality else pd.RangeIndex(0)
    n = len(index)
    cols: dict[str, list] = {}
    for modality in paths_by_modality:
        cols[f"{modality}_path_ok"] = [None] * n
        cols[f"{modality}_ok"] = [None] * n
        cols[f"{modality}_reason"] = [None] * n
    values = {m: s.tolist() for m, s in paths_by_modality.items()}
    start = time.perf_counter()
    with tqdm(total=n, desc="validate media", unit="row", disable=not progress or n == 0) as bar:
        for i in range(n):
            for modality, column_values in values.items():
                relative = column_values[i]
                if not isinstance(relative, str):
                    continue  # null = missing modality; non-text is reported by the types check
                full, reason = check_path(root, relative, MEDIA_COLUMNS[modality])
                cols[f"{modality}_path_ok"][i] = full is not None
                if full is not None:
                    reason = CHECKERS[modality](full, limits)
                    cols[f"{modality}_ok"][i] = reason is None
                cols[f"{modality}_reason"][i] = reason
            bar.update(1)
    seconds = time.perf_counter() - start
    frame = pd.DataFrame({k: pd.Series(v, index=index, dtype=object) for k, v in cols.items()}, index=index)
    return frame, (n / seconds if seconds > 0 else float("inf"))
