"""Through real Celery workers: the whole path, and a worker killed in the middle of an upload."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from claims_server.app import state
from claims_server.claims.services import create_claim_from_json
from claims_server.models import ClaimState, ClearinghouseRoute, SubmissionBatch, TransportKind
from claims_server.models.submissions import BatchState
from claims_server.simulator.service import run_once
from claims_server.submission.services import build_batches
from tests.integration.claims.support import seed
from tests.integration.submission.conftest import recent_claim
from tests.integration.submission.sftp_server import interchange_numbers

SEND = "claims_server.clearinghouse.send_batch"
POLL = "claims_server.clearinghouse.poll_inbox"


def _client(broker_url: str) -> Any:
    from celery import Celery

    return Celery(broker=broker_url, backend=broker_url)


def _prepare(app, sftp_server, claims: int) -> tuple[int, list[int], int]:
    """Seed, point the route at the SFTP server, create ready claims and batch them."""
    with state(app).session_factory() as session:
        ids = seed(session)
        route = session.scalar(select(ClearinghouseRoute))
        route.transport = TransportKind.SFTP
        route.settings = sftp_server.route_settings()
        claim_ids = [
            create_claim_from_json(session, recent_claim(ids, dependent=bool(i % 2))).claim.id
            for i in range(claims)
        ]
        session.commit()
        batch_ids = build_batches(session).batch_ids
        session.commit()
        return route.id, claim_ids, batch_ids[0]


def _states(app, claim_ids: list[int]) -> set[ClaimState]:
    from claims_server.models import Claim

    with state(app).session_factory() as session:
        return {session.get(Claim, i).state for i in claim_ids}


def _batch(app, batch_id: int) -> SubmissionBatch:
    with state(app).session_factory() as session:
        return session.get(SubmissionBatch, batch_id)


def test_whole_path_through_the_celery_worker(celery_worker_process, app, sftp_server):
    # The worker shares the test's MASTER_KEY (tests/conftest.py), so it reads what the app wrote.
    route_id, claim_ids, batch_id = _prepare(app, sftp_server, 3)
    client = _client(celery_worker_process["broker_url"])
    queue = celery_worker_process["queue"]
    sent = client.send_task(SEND, args=[batch_id], queue=queue).get(timeout=60)
    assert sent["state"] == "sent"
    assert _states(app, claim_ids) == {ClaimState.SUBMITTED}
    run_once(sftp_server.outbound, sftp_server.inbound)
    polled = client.send_task(POLL, args=[route_id], queue=queue).get(timeout=60)
    assert [f["kind"] for f in polled["files"]] == ["999", "277CA"]
    assert _states(app, claim_ids) == {ClaimState.ACKNOWLEDGED}
    assert _batch(app, batch_id).state is BatchState.ACCEPTED


@pytest.fixture
def worker_env(database_url, redis_broker_url, tmp_path) -> Iterator[dict[str, str]]:
    instance = tmp_path / "kill-worker"
    instance.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_broker_url,
        "INSTANCE_PATH": str(instance),
        "BROKER_VISIBILITY_TIMEOUT": "5",
        "LOG_LEVEL": "WARNING",
        "QUEUE": f"kill-{uuid.uuid4().hex[:10]}",
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


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_worker_killed_during_upload_never_marks_unsent_claims_and_never_sends_twice(
    worker_env, app, sftp_server, tmp_path, redis_broker_url
):
    log = tmp_path / "workers.log"
    first = second = None
    try:
        _, claim_ids, batch_id = _prepare(app, sftp_server, 4)
        sftp_server.stall_writes.set()
        first = _start_worker(worker_env, log)
        client = _client(redis_broker_url)
        client.send_task(SEND, args=[batch_id], queue=worker_env["QUEUE"])
        assert sftp_server.stalled.wait(90), log.read_text()[-3000:]
        _kill(first)
        # Killed mid-write: nothing complete on the server, nothing marked sent.
        assert interchange_numbers(sftp_server.outbound) == []
        assert _batch(app, batch_id).state is BatchState.SENDING
        assert _states(app, claim_ids) == {ClaimState.BATCHED}
        sftp_server.stall_writes.clear()
        second = _start_worker(worker_env, log)
        # The unacknowledged task comes back after the visibility timeout; if the broker has
        # not redelivered it yet, the resume sweep's job is done by hand here.
        if not _wait(lambda: _batch(app, batch_id).state is BatchState.SENT, 15):
            client.send_task(SEND, args=[batch_id], queue=worker_env["QUEUE"])
            assert _wait(lambda: _batch(app, batch_id).state is BatchState.SENT, 60), log.read_text()[-3000:]
        batch = _batch(app, batch_id)
        assert batch.attempt_count >= 2
        assert _states(app, claim_ids) == {ClaimState.SUBMITTED}
        numbers = interchange_numbers(sftp_server.outbound)
        assert len(numbers) == 1 and len(set(numbers)) == len(numbers)
    finally:
        sftp_server.stall_writes.clear()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                _kill(proc)
