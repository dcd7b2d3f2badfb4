"""Let the serving processes keep the memory they free, so that large requests skip page faults.

A 256-post request is ~70 MB of JSON. Every big buffer built from it (the joined body, the parsed
strings, the rows pickled to the media workers, each clip's arrays) is a fresh allocation, and
glibc's ``malloc`` serves an allocation above its mmap threshold (at most 32 MB) with a new ``mmap``
that ``free`` hands straight back to the kernel. The next request then pays a page fault per 4 kB
touched: joining a 70 MB body costs ~55 ms that way and ~8 ms from memory already mapped, parsing
its JSON ~150 ms and ~60 ms (``docs/PERFORMANCE.md``).

:func:`keep_freed_memory` sets three ``mallopt`` options in this process: no ``mmap`` for
allocations (``M_MMAP_MAX = 0``), never trim the heap (``M_TRIM_THRESHOLD``), and one arena
(``M_ARENA_MAX = 1``: MLflow's scoring server predicts in threads, and a thread's own arena could
not hold a 70 MB block without ``mmap``). The cost: a process's resident memory stays at the
largest request it has served, which ``register.max_request_mb`` and ``register.max_rows`` bound.
Off with ``register.keep_freed_memory: false``; a no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("babelfuse.serving.memory")

# glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
NEVER_TRIM = 2**31 - 1  # the largest value mallopt takes (an int)


def configure(cfg: dict) -> bool:
    """:func:`keep_freed_memory` when a ``serving.json`` asks for it (``keep_freed_memory``; bundles
    registered before that key have none: off)."""
    return keep_freed_memory() if cfg.get("keep_freed_memory") else False


def keep_freed_memory() -> bool:
    """Set the options in this process; True when the C library took all three."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # this process's own C library
    except (OSError, AttributeError):
        log.info("serving memory: no glibc mallopt here; freed memory goes back to the system")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, NEVER_TRIM))
    taken = all(mallopt(option, value) == 1 for option, value in settings)
    log.info("serving memory: freed memory kept for reuse (glibc malloc) %s", "on" if taken else "refused")
    return taken
