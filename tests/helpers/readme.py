"""The README's shell commands, read from its ```bash blocks, and a way to run them as typed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


def readme_commands(readme: Path) -> list[str]:
    """Every command of every ```bash block: continuation lines joined, trailing ``# comments`` cut."""
    commands: list[str] = []
    for block in BLOCK.findall(readme.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(" ".join(line.split()))
    return commands


def readme_command(readme: Path, prefix: str) -> str:
    """The one README command that is ``prefix`` or starts with it and a space (so the test runs
    what the README says, not a copy)."""
    found = [c for c in readme_commands(readme) if c == prefix or c.startswith(prefix + " ")]
    assert len(found) == 1, f"README has {len(found)} commands starting with {prefix!r}: {found}"
    return found[0]


def shell(command: str, cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    """``command`` in bash after the README's venv activation, as a user would type it."""
    return subprocess.run(
        ["bash", "-c", f"source .venv/bin/activate && {command}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
