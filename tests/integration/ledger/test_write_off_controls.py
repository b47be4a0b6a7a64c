"""Write-off controls: the biller limit is per claim and cumulative, concurrent write-offs of a
claim are serialized, and the note is a journal note (encrypted, append-only, audited on read)."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from claims_server.app import state
from claims_server.ledger.write_offs import (
    WriteOffBucket,
    WriteOffReason,
    WriteOffRefused,
    open_balances,
    write_off,
    written_off_without_approval,
)
from claims_server.models import AuditEvent, Claim, JournalNote, WorkItem
from claims_server.security.immutability import FROZEN_COLUMNS, sqlite_trigger_sql
from claims_server.security.keys import master_key_provider
from claims_server.security.rotation import rotate_data_key
from tests.integration.payments.support import owed_claim
from tests.integration.remittance.support import seed_world
from tests.services import fresh_postgres_database

INS, PT = WriteOffBucket.INSURANCE, WriteOffBucket.PATIENT
NOTE = "Patient Jane Synthetic called: hardship approved by the office manager"
LINES = [("99213", 15000, 4000), ("36415", 2500, 1500)]  # the payer owes 120.00, the patient 55.00


@pytest.fixture
def claim(session):
    return owed_claim(session, seed_world(session), "WOCTL1", LINES, since=date(2026, 1, 10))


def _post(client, claim, amount: str, key: str, bucket: str = "patient"):
    return client.post(
        f"/api/v1/claims/{claim.public_id}/write-offs",
        json={"amount": amount, "bucket": bucket, "reason": "small_balance"},
        headers={"Idempotency-Key": key},
    )


@pytest.fixture
def ten_dollar_limit(app):
    settings = app.extensions["claims_server"].settings
    before = settings.WRITE_OFF_BILLER_LIMIT_CENTS
    object.__setattr__(settings, "WRITE_OFF_BILLER_LIMIT_CENTS", 1000)
    yield
    object.__setattr__(settings, "WRITE_OFF_BILLER_LIMIT_CENTS", before)


def test_the_biller_limit_counts_every_unapproved_write_off_of_the_claim(
    session, api_client, claim, ten_dollar_limit
):
    biller, supervisor = api_client("biller"), api_client("billing_supervisor")
    assert _post(biller, claim, "6.00", "b1").status_code == 201
    assert _post(biller, claim, "4.00", "b2").status_code == 201  # 10.00 in all: at the limit
    # Above it nothing posts: the API answers 202 with an approval request for a supervisor.
    asked = _post(biller, claim, "0.01", "b3")
    assert asked.status_code == 202 and asked.get_json()["state"] == "pending"
    # The service alone refuses it, saying why.
    session.rollback()
    with pytest.raises(WriteOffRefused) as refused:
        write_off(
            session,
            claim,
            amount_cents=1,
            bucket=PT,
            reason=WriteOffReason.SMALL_BALANCE,
            idempotency_key="direct",
            approval_limit_cents=1000,
        )
    problem = refused.value
    assert problem.errors[0]["field"] == "amount" and problem.errors[0]["rule"] == "approval_limit"
    assert "$10.00 already written off" in problem.errors[0]["message"]
    assert "supervisor must approve" in problem.errors[0]["message"]
    assert problem.extra["limit"] == "10.00" and problem.extra["written_off_without_approval"] == "10.00"
    session.rollback()
    # Another biller is no way around it: the limit is the claim's, not the user's.
    assert _post(api_client("biller"), claim, "1.00", "b4").status_code == 202
    # A supervisor's write-off is approved by definition and does not use the billers' room.
    assert _post(supervisor, claim, "20.00", "s1").status_code == 201
    session.rollback()
    assert written_off_without_approval(session, claim.id) == 1000
    # A reversed write-off no longer counts: the biller may post again, up to the room freed.
    first = biller.get(f"/api/v1/claims/{claim.public_id}/write-offs").get_json()["items"][0]
    path = f"/api/v1/claims/{claim.public_id}/write-offs/{first['id']}/reversal"
    assert supervisor.post(path, json={"reason": "wrong_amount"}).status_code == 201
    assert _post(biller, claim, "7.00", "b5").status_code == 202
    assert _post(biller, claim, "6.00", "b6").status_code == 201
    session.rollback()
    assert written_off_without_approval(session, claim.id) == 1000
    assert open_balances(session, claim)[PT] == 5500 - 1000 - 2000


def test_the_workspace_sends_a_write_off_above_the_limit_for_approval(
    session, api_client, claim, ten_dollar_limit
):
    from tests.integration.ui.support import csrf_token_of

    biller = api_client("biller")
    assert _post(biller, claim, "10.00", "ui-b1").status_code == 201
    form = {
        "csrf_token": csrf_token_of(biller, f"/ui/claims/{claim.public_id}"),
        "wo_key": "form-1",
        "wo_amount": "5.00",
        "wo_bucket": "patient",
        "wo_reason": "small_balance",
    }
    answer = biller.post(f"/ui/claims/{claim.public_id}/write-off", data=form, follow_redirects=True)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "it was sent to a supervisor for approval" in html and 'id="write-off-pending"' in html
    session.rollback()
    assert written_off_without_approval(session, claim.id) == 1000  # nothing more posted


def test_the_note_is_a_journal_note_encrypted_and_read_back_audited(app, session, api_client, claim):
    biller = api_client("biller")
    answer = biller.post(
        f"/api/v1/claims/{claim.public_id}/write-offs",
        json={"amount": "55.00", "bucket": "patient", "reason": "hardship", "note": NOTE},
        headers={"Idempotency-Key": "note-1"},
    )
    assert answer.status_code == 201 and answer.get_json()["note"] == NOTE
    done = answer.get_json()["id"]
    session.rollback()
    (note,) = session.scalars(select(JournalNote)).all()
    assert note.note == NOTE and note.author_user_id == biller.principal_info["user_id"]
    raw = session.connection().exec_driver_sql("SELECT note FROM journal_notes").scalar_one()
    assert str(raw).startswith("enc1:") and "Jane" not in str(raw)
    # No work item is opened (and closed) to hold it any more.
    assert session.scalar(select(func.count()).select_from(WorkItem)) == 0

    request_id = "write-off-note-read"
    listed = biller.get(
        f"/api/v1/claims/{claim.public_id}/write-offs", headers={"X-Request-ID": request_id}
    ).get_json()
    assert [w["note"] for w in listed["items"]] == [NOTE]
    session.rollback()
    reads = session.scalars(
        select(AuditEvent).where(AuditEvent.request_id == request_id, AuditEvent.action == "R")
    ).all()
    assert any(
        e.event_type == "journal_entry.read" and e.entity_id == done and e.patient_id == claim.patient_id
        for e in reads
    ), [(e.event_type, e.entity_id) for e in reads]
    page = biller.get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    assert f"patient $55.00: Financial hardship / charity care — {NOTE}" in page


def test_journal_notes_are_append_only_but_key_rotation_still_reaches_them(app, session, claim):
    write_off(
        session,
        claim,
        amount_cents=500,
        bucket=PT,
        reason=WriteOffReason.OTHER,
        idempotency_key="k",
        note=NOTE,
    )
    session.commit()
    engine = state(app).engine
    for statement in (
        "DELETE FROM journal_notes",
        "UPDATE journal_notes SET journal_entry_id = journal_entry_id",
        "UPDATE journal_notes SET public_id = 'forged'",
        "UPDATE journal_notes SET author_user_id = NULL",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            installed = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'journal_notes'")
            ).scalars()
            assert sorted(installed) == sorted(sqlite_trigger_sql("journal_notes"))
    assert "note" not in FROZEN_COLUMNS["journal_notes"]
    before = session.connection().exec_driver_sql("SELECT note FROM journal_notes").scalar_one()
    session.rollback()
    report = rotate_data_key(engine, master_key_provider(state(app).settings), batch_size=50)
    assert report.rows_updated["journal_notes"] == 1
    after = session.connection().exec_driver_sql("SELECT note FROM journal_notes").scalar_one()
    assert after != before
    session.expire_all()
    assert session.scalars(select(JournalNote)).one().note == NOTE


# -- two write-offs of one claim at once, on PostgreSQL ------------------------------------------


@pytest.fixture
def postgres_factory(tmp_path: Path):
    """A session factory on a fresh, migrated PostgreSQL database (whatever TEST_DATABASE says)."""
    from claims_server import create_app
    from claims_server.migrate import upgrade

    with fresh_postgres_database() as url:
        upgrade(url)
        app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path / "pg"), "TESTING": True})
        yield state(app).session_factory
        state(app).engine.dispose()


def _waiting_on_a_lock(factory) -> bool:
    with factory() as s:
        return bool(
            s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


@pytest.mark.postgres
def test_two_concurrent_write_offs_cannot_both_take_the_open_balance(postgres_factory):
    """READ COMMITTED: without the claim's row lock both would read 120.00 open and post 100.00."""
    factory = postgres_factory
    with factory() as s:
        claim_id = owed_claim(s, seed_world(s), "WORACE", LINES, since=date(2026, 1, 10)).id
    first_posted, release_first = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def post(name: str, key: str) -> None:
        try:
            with factory() as s:
                if name == "second":
                    first_posted.wait(30)
                done = write_off(
                    s,
                    s.get(Claim, claim_id),
                    amount_cents=10000,
                    bucket=INS,
                    reason=WriteOffReason.TIMELY_FILING,
                    idempotency_key=key,
                )
                if name == "first":
                    first_posted.set()
                    release_first.wait(30)
                s.commit()
                results[name] = done.amount_cents
        except Exception as exc:  # the assertions below name it
            results[name] = exc
            first_posted.set()

    threads = [threading.Thread(target=post, args=(n, f"race-{n}")) for n in ("first", "second")]
    for thread in threads:
        thread.start()
    assert first_posted.wait(30)
    deadline = time.monotonic() + 20
    while not _waiting_on_a_lock(factory) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the second write-off waits for the first's transaction
    release_first.set()
    for thread in threads:
        thread.join(60)
    assert results["first"] == 10000, results
    refused = results["second"]
    assert isinstance(refused, WriteOffRefused), results
    assert refused.errors[0]["rule"] == "at_most_open_balance"
    with factory() as s:
        assert open_balances(s, s.get(Claim, claim_id))[INS] == 2000
