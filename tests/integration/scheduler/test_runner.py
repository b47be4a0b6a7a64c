"""``run_job``: the lease decides who runs a job (once, however many runners), a running job keeps
its lease, and every run's outcome, detail, error and next run land in ``scheduled_jobs`` (only
while the runner still holds the lease); a failing job never stops a runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

from claims_server.app import state
from claims_server.clearinghouse.transport import TransportError
from claims_server.config import ConfigError, Settings
from claims_server.db import make_engine, make_session_factory
from claims_server.errors import NotFound
from claims_server.models.operations import ScheduledJob
from claims_server.scheduler.jobs import Job, Schedule, registry
from claims_server.scheduler.runner import (
    describe_error,
    run_job,
    summarize,
    sync_jobs,
    tick,
)
from claims_server.tasks.celery_app import celery_app

#: Calls of the counting task, and how many ran at the same moment at most.
CALLS: list[int] = []
_active = {"now": 0, "most": 0}
_lock = threading.Lock()
#: The gated task's first call waits at ``_gate`` (after setting ``_entered``); later calls return at once.
_gate = threading.Event()
_entered = threading.Event()


@celery_app.task(name="tests.scheduler.count")
def count_task() -> dict[str, int]:
    with _lock:
        CALLS.append(threading.get_ident())
        _active["now"] += 1
        _active["most"] = max(_active["most"], _active["now"])
    time.sleep(0.3)  # long enough for a second runner to try while this one holds the lease
    with _lock:
        _active["now"] -= 1
    return {"calls": len(CALLS)}


@celery_app.task(name="tests.scheduler.gated")
def gated_task() -> dict[str, int]:
    with _lock:
        CALLS.append(threading.get_ident())
        run = len(CALLS)
    if run == 1:
        _entered.set()
        assert _gate.wait(60), "the test never opened the gate"
    return {"run": run}


@celery_app.task(name="tests.scheduler.boom")
def boom_task() -> None:
    raise RuntimeError("inbox unreachable\nsecond line with more detail")


@celery_app.task(name="tests.scheduler.mixed")
def mixed_task() -> dict[str, object]:
    return {
        "claims": 3,
        "route_ids": [1, 2],
        "batch": "9f1c2d3e4b5a",
        "patient": "Jane Doe",  # free text: never kept
        "ratio": 0.5,  # floats: never kept
        "many": list(range(50)),
        "nested": {"ok": 1, "note": "a sentence with spaces"},
    }


def _job(name: str, task: str, every: int = 60, **kw) -> Job:
    return Job(name, task, "test job", Schedule(every_seconds=every), kw.pop("enabled", True), 600, **kw)


@pytest.fixture
def factory(app):
    return state(app).session_factory


@pytest.fixture(autouse=True)
def _reset_counts():
    CALLS.clear()
    _active.update(now=0, most=0)
    _gate.clear()
    _entered.clear()
    yield
    _gate.set()  # a failed test never leaves a runner waiting


def _row(factory, name: str) -> ScheduledJob:
    with factory() as session:
        return session.get(ScheduledJob, name)


def test_a_run_records_outcome_detail_and_next_run(factory):
    jobs = {"counted": _job("counted", "tests.scheduler.count", every=120)}
    started = datetime.now(UTC)
    outcome = run_job(factory, "counted", owner="test:a", jobs=jobs, now=started)
    assert outcome is not None and outcome.outcome == "ok" and outcome.detail == {"calls": 1}
    row = _row(factory, "counted")
    assert row.last_outcome == "ok" and row.last_error is None
    assert row.last_detail == {"calls": 1}
    assert row.run_count == 1 and row.failure_count == 0
    assert row.last_started_at == started and row.last_finished_at >= started
    assert row.last_success_at == row.last_finished_at
    assert row.next_run_at == started + timedelta(seconds=120)
    assert row.lease_owner is None and row.lease_expires_at is None
    # Not due again yet: a tick's run does nothing; "run now" does.
    assert run_job(factory, "counted", owner="test:a", jobs=jobs) is None
    assert run_job(factory, "counted", owner="test:a", jobs=jobs, only_if_due=False) is not None
    assert _row(factory, "counted").run_count == 2


def test_a_failing_job_is_recorded_and_the_next_one_still_runs(factory):
    jobs = {
        "boom": _job("boom", "tests.scheduler.boom"),
        "missing": _job("missing", "claims_server.no_such.task"),
        "counted": _job("counted", "tests.scheduler.count"),
    }
    outcomes = tick(factory, jobs, owner="test:a")
    assert [(o.name, o.outcome) for o in outcomes] == [
        ("boom", "failed"),
        ("missing", "failed"),
        ("counted", "ok"),
    ]
    boom = _row(factory, "boom")
    assert boom.last_error == "RuntimeError"  # the class: a message that is not ours may quote data
    assert boom.failure_count == 1 and boom.run_count == 1 and boom.last_success_at is None
    assert boom.lease_owner is None and boom.next_run_at > boom.last_started_at
    missing = _row(factory, "missing")
    assert missing.last_error == (
        "TaskNotRegistered: no Celery task named claims_server.no_such.task is registered"
    )


def test_only_counts_and_ids_are_kept_of_a_result(factory):
    jobs = {"mixed": _job("mixed", "tests.scheduler.mixed")}
    run_job(factory, "mixed", owner="test:a", jobs=jobs)
    assert _row(factory, "mixed").last_detail == {
        "claims": 3,
        "route_ids": [1, 2],
        "batch": "9f1c2d3e4b5a",
        "many": 50,
        "nested": {"ok": 1},
    }
    assert summarize([4, 5]) == {"result": [4, 5]}
    assert summarize(None) is None and summarize("Jane Doe") is None


def test_a_database_error_is_described_without_its_statement_or_values():
    from sqlalchemy.exc import DataError, IntegrityError

    orig = Exception('duplicate key value violates unique constraint "uq_x"\nDETAIL:  Key (name)=(Jane Doe)')
    exc = IntegrityError("INSERT INTO patients (name) VALUES (%(name)s)", {"name": "Jane Doe"}, orig)
    assert describe_error(exc) == "IntegrityError"
    # A driver's first line can quote the value itself (psycopg: invalid input syntax ...).
    orig = Exception('invalid input syntax for type date: "Jane Doe 1961-07-04"')
    assert describe_error(DataError("SELECT ...", {}, orig)) == "DataError"


def test_only_the_projects_own_errors_keep_their_message():
    assert describe_error(ValueError('invalid input syntax for type date: "CANARY-7f3a"')) == "ValueError"
    assert describe_error(KeyError("CANARY-7f3a")) == "KeyError"
    assert describe_error(TransportError("sftp upload to ch.example.com failed\nmore")) == (
        "TransportError: sftp upload to ch.example.com failed"
    )
    assert describe_error(NotFound("no submission batch with that id")) == (
        "NotFound: no submission batch with that id"
    )
    assert describe_error(ConfigError("SEND_SCHEDULE", "use a time of day")) == (
        "ConfigError: configuration error: SEND_SCHEDULE: use a time of day"
    )


def _tick_together(barrier, factory, jobs, owner: str, ran: list[str]) -> None:
    barrier.wait()
    ran.extend(o.name for o in tick(factory, jobs, owner=owner))


def test_two_runners_run_a_due_job_once(app, database_url):
    """Two runners, each with its own engine and connections, tick together five times: each
    round the due job runs once, never twice at the same time (SQLite and PostgreSQL)."""
    jobs = {"counted": _job("counted", "tests.scheduler.count", every=3600)}
    engines = [make_engine(database_url) for _ in range(2)]
    factories = [make_session_factory(engine) for engine in engines]
    rounds = 5
    for _ in range(rounds):
        with factories[0]() as session:  # due now
            session.execute(
                update(ScheduledJob)
                .where(ScheduledJob.name == "counted")
                .values(next_run_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            session.commit()
        barrier = threading.Barrier(2)
        ran: list[str] = []
        threads = [
            threading.Thread(target=_tick_together, args=(barrier, factories[n], jobs, f"t{n}", ran))
            for n in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert ran == ["counted"]
    assert len(CALLS) == rounds and _active["most"] == 1
    assert _row(state(app).session_factory, "counted").run_count == rounds
    for engine in engines:
        engine.dispose()


def test_a_lease_held_by_a_dead_runner_is_taken_over_once_it_expires(factory):
    jobs = {"counted": _job("counted", "tests.scheduler.count")}
    sync_jobs(factory, jobs)
    now = datetime.now(UTC)
    with factory() as session:
        session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.name == "counted")
            .values(lease_owner="serve:gone:1:1", lease_expires_at=now + timedelta(minutes=5))
        )
        session.commit()
    assert run_job(factory, "counted", owner="test:b", jobs=jobs, only_if_due=False) is None
    later = now + timedelta(minutes=6)
    assert run_job(factory, "counted", owner="test:b", jobs=jobs, now=later) is not None
    assert _row(factory, "counted").lease_owner is None


def test_rows_follow_the_settings(factory):
    with factory() as session:  # a fresh database (the app gave every job its row when it started)
        session.execute(delete(ScheduledJob))
        session.commit()
    now = datetime.now(UTC)
    jobs = registry(Settings())
    sync_jobs(factory, jobs, now)
    with factory() as session:
        rows = {r.name: r for r in session.scalars(select(ScheduledJob))}
    assert set(rows) == set(jobs)
    assert rows["poll-clearinghouse-inboxes"].next_run_at == now  # periodic: at once
    assert rows["payment-plans-check"].next_run_at == jobs["payment-plans-check"].schedule.first_run(now)
    assert not rows["send-ready-claims"].enabled and rows["send-ready-claims"].next_run_at is None
    # The first poll ran; then SCHEDULER_INTERVALS shortens it and SEND_SCHEDULE turns the send on.
    run_job(factory, "poll-clearinghouse-inboxes", owner="test:c", jobs=jobs, now=now)
    assert _row(factory, "poll-clearinghouse-inboxes").next_run_at == now + timedelta(minutes=5)
    changed = registry(Settings(SCHEDULER_INTERVALS="poll-clearinghouse-inboxes=2", SEND_SCHEDULE="17:30"))
    later = now + timedelta(seconds=1)
    sync_jobs(factory, changed, later)
    assert _row(factory, "poll-clearinghouse-inboxes").next_run_at == now + timedelta(seconds=2)
    send = _row(factory, "send-ready-claims")
    assert send.enabled and send.next_run_at == changed["send-ready-claims"].schedule.first_run(later)
    sync_jobs(factory, jobs, later)  # and back off
    send = _row(factory, "send-ready-claims")
    assert not send.enabled and send.next_run_at is None


def test_two_processes_ticking_at_once_run_each_job_once(app, database_url, tmp_path):
    """``claims-server scheduler tick`` twice at the same moment on one database: every periodic
    job (all due on a fresh database) ran once, reported by exactly one of the two processes."""
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path), "LOG_LEVEL": "WARNING"}
    env.pop("CELERY_BROKER_URL", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "claims_server", "scheduler", "tick", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    reported: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()[-2000:]
        reported += [o["job"] for o in json.loads(out)]
    periodic = [n for n, j in registry(Settings()).items() if j.enabled and j.schedule.every_seconds]
    assert sorted(reported) == sorted(periodic)
    with state(app).session_factory() as session:
        counts = {r.name: r.run_count for r in session.scalars(select(ScheduledJob))}
    assert {n: counts[n] for n in periodic} == dict.fromkeys(periodic, 1)
    assert counts["payment-plans-check"] == 0  # daily: not due yet


@pytest.fixture
def started_threads():
    """Scheduler threads a test starts, stopped (and checked stopped) before the app's teardown
    empties the tables under them."""
    threads: list = []
    yield threads
    for thread in threads:
        thread.stop(timeout=30)
    assert not any(t.is_alive() for t in threads), "a scheduler thread outlived its test"


def test_the_in_process_runner_starts_only_when_the_setting_says_so(app, factory, started_threads):
    from claims_server.scheduler.background import start_in_process

    settings = state(app).settings
    jobs = {"counted": _job("counted", "tests.scheduler.count")}  # one harmless job, not the registry
    assert start_in_process(factory, Settings(SCHEDULER="off"), jobs=jobs) is None
    thread = start_in_process(factory, settings, jobs=jobs)
    assert thread is not None
    started_threads.append(thread)
    assert thread.daemon and thread.interval == 5.0 and thread.jobs == jobs
    assert start_in_process(factory, settings, jobs=jobs) is thread  # one per process
    deadline = time.monotonic() + 30
    while (row := _row(factory, "counted")) is None or row.run_count < 1:
        assert time.monotonic() < deadline, "the thread ran nothing"
        time.sleep(0.2)
    assert row.last_outcome == "ok" and row.lease_owner is None
    thread.stop(timeout=30)
    assert not thread.is_alive()


def _run_in_thread(factory, jobs, owner: str, out: list) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: out.append(run_job(factory, "gated", owner=owner, jobs=jobs, only_if_due=False))
    )
    thread.start()
    assert _entered.wait(30), "the job did not start"
    return thread


def test_a_run_longer_than_its_lease_keeps_it(factory):
    """The lease is renewed while the job runs: another runner cannot take a job that is still running
    however long it takes (here three times a 2-second lease)."""
    jobs = {"gated": Job("gated", "tests.scheduler.gated", "test job", Schedule(every_seconds=60), True, 2)}
    out: list = []
    first = _run_in_thread(factory, jobs, "runner:a", out)
    try:
        time.sleep(3)  # past the lease the run started with
        assert run_job(factory, "gated", owner="runner:b", jobs=jobs, only_if_due=False) is None
        row = _row(factory, "gated")
        assert row.lease_owner == "runner:a" and row.lease_expires_at > datetime.now(UTC)
    finally:
        _gate.set()
        first.join(30)
    assert out[0] is not None and out[0].detail == {"run": 1}
    row = _row(factory, "gated")
    assert row.run_count == 1 and row.last_detail == {"run": 1} and row.lease_owner is None


def test_a_runner_whose_lease_was_taken_over_records_nothing(factory):
    """Runner A's lease expires (a runner killed, or a clock jump) and runner B takes the job over
    and records its run: A, finishing later, must not overwrite B's record nor count a second run."""
    jobs = {"gated": _job("gated", "tests.scheduler.gated")}  # a 600 s lease
    out: list = []
    first = _run_in_thread(factory, jobs, "runner:a", out)
    try:
        after_expiry = datetime.now(UTC) + timedelta(seconds=601)
        taken_over = run_job(
            factory, "gated", owner="runner:b", jobs=jobs, only_if_due=False, now=after_expiry
        )
        assert taken_over is not None and taken_over.detail == {"run": 2}
    finally:
        _gate.set()
        first.join(30)
    assert out[0] is not None and out[0].detail == {"run": 1}  # A's run happened, but is not recorded
    row = _row(factory, "gated")
    assert row.run_count == 1 and row.last_detail == {"run": 2}
    assert row.last_started_at == after_expiry and row.next_run_at == after_expiry + timedelta(seconds=60)
    assert row.lease_owner is None
