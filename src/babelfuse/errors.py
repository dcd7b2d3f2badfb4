"""User-facing errors: a user's mistake ends with a clear message and exit code 2, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class BabelfuseError(Exception):
    """A problem with the user's data, params or environment, explained in the message."""


def user_errors_exit(func: Callable[..., T]) -> Callable[..., T]:
    """Decorate a stage ``main``: ``BabelfuseError`` prints its message and exits 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BabelfuseError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
