"""THE registry of periodic jobs: what runs, how often, and whether the settings turn it on.

Each job names a Celery task and a schedule: every N seconds, or daily at a time of day in
``SCHEDULER_TIMEZONE``. The task is looked up by name when the job runs (a task whose module
is missing is then a recorded failure, not an import error here). The in-process runner,
``claims-server beat`` (its schedule is derived from this table), the CLI, the API and
``/healthz`` all read this table; nothing else declares periodic work.

This module is pure (stdlib only): ``claims_server.config`` validates ``SCHEDULER_INTERVALS``,
``SEND_SCHEDULE`` and ``STATEMENT_CYCLE`` with the parsers below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from claims_server.config import Settings

#: A late job is overdue once its next run is this far in the past, at least (``Schedule.grace``).
MIN_GRACE = timedelta(minutes=5)
#: ... and a daily job once it is an hour late (twice its period would hide a missed day).
DAILY_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class Schedule:
    """Every ``every_seconds`` seconds, or daily at ``daily_at`` (local time in ``timezone``)."""

    every_seconds: int | None = None
    daily_at: time | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if (self.every_seconds is None) == (self.daily_at is None):
            raise ValueError("a schedule is either every N seconds or daily at a time")

    @property
    def period_seconds(self) -> int:
        return self.every_seconds if self.every_seconds is not None else 24 * 3600

    def next_after(self, moment: datetime) -> datetime:
        """The first run strictly after ``moment`` (aware; the answer is UTC)."""
        if self.every_seconds is not None:
            return moment.astimezone(UTC) + timedelta(seconds=self.every_seconds)
        assert self.daily_at is not None
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        day = local.date()
        candidate = datetime.combine(day, self.daily_at, tzinfo=zone)
        if candidate <= local:
            candidate = datetime.combine(day + timedelta(days=1), self.daily_at, tzinfo=zone)
        return candidate.astimezone(UTC)

    def first_run(self, now: datetime) -> datetime:
        """When a job never run before first runs: at once when periodic, at its time when daily."""
        return now.astimezone(UTC) if self.every_seconds is not None else self.next_after(now)

    def grace(self) -> timedelta:
        """How late a run may be before the job counts as overdue."""
        if self.daily_at is not None:
            return DAILY_GRACE
        return max(2 * timedelta(seconds=self.period_seconds), MIN_GRACE)

    def describe(self) -> str:
        if self.daily_at is not None:
            return f"daily at {self.daily_at:%H:%M} {self.timezone}"
        seconds = self.period_seconds
        if seconds % 3600 == 0:
            return f"every {seconds // 3600} h"
        if seconds % 60 == 0:
            return f"every {seconds // 60} min"
        return f"every {seconds} s"


@dataclass(frozen=True)
class Job:
    """One periodic job as the current settings make it."""

    name: str
    task: str
    description: str
    schedule: Schedule
    enabled: bool
    #: How long a runner holds the job; a runner killed mid-run frees it after this.
    lease_seconds: int
    #: The task takes the day it runs for (ISO date in SCHEDULER_TIMEZONE) as its first argument.
    takes_today: bool = False

    def arguments(self, now: datetime) -> tuple[str, ...]:
        return (local_today(now, self.schedule.timezone).isoformat(),) if self.takes_today else ()


@dataclass(frozen=True)
class _Spec:
    name: str
    task: str
    description: str
    every: int | None = None  # seconds
    every_setting: str | None = None  # a Settings field holding the seconds
    daily_at: str | None = None  # a fixed time of day
    daily_setting: str | None = None  # a Settings field holding "HH:MM" or "off"
    lease_seconds: int = 30 * 60
    takes_today: bool = False


#: The jobs, in the order lists show them. Names and intervals of the jobs that existed as a
#: Celery beat schedule before are kept (deployments may monitor them by name).
SPECS: tuple[_Spec, ...] = (
    _Spec(
        "poll-clearinghouse-inboxes",
        "claims_server.clearinghouse.poll_all_inboxes",
        "Fetch every route's inbox and process what arrived: 999, 277CA, 835 (posted)",
        every=300,
    ),
    _Spec(
        "resume-unsent-batches",
        "claims_server.clearinghouse.resume_unsent_batches",
        "Send again the batches whose upload was lost or failed",
        every=600,
    ),
    _Spec(
        "send-ready-claims",
        "claims_server.submission.send_ready",
        "Batch and send every ready claim (SEND_SCHEDULE)",
        daily_setting="SEND_SCHEDULE",
    ),
    _Spec(
        "eligibility-check-tomorrow",
        "claims_server.eligibility.check_tomorrow",
        "Send 270s for tomorrow's scheduled patients",
        daily_at="06:00",
        takes_today=True,
    ),
    _Spec(
        "eligibility-poll-answers",
        "claims_server.eligibility.poll_answers",
        "Record the 271s waiting in every route's inbox",
        every=600,
    ),
    _Spec(
        "payment-plans-check",
        "claims_server.payments.check_plans",
        "Find missed payment-plan installments",
        daily_at="05:00",
        takes_today=True,
    ),
    _Spec(
        "workqueue-sweep",
        "claims_server.workqueue.sweep",
        "Open and close computed work items: unpaid claims, secondary billing, patient balances",
        daily_at="05:30",
        takes_today=True,
    ),
    _Spec(
        "statement-cycle",
        "claims_server.statements.run_cycle",
        "Run patient statements; the cycle rules choose who gets one (STATEMENT_CYCLE)",
        daily_setting="STATEMENT_CYCLE",
        lease_seconds=4 * 3600,
        takes_today=True,
    ),
    _Spec(
        "maintenance-purge",
        "claims_server.maintenance.purge",
        "Delete expired PHI copies: Idempotency-Key answers, print batches, outbound files",
        every=3600,
    ),
    _Spec(
        "audit-checkpoint",
        "claims_server.audit.checkpoint",
        "Sign a checkpoint of the audit chain when it moved (AUDIT_CHECKPOINT_SECONDS)",
        every_setting="AUDIT_CHECKPOINT_SECONDS",
    ),
    _Spec(
        "statements-reap-stalled-runs",
        "claims_server.statements.reap_stalled_runs",
        "Queue again the chunks of statement runs stalled by a killed worker",
        every=60,
    ),
)
JOB_NAMES: tuple[str, ...] = tuple(spec.name for spec in SPECS)

_TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def parse_time_of_day(text: str) -> time | None:
    """``"17:30"`` -> 17:30; ``"off"`` -> None; anything else: ValueError."""
    value = text.strip().lower()
    if value == "off":
        return None
    found = _TIME_OF_DAY.fullmatch(value)
    if found is None:
        raise ValueError(
            f"use a time of day such as 17:30 (24-hour, SCHEDULER_TIMEZONE) or off, not {text!r}"
        )
    return time(int(found.group(1)), int(found.group(2)))


def parse_intervals(text: str) -> dict[str, int]:
    """``"poll-clearinghouse-inboxes=60,resume-unsent-batches=300"`` -> seconds per job name."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, seconds = (s.strip() for s in part.partition("="))
        if not sep:
            raise ValueError(f"{part!r}: write job=seconds, e.g. poll-clearinghouse-inboxes=60")
        if name not in JOB_NAMES:
            raise ValueError(f"{part!r}: no job named {name!r}; jobs: {', '.join(JOB_NAMES)}")
        if not seconds.isdigit() or int(seconds) < 1:
            raise ValueError(f"{part!r}: seconds must be a whole number of at least 1")
        out[name] = int(seconds)
    return out


def check_timezone(name: str) -> None:
    """ValueError unless ``name`` is an IANA time zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as America/Chicago or UTC"
        ) from None


def local_today(now: datetime, timezone: str) -> date:
    """The date in the scheduler's time zone at ``now``."""
    return now.astimezone(ZoneInfo(timezone)).date()


def registry(settings: Settings) -> dict[str, Job]:
    """Every job by name, as ``settings`` make it (schedule, on or off)."""
    timezone = settings.SCHEDULER_TIMEZONE
    overrides = parse_intervals(settings.SCHEDULER_INTERVALS)
    jobs: dict[str, Job] = {}
    for spec in SPECS:
        enabled = True
        at: time | None = None
        every: int | None = spec.every
        if spec.every_setting:
            every = int(getattr(settings, spec.every_setting))
        if spec.daily_at:
            at = parse_time_of_day(spec.daily_at)
        if spec.daily_setting:
            at = parse_time_of_day(getattr(settings, spec.daily_setting))
            enabled = at is not None
        if spec.name in overrides:
            every, at = overrides[spec.name], None
        elif at is None and every is None:
            at = time(0, 0)  # off: a placeholder the disabled job never uses
        schedule = Schedule(every_seconds=every, daily_at=at, timezone=timezone)
        jobs[spec.name] = Job(
            spec.name,
            spec.task,
            spec.description,
            schedule,
            enabled,
            spec.lease_seconds,
            spec.takes_today,
        )
    return jobs


def tick_seconds(jobs: dict[str, Job]) -> float:
    """How often a runner looks for due jobs: every 5 s, faster for jobs shorter than 10 s."""
    shortest = min((j.schedule.period_seconds for j in jobs.values() if j.enabled), default=60)
    return min(5.0, max(0.5, shortest / 2))
