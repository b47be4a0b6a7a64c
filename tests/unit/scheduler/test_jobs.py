"""The job registry: names, schedules as the settings make them, and the settings' validation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from celery.schedules import crontab

from claims_server.config import ConfigError, Settings, load_settings
from claims_server.scheduler.beat import RUN_JOB_TASK, beat_schedule
from claims_server.scheduler.jobs import JOB_NAMES, Schedule, registry, tick_seconds


def test_the_registry_keeps_the_old_beat_names_and_intervals_and_adds_the_day():
    jobs = registry(Settings())
    assert list(jobs) == list(JOB_NAMES)
    every = {name: j.schedule.every_seconds for name, j in jobs.items() if j.schedule.every_seconds}
    assert every == {
        "poll-clearinghouse-inboxes": 300,
        "resume-unsent-batches": 600,
        "eligibility-poll-answers": 600,
        "maintenance-purge": 3600,
        "audit-checkpoint": 60,
        "statements-reap-stalled-runs": 60,
    }
    daily = {name for name, j in jobs.items() if j.schedule.daily_at is not None}
    assert daily >= {"eligibility-check-tomorrow", "payment-plans-check", "workqueue-sweep"}
    assert jobs["poll-clearinghouse-inboxes"].task == "claims_server.clearinghouse.poll_all_inboxes"
    assert jobs["send-ready-claims"].task == "claims_server.submission.send_ready"
    assert jobs["statement-cycle"].task == "claims_server.statements.run_cycle"
    assert jobs["workqueue-sweep"].task == "claims_server.workqueue.sweep"
    # The daily send and the statement cycle are off until their setting names a time.
    assert not jobs["send-ready-claims"].enabled and not jobs["statement-cycle"].enabled
    assert all(j.enabled for n, j in jobs.items() if n not in ("send-ready-claims", "statement-cycle"))
    assert all(j.description and len(j.description.splitlines()) == 1 for j in jobs.values())


def test_settings_turn_jobs_on_and_override_intervals():
    s = Settings(
        SEND_SCHEDULE="17:30",
        STATEMENT_CYCLE="08:05",
        SCHEDULER_TIMEZONE="America/Chicago",
        AUDIT_CHECKPOINT_SECONDS=45,
        SCHEDULER_INTERVALS="poll-clearinghouse-inboxes=2, resume-unsent-batches=5",
    )
    jobs = registry(s)
    send = jobs["send-ready-claims"]
    assert send.enabled and send.schedule.daily_at == time(17, 30)
    assert send.schedule.timezone == "America/Chicago"
    assert send.schedule.describe() == "daily at 17:30 America/Chicago"
    assert jobs["statement-cycle"].enabled
    assert jobs["audit-checkpoint"].schedule.every_seconds == 45
    assert jobs["poll-clearinghouse-inboxes"].schedule.every_seconds == 2
    assert jobs["resume-unsent-batches"].schedule.every_seconds == 5
    assert tick_seconds(jobs) == 1.0  # half the shortest interval, within 0.5-5 s
    assert tick_seconds(registry(Settings())) == 5.0


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("SCHEDULER", "sometimes", "use one of in-process, beat, off"),
        ("SCHEDULER", "beat", "beat needs CELERY_BROKER_URL"),
        ("SEND_SCHEDULE", "5pm", "time of day such as 17:30"),
        ("STATEMENT_CYCLE", "24:00", "time of day such as 17:30"),
        ("SCHEDULER_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("SCHEDULER_INTERVALS", "poll-inboxes=60", "no job named 'poll-inboxes'"),
        ("SCHEDULER_INTERVALS", "audit-checkpoint=0", "whole number of at least 1"),
        ("SCHEDULER_INTERVALS", "audit-checkpoint=1.5", "whole number of at least 1"),
        ("SCHEDULER_INTERVALS", "audit-checkpoint", "write job=seconds"),
    ],
)
def test_a_bad_scheduler_setting_is_one_line_naming_it(setting, value, says):
    with pytest.raises(ConfigError) as caught:
        load_settings({setting: value}, environ={})
    assert caught.value.setting == setting
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_mode_follows_the_broker_unless_set():
    assert load_settings(environ={}).scheduler_mode == "in-process"
    assert (
        load_settings({"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}, environ={}).scheduler_mode == "beat"
    )
    assert load_settings({"SCHEDULER": "off"}, environ={}).scheduler_mode == "off"


def test_periodic_and_daily_next_runs():
    now = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    every = Schedule(every_seconds=300)
    assert every.first_run(now) == now
    assert every.next_after(now) == now + timedelta(minutes=5)
    assert every.grace() == timedelta(minutes=10)
    assert Schedule(every_seconds=60).grace() == timedelta(minutes=5)
    # Chicago is UTC-6 in early March (before the switch to daylight time on the 8th).
    daily = Schedule(daily_at=time(17, 30), timezone="America/Chicago")
    assert daily.first_run(now) == datetime(2026, 3, 7, 23, 30, tzinfo=UTC)
    assert daily.next_after(datetime(2026, 3, 7, 23, 30, tzinfo=UTC)) == datetime(
        2026, 3, 8, 22, 30, tzinfo=UTC
    )
    assert daily.grace() == timedelta(hours=1)
    with pytest.raises(ValueError):
        Schedule()


def test_beat_entries_run_each_job_through_the_scheduler_task():
    jobs = registry(Settings(SEND_SCHEDULE="17:30"))
    entries = beat_schedule(jobs, queue="billing")
    assert set(entries) == {name for name, job in jobs.items() if job.enabled}
    assert "statement-cycle" not in entries  # off
    poll = entries["poll-clearinghouse-inboxes"]
    assert poll == {
        "task": RUN_JOB_TASK,
        "schedule": 300.0,
        "args": ("poll-clearinghouse-inboxes",),
        "options": {"queue": "billing"},
    }
    send = entries["send-ready-claims"]["schedule"]
    assert isinstance(send, crontab) and send.hour == {17} and send.minute == {30}


def test_daily_jobs_take_the_day_in_the_scheduler_time_zone():
    jobs = registry(Settings(SCHEDULER_TIMEZONE="America/Chicago"))
    late_evening_in_chicago = datetime(2026, 3, 8, 3, 0, tzinfo=UTC)  # 21:00 on the 7th there
    assert jobs["payment-plans-check"].arguments(late_evening_in_chicago) == ("2026-03-07",)
    assert jobs["poll-clearinghouse-inboxes"].arguments(late_evening_in_chicago) == ()
