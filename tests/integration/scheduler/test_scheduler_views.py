"""Supervisors see the jobs (API, workspace page, CLI) and run one now; /healthz names overdue jobs,
also those no runner ever ran; a job's error is shown without data it may quote."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from sqlalchemy import select, update

from claims_server.app import state
from claims_server.cli import main
from claims_server.models import AuditEvent
from claims_server.models.operations import ScheduledJob
from claims_server.scheduler.jobs import JOB_NAMES, registry
from claims_server.scheduler.runner import run_job, sync_jobs
from claims_server.scheduler.status import overdue_job_names
from claims_server.tasks.celery_app import celery_app
from tests.integration.ui.support import csrf_token_of

#: What a database driver may quote back in its message (a stored value: PHI).
CANARY = "CANARY-Doe-1961-07-04"


@celery_app.task(name="tests.scheduler.leaky_failure")
def leaky_failure_task() -> None:
    raise ValueError(f'invalid input syntax for type date: "{CANARY}"')


def _overdue(app, name: str = "audit-checkpoint", *, leased: bool = False) -> None:
    """Every job has its row; ``name`` should have run an hour ago (a runner holds it if ``leased``)."""
    factory = state(app).session_factory
    sync_jobs(factory, registry(state(app).settings))
    now = datetime.now(UTC)
    values = {"next_run_at": now - timedelta(hours=1)}
    if leased:
        values |= {"lease_owner": "serve:host:1:1", "lease_expires_at": now + timedelta(minutes=5)}
    with factory() as session:
        session.execute(update(ScheduledJob).where(ScheduledJob.name == name).values(**values))
        session.commit()


def test_supervisors_list_and_read_jobs(api_client, app):
    supervisor = api_client("billing_supervisor")
    listed = supervisor.get("/api/v1/scheduler/jobs")
    assert listed.status_code == 200
    body = listed.get_json()
    assert body["mode"] == "in-process" and body["timezone"] == "UTC"
    assert [j["name"] for j in body["items"]] == list(JOB_NAMES)
    poll = body["items"][0]
    assert poll["schedule"] == "every 5 min" and poll["every_seconds"] == 300
    assert poll["last_outcome"] is None and poll["run_count"] == 0 and not poll["overdue"]
    send = next(j for j in body["items"] if j["name"] == "send-ready-claims")
    assert send["schedule"] == "off" and not send["enabled"] and send["next_run_at"] is None
    one = supervisor.get("/api/v1/scheduler/jobs/payment-plans-check").get_json()
    assert one["daily_at"] == "05:00" and one["schedule"] == "daily at 05:00 UTC"
    missing = supervisor.get("/api/v1/scheduler/jobs/no-such-job")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    assert api_client("auditor").get("/api/v1/scheduler/jobs").status_code == 200
    assert api_client("biller").get("/api/v1/scheduler/jobs").status_code == 403


def test_run_now_runs_through_the_runner_and_is_audited(api_client, app, session):
    supervisor = api_client("billing_supervisor")
    ran = supervisor.post("/api/v1/scheduler/jobs/maintenance-purge/run")
    assert ran.status_code == 200, ran.get_json()
    body = ran.get_json()
    assert body["status"] == "done"
    job = body["job"]
    assert job["last_outcome"] == "ok" and job["run_count"] == 1
    assert job["last_detail"] == {"files": 0, "idempotency_records": 0, "print_batches": 0}
    event = session.scalar(select(AuditEvent).where(AuditEvent.event_type == "scheduler.run"))
    assert event.entity_id == "maintenance-purge" and event.details["outcome"] == "ok"
    assert event.actor_user_id == supervisor.principal_info["user_id"]
    assert api_client("auditor").post("/api/v1/scheduler/jobs/maintenance-purge/run").status_code == 403
    assert supervisor.post("/api/v1/scheduler/jobs/nope/run").status_code == 404
    # While another runner holds the job, run-now is refused and nothing runs.
    _overdue(app, "maintenance-purge", leased=True)
    busy = supervisor.post("/api/v1/scheduler/jobs/maintenance-purge/run")
    assert busy.status_code == 409 and busy.mimetype == "application/problem+json"
    assert supervisor.get("/api/v1/scheduler/jobs/maintenance-purge").get_json()["run_count"] == 1


def test_healthz_is_degraded_but_200_when_a_job_is_overdue(client, app):
    assert client.get("/healthz").get_json()["overdue_jobs"] == []
    _overdue(app, "eligibility-poll-answers", leased=True)  # late but running: not overdue
    assert client.get("/healthz").get_json()["status"] == "ok"
    _overdue(app, "audit-checkpoint")
    answer = client.get("/healthz")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "degraded" and body["database"] == "ok"
    assert body["overdue_jobs"] == ["audit-checkpoint"] and body["scheduler"] == "in-process"


def test_jobs_no_runner_ever_ran_turn_overdue_after_their_grace(database_url, tmp_path):
    """SCHEDULER=off and no cron (or a broker and no beat): nothing runs the jobs. The server gave
    every job its row when it started, so once a job's grace has passed since then, /healthz,
    the API and the page call it overdue instead of "never run" forever."""
    from claims_server import create_app
    from tests.conftest import _empty_tables

    server = create_app(
        {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "i"), "SCHEDULER": "off"}
    )
    factory = state(server).session_factory
    try:
        jobs = registry(state(server).settings)
        started = datetime.now(UTC)
        client = server.test_client()
        fresh = client.get("/healthz").get_json()
        assert fresh["scheduler"] == "off" and fresh["status"] == "ok" and fresh["overdue_jobs"] == []
        enabled = [name for name, job in jobs.items() if job.enabled]
        with factory() as session:
            rows = {row.name: row for row in session.scalars(select(ScheduledJob))}
            assert set(rows) == set(JOB_NAMES) and all(rows[n].next_run_at for n in enabled)
            assert all(row.run_count == 0 and row.last_started_at is None for row in rows.values())
            # The clock moves on: within a job's grace it is only late, past it overdue.
            assert overdue_job_names(session, jobs, started + timedelta(minutes=1)) == []
            assert overdue_job_names(session, jobs, started + timedelta(days=2)) == enabled
        # As /healthz sees it when the server started two days ago and nothing ran since.
        with factory() as session:
            for row in session.scalars(select(ScheduledJob).where(ScheduledJob.next_run_at.is_not(None))):
                row.next_run_at -= timedelta(days=2)
            session.commit()
        late = client.get("/healthz")
        assert late.status_code == 200
        assert late.get_json()["status"] == "degraded" and late.get_json()["overdue_jobs"] == enabled
    finally:
        _empty_tables(state(server).engine)
        state(server).engine.dispose()


def test_a_jobs_error_keeps_no_data_it_may_quote(api_client, app):
    """A driver's message can quote the value it refused (PHI): only the error's class is stored, so
    the API and the workspace page cannot show it."""
    factory = state(app).session_factory
    jobs = registry(state(app).settings)
    leaky = {"maintenance-purge": replace(jobs["maintenance-purge"], task="tests.scheduler.leaky_failure")}
    outcome = run_job(factory, "maintenance-purge", owner="test:leak", jobs=leaky, only_if_due=False)
    assert outcome is not None and outcome.outcome == "failed" and outcome.error == "ValueError"
    with factory() as session:
        assert session.get(ScheduledJob, "maintenance-purge").last_error == "ValueError"
    supervisor = api_client("billing_supervisor")
    listed = supervisor.get("/api/v1/scheduler/jobs")
    one = supervisor.get("/api/v1/scheduler/jobs/maintenance-purge")
    page = supervisor.get("/ui/scheduler")
    assert one.get_json()["last_error"] == "ValueError" and one.get_json()["last_outcome"] == "failed"
    for answer in (listed, one, page):
        assert answer.status_code == 200 and CANARY not in answer.get_data(as_text=True)


def test_the_workspace_page_lists_jobs_and_marks_the_overdue(api_client, app):
    _overdue(app, "audit-checkpoint")
    supervisor = api_client("billing_supervisor")
    page = supervisor.get("/ui/scheduler")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for name in JOB_NAMES:
        assert f'id="job-{name}"' in html
    assert 'id="overdue-summary"' in html and "1 job overdue:</strong> audit-checkpoint" in html
    row = html[
        html.index('id="job-audit-checkpoint"') : html.index("</tr>", html.index('id="job-audit-checkpoint"'))
    ]
    assert 'class="overdue"' in row and "badge-overdue" in row
    assert html.index('id="job-audit-checkpoint"') < html.index('id="job-poll-clearinghouse-inboxes"')
    assert 'href="/ui/scheduler"' in html  # in the main navigation
    assert 'Run now<span class="visually-hidden"> maintenance-purge</span>' in html
    # Auditors look but have no button; billers neither see the entry nor open the page.
    auditor_html = api_client("auditor").get("/ui/scheduler").get_data(as_text=True)
    assert 'id="job-audit-checkpoint"' in auditor_html and "Run now" not in auditor_html
    biller = api_client("biller")
    assert 'href="/ui/scheduler"' not in biller.get("/ui/claims").get_data(as_text=True)
    assert biller.get("/ui/scheduler").status_code == 403


def test_run_now_from_the_workspace(api_client, app):
    supervisor = api_client("billing_supervisor")
    token = csrf_token_of(supervisor, "/ui/scheduler")
    done = supervisor.post("/ui/scheduler/maintenance-purge/run", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"].endswith("/ui/scheduler")
    html = supervisor.get("/ui/scheduler").get_data(as_text=True)
    assert "maintenance-purge ran: ok." in html
    row = html[
        html.index('id="job-maintenance-purge"') : html.index(
            "</tr>", html.index('id="job-maintenance-purge"')
        )
    ]
    assert "badge-ok" in row and "1 run, 0 failed" in row
    assert supervisor.post("/ui/scheduler/maintenance-purge/run", data={}).status_code == 400  # no CSRF token
    assert supervisor.post("/ui/scheduler/nope/run", data={"csrf_token": token}).status_code == 404


def test_the_cli_lists_runs_and_ticks(app, database_url, tmp_path):
    env = {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "i"), "CELERY_BROKER_URL": ""}
    runner = CliRunner()
    ran = runner.invoke(main, ["scheduler", "run", "maintenance-purge", "--json"], env=env)
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output)["outcome"] == "ok"
    listed = runner.invoke(main, ["scheduler", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    jobs = {j["name"]: j for j in json.loads(listed.output)["jobs"]}
    assert jobs["maintenance-purge"]["run_count"] == 1 and jobs["maintenance-purge"]["last_outcome"] == "ok"
    text = runner.invoke(main, ["scheduler", "list"], env=env).output
    assert "maintenance-purge" in text and "every 1 h" in text
    unknown = runner.invoke(main, ["scheduler", "run", "nope"], env=env)
    assert unknown.exit_code == 2 and "no job named 'nope'" in unknown.output
    bad = runner.invoke(main, ["scheduler", "tick"], env=env | {"SCHEDULER_INTERVALS": "nope=3"})
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1
    assert bad.output.startswith("configuration error: SCHEDULER_INTERVALS: 'nope=3': no job named 'nope'")


def test_beat_refuses_without_a_broker(tmp_path):
    env = {"INSTANCE_PATH": str(tmp_path), "CELERY_BROKER_URL": ""}
    refused = CliRunner().invoke(main, ["beat"], env=env)
    assert refused.exit_code == 2
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: CELERY_BROKER_URL:")
    off = CliRunner().invoke(
        main, ["beat"], env=env | {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/14", "SCHEDULER": "off"}
    )
    assert off.exit_code == 2 and off.output.startswith("configuration error: SCHEDULER:")
