"""Real service endpoints for tests, and the CI rule that a service test never skips.

Off CI, a test that needs PostgreSQL, Redis or a worker skips with a visible reason when
the service is absent. With CI=true the same absence is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_ADMIN_URL = os.environ.get(
    "TEST_PG_ADMIN_URL", f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip off CI; fail in CI, where every service must be there."""
    if in_ci():
        pytest.fail(f"CI requires this service: {reason}", pytrace=False)
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def postgres_available() -> bool:
    return port_open(PG_HOST, PG_PORT)


def redis_available() -> bool:
    host, _, rest = REDIS_URL.removeprefix("redis://").partition(":")
    return port_open(host, int(rest.split("/")[0] or 6379))


@contextmanager
def fresh_postgres_database(prefix: str = "claims_test") -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its URL, drop it afterwards."""
    from sqlalchemy import create_engine, text

    if not postgres_available():
        unavailable(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def running_process(
    proc: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    *,
    name: str,
    output: Callable[[], str],
    timeout: float = 60,
) -> Iterator[None]:
    """Wait until the started ``proc`` is ``ready()`` (asked every 0.2 s at least), then yield;
    stop it afterwards (terminate, kill after 20 s). The test fails if it exits first, quoting
    the end of its ``output()``, or is not ready within ``timeout`` seconds."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}: {output()[-2000:]}")
            if time.monotonic() >= deadline:
                pytest.fail(f"{name} did not start within {timeout:g} s")
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
