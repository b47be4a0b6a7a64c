"""Collection holds: listed and released through the API (supervisor, audited) and the CLI."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from claims_server.cli import main
from claims_server.models import AuditEvent
from claims_server.models.statements import StatementHold
from claims_server.security.principal import acting_as, system_principal
from claims_server.statements.services import run_statements
from statements import CycleRules
from tests.integration.delivery.support import AS_OF, bill_two_patients

RULES = CycleRules(min_days_between=28, max_statements=3, reminders=1)


@pytest.fixture
def holds(app, session):
    """Both patients unpaid through first statement, reminder and final notice: two open holds."""
    from claims_server.app import state

    bill_two_patients(session, state(app).session_factory)
    with acting_as(system_principal("test:statements")):
        for days in (0, 30, 60, 90):
            run_statements(session, AS_OF + timedelta(days=days), rules=RULES)
            session.commit()
    rows = session.scalars(select(StatementHold).order_by(StatementHold.id)).all()
    assert len(rows) == 2
    return rows


def test_open_holds_are_listed_and_a_supervisor_releases_one(api_client, session, holds):
    auditor = api_client("auditor")
    listed = auditor.get("/api/v1/statements/holds", headers={"X-Request-ID": "holds-read-audit-1"})
    assert listed.status_code == 200
    reads = session.scalars(
        select(AuditEvent).where(
            AuditEvent.request_id == "holds-read-audit-1", AuditEvent.entity_type == "statement_hold"
        )
    ).all()
    assert {e.entity_id for e in reads} == {h.public_id for h in holds}  # the PHI read is audited
    assert all(e.patient_id is not None for e in reads)
    items = listed.get_json()["items"]
    assert [i["id"] for i in items] == [h.public_id for h in holds]
    assert (
        items[0]["reason"] == "collections" and items[0]["balance"] == "30.00" and not items[0]["released_at"]
    )

    assert (
        api_client("biller").post(f"/api/v1/statements/holds/{holds[0].public_id}/release").status_code == 403
    )
    supervisor = api_client("billing_supervisor")
    released = supervisor.post(f"/api/v1/statements/holds/{holds[0].public_id}/release")
    assert released.status_code == 200 and released.get_json()["released_at"]
    again = supervisor.post(f"/api/v1/statements/holds/{holds[0].public_id}/release")
    assert again.status_code == 200 and again.get_json()["released_at"] == released.get_json()["released_at"]
    missing = supervisor.post(f"/api/v1/statements/holds/{'0' * 32}/release")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"

    session.expire_all()
    (event,) = session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == "statement.hold_release")
    ).all()
    assert event.entity_id == holds[0].public_id
    assert event.actor_user_id == supervisor.principal_info["user_id"]
    assert [i["id"] for i in auditor.get("/api/v1/statements/holds").get_json()["items"]] == [
        holds[1].public_id
    ]
    everything = auditor.get("/api/v1/statements/holds?state=all").get_json()["items"]
    assert len(everything) == 2
    assert auditor.get("/api/v1/statements/holds?state=bogus").status_code == 422

    # Released: the next run bills the patient again (still unpaid, so straight back to a hold).
    with acting_as(system_principal("test:statements")):
        run = run_statements(session, AS_OF + timedelta(days=120), rules=RULES)
        session.commit()
    assert (run.held, run.skip_reasons) == (1, {"on_hold": 1})


def test_the_cli_lists_and_releases(database_url, holds, session, tmp_path):
    env = {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "i")}
    runner = CliRunner()
    listed = runner.invoke(main, ["statements", "holds", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [i["id"] for i in json.loads(listed.output)["items"]] == [h.public_id for h in holds]
    released = runner.invoke(main, ["statements", "release-hold", holds[1].public_id], env=env)
    assert released.exit_code == 0 and f"hold {holds[1].public_id} released" in released.output
    text = runner.invoke(main, ["statements", "holds"], env=env)
    assert holds[0].public_id in text.output and holds[1].public_id not in text.output
    missing = runner.invoke(main, ["statements", "release-hold", "0" * 32], env=env)
    assert missing.exit_code != 0 and "no statement hold" in missing.output
    session.expire_all()
    assert session.get(StatementHold, holds[1].id).released_at is not None
