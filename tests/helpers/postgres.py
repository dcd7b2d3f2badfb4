"""A fresh PostgreSQL database per test (or module), on the server `.ci/run` starts
(`scripts/postgres.sh`); a skip naming the reason when none is reachable."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

DEFAULT_URL = "postgresql+psycopg2://babelfuse:babelfuse@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("BABELFUSE_TEST_POSTGRES_URL", DEFAULT_URL)


def reachable() -> bool:
    import sqlalchemy as sa  # installed with MLflow; imported here so collection stays fast

    engine = sa.create_engine(admin_url(), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "no server here"
        return False
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_database(prefix: str = "babelfuse_test") -> Iterator[str]:
    """Create a uniquely named database, yield its URL (with password), drop it afterwards."""
    import sqlalchemy as sa

    if not reachable():
        pytest.skip(
            f"no PostgreSQL server reachable at {sa.engine.make_url(admin_url())!r}; .ci/run starts one"
        )
    engine = sa.create_engine(admin_url(), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
