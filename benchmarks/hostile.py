"""Hostile requests against a real ``mlflow models serve`` of a tiny registered model (issue 13's table).

Registers a small model (``params.yaml: train`` fitted 3 epochs on synthetic features, the default
encoders) in a throwaway SQLite registry, serves ``models:/hostile/1`` on 127.0.0.1 with
``BABELFUSE_MEDIA_ROOT`` set to a folder holding a symlink loop, then sends each hostile request
while a second thread keeps sending a normal one-post request. Per case it records the status, the
hostile request's wall time, the server's peak extra RSS during it (all processes of the server's
session, sampled every 10 ms) and the worst latency of the normal request meanwhile. Not a test:
numbers depend on the machine; the targets are <= 1 s and <= 200 MB per hostile request and a
normal request within 2x its usual latency.

    .venv/bin/python benchmarks/hostile.py              # writes reports/benchmarks/hostile.json
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import platform
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from serve import build_artifacts, synthetic_posts  # noqa: E402  (the sibling benchmark's tiny model)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
PAGE = os.sysconf("SC_PAGE_SIZE")


def wav(seconds: float, rate: int, declared_rate: int | None = None) -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(
        buf, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16"
    )
    data = bytearray(buf.getvalue())
    if declared_rate:
        struct.pack_into("<II", data, 24, declared_rate, declared_rate * 2)
    return bytes(data)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def json_body(records: list[dict]) -> tuple[str, bytes]:
    return "application/json", json.dumps({"dataframe_records": records}).encode()


def hostile_cases(normal: dict) -> dict[str, tuple[str, bytes]]:
    """Name -> (content type, body) of each row of the issue's table."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    odd = wav(0.17, 16000, declared_rate=9_999_991)
    six = wav(0.17, 16000, declared_rate=999_983)
    accepted = wav(30.0, 95_987)  # the longest clip at the highest (prime) rate still accepted
    png = io.BytesIO()
    Image.new("RGBA", (6300, 6300), (0, 0, 0, 0)).save(png, format="PNG")
    parquet = io.BytesIO()
    n = 20_000_000
    column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array(["a"]))
    pq.write_table(pa.table({"text": column, "lang": column}), parquet, compression="zstd")
    big_json = (
        b'{"dataframe_split": {"columns": ["text", "lang"], "data": ['
        + b",".join([b'["a","en"]'] * 3_850_000)
        + b"]}}"
    )
    return {
        "wav declaring 9,999,991 Hz (1 row)": json_body([{**normal, "audio": b64(odd)}]),
        "six wavs at 999,983 Hz": json_body([{**normal, "audio": b64(six)}] * 6),
        "accepted: 30 s wav at 95,987 Hz (5.8 MB), resampled": json_body(
            [{**normal, "audio": b64(accepted)}]
        ),
        f"parquet {len(parquet.getvalue()) // 1000} KB, 20 M rows": (
            "application/x-parquet",
            parquet.getvalue(),
        ),
        f"json {len(big_json) // 1_000_000} MB, 3.85 M rows": ("application/json", big_json),
        f"6300x6300 RGBA png ({len(png.getvalue()) // 1000} KB)": json_body(
            [{**normal, "image": b64(png.getvalue())}]
        ),
        "symlink loop under the media root + a good row": json_body(
            [normal, {**normal, "image": "loop/x.png"}]
        ),
        "lone surrogate in text + a good row": (
            "application/json",
            b'{"dataframe_records": [{"text": "ok", "lang": "en"}, {"text": "bad \\ud800", "lang": "en"}]}',
        ),
        "200 k levels of nested JSON": (
            "application/json",
            b'{"inputs": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        ),
        "1 MB lang": json_body([{**normal, "lang": "x" * 1_000_000}]),
        "70 MB body": ("application/json", b'{"inputs": "' + b"a" * 70_000_000 + b'"}'),
    }


def register_tiny(tmp: Path, params: Path) -> str:
    """Log and register the tiny model as the register stage does (file hashes tagged); its URI."""
    import mlflow

    from babelfuse.params import load_section
    from babelfuse.serving import bundle
    from babelfuse.serving.model_code import HASHES_TAG
    from babelfuse.serving.register import limits_from

    features = load_section("features", params)
    model, scalers, temperature = build_artifacts(tmp, features, load_section("train", params))
    register = load_section("register", params)
    limits = limits_from(register, load_section("validate", params))
    config = bundle.serving_config(
        features, ["ar", "de", "en", "es", "fr", "ja", "ru", "zh"], limits, register.get("text_threads")
    )
    mlflow.set_experiment("hostile")
    with mlflow.start_run():
        info = bundle.log_pyfunc(model, scalers, temperature, config)
    tags = {HASHES_TAG: json.dumps(bundle.logged_file_hashes(info.model_uri))}
    version = mlflow.register_model(info.model_uri, "hostile", tags=tags)
    return f"models:/hostile/{version.version}"


def session_rss(sid: int) -> int:
    """Resident bytes of every process in session ``sid`` (the CLI and its uvicorn child)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getsid(int(pid)) != sid:
                continue
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, ProcessLookupError, IndexError):
            continue
    return total


def send(url: str, content_type: str, body: bytes, timeout: float = 300) -> tuple[int, str]:
    """POST ``body``; a server that answers before reading it all (413) is read, not an error."""
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.putrequest("POST", "/invocations")
        conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            for start in range(0, len(body), 1 << 20):
                conn.send(body[start : start + (1 << 20)])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer is waiting
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def start_server(model_uri: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        "mlflow",
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(
        cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2):
                return proc, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise SystemExit("server did not answer /ping")


def measure(url: str, sid: int, case: tuple[str, bytes], normal_body: bytes) -> dict:
    """One hostile request with a normal request looping alongside; time, peak extra RSS, normal latency."""
    base = session_rss(sid)
    peak = [base]
    normal_ms: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], session_rss(sid))
            time.sleep(0.01)

    def normal() -> None:
        while not done.is_set():
            t = time.perf_counter()
            send(url, "application/json", normal_body)
            normal_ms.append(1000 * (time.perf_counter() - t))

    threads = [threading.Thread(target=sample), threading.Thread(target=normal)]
    for th in threads:
        th.start()
    time.sleep(0.2)
    t = time.perf_counter()
    status, text = send(url, *case)
    seconds = time.perf_counter() - t
    time.sleep(0.2)
    done.set()
    for th in threads:
        th.join()
    try:
        answer = json.loads(text)
        detail = answer.get("message") or [r.get("error") for r in answer.get("predictions", [])]
    except ValueError:
        detail = text
    return {
        "status": status,
        "seconds": round(seconds, 3),
        "peak_extra_mb": round((peak[0] - base) / 1e6, 1),
        "normal_max_ms": round(max(normal_ms), 1) if normal_ms else None,
        "response_chars": len(text),
        "answer": str(detail)[:300],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("reports/benchmarks/hostile.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}"}
        os.environ.update(MLFLOW_TRACKING_URI=env["MLFLOW_TRACKING_URI"])
        cwd = os.getcwd()
        os.chdir(tmp)  # MLflow's artifact store (./mlruns) lives in the temp folder
        try:
            uri = register_tiny(tmp, Path(cwd) / "params.yaml")
        finally:
            os.chdir(cwd)
        media_root = tmp / "media"
        media_root.mkdir()
        (media_root / "loop").symlink_to(media_root / "loop")
        env["BABELFUSE_MEDIA_ROOT"] = str(media_root)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        post = synthetic_posts(1).iloc[0]
        normal = {
            "text": str(post["text"]),
            "lang": str(post["lang"]),
            "image": post["image"],
            "audio": post["audio"],
        }
        normal_body = json.dumps({"dataframe_records": [normal]}).encode()
        cases = hostile_cases(normal)
        proc, url = start_server(
            uri, {**env, "MLFLOW_TRACKING_URI": env["MLFLOW_TRACKING_URI"]}, tmp / "server.log"
        )
        try:
            sid = os.getsid(proc.pid)
            for _ in range(5):
                send(url, "application/json", normal_body)
            usual = []
            for _ in range(20):
                t = time.perf_counter()
                status, _ = send(url, "application/json", normal_body)
                usual.append(1000 * (time.perf_counter() - t))
            assert status == 200
            results = {}
            for name, case in cases.items():
                results[name] = measure(url, sid, case, normal_body)
                r = results[name]
                print(
                    f"{name:<48} {r['status']}  {r['seconds']:6.2f} s  +{r['peak_extra_mb']:7.1f} MB  "
                    f"normal max {r['normal_max_ms']} ms  | {r['answer'][:90]}"
                )
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    report = {
        "model_uri": "models:/hostile/1 (tiny registered model, default encoders)",
        "normal_request": "one post: text + 96 px PNG + 2-4 s WAV (base64)",
        "normal_p50_ms": round(float(np.median(usual)), 1),
        "normal_max_ms": round(max(usual), 1),
        "cases": results,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"normal request p50 {report['normal_p50_ms']} ms (max {report['normal_max_ms']} ms); wrote {args.out}"
    )


if __name__ == "__main__":
    main()
