"""Issue 15, PHI at rest: a user's reason for a claim change, and the patient's account number.

1. A reason typed for a claim transition (API), a replacement or a void (API and workspace
   forms) went into ``audit_events.details`` in clear, where nothing is ever encrypted or
   rewritten; a biller can type a patient's name there. Now it is an encrypted, append-only
   ``claim_notes`` row that the audit event names by public id; the claim screen's history
   and ``GET /api/v1/claims/<id>/notes`` still show it.
2. ``patients.account_number`` (the practice's own number for the patient, a HIPAA
   identifier) was stored in clear. Now it is encrypted, matched through a blind index
   (unique per practice, the list filter), and ``keys rotate --seal-clear`` seals the clear
   values a database upgraded to 0009 still holds and fills their index.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError

from claims_server.app import state
from claims_server.claims.notes import add_note
from claims_server.models import AuditEvent, Claim, ClaimNote, ClaimState, Patient
from claims_server.security.immutability import FROZEN_COLUMNS, sqlite_trigger_sql
from claims_server.security.keys import master_key_provider
from claims_server.security.rotation import rotate_data_key
from tests.integration.claims.support import seed
from tests.integration.corrections.test_corrections import DENIED
from tests.integration.ui.support import csrf_token_of
from tests.integration.workqueue.support import adjudicate, make_claim


def _canary(label: str) -> str:
    # Words a biller might type, naming the patient; unique per run.
    return f"Patient Canary{label}{uuid.uuid4().hex[:12]} called about it"


def _clear_copies(app, needle: str) -> list[str]:
    """Tables holding ``needle`` anywhere in a row, read raw (no ORM, no decryption)."""
    engine = state(app).engine
    found = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.exec_driver_sql(f'SELECT * FROM "{table}"'):
                if needle in repr(tuple(row)):
                    found.append(table)
                    break
    return found


def _adjudicated(session, ids, number: str) -> Claim:
    claim = make_claim(session, ids)
    adjudicate(
        session, claim, status="4", lines=DENIED, payer_claim_number=number, payment_date=date(2026, 2, 2)
    )
    session.commit()
    return claim


def _draft(session, ids) -> Claim:
    claim = make_claim(session, ids)
    claim.state = ClaimState.DRAFT
    session.commit()
    return claim


@pytest.fixture
def ids(session):
    return seed(session)


def test_typed_reasons_are_encrypted_claim_notes_not_audit_details(app, session, ids, api_client):
    biller, supervisor = api_client("biller"), api_client("billing_supervisor")
    control = f"ICN-CANARY-{uuid.uuid4().hex[:8]}"  # stored in clear on purpose (not PHI)
    typed: dict[str, str] = {}  # canary -> the claim whose history shows it

    # API: a replacement and a void of adjudicated claims (the reason goes with the new claim).
    reason = _canary("Rep")
    made = biller.post(
        f"/api/v1/claims/{_adjudicated(session, ids, control).public_id}/replacement", json={"reason": reason}
    )
    assert made.status_code == 201, made.get_json()
    typed[reason] = made.get_json()["id"]
    reason = _canary("Void")
    made = supervisor.post(
        f"/api/v1/claims/{_adjudicated(session, ids, 'ICN-V1').public_id}/void", json={"reason": reason}
    )
    assert made.status_code == 201, made.get_json()
    typed[reason] = made.get_json()["id"]
    # API: transitions (void in place, return to draft, ready after a clean scrub).
    draft = _draft(session, ids)
    reason = _canary("InPlace")
    assert (
        supervisor.post(f"/api/v1/claims/{draft.public_id}/void", json={"reason": reason}).status_code == 200
    )
    typed[reason] = draft.public_id
    ready = _draft(session, ids)
    for name in ("ready", "return-to-draft"):
        reason = _canary(name.replace("-", ""))
        answer = biller.post(f"/api/v1/claims/{ready.public_id}/{name}", json={"reason": reason})
        assert answer.status_code == 200, answer.get_json()
        typed[reason] = ready.public_id

    # The workspace's forms: replacement, void of an adjudicated claim, void in place.
    token, sup_token = csrf_token_of(biller), csrf_token_of(supervisor)
    reason = _canary("UiRep")
    original = _adjudicated(session, ids, "ICN-U1")
    page = biller.post(
        f"/ui/claims/{original.public_id}/replacement", data={"csrf_token": token, "reason": reason}
    )
    assert page.status_code == 303, page.get_data(as_text=True)
    session.rollback()
    typed[reason] = session.scalar(select(Claim.public_id).where(Claim.original_claim_id == original.id))
    reason = _canary("UiVoid")
    original = _adjudicated(session, ids, "ICN-U2")
    page = supervisor.post(
        f"/ui/claims/{original.public_id}/void", data={"csrf_token": sup_token, "void_reason": reason}
    )
    assert page.status_code == 303, page.get_data(as_text=True)
    session.rollback()
    typed[reason] = session.scalar(select(Claim.public_id).where(Claim.original_claim_id == original.id))
    reason, draft = _canary("UiInPlace"), _draft(session, ids)
    page = supervisor.post(
        f"/ui/claims/{draft.public_id}/void", data={"csrf_token": sup_token, "void_reason": reason}
    )
    assert page.status_code == 303, page.get_data(as_text=True)
    typed[reason] = draft.public_id
    assert len(typed) == 8 and all(typed.values())

    # Nowhere in clear: not in audit_events, not in any table. The control is found.
    assert _clear_copies(app, control), "the raw search finds a clear value"
    for reason in typed:
        assert _clear_copies(app, reason) == [], reason
    session.rollback()
    # Each change's audit event names its note; the note holds the words.
    notes = {n.public_id: n for n in session.scalars(select(ClaimNote))}
    claims = {c.id: c.public_id for c in session.scalars(select(Claim))}
    by_text = {n.note: n for n in notes.values()}
    assert set(typed) <= set(by_text)
    for reason, claim_id in typed.items():
        note = by_text[reason]
        assert claims[note.claim_id] == claim_id and note.kind.value == "reason"
        events = session.scalars(select(AuditEvent).where(AuditEvent.entity_id == claim_id)).all()
        named = [e for e in events if (e.details or {}).get("note") == note.public_id]
        assert len(named) == 1 and "reason" not in named[0].details, [e.details for e in events]
    # Code-chosen reasons stay in the audit event.
    assert session.scalar(
        select(AuditEvent.id).where(
            AuditEvent.entity_id == ready.public_id, AuditEvent.event_type == "claim.ready"
        )
    )

    # Shown where they were: the claim screen's history, and the API (audited as a claim read).
    auditor = api_client("auditor")
    for reason, claim_id in typed.items():
        assert reason in auditor.get(f"/ui/claims/{claim_id}").get_data(as_text=True)
        listed = auditor.get(f"/api/v1/claims/{claim_id}/notes")
        assert listed.status_code == 200
        assert reason in [item["note"] for item in listed.get_json()["items"]]
    listed = biller.get(f"/api/v1/claims/{ready.public_id}/notes").get_json()["items"]
    assert [item["author"] for item in listed] == [biller.principal_info["public_id"]] * 2
    session.rollback()
    assert session.scalar(
        select(AuditEvent.id).where(
            AuditEvent.event_type == "claim.read",
            AuditEvent.entity_id == ready.public_id,
            AuditEvent.actor_user_id == biller.principal_info["user_id"],
        )
    )
    # No integration token reads notes (as no token reads a claim over this API).
    assert api_client("integration").get(f"/api/v1/claims/{ready.public_id}/notes").status_code == 403


def test_claim_notes_are_append_only_and_key_rotation_reaches_them(app, session, ids):
    claim = make_claim(session, ids)
    words = _canary("Rot")
    add_note(session, claim, words)
    session.commit()
    engine = state(app).engine
    refused = [
        "DELETE FROM claim_notes",
        "UPDATE claim_notes SET claim_id = claim_id",
        "UPDATE claim_notes SET public_id = 'forged'",
        "UPDATE claim_notes SET author_user_id = NULL",
        "UPDATE claim_notes SET kind = 'reason'",
    ]
    if engine.dialect.name == "postgresql":
        refused.append("TRUNCATE claim_notes")
    for statement in refused:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            installed = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'claim_notes'")
            ).scalars()
            assert sorted(installed) == sorted(sqlite_trigger_sql("claim_notes"))
    assert "note" not in FROZEN_COLUMNS["claim_notes"]
    before = session.connection().exec_driver_sql("SELECT note FROM claim_notes").scalar_one()
    assert before.startswith("enc1:") and "Canary" not in before
    session.rollback()
    report = rotate_data_key(engine, master_key_provider(state(app).settings), batch_size=50)
    assert report.rows_updated["claim_notes"] == 1
    after = session.connection().exec_driver_sql("SELECT note FROM claim_notes").scalar_one()
    assert after != before and after.startswith("enc1:")
    session.expire_all()
    assert session.scalars(select(ClaimNote)).one().note == words


# -- the patient's account number --------------------------------------------------------------


def _patient_body(ids, account: str) -> dict[str, object]:
    return {
        "practice": ids["practice"],
        "account_number": account,
        "last_name": "Notename",
        "first_name": "Test",
        "birth_date": "1980-05-06",
        "sex": "F",
    }


def test_the_account_number_is_encrypted_and_still_unique_and_searchable(app, session, ids, api_client):
    biller = api_client("biller")
    account = f"ACC{uuid.uuid4().hex[:10].upper()}"
    created = biller.post("/api/v1/patients", json=_patient_body(ids, account))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["account_number"] == account
    patient_id = created.get_json()["id"]
    assert _clear_copies(app, account) == []
    session.rollback()
    raw, index = session.execute(
        text("SELECT account_number, account_number_index FROM patients WHERE public_id = :p"),
        {"p": patient_id},
    ).one()
    assert raw.startswith("enc1:") and len(index) == 64

    # One number per practice, as before; the filter finds it; saving it unchanged is no clash.
    clash = biller.post("/api/v1/patients", json=_patient_body(ids, account))
    assert clash.status_code == 409 and clash.get_json()["errors"][0]["field"] == "account_number"
    listed = biller.post("/api/v1/patients/search", json={"account_number": account}).get_json()["items"]
    assert [p["id"] for p in listed] == [patient_id]
    lower = biller.post("/api/v1/patients/search", json={"account_number": account.lower()})
    assert lower.get_json()["items"] == []
    again = biller.patch(f"/api/v1/patients/{patient_id}", json={"account_number": f" {account}"})
    assert again.status_code == 200, again.get_json()
    taken = session.scalar(select(Patient.public_id).where(Patient.public_id != patient_id).limit(1))
    moved = biller.patch(f"/api/v1/patients/{taken}", json={"account_number": account})
    assert moved.status_code == 409


def test_seal_clear_encrypts_account_numbers_written_before_0009_and_indexes_them(
    app, session, ids, api_client
):
    # A database upgraded to 0009 still holds the old clear value, with no index yet.
    patient = session.scalar(select(Patient).order_by(Patient.id).limit(1))
    old = f"OLD{uuid.uuid4().hex[:8].upper()}"
    session.rollback()
    with state(app).engine.begin() as conn:
        conn.execute(
            text("UPDATE patients SET account_number = :a, account_number_index = NULL WHERE id = :i"),
            {"a": old, "i": patient.id},
        )
    assert _clear_copies(app, old) == ["patients"]
    rotate_data_key(state(app).engine, master_key_provider(state(app).settings), seal_clear=True)
    assert _clear_copies(app, old) == []
    found = api_client("biller").post("/api/v1/patients/search", json={"account_number": old})
    listed = found.get_json()["items"]
    assert [(p["id"], p["account_number"]) for p in listed] == [(patient.public_id, old)]


def test_db_upgrade_through_0009_seals_account_numbers_so_old_patients_stay_readable(tmp_path):
    """0009 cannot encrypt (a revision has no key): ``claims-server db upgrade`` seals the clear
    values it leaves, with their blind index, so an upgraded patient is readable, unique and found."""
    import sqlite3

    from claims_server import create_app, migrate
    from tests.integration.test_cli import run_cli

    path = tmp_path / "upgrade.sqlite3"
    url = f"sqlite:///{path}"
    migrate.upgrade(url, "0008_auth_hardening")
    now = "2026-11-01 09:00:00"
    with sqlite3.connect(path) as conn:  # a practice and a patient as 0008 held them (clear, unindexed)
        conn.execute(
            "INSERT INTO practices (id, name, npi, tax_id, address_line1, city, state, zip_code, submitter_id,"
            " active, public_id, updated_at, created_at) VALUES (1, 'Upgrade Clinic', '1234567893',"
            " '123456789', '1 Main St', 'Springfield', 'IL', '62701', 'SUB1', 1, ?, ?, ?)",
            (uuid.uuid4().hex, now, now),
        )
        conn.execute(
            "INSERT INTO patients (id, practice_id, account_number, last_name, first_name, birth_date, sex,"
            " active, public_id, updated_at, created_at) VALUES (1, 1, 'OLD-0001', 'Oldrow', 'Ann',"
            " '1970-01-02', 'F', 1, ?, ?, ?)",
            (uuid.uuid4().hex, now, now),
        )
    env = {"DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path / "instance")}
    result = run_cli("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert "sealed 5 values" in result.stdout and migrate.head() in result.stdout
    with sqlite3.connect(path) as conn:
        raw, index = conn.execute("SELECT account_number, account_number_index FROM patients").fetchone()
    assert raw.startswith("enc1:") and index  # encrypted and indexed
    app = create_app({**env, "TESTING": True})
    try:
        with app.app_context(), state(app).session_factory() as session:
            from claims_server.patients.services import search_patients

            found = search_patients(session, {"account_number": "OLD-0001"})
            assert [(p.id, p.account_number, p.last_name) for p in found] == [(1, "OLD-0001", "Oldrow")]
            session.rollback()
    finally:
        state(app).engine.dispose()
