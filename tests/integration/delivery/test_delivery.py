"""Delivery: the mail-house print batch, email over a real SMTP server, and the link the email carries."""

from __future__ import annotations

import csv
import email
import hashlib
import io
import stat
from email import policy

import pytest
from pypdf import PdfReader
from sqlalchemy import select, text

from claims_server.app import state
from claims_server.errors import Unprocessable
from claims_server.models import (
    AuditEvent,
    DeliveryChannel,
    Patient,
    PatientAccessLink,
    StatementPrintBatch,
    StatementState,
)
from claims_server.security import clock
from claims_server.security.authn import token_hash
from claims_server.security.patient_links import verify_patient_link
from claims_server.statements import delivery
from claims_server.statements.delivery import (
    DeliveryError,
    FolderMailer,
    SmtpMailer,
    email_issued_statement,
    print_statements,
    write_print_batch,
)


def _settings(app, **overrides):
    from dataclasses import replace

    return replace(state(app).settings, **overrides)


def test_print_batch_merges_statements_one_sheet_each_with_a_manifest(app, session, issued, tmp_path):
    a, b = issued
    batch = print_statements(session, settings=state(app).settings, now=clock.now())
    session.commit()
    assert batch is not None and batch.statements == 2
    reader = PdfReader(io.BytesIO(batch.pdf))
    # Each one-page statement is followed by a blank back: B starts on the front of sheet 2.
    assert (len(reader.pages), batch.pages, batch.sheets) == (4, 4, 2)
    assert reader.pages[1].extract_text().strip() == "" and reader.pages[3].extract_text().strip() == ""
    first_text, second_text = reader.pages[0].extract_text(), reader.pages[2].extract_text()
    assert "$30.00" in first_text and "$45.00" in second_text
    assert hashlib.sha256(batch.pdf).hexdigest() == batch.pdf_sha256

    rows = list(csv.DictReader(io.StringIO(batch.manifest.decode())))
    patients = {p.id: p for p in session.scalars(select(Patient))}
    expected = sorted([a, b], key=lambda s: patients[s.patient_id].account_number)
    assert [r["statement_id"] for r in rows] == [s.public_id for s in expected]
    assert [(r["first_page"], r["last_page"], r["pages"], r["sheets"]) for r in rows] == [
        ("1", "1", "1", "1"),
        ("3", "3", "1", "1"),
    ]
    assert rows[0]["zip5"] == patients[expected[0].patient_id].zip_code[:5]
    # Stored encrypted, not on disk; written (owner-only) only where an operator says.
    assert not (delivery.outbox_dir(state(app).settings) / "print").exists()
    stored = session.scalar(
        select(StatementPrintBatch).where(StatementPrintBatch.public_id == batch.batch_id)
    )
    assert (stored.pdf_content, stored.manifest_content) == (batch.pdf, batch.manifest)
    with session.get_bind().connect() as conn:
        raw = conn.execute(text("SELECT pdf_content, manifest_content FROM statement_print_batches")).one()
    assert all(bytes(v).startswith(b"ENC1") and bytes(v) not in (batch.pdf, batch.manifest) for v in raw)
    for path in write_print_batch(batch, tmp_path / "mail-house"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (tmp_path / "mail-house" / batch.pdf_name).read_bytes() == batch.pdf

    for s in (a, b):
        session.refresh(s)
        assert (s.state, s.delivery_channel) == (StatementState.DELIVERED, DeliveryChannel.MAIL)
        assert s.delivered_at is not None
    delivered = session.scalars(select(AuditEvent).where(AuditEvent.event_type == "statement.deliver")).all()
    assert {(e.entity_id, e.details["channel"], e.details["batch"]) for e in delivered} == {
        (a.public_id, "mail", batch.batch_id),
        (b.public_id, "mail", batch.batch_id),
    }
    # Delivered statements are not printed again.
    assert print_statements(session, settings=state(app).settings, now=clock.now()) is None


def test_a_statement_that_is_not_issued_is_not_printed(app, session, issued):
    a, _ = issued
    a.state = StatementState.VOID
    session.commit()
    with pytest.raises(Unprocessable) as caught:
        print_statements(session, settings=state(app).settings, now=clock.now(), statement_ids=[a.public_id])
    assert caught.value.errors[0]["rule"] == "issued"


def test_email_over_smtp_carries_the_statement_and_a_working_one_time_link(app, session, issued, smtp_server):
    a, _ = issued
    patient = session.get(Patient, a.patient_id)
    settings = _settings(
        app, PUBLIC_BASE_URL="https://billing.example.org", STATEMENT_EMAIL_FROM="billing@example.org"
    )
    mailer = SmtpMailer(smtp_server.host, smtp_server.port, security="none")
    sent = email_issued_statement(session, a, settings=settings, now=clock.now(), mailer=mailer)
    session.commit()

    (received,) = smtp_server.messages
    assert received["rcpt_tos"] == [patient.email] and received["mail_from"] == "billing@example.org"
    message = email.message_from_bytes(received["data"], policy=policy.default)
    assert str(message["Message-ID"]) == sent.sent_to
    subject = str(message["Subject"])
    assert (
        subject
        == "Your statement from "
        + session.get(type(patient.practice), patient.practice_id).name
        + " is ready"
    )
    for phi in (patient.first_name, patient.last_name, patient.account_number, "30.00"):
        assert phi not in subject
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "$30.00" in html and "$30.00" in text
    link = next(word for word in text.split() if word.startswith("https://billing.example.org/pay/l/"))
    token = link.rsplit("/", 1)[1]
    assert f'href="{link}"' in html
    session.refresh(a)
    assert (a.state, a.delivery_channel) == (StatementState.DELIVERED, DeliveryChannel.EMAIL)
    assert a.pay_link_token_hash == token_hash(token)

    # The link opens a patient session after the birth-date check, once.
    session_token, used = verify_patient_link(
        session, token_digest=token_hash(token), birth_date=patient.birth_date, now=clock.now()
    )
    assert session_token.startswith("csp_") and used.patient_id == a.patient_id
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {session_token}"
    page = client.get(f"/api/v1/patient-link/statements/{a.public_id}/html")
    assert (
        page.status_code == 200 and page.mimetype == "text/html" and "$30.00" in page.get_data(as_text=True)
    )
    assert page.headers["Cache-Control"] == "no-store"
    event = session.scalars(select(AuditEvent).where(AuditEvent.event_type == "statement.deliver")).one()
    assert event.details["channel"] == "email" and patient.email not in str(event.details)


def test_a_refused_recipient_or_an_unreachable_server_delivers_nothing(app, session, issued, smtp_server):
    a, _ = issued
    patient = session.get(Patient, a.patient_id)
    smtp_server.refuse.add(patient.email)
    with pytest.raises(DeliveryError) as caught:
        email_issued_statement(
            session,
            a,
            settings=state(app).settings,
            now=clock.now(),
            mailer=SmtpMailer(smtp_server.host, smtp_server.port, security="none"),
        )
    assert patient.email not in caught.value.detail and caught.value.status == 502
    session.rollback()
    with pytest.raises(DeliveryError):
        email_issued_statement(
            session,
            a,
            settings=state(app).settings,
            now=clock.now(),
            mailer=SmtpMailer(
                "127.0.0.1", smtp_server.port + 1 if smtp_server.port < 65535 else 1, "none", timeout=2
            ),
        )
    session.rollback()
    session.refresh(a)
    assert a.state is StatementState.ISSUED and a.pay_link_token_hash is None
    # Each attempt's link was committed before the send and revoked when the send failed.
    links = session.scalars(select(PatientAccessLink)).all()
    assert len(links) == 2 and all(link.revoked_at is not None for link in links)
    revoked = session.scalars(select(AuditEvent).where(AuditEvent.event_type == "patient_link.revoke")).all()
    assert [e.details["reason"] for e in revoked] == ["statement_email_failed"] * 2
    assert smtp_server.messages == []


def test_no_email_on_file_is_refused_naming_the_field(app, session, issued, tmp_path):
    a, _ = issued
    session.get(Patient, a.patient_id).email = None
    session.commit()
    with pytest.raises(Unprocessable) as caught:
        email_issued_statement(
            session, a, settings=state(app).settings, now=clock.now(), mailer=FolderMailer(tmp_path / "mail")
        )
    assert caught.value.errors[0]["field"] == "email" and not (tmp_path / "mail").exists()


def test_without_smtp_the_email_is_written_to_the_outbox(app, session, issued, tmp_path):
    _, b = issued
    settings = _settings(app, STATEMENT_OUTBOX=str(tmp_path), SMTP_HOST="")
    sent = email_issued_statement(session, b, settings=settings, now=clock.now())
    session.commit()
    (path,) = (tmp_path / "email").iterdir()
    assert str(path) == sent.sent_to and stat.S_IMODE(path.stat().st_mode) == 0o600
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert "$45.00" in message.get_body(("html",)).get_content()
