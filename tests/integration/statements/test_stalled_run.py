"""A worker killed mid-chunk no longer stalls a statement run for the visibility timeout (issue 15, finding 10).

Before: the killed worker's chunk stayed unacknowledged in Redis for BROKER_VISIBILITY_TIMEOUT
(3,600 s) and the run stayed "running". Now a run that has not moved for
STATEMENT_CHUNK_LEASE_SECONDS gets its unfinished chunks queued again (beat task, the CLI),
and a chunk queued twice never issues a statement twice.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from claims_server.app import state
from claims_server.config import load_settings
from claims_server.models import Statement
from claims_server.models.common import utcnow
from claims_server.models.statements import StatementRun, StatementRunState
from claims_server.statements.services import (
    _chunk_lock_keys,
    reap_stalled_run,
    start_statement_run,
)
from claims_server.statements.tasks import requeue_stalled_runs
from tests.integration.delivery.support import AS_OF, bill_two_patients

CHUNK = "claims_server.statements.run_chunk"
REAP = "claims_server.statements.reap_stalled_runs"


def _statements_per_patient(session, run_id: int) -> dict[int, int]:
    rows = session.execute(
        select(Statement.patient_id, func.count())
        .where(Statement.run_id == run_id)
        .group_by(Statement.patient_id)
    )
    return dict(rows.all())


def test_a_stalled_run_is_reaped_only_after_its_lease_and_completes_once(app, session):
    factory = state(app).session_factory
    a, b = bill_two_patients(session, factory)
    session.commit()
    run, chunks = start_statement_run(session, AS_OF, chunk_size=1)
    session.commit()
    assert len(chunks) == 2
    now = utcnow()
    # Fresh: nothing to reap (the chunks may simply be waiting for a worker).
    assert reap_stalled_run(session, run, lease_seconds=60, now=now, chunk_size=1) == []
    # A lease later without progress: both chunks go back; the row is touched so the next
    # look is a lease later, not at once.
    later = now + timedelta(seconds=61)
    assert reap_stalled_run(session, run, lease_seconds=60, now=later, chunk_size=1) == chunks
    session.commit()
    assert (
        reap_stalled_run(session, run, lease_seconds=60, now=later + timedelta(seconds=1), chunk_size=1) == []
    )
    # Queued again (in-process here: no broker) twice over: one statement per patient.
    settings = load_settings({"STATEMENT_RUN_CHUNK_SIZE": 1})
    assert requeue_stalled_runs(factory, settings, run_id=run.id, lease_seconds=0) == 2
    assert requeue_stalled_runs(factory, settings, run_id=run.id, lease_seconds=0) == 0
    session.expire_all()
    done = session.get(StatementRun, run.id)
    assert (done.state, done.done, done.total, done.issued) == (StatementRunState.DONE, 2, 2, 2)
    assert _statements_per_patient(session, run.id) == {a.patient_id: 1, b.patient_id: 1}


def test_the_chunks_queued_again_are_the_planned_ones_whatever_changed_since(app, session):
    """The plan is kept on the run (0010): recomputing it later (another chunk size in this
    process, a patient paid off or newly billed) would cut other ranges than those done."""
    factory = state(app).session_factory
    bill_two_patients(session, factory)
    session.commit()
    run, chunks = start_statement_run(session, AS_OF, chunk_size=1)
    session.commit()
    assert run.chunk_plan == [list(c) for c in chunks] and len(chunks) == 2
    later = utcnow() + timedelta(seconds=61)
    # This process would cut one chunk of two patients; the run still gets its own two chunks.
    assert reap_stalled_run(session, run, lease_seconds=60, now=later, chunk_size=2) == chunks
    session.rollback()
    settings = load_settings({"STATEMENT_RUN_CHUNK_SIZE": 2})
    assert requeue_stalled_runs(factory, settings, run_id=run.id, lease_seconds=0) == 2
    session.expire_all()
    done = session.get(StatementRun, run.id)
    assert (done.state, done.issued, sorted(done.chunks_done)) == (
        StatementRunState.DONE,
        2,
        sorted(first for first, _ in chunks),
    )


def test_a_chunk_a_live_worker_is_inside_is_not_queued_again(app, session):
    """PostgreSQL: the chunk's advisory lock is its lease, held by the worker's connection (so
    gone with a killed worker). SQLite has no such lock: every chunk not done goes back."""
    bill_two_patients(session, state(app).session_factory)
    session.commit()
    run, chunks = start_statement_run(session, AS_OF, chunk_size=1)
    session.commit()
    postgres = state(app).engine.dialect.name == "postgresql"
    with state(app).engine.connect() as worker:
        if postgres:
            worker.execute(
                text("SELECT pg_advisory_lock(CAST(:run AS integer), CAST(:chunk AS integer))"),
                _chunk_lock_keys(run.id, chunks[0][0]),
            )
        later = utcnow() + timedelta(seconds=61)
        reaped = reap_stalled_run(session, run, lease_seconds=60, now=later, chunk_size=1)
        assert reaped == (chunks[1:] if postgres else chunks)
        session.rollback()
        if postgres:
            worker.execute(text("SELECT pg_advisory_unlock_all()"))


# --- a real worker, SIGKILLed in the middle of a chunk, on Redis --------------------------------


@pytest.fixture
def worker_env(database_url, redis_broker_url, tmp_path) -> Iterator[dict[str, str]]:
    instance = tmp_path / "stalled-run"
    instance.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_broker_url,
        "INSTANCE_PATH": str(instance),
        "BROKER_VISIBILITY_TIMEOUT": "3600",  # the default: recovery must not wait for it
        "STATEMENT_CHUNK_LEASE_SECONDS": "3",
        "STATEMENT_RUN_CHUNK_SIZE": "1",
        "LOG_LEVEL": "WARNING",
        "QUEUE": f"stall-{uuid.uuid4().hex[:10]}",
    }
    yield env
    import redis

    redis.Redis.from_url(redis_broker_url).delete(env["QUEUE"])


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "claims_server", "worker", "--concurrency=1", f"--queues={env['QUEUE']}"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL reaches the pool child too
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=20)


def _wait(predicate: Any, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class _ChunkBlocker:
    """Holds the first chunk inside the worker: the chunk's advisory lock on PostgreSQL, the
    database write lock on SQLite (the worker waits inside the task, its message unacked)."""

    def __init__(self, app, run_id: int, first: int) -> None:
        engine = state(app).engine
        self.sqlite: sqlite3.Connection | None = None
        self.pg = None
        if engine.dialect.name == "postgresql":
            self.pg = engine.connect()
            self.pg.execute(
                text("SELECT pg_advisory_lock(CAST(:run AS integer), CAST(:chunk AS integer))"),
                _chunk_lock_keys(run_id, first),
            )
            self.pg.commit()
        else:
            self.sqlite = sqlite3.connect(engine.url.database, isolation_level=None)
            self.sqlite.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self.pg is not None:
            self.pg.execute(text("SELECT pg_advisory_unlock_all()"))
            self.pg.close()
            self.pg = None
        if self.sqlite is not None:
            self.sqlite.execute("ROLLBACK")
            self.sqlite.close()
            self.sqlite = None


@pytest.mark.redis
@pytest.mark.worker
def test_worker_killed_mid_chunk_the_run_completes_within_the_lease_without_duplicates(
    app, session, worker_env, redis_broker_url, tmp_path
):
    import redis
    from celery import Celery

    factory = state(app).session_factory
    a, b = bill_two_patients(session, factory)
    session.commit()
    run, chunks = start_statement_run(session, AS_OF, chunk_size=1)
    session.commit()
    run_id = run.id
    assert len(chunks) == 2
    client = Celery(broker=redis_broker_url, backend=redis_broker_url)
    queue = worker_env["QUEUE"]
    log = tmp_path / "workers.log"
    blocker = _ChunkBlocker(app, run_id, chunks[0][0])
    first = second = None
    try:
        first = _start_worker(worker_env, log)
        sent = [client.send_task(CHUNK, args=[run_id, f, last], queue=queue).id for f, last in chunks]
        broker = redis.Redis.from_url(redis_broker_url)

        def delivered_unacked() -> bool:
            # kombu keeps a delivered, unacknowledged message in the "unacked" hash until the
            # worker acks it (acks_late: when the chunk is done) or the visibility timeout ends.
            return any(sent[0].encode() in value for value in broker.hvals("unacked"))

        assert _wait(delivered_unacked, 60), log.read_text()[-3000:]
        time.sleep(0.5)  # let it reach the lock the blocker holds
        _kill(first)
        blocker.release()
        assert delivered_unacked()  # lost to the killed worker until the visibility timeout
        session.expire_all()
        assert session.get(StatementRun, run_id).state is not StatementRunState.DONE
        second = _start_worker(worker_env, log)
        started = time.monotonic()

        def run_state() -> StatementRun:
            with factory() as s:
                return s.get(StatementRun, run_id)

        # The beat task (sent to this queue, as beat sends it to the default one) queues the
        # killed worker's chunk again once the run has not moved for the lease (3 s here).
        reaped: list[int] = []

        def completed() -> bool:
            reaped.append(client.send_task(REAP, queue=queue).get(timeout=30)["requeued"])
            return run_state().state is StatementRunState.DONE

        assert _wait(completed, 120, interval=1.0), log.read_text()[-3000:]
        elapsed = time.monotonic() - started
        assert sum(reaped) >= 1
        assert elapsed < 120  # minutes at most, against the hour of the visibility timeout
        done = run_state()
        assert (done.done, done.total, done.issued, done.failed) == (2, 2, 2, 0)
        with factory() as s:
            assert _statements_per_patient(s, run_id) == {a.patient_id: 1, b.patient_id: 1}
        # Reaping a finished run does nothing.
        assert client.send_task(REAP, queue=queue).get(timeout=30) == {"requeued": 0}
    finally:
        blocker.release()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                _kill(proc)
