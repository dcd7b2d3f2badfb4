"""``keep_freed_memory`` makes a process keep what it frees (the next big request reuses it, no page faults)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import os, sys
from babelfuse.serving import memory

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

if sys.argv[1] == "keep":
    assert memory.keep_freed_memory()
before = rss_mb()
block = b"x" * (200 * 2**20)  # written, so every page is resident
held = rss_mb()
del block
print(before, held, rss_mb())
"""


def _rss_after_a_freed_block(mode: str) -> tuple[float, float, float]:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    before, held, after = (float(v) for v in done.stdout.split())
    return before, held, after


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads resident memory from /proc")
def test_a_freed_block_stays_resident_only_when_memory_is_kept() -> None:
    before, held, after = _rss_after_a_freed_block("default")
    assert held - before > 150 and after - before < 50, (before, held, after)  # glibc unmapped it
    before, held, after = _rss_after_a_freed_block("keep")
    assert held - before > 150 and after - before > 150, (before, held, after)  # kept for reuse
