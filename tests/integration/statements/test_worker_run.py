"""A statement run through a real ``claims-server worker`` on Redis, started and watched from the CLI and the API."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select, text

from claims_server.models import AuditEvent, Statement, StatementState
from claims_server.models.statements import StatementRun
from tests.integration.delivery.support import AS_OF, bill_two_patients

pytestmark = [pytest.mark.redis, pytest.mark.worker]


def _cli(worker: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": worker["database_url"],
        "CELERY_BROKER_URL": worker["broker_url"],
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "claims_server", "statements", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_run_goes_through_the_worker_with_progress_on_the_cli_and_the_api(
    app, session, api_client, celery_worker_process
):
    from claims_server.app import state

    a, b = bill_two_patients(session, state(app).session_factory)
    session.commit()
    # The CLI queues the chunks on the worker's private queue and follows the run to its end.
    out = _cli(
        celery_worker_process,
        "run",
        "--as-of",
        AS_OF.isoformat(),
        "--progress",
        "--queue",
        celery_worker_process["queue"],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    run_public_id = lines[0].split()[1].rstrip(":")
    assert lines[-1].startswith(f"run {run_public_id} done: 2/2 patients, 2 issued"), lines

    auditor = api_client("auditor")
    deadline = time.monotonic() + 30
    while True:
        progress = auditor.get(f"/api/v1/statements/runs/{run_public_id}")
        assert progress.status_code == 200, progress.get_json()
        body = progress.get_json()
        if body["state"] == "done" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (body["state"], body["done"], body["total"], body["issued"], body["failed"]) == (
        "done",
        2,
        2,
        2,
        0,
    )
    assert "Doe" not in json.dumps(body)  # counts only, no patient data

    status = _cli(celery_worker_process, "status", run_public_id, "--json")
    assert status.returncode == 0, status.stderr[-2000:]
    assert {k: json.loads(status.stdout)[k] for k in ("state", "done", "total", "issued")} == {
        "state": "done",
        "done": 2,
        "total": 2,
        "issued": 2,
    }

    session.expire_all()
    run = session.scalar(select(StatementRun).where(StatementRun.public_id == run_public_id))
    rows = session.scalars(select(Statement).where(Statement.run_id == run.id).order_by(Statement.id)).all()
    assert {r.patient_id for r in rows} == {a.patient_id, b.patient_id}
    assert run.started_at is not None and run.finished_at is not None
    for row in rows:
        assert row.state is StatementState.ISSUED
        pdf = bytes(row.pdf_content)
        assert pdf.startswith(b"%PDF")
        # The printed statement names the patient pages (the worker's PUBLIC_BASE_URL + /pay).
        assert "127.0.0.1:8000/pay" in "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
        raw = session.execute(
            text("SELECT pdf_content FROM statements WHERE id = :i"), {"i": row.id}
        ).scalar()
        assert bytes(raw) != pdf and b"%PDF" not in bytes(raw)  # encrypted at rest
        assert b"<!DOCTYPE html>" in bytes(row.html_content)
        (issued,) = session.scalars(
            select(AuditEvent).where(
                AuditEvent.event_type == "statement.issue", AuditEvent.entity_id == row.public_id
            )
        ).all()
        # Issued by the worker's task, not in the CLI process (which only queued the chunks).
        assert issued.details["actor"] == "task:statement-run"
    built = session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.event_type == "statement.build")
    )
    assert built == 2
