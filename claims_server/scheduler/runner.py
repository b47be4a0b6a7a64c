"""THE one way to run a scheduled job: take its lease, run its task here, record the outcome.

``run_job`` takes the job with one conditional UPDATE of its ``scheduled_jobs`` row (only
while nobody holds an unexpired lease and, for a runner's tick, only when the job is due),
commits, runs the task's function in this process (renewing the lease every third of its
length while it runs), then records started/finished, the outcome, a small JSON-safe summary
of the task's result (counts and ids, never PHI), the error's class (and, for the project's
own vetted errors, their message; never a traceback), the next run, and frees the lease. The
record is conditional on still holding the lease: a runner whose lease was taken over
records nothing. The database settles who runs a job, so several gunicorn workers,
``claims-server beat`` and a cron ``scheduler tick`` never run one job twice at the same
time, on SQLite and PostgreSQL.

A failing job is recorded as ``failed`` and never stops the runner.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from claims_server.clearinghouse.transport import TransportConfigError, TransportError
from claims_server.config import ConfigError
from claims_server.errors import ApiError
from claims_server.models.common import utcnow
from claims_server.models.operations import ScheduledJob
from claims_server.scheduler.jobs import Job
from claims_server.security.principal import acting_as, system_principal
from claims_server.tasks.celery_app import celery_app

log = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed"
ERROR_MAX = 300
_ID_TEXT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_DETAIL_MAX_KEYS = 24
_DETAIL_MAX_LIST = 20


class UnknownJob(LookupError):
    """No job of that name in the registry."""


class TaskNotRegistered(LookupError):
    """A job names a Celery task this process does not have (its module missing)."""


#: Errors whose message is the project's own words (settings, routes, ids; never a stored value),
#: so ``last_error`` keeps it. Any other exception is stored as its class name alone: a driver's
#: or a library's message can quote the value it choked on (``invalid input syntax for type
#: date: "<value>"``), which may be PHI.
_VETTED_ERRORS: tuple[type[BaseException], ...] = (
    TransportError,
    TransportConfigError,
    ApiError,
    ConfigError,
    TaskNotRegistered,
)


@dataclass(frozen=True)
class RunOutcome:
    """What one run did (as recorded in ``scheduled_jobs``)."""

    name: str
    outcome: str  # ok | failed
    started_at: datetime
    finished_at: datetime
    detail: dict[str, Any] | None
    error: str | None
    next_run_at: datetime | None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "job": self.name,
            "outcome": self.outcome,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "detail": self.detail,
            "error": self.error,
            "next_run_at": self.next_run_at.isoformat() if self.next_run_at else None,
        }


def runner_owner(kind: str) -> str:
    """A lease owner naming the runner: ``<kind>:<host>:<pid>:<thread>`` (no PHI, fits 100 chars)."""
    return f"{kind}:{socket.gethostname()[:40]}:{os.getpid()}:{threading.get_ident() % 100_000}"


# -- the rows ------------------------------------------------------------------------------------


def _expected_next(job: Job, row: ScheduledJob, now: datetime) -> datetime | None:
    """Where ``row.next_run_at`` belongs under the current schedule (None when off)."""
    if not job.enabled:
        return None
    if not row.enabled or row.last_started_at is None:
        # Never run, or just switched on: the first run, not a catch-up of missed ones.
        return job.schedule.first_run(now)
    return job.schedule.next_after(row.last_started_at)


def sync_jobs(factory: sessionmaker[Session], jobs: dict[str, Job], now: datetime | None = None) -> None:
    """Give every job its row, and make each row's ``enabled`` and future ``next_run_at`` follow
    the current settings (a changed SEND_SCHEDULE, SCHEDULER_INTERVALS...).

    A next run already due is kept. Each change is a compare-and-set on ``run_count`` and a
    free lease, so a runner that finished the job meanwhile is never overwritten.
    """
    now = now or utcnow()
    with factory() as session:
        rows = {row.name: row for row in session.scalars(select(ScheduledJob))}
        session.expunge_all()
    _insert_rows(factory, [job for name, job in jobs.items() if name not in rows], now)
    for job in jobs.values():
        row = rows.get(job.name)
        if row is None:
            continue
        leased = row.lease_owner is not None and (row.lease_expires_at is None or row.lease_expires_at > now)
        if leased:
            continue
        due = row.next_run_at is not None and row.next_run_at <= now
        wanted = row.next_run_at if due and job.enabled and row.enabled else _expected_next(job, row, now)
        if row.enabled == job.enabled and row.next_run_at == wanted:
            continue
        with factory() as session:
            session.execute(
                update(ScheduledJob)
                .where(ScheduledJob.name == job.name, ScheduledJob.run_count == row.run_count)
                .where(_lease_free(now))
                .values(enabled=job.enabled, next_run_at=wanted)
                .execution_options(synchronize_session=False)
            )
            session.commit()


def sync_jobs_at_start(factory: sessionmaker[Session], jobs: dict[str, Job]) -> None:
    """``sync_jobs`` when a server starts (``create_app``), so every job on has a ``next_run_at``
    from the start: a deployment where nothing ever runs the jobs (a broker and no ``beat``,
    ``SCHEDULER=off`` and no cron) shows them overdue once their grace has passed, instead of
    "never run" forever. One SELECT when the rows are there; a database error only logs (the
    server still starts; ``/healthz`` reports the database)."""
    try:
        sync_jobs(factory, jobs)
    except SQLAlchemyError as exc:
        log.warning("could not give the scheduled jobs their rows", exc_info=exc)


def _new_row(job: Job, now: datetime) -> ScheduledJob:
    return ScheduledJob(
        name=job.name,
        enabled=job.enabled,
        next_run_at=job.schedule.first_run(now) if job.enabled else None,
        run_count=0,
        failure_count=0,
    )


def _insert_rows(factory: sessionmaker[Session], jobs: list[Job], now: datetime) -> None:
    """The missing rows in one transaction; one by one if another process inserted some first."""
    if not jobs:
        return
    with factory() as session:
        session.add_all([_new_row(job, now) for job in jobs])
        try:
            session.commit()
            return
        except IntegrityError:
            session.rollback()
    for job in jobs:
        _insert_row(factory, job, now)


def _insert_row(factory: sessionmaker[Session], job: Job, now: datetime) -> None:
    with factory() as session:
        session.add(_new_row(job, now))
        try:
            session.commit()
        except IntegrityError:  # another runner inserted it first
            session.rollback()


def _lease_free(now: datetime) -> Any:
    return or_(ScheduledJob.lease_owner.is_(None), ScheduledJob.lease_expires_at < now)


def due_job_names(factory: sessionmaker[Session], jobs: dict[str, Job], now: datetime) -> list[str]:
    """Jobs enabled, due and not held by a runner, in registry order."""
    with factory() as session:
        due = set(
            session.scalars(
                select(ScheduledJob.name)
                .where(ScheduledJob.enabled.is_(True), ScheduledJob.next_run_at <= now)
                .where(_lease_free(now))
            )
        )
    return [name for name, job in jobs.items() if name in due and job.enabled]


# -- one run -------------------------------------------------------------------------------------


def run_job(
    factory: sessionmaker[Session],
    name: str,
    *,
    owner: str,
    jobs: dict[str, Job],
    only_if_due: bool = True,
    now: datetime | None = None,
) -> RunOutcome | None:
    """Run job ``name`` once if this runner gets its lease; None when it did not (not due, or
    another runner holds it). ``only_if_due=False`` (run now, a beat entry) skips the due check
    but never a held lease. UnknownJob when the registry has no such job."""
    job = jobs.get(name)
    if job is None:
        raise UnknownJob(name)
    started = now or utcnow()
    if not _take_lease(factory, job, owner=owner, now=started, only_if_due=only_if_due):
        return None
    detail: dict[str, Any] | None = None
    error: str | None = None
    try:
        with LeaseHeartbeat(factory, job, owner), acting_as(system_principal(f"scheduler:{name}")):
            result = _task(job.task)(*job.arguments(started))
        detail = summarize(result)
    except Exception as exc:  # a failing job is recorded; the runner goes on
        error = describe_error(exc)
        # The JSON log keeps the class and the frames, not the message (claims_server.logs).
        log.error("scheduled job failed", exc_info=exc, extra={"job": name})
    finished = utcnow()
    next_run = job.schedule.next_after(started) if job.enabled else None
    _record(factory, job, owner=owner, finished=finished, detail=detail, error=error, next_run=next_run)
    return RunOutcome(name, FAILED if error else OK, started, finished, detail, error, next_run)


def _take_lease(
    factory: sessionmaker[Session], job: Job, *, owner: str, now: datetime, only_if_due: bool
) -> bool:
    """The conditional UPDATE that decides who runs the job (the row is created first if missing)."""
    stmt = (
        update(ScheduledJob)
        .where(ScheduledJob.name == job.name)
        .where(_lease_free(now))
        .values(
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=job.lease_seconds),
            last_started_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if only_if_due:
        stmt = stmt.where(ScheduledJob.enabled.is_(True), ScheduledJob.next_run_at <= now)
    for attempt in (1, 2):
        with factory() as session:
            taken = session.execute(stmt).rowcount == 1
            session.commit()
        if taken or attempt == 2:
            return taken
        with factory() as session:
            exists = session.get(ScheduledJob, job.name) is not None
        if exists:
            return False
        _insert_row(factory, job, now)
    return False


class LeaseHeartbeat:
    """Renews a running job's lease every third of its length (a daemon thread), so a run longer
    than its lease is not taken over by another runner; stops when the run ends.

    Each renewal is one short UPDATE conditional on still owning the lease (SQLite's busy
    timeout covers a moment's wait for the job's own writes). A lease found taken over is
    logged and no longer renewed; a failed renewal (the database away) is logged and tried
    again at the next beat.
    """

    def __init__(self, factory: sessionmaker[Session], job: Job, owner: str) -> None:
        self.factory = factory
        self.job = job
        self.owner = owner
        self.every = job.lease_seconds / 3
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{job.name}", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(30)

    def _beat(self) -> None:
        while not self._stopping.wait(self.every):
            try:
                if not renew_lease(self.factory, self.job, owner=self.owner):
                    log.warning("scheduled job's lease was taken over", extra={"job": self.job.name})
                    return
            except Exception as exc:  # the database away for a moment: try again next beat
                log.warning(
                    "could not renew a scheduled job's lease", exc_info=exc, extra={"job": self.job.name}
                )


def renew_lease(factory: sessionmaker[Session], job: Job, *, owner: str, now: datetime | None = None) -> bool:
    """Extend ``owner``'s lease of ``job`` by its full length from now; False if it is not ours."""
    until = (now or utcnow()) + timedelta(seconds=job.lease_seconds)
    with factory() as session:
        renewed = (
            session.execute(
                update(ScheduledJob)
                .where(ScheduledJob.name == job.name, ScheduledJob.lease_owner == owner)
                .values(lease_expires_at=until)
                .execution_options(synchronize_session=False)
            ).rowcount
            == 1
        )
        session.commit()
    return renewed


def _record(
    factory: sessionmaker[Session],
    job: Job,
    *,
    owner: str,
    finished: datetime,
    detail: dict[str, Any] | None,
    error: str | None,
    next_run: datetime | None,
) -> bool:
    """The run's outcome and next run, and the lease freed, only while ``owner`` still holds the
    lease: a runner whose lease expired and was taken over records nothing (the runner that took
    it over records its own run). False when nothing was recorded."""
    values: dict[str, Any] = {
        "last_finished_at": finished,
        "last_outcome": FAILED if error else OK,
        "last_detail": detail,
        "last_error": error,
        "run_count": ScheduledJob.run_count + 1,
        "failure_count": ScheduledJob.failure_count + (1 if error else 0),
        "next_run_at": next_run,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if not error:
        values["last_success_at"] = finished
    with factory() as session:
        recorded = (
            session.execute(
                update(ScheduledJob)
                .where(ScheduledJob.name == job.name, ScheduledJob.lease_owner == owner)
                .values(**values)
                .execution_options(synchronize_session=False)
            ).rowcount
            == 1
        )
        session.commit()
    if not recorded:
        log.warning(
            "scheduled job's lease was taken over before it finished; its outcome is not recorded",
            extra={"job": job.name, "outcome": values["last_outcome"]},
        )
    return recorded


def _task(name: str) -> Any:
    """The Celery task ``name`` of this process (its module imported on first use)."""
    tasks = celery_app.tasks
    if name not in tasks:
        celery_app.loader.import_default_modules()
    task = tasks.get(name)
    if task is None:
        raise TaskNotRegistered(f"no Celery task named {name} is registered")
    return task


def summarize(result: Any) -> dict[str, Any] | None:
    """What of a task's result is kept: numbers, booleans, id-like text, short lists of those
    (longer ones as their length), one level of nesting. Anything else is dropped, so free text
    (which could carry PHI) never reaches ``scheduled_jobs``."""
    if result is None:
        return None
    if isinstance(result, dict):
        return _small_dict(result, depth=0)
    value = _small_value(result, depth=1)
    return {"result": value} if value is not None else None


def _small_dict(values: dict[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if len(out) >= _DETAIL_MAX_KEYS:
            break
        if isinstance(key, str) and _ID_TEXT.match(key):
            small = _small_value(value, depth + 1)
            if small is not None or value is None:
                out[key] = small
    return out


def _small_value(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value if _ID_TEXT.match(value) else None
    if isinstance(value, list | tuple):
        items = [_small_value(v, depth + 1) for v in value]
        if len(items) > _DETAIL_MAX_LIST or any(i is None or isinstance(i, dict | list) for i in items):
            return len(items)
        return items
    if isinstance(value, dict) and depth <= 1:
        return _small_dict(value, depth)
    return None


def describe_error(exc: BaseException) -> str:
    """What ``last_error`` keeps of a failure: the exception's class, and the first line of its
    message only for the project's vetted errors (``_VETTED_ERRORS``: an ApiError's detail, a
    transport's or a setting's complaint); at most ``ERROR_MAX`` characters. Any other message,
    a database driver's above all, may quote a stored value, so it is never kept."""
    name = type(exc).__name__
    if not isinstance(exc, _VETTED_ERRORS):
        return name[:ERROR_MAX]
    message = exc.detail if isinstance(exc, ApiError) else str(exc)
    lines = message.strip().splitlines()
    return (f"{name}: {lines[0]}" if lines else name)[:ERROR_MAX]


# -- a runner's tick ------------------------------------------------------------------------------


def tick(
    factory: sessionmaker[Session], jobs: dict[str, Job], *, owner: str, now: datetime | None = None
) -> list[RunOutcome]:
    """Bring the rows in line with the settings, then run every due job once (in registry order)."""
    fixed = now
    now = now or utcnow()
    sync_jobs(factory, jobs, now)
    outcomes = []
    for name in due_job_names(factory, jobs, now):
        # Each run starts at its own time unless the caller fixed the clock (tests, a replay).
        outcome = run_job(factory, name, owner=owner, jobs=jobs, now=fixed)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes
