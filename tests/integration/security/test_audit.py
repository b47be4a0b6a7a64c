"""The audit trail: chain verification catches every edit, deletion, swap, forgery and truncation;
the database refuses UPDATE and DELETE on audit and ledger rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from claims_server.app import state
from claims_server.models import (
    AccountCode,
    AuditEvent,
    JournalEntry,
    JournalEventType,
    Posting,
    Role,
    ensure_standard_accounts,
)
from claims_server.security.audit import AuditAction, AuditOutcome, audit_event
from claims_server.security.authn import create_api_token, create_user
from claims_server.security.checkpoints import verify_audit_chain, write_checkpoint
from claims_server.security.clock import system_clock
from claims_server.security.immutability import ledger_maintenance
from claims_server.security.principal import Principal, PrincipalKind, acting_as

#: Columns an attacker could edit, with a different but well-typed value each.
EDITS = {
    "occurred_at": "'2020-01-01 00:00:00.000000'",
    "actor_user_id": "NULL",
    "actor_token_id": "NULL",
    "actor_role": "'admin'",
    "action": "'D'",
    "event_type": "'nothing.happened'",
    "entity_type": "'patient'",
    "entity_id": "'ffffffffffffffffffffffffffffffff'",
    "outcome": "12",
    "source_address": "'10.9.9.9'",
    "request_id": "'forged-request-id'",
    "details": "'{\"forged\": true}'",
    "prev_hash": "'" + "0" * 64 + "'",
    "hash": "'" + "1" * 64 + "'",
    "key_id": "'deadbeef'",
}


@pytest.fixture
def chain(app, session):
    """Ten committed events by a user through a token (every column non-null); returns their ids."""
    user = create_user(session, username="chain-user", display_name="Chain", role=Role.BILLER, password=None)
    _, token = create_api_token(session, name="chain-token", scopes=["auth:read"])
    actor = Principal(
        PrincipalKind.USER, role="biller", user_id=user.id, token_id=token.id, name="chain-user"
    )
    session.commit()
    with acting_as(actor), app.test_request_context(headers={"X-Request-ID": "chain-request-1"}):
        from flask import g

        g.request_id = "chain-request-1"
        for n in range(10):
            audit_event(
                session,
                action=AuditAction.READ,
                event_type="claim.read",
                entity_type="claim",
                entity_id=f"{n:032x}",
                outcome=AuditOutcome.SUCCESS,
                details={"n": n},
            )
    session.commit()
    return [row.id for row in session.query(AuditEvent).order_by(AuditEvent.id)]


def _verify(app, directory: Path | None = None):
    ring = app.extensions["claims_security"].cipher.ring
    with state(app).engine.connect() as conn:
        return verify_audit_chain(conn, ring, directory)


def _tamper(app, sql: str, params: dict | None = None) -> None:
    with state(app).engine.begin() as conn, ledger_maintenance(conn):
        conn.execute(text(sql), params or {})


def test_untouched_chain_verifies(app, chain):
    report = _verify(app)
    assert report.ok, report.problems
    assert report.events == 12  # user.create, token.create, then the ten


def test_actor_request_and_patient_fields_are_recorded(app, api_client, session):
    client = api_client("auditor")
    response = client.get("/api/v1/auth/audit-events", headers={"X-Request-ID": "req-audit-0001"})
    assert response.status_code == 200
    row = session.query(AuditEvent).filter_by(event_type="audit.read").one()
    assert row.actor_user_id == client.principal_info["user_id"]
    assert row.actor_role == "auditor"
    assert row.request_id == "req-audit-0001"
    assert row.source_address == "127.0.0.1"


@pytest.mark.parametrize("column", sorted(EDITS))
def test_every_single_field_edit_is_detected(app, chain, column):
    target = chain[4]
    _tamper(app, f"UPDATE audit_events SET {column} = {EDITS[column]} WHERE id = :id", {"id": target})
    report = _verify(app)
    assert not report.ok
    assert any(f"event {target}" in p or f"event {chain[5]}" in p for p in report.problems)


@pytest.mark.parametrize("position", [0, 4, 9])
def test_deleting_any_row_is_detected(app, chain, position):
    directory = Path(state(app).settings.audit_checkpoint_dir)
    with state(app).engine.connect() as conn:
        write_checkpoint(conn, app.extensions["claims_security"].cipher.ring, directory, system_clock())
    _tamper(app, "DELETE FROM audit_events WHERE id = :id", {"id": chain[position]})
    report = _verify(app, directory)
    assert not report.ok, f"deleting event #{position} went unnoticed"


def test_swapping_two_rows_is_detected(app, chain):
    a, b = chain[2], chain[6]
    table = AuditEvent.__table__
    cols = [c.name for c in table.columns if c.name != "id"]
    with state(app).engine.begin() as conn, ledger_maintenance(conn):
        rows = {r.id: dict(r._mapping) for r in conn.execute(table.select().where(table.c.id.in_([a, b])))}
        # hash is unique: park one row's hash while the contents change places.
        conn.execute(table.update().where(table.c.id == a).values(hash="x" * 64))
        conn.execute(table.update().where(table.c.id == b).values({c: rows[a][c] for c in cols}))
        conn.execute(table.update().where(table.c.id == a).values({c: rows[b][c] for c in cols}))
    report = _verify(app)
    assert not report.ok
    assert any(f"event {a}" in p for p in report.problems)


def test_a_forged_row_is_detected(app, chain, session):
    last = session.query(AuditEvent).order_by(AuditEvent.id.desc()).first()
    _tamper(
        app,
        "INSERT INTO audit_events (occurred_at, action, event_type, outcome, details, prev_hash, hash, key_id) "
        "VALUES ('2026-01-01 00:00:00.000000', 'R', 'patient.read', 0, '{}', :prev, :hash, :key)",
        {"prev": last.hash, "hash": "a" * 64, "key": last.key_id},
    )
    report = _verify(app)
    assert report.problems and "edited or forged" in report.problems[-1]


def test_truncation_before_the_last_checkpoint_is_detected_and_after_it_is_not_claimed(app, chain):
    directory = Path(state(app).settings.audit_checkpoint_dir)
    with state(app).engine.connect() as conn:
        cp = write_checkpoint(conn, app.extensions["claims_security"].cipher.ring, directory, system_clock())
    assert cp is not None and cp.last_event_id == chain[-1] and cp.event_count == 12
    assert _verify(app, directory).ok
    _tamper(app, "DELETE FROM audit_events WHERE id >= :id", {"id": chain[7]})
    report = _verify(app, directory)
    assert any("truncated" in p for p in report.problems)


def test_a_tampered_checkpoint_file_is_rejected(app, chain):
    directory = Path(state(app).settings.audit_checkpoint_dir)
    with state(app).engine.connect() as conn:
        write_checkpoint(conn, app.extensions["claims_security"].cipher.ring, directory, system_clock())
    path = next(directory.glob("checkpoint-*.json"))
    path.write_text(path.read_text().replace('"event_count": 12', '"event_count": 3'))
    report = _verify(app, directory)
    assert any("bad signature" in p for p in report.problems)


def test_checkpoints_are_written_after_n_events(app, session):
    checkpointer = app.extensions["claims_security"].checkpointer
    checkpointer.every_events = 5
    for n in range(12):
        audit_event(session, action=AuditAction.READ, event_type="claim.read", details={"n": n})
        if n % 3 == 2:
            session.commit()
    session.commit()
    files = sorted(Path(state(app).settings.audit_checkpoint_dir).glob("checkpoint-*.json"))
    assert len(files) == 2  # after 6 and after 12 committed events
    assert _verify(app, Path(state(app).settings.audit_checkpoint_dir)).ok


def test_checkpoint_is_written_after_the_interval_with_a_frozen_clock(app, session, frozen_clock):
    checkpointer = app.extensions["claims_security"].checkpointer
    checkpointer.last_written = frozen_clock()
    audit_event(session, action=AuditAction.READ, event_type="claim.read")
    session.commit()
    assert checkpointer.maybe_write() is None
    frozen_clock.advance(seconds=61)
    assert checkpointer.maybe_write() is not None


def test_cli_audit_verify_exits_nonzero_on_tampering(app, chain, monkeypatch):
    from claims_server.cli import main

    settings = state(app).settings
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("INSTANCE_PATH", settings.INSTANCE_PATH)
    ok = CliRunner().invoke(main, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "12 events" in ok.output
    _tamper(app, "UPDATE audit_events SET event_type = 'x' WHERE id = :id", {"id": chain[3]})
    bad = CliRunner().invoke(main, ["audit", "verify"])
    assert bad.exit_code == 1
    assert f"event {chain[3]}" in bad.output


# --- the database refuses changes ------------------------------------------------------------


def _ledger_rows(session) -> tuple[int, int]:
    accounts = ensure_standard_accounts(session)
    entry = JournalEntry(
        event_type=JournalEventType.PATIENT_PAYMENT,
        idempotency_key="test:immutability",
        effective_date=date(2026, 3, 2),
        postings=[
            Posting(account_id=accounts[AccountCode.CASH_CLEARING].id, amount_cents=2500),
            Posting(account_id=accounts[AccountCode.AR_PATIENT].id, amount_cents=-2500),
        ],
    )
    session.add(entry)
    session.commit()
    return entry.id, entry.postings[0].id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET event_type = 'x'",
        "DELETE FROM audit_events",
        "UPDATE journal_entries SET memo = 'x'",
        "DELETE FROM journal_entries",
        "UPDATE postings SET amount_cents = 1",
        "DELETE FROM postings",
    ],
)
def test_database_refuses_update_and_delete_of_audit_and_ledger_rows(app, session, chain, statement):
    _ledger_rows(session)
    with pytest.raises(DBAPIError, match="append-only"), state(app).engine.begin() as conn:
        conn.execute(text(statement))
    assert session.query(AuditEvent).count() >= 10


def test_inserting_stays_allowed_and_maintenance_bypass_is_transaction_scoped(app, session, chain):
    with state(app).engine.begin() as conn, ledger_maintenance(conn):
        conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": chain[0]})
    with pytest.raises(DBAPIError), state(app).engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events"))
