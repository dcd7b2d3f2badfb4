"""An encoder module at a git revision against the working tree's: time per item and the signal.

Both versions run on the same inputs from the pipeline's validated manifest (``train``, ``val``
and ``gate`` posts, never ``test``), in alternating order, in this process, with the encoder's own
``encode`` on inputs already decoded in memory:

* **ms per item** = median over ``--rounds`` of wall time / items (and this process's CPU time,
  less sensitive to other jobs); ratio = before / after;
* **agreement** = per feature, the correlation of before and after over the items, and how many
  features are equal within 1e-4 relative;
* **signal** (``--signal``) = macro-F1 of StandardScaler + LogisticRegression(C=0.1) on each
  version's features, repeated stratified 5-fold CV (4 repeats, the same folds for both), and the
  paired difference after - before with a 95 % CI over the 20 folds. This is the modality's own
  class signal, not the pipeline's score (``dvc repro`` + ``docs/RESULTS.md`` give that).

    .venv/bin/python benchmarks/encoder_versions.py audio --rev 7da4622 --signal
    .venv/bin/python benchmarks/encoder_versions.py image --rev 7da4622 --limit 512

Writes ``reports/benchmarks/encoder_<modality>.json``. Needs ``dvc repro validate`` first.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from babelfuse.data.manifest import load_manifest
from babelfuse.features import media
from babelfuse.features.base import Encoder
from babelfuse.features.registry import get_encoder
from babelfuse.params import load_section

MODULES = {"audio": "src/babelfuse/features/audio.py", "image": "src/babelfuse/features/image.py"}
CLASSES = {"audio": "ProsodyAudioEncoder", "image": "ClassicImageEncoder"}
SPECS = {"audio": "prosody", "image": "classic"}  # their registry keys (the working tree's encoder)
MANIFEST = Path("data/validated/manifest.parquet")


def encoder_at(rev: str, modality: str, params: dict) -> Encoder:
    """The default encoder of ``modality`` built from its module's source at git ``rev``."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{MODULES[modality]}"], check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / f"{modality}_at_{rev}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"babelfuse_{modality}_at_rev", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return getattr(module, CLASSES[modality])(**params)


def load_inputs(modality: str, params: dict, limit: int | None) -> tuple[list[np.ndarray], np.ndarray]:
    """Decoded media and labels of the manifest's train, val and gate posts (never test)."""
    manifest = load_manifest(MANIFEST)
    frame, root = manifest.frame, manifest.data_root
    column = f"{modality}_path"
    frame = frame[frame["split"].isin(["train", "val", "gate"]) & frame[column].notna()]
    frame = frame.head(limit) if limit else frame
    items = []
    for relative in frame[column]:
        data = (root / relative).read_bytes()
        if modality == "audio":
            items.append(media.decode_audio(data, int(params["sample_rate"])))
        else:
            items.append(media.decode_image(data, int(params["size"])))
    return items, frame["label"].to_numpy()


def timings(encoders: dict, items: list[np.ndarray], rounds: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU ms per item of each encoder, rounds alternating which goes first."""
    wall: dict[str, list[float]] = {name: [] for name in encoders}
    cpu: dict[str, list[float]] = {name: [] for name in encoders}
    for encoder in encoders.values():
        encoder.encode(items[:4])  # one-time costs (numba JIT, lookup tables) outside the timing
    for r in range(rounds):
        order = list(encoders) if r % 2 == 0 else list(encoders)[::-1]
        for name in order:
            t, c = time.perf_counter(), time.process_time()
            encoders[name].encode(items)
            wall[name].append(1000 * (time.perf_counter() - t) / len(items))
            cpu[name].append(1000 * (time.process_time() - c) / len(items))
    return {
        name: {
            "wall_ms": round(float(np.median(wall[name])), 3),
            "cpu_ms": round(float(np.median(cpu[name])), 3),
        }
        for name in encoders
    }


def agreement(before: np.ndarray, after: np.ndarray, names: list[str]) -> dict:
    """How many features agree, and the ones whose before/after correlation is below 0.99."""
    close = [
        bool(np.allclose(before[:, j], after[:, j], rtol=1e-4, atol=1e-5)) for j in range(before.shape[1])
    ]
    low = {}
    for j, name in enumerate(names):
        if before[:, j].std() > 0 and after[:, j].std() > 0:
            r = float(np.corrcoef(before[:, j], after[:, j])[0, 1])
            if r < 0.99:
                low[name] = round(r, 3)
    return {
        "features": before.shape[1],
        "equal_within_1e-4": int(sum(close)),
        "max_abs_difference": float(np.abs(before - after).max()),
        "correlation_below_0.99": low,
    }


def signal(features: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    """Macro-F1 of a logistic regression on each version's features over the same CV folds."""
    from sklearn.linear_model import LogisticRegression  # only --signal needs scikit-learn's models
    from sklearn.model_selection import RepeatedStratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from babelfuse.evaluation.metrics import macro_f1

    folds = RepeatedStratifiedKFold(n_splits=5, n_repeats=4, random_state=0)
    scores: dict[str, list[float]] = {name: [] for name in features}
    first = next(iter(features.values()))
    for train, held in folds.split(first, labels):
        for name, x in features.items():
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
            model.fit(x[train], labels[train])
            scores[name].append(macro_f1(labels[held], model.predict(x[held])))
    diff = np.array(scores["after"]) - np.array(scores["before"])
    half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff))
    return {
        "macro_f1": {name: round(float(np.mean(v)), 4) for name, v in scores.items()},
        "difference": round(float(diff.mean()), 4),
        "ci95": [round(float(diff.mean() - half), 4), round(float(diff.mean() + half), 4)],
        "folds": len(diff),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modality", choices=sorted(MODULES))
    ap.add_argument("--rev", required=True, help="git revision of the 'before' encoder module")
    ap.add_argument("--limit", type=int, default=None, help="at most this many posts (default: all)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--signal", action="store_true", help="also compare the class signal (CV macro-F1)")
    args = ap.parse_args()
    params = {k: v for k, v in load_section("features")[args.modality].items() if k not in ("encoder",)}
    encoders = {
        "before": encoder_at(args.rev, args.modality, params),
        "after": get_encoder(args.modality, SPECS[args.modality], params),
    }
    items, labels = load_inputs(args.modality, params, args.limit)
    print(f"{len(items)} {args.modality} items from {MANIFEST} (train, val, gate)", flush=True)
    report = {
        "modality": args.modality,
        "rev": args.rev,
        "items": len(items),
        "versions": {name: e.version for name, e in encoders.items()},
        "ms_per_item": timings(encoders, items, args.rounds),
    }
    t = report["ms_per_item"]
    report["ratio_before_over_after"] = {
        k: round(t["before"][k] / t["after"][k], 2) for k in ("wall_ms", "cpu_ms")
    }
    features = {name: e.encode(items) for name, e in encoders.items()}
    names = getattr(encoders["after"], "names", [f"f{j}" for j in range(encoders["after"].dim)])
    report["agreement"] = agreement(features["before"], features["after"], names)
    if args.signal:
        report["signal"] = signal(features, labels)
    out = Path(f"reports/benchmarks/encoder_{args.modality}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
