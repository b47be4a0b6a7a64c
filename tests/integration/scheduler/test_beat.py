"""Production: ``claims-server beat`` sends each job to a real worker through Redis, and the
worker's run lands in ``scheduled_jobs`` as the in-process runner's would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy import select

from claims_server.app import state
from claims_server.models.operations import ScheduledJob
from claims_server.scheduler.jobs import JOB_NAMES
from tests.services import running_process

pytestmark = [pytest.mark.redis, pytest.mark.worker]


def test_beat_and_a_worker_run_a_job_and_record_it(app, database_url, redis_broker_url, tmp_path):
    import redis
    from celery import Celery

    # A Redis database of its own (the shared worker fixture uses another), emptied afterwards.
    broker = redis_broker_url.rsplit("/", 1)[0] + "/13"
    queue = f"sched-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "INSTANCE_PATH": str(tmp_path),
        "LOG_LEVEL": "WARNING",
        "SCHEDULER_INTERVALS": "maintenance-purge=1",
    }
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    command = [sys.executable, "-m", "claims_server"]
    with open(worker_log, "wb") as out:
        worker = subprocess.Popen(
            [*command, "worker", "--concurrency=1", f"--queues={queue}"], env=env, stdout=out, stderr=out
        )
    probe = Celery(broker=broker, backend=broker)
    factory = state(app).session_factory

    def recorded() -> ScheduledJob | None:
        with factory() as session:
            row = session.get(ScheduledJob, "maintenance-purge")
        return row if row is not None and row.run_count >= 1 and row.lease_owner is None else None

    try:
        with running_process(
            worker,
            lambda: bool(probe.control.ping(timeout=1.0)),
            name="the worker",
            output=worker_log.read_text,
        ):
            with open(beat_log, "wb") as out:
                beat = subprocess.Popen(
                    [*command, "beat", f"--queue={queue}"], env=env, stdout=out, stderr=out
                )
            with running_process(beat, lambda: True, name="beat", output=beat_log.read_text):
                deadline = time.monotonic() + 90
                while (row := recorded()) is None:
                    assert beat.poll() is None, beat_log.read_text()[-2000:]
                    assert time.monotonic() < deadline, (
                        beat_log.read_text()[-2000:] + worker_log.read_text()[-2000:]
                    )
                    time.sleep(0.5)
        assert row.last_outcome == "ok" and row.failure_count == 0
        assert row.last_detail == {"files": 0, "idempotency_records": 0, "print_batches": 0}
        assert row.next_run_at > row.last_started_at and row.last_finished_at >= row.last_started_at
        with factory() as session:  # beat gave every job its row before its first entry fired
            assert set(session.scalars(select(ScheduledJob.name))) == set(JOB_NAMES)
    finally:
        redis.Redis.from_url(broker).flushdb()
