"""One log format for every stage: time, level, logger name, message."""

from __future__ import annotations

import logging
import os
import warnings


def setup(name: str = "babelfuse") -> logging.Logger:
    """Configure root logging once and quieten noisy libraries (TF's oneDNN notice, GX, absl)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=os.environ.get("BABELFUSE_LOG_LEVEL", "INFO"),
            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
            datefmt="%H:%M:%S",
        )
    for noisy in ("great_expectations", "absl", "alembic", "urllib3", "h5py", "numba", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    # MLflow asks for type hints on PythonModel.predict; babelfuse checks its inputs itself.
    warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method.*")
    return logging.getLogger(name)
