"""Real servers on 127.0.0.1 for tests: a process started in its own session, a bounded wait for its
health URL, and a kill of its whole process group afterwards (whatever the test did)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_env(**extra: str) -> dict[str, str]:
    """The environment with this interpreter's bin/ first on PATH (mlflow shells out to uvicorn)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, **extra}


@contextlib.contextmanager
def background_server(
    cmd: list[str], health_url: str, log: Path, env: dict[str, str], timeout_s: float = 240
) -> Iterator[subprocess.Popen]:
    """Start ``cmd``, wait (bounded) until ``health_url`` answers 200, yield, then stop it."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{cmd[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(health_url, timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{health_url} did not answer within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextlib.contextmanager
def mlflow_tracking_server(backend_uri: str, artifacts: Path, log: Path) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1 with ``backend_uri`` and proxied artifacts in ``artifacts``."""
    port = free_port()
    cmd = [
        "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", backend_uri, "--serve-artifacts", "--artifacts-destination", str(artifacts),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with background_server(cmd, f"{url}/health", log, venv_env()):
        yield url


@contextlib.contextmanager
def model_server(model_uri: str, log: Path, env: dict[str, str]) -> Iterator[str]:
    """``mlflow models serve -m model_uri`` on 127.0.0.1; yields its base URL."""
    port = free_port()
    cmd = ["mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"]
    url = f"http://127.0.0.1:{port}"
    with background_server([*cmd, "--host", "127.0.0.1", "--port", str(port)], f"{url}/ping", log, env):
        yield url
