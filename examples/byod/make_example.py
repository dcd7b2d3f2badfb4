"""How the media of this example were made (kept for reproducibility; you do not need to run it).

Run from the project root: ``python examples/byod/make_example.py``. It draws each post's face and
speaks its sentence with babelfuse's own generators, so every modality expresses the post's label.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from babelfuse.data import audio_gen, image_gen
from babelfuse.labels import LANGUAGES

HERE = Path(__file__).resolve().parent
SPOKEN = {  # Japanese is spoken from kana (eSpeak NG reads kanji as Chinese)
    "ex-11": "このホテルわ さいあくでした。",
    "ex-12": "あしたわ あめです。",
}


def main() -> None:
    with open(HERE / "manifest.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    (HERE / "images").mkdir(exist_ok=True)
    (HERE / "audio").mkdir(exist_ok=True)
    for i, row in enumerate(rows):
        rng = np.random.default_rng(1000 + i)
        if row["image_path"]:
            image_gen.save_png(image_gen.face_image(row["label"], True, 64, rng), HERE / row["image_path"])
        if row["audio_path"]:
            prosody = audio_gen.draw_prosody(row["label"], True, rng)
            spoken = SPOKEN.get(row["sample_id"], row["text"])
            samples = audio_gen.speak(
                spoken, LANGUAGES[row["lang"]].espeak_voice, prosody, 16000, -30, seed=i
            )
            audio_gen.write_wav(HERE / row["audio_path"], samples, 16000)


if __name__ == "__main__":
    main()
