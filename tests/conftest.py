"""Shared fixtures: the database under test, the app, a client, a real Celery worker.

The database backend follows ``TEST_DATABASE`` (``sqlite``, the default, or ``postgres``);
CI runs the suite once for each. PostgreSQL, Redis and worker tests skip with a reason
off CI when the service is absent and fail in CI (``tests.services.unavailable``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import REDIS_URL, fresh_postgres_database, redis_available, running_process, unavailable

# One master key for the whole test run: the session-wide test database keeps its wrapped
# data keys between tests, and code paths without an app (CLI, scripts) must unwrap them too.
# Synthetic, test-only value.
os.environ.setdefault("MASTER_KEY", "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("CLAIMS_SHARED_DIR", REPO_ROOT.parent / "shared"))


def pytest_report_header(config: pytest.Config) -> str:
    return f"claims-server tests: database backend = {os.environ.get('TEST_DATABASE', 'sqlite')}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``postgres_pass`` (long runs against a live server, like the schemathesis
    fuzz) run once, in the PostgreSQL pass: the SQLite pass deselects them (reported as
    deselected, never as a skip). ``FUZZ_ON_SQLITE=1`` keeps them."""
    if os.environ.get("TEST_DATABASE", "sqlite") == "postgres" or os.environ.get("FUZZ_ON_SQLITE"):
        return
    kept = [item for item in items if item.get_closest_marker("postgres_pass") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only reference material (X12 corpus, code sets) beside the repository."""
    if not SHARED_DIR.is_dir():
        unavailable(f"shared material not found at {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for the whole session, on the backend under test."""
    from claims_server.migrate import upgrade

    backend = os.environ.get("TEST_DATABASE", "sqlite")
    if backend == "postgres":
        with fresh_postgres_database() as url:
            upgrade(url)
            yield url
    elif backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'claims.sqlite3'}"
        upgrade(url)
        yield url
    else:
        raise pytest.UsageError(f"TEST_DATABASE must be sqlite or postgres, not {backend!r}")


@pytest.fixture(autouse=True)
def _stop_checkpointer_threads():
    """A server app built in a test (not ``TESTING``) starts the audit checkpointer's thread;
    it must not outlive the test's database (it would log a failed read every interval)."""
    yield
    from claims_server.security.checkpoints import stop_all_checkpointers

    stop_all_checkpointers()


@pytest.fixture
def app(database_url: str, tmp_path: Path):
    from claims_server import create_app
    from claims_server.app import state

    app = create_app(
        {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True}
    )
    yield app
    _empty_tables(state(app).engine)
    state(app).engine.dispose()


def _empty_tables(engine) -> None:
    """Delete every row (children first) so each test starts from an empty schema.

    The audit and ledger tables refuse DELETE; ``ledger_maintenance`` lifts that for
    this one transaction (see claims_server.security.immutability for why the
    application role cannot do the same in production).
    """
    from sqlalchemy import text

    from claims_server.db import Base
    from claims_server.security.immutability import ledger_maintenance

    with engine.begin() as conn, ledger_maintenance(conn):
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f'DELETE FROM "{table.name}"'))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app):
    from claims_server.app import state

    s = state(app).session_factory()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def frozen_clock(app):
    """Freeze the security clock of ``app`` (sessions, lockouts, links, audit times); move it with
    ``frozen_clock.advance(minutes=16)``. No sleeping in tests."""
    from datetime import UTC, datetime

    from claims_server.security.clock import FrozenClock

    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    app.extensions["claims_security"].clock = clock
    return clock


@pytest.fixture
def api_client(app):
    """Factory: ``api_client("biller")`` is a test client signed in as a fresh user of that role.

    ``api_client("integration", scopes=["claims:write"])`` is authenticated by a fresh
    integration API token (default scopes: all of ``policy.TOKEN_SCOPES``); ``api_client("patient",
    patient_id=<patients.id>)`` by a patient-link session for that patient. Each client
    has ``.principal_info``: a dict with ``user_id``/``token_id``/``patient_id``, the
    ``public_id`` of the user or token, the ``role`` and the raw ``token``.
    """
    from datetime import timedelta

    import pyotp

    from claims_server.app import state
    from claims_server.models import PatientAccessLink, Role
    from claims_server.security import clock as security_clock
    from claims_server.security.authn import (
        PATIENT_PREFIX,
        create_api_token,
        create_user,
        new_token,
        open_session,
        token_hash,
    )
    from claims_server.security.policy import TOKEN_SCOPES
    from claims_server.security.principal import acting_as, system_principal

    def make(role: str = "biller", *, scopes: list[str] | None = None, patient_id: int | None = None):
        settings = state(app).settings
        info: dict[str, object] = {"role": role}
        with app.app_context(), acting_as(system_principal("test:api_client")):
            now = security_clock.now()
            with state(app).session_factory() as session:
                if role == "integration":
                    token, row = create_api_token(
                        session,
                        name=f"it-{uuid.uuid4().hex[:8]}",
                        scopes=scopes if scopes is not None else list(TOKEN_SCOPES),
                    )
                    info.update(
                        token_id=row.id, public_id=row.public_id, integration_name=row.integration_name
                    )
                elif role == "patient":
                    if patient_id is None:
                        raise ValueError('api_client("patient") needs patient_id=')
                    token = new_token(PATIENT_PREFIX)
                    link = PatientAccessLink(
                        patient_id=patient_id,
                        token_hash=token_hash(new_token("csl_")),
                        expires_at=now + timedelta(hours=settings.PATIENT_LINK_HOURS),
                        used_at=now,
                        failed_attempts=0,
                        session_token_hash=token_hash(token),
                        session_expires_at=now + timedelta(hours=1),
                        session_last_seen_at=now,
                        created_at=now,
                    )
                    session.add(link)
                    session.flush()
                    info.update(patient_id=patient_id, public_id=link.public_id)
                else:
                    user = create_user(
                        session,
                        username=f"{role}-{uuid.uuid4().hex[:8]}",
                        display_name=f"Test {role}",
                        role=Role(role),
                        password=None,
                    )
                    # A signed-in staff user has confirmed a TOTP second factor; without
                    # one, only enrolment endpoints answer (enforce.MFA_ENROLMENT_ENDPOINTS).
                    user.totp_secret = pyotp.random_base32()
                    user.totp_enabled = True
                    token = open_session(session, user, settings, now)
                    info.update(user_id=user.id, public_id=user.public_id, username=user.username)
                session.commit()
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        info["token"] = token
        client.principal_info = info
        return client

    return make


@pytest.fixture(scope="session")
def redis_broker_url() -> str:
    if not redis_available():
        unavailable(f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture(scope="session")
def celery_worker_process(
    database_url: str, redis_broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A real ``claims-server worker`` process consuming from Redis on a private queue."""
    import redis

    queue = f"test-{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(redis_broker_url)
    client.ping()
    instance = tmp_path_factory.mktemp("worker-instance")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_broker_url,
        "INSTANCE_PATH": str(instance),
        "LOG_LEVEL": "WARNING",
    }
    log_path = instance / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "claims_server", "worker", "--concurrency=1", f"--queues={queue}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    info = {
        "queue": queue,
        "broker_url": redis_broker_url,
        "database_url": database_url,
        "log": str(log_path),
        "pid": str(proc.pid),
    }
    try:
        from celery import Celery

        probe = Celery(broker=redis_broker_url, backend=redis_broker_url)
        with running_process(
            proc, lambda: bool(probe.control.ping(timeout=1.0)), name="the worker", output=log_path.read_text
        ):
            yield info
    finally:
        client.delete(queue)
