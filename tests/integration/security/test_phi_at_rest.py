"""Issue 15, findings 1 and 2: PHI copies outside the PHI columns are encrypted, then purged.

1. An ``Idempotency-Key`` answer (the created patient, coverage or claim) was stored as
   clear JSON and never deleted: now encrypted under the data key, replayed (audited),
   rotated with the other keys, and deleted by the purge once expired.
2. Print batches were clear PDFs under ``INSTANCE_PATH/statements/print`` and the 270s
   stayed in the outbox for ever: batches are stored encrypted (download route, CLI
   ``--out``), and the purge removes our outbound files and ``.eml`` files after
   ``OUTBOUND_FILE_RETENTION_HOURS``.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import date, timedelta
from pathlib import Path

from click.testing import CliRunner
from pypdf import PdfReader
from sqlalchemy import func, select

from claims_server.app import state
from claims_server.clearinghouse.services import route_transport
from claims_server.cli import main
from claims_server.config import Settings
from claims_server.db import unit_of_work
from claims_server.eligibility import services as eligibility
from claims_server.models import (
    AuditEvent,
    Encounter,
    IdempotencyRecord,
    Patient,
    Provider,
    StatementPrintBatch,
    utcnow,
)
from claims_server.retention import purge
from claims_server.scheduler.jobs import registry
from claims_server.security.keys import master_key_provider
from claims_server.security.principal import acting_as, system_principal
from claims_server.security.rotation import rotate_data_key
from claims_server.security.search import account_number_is
from claims_server.statements.delivery import FolderMailer, email_issued_statement, outbox_dir
from claims_server.tasks.celery_app import celery_app
from tests.integration.claims.support import claim_json, seed
from tests.integration.delivery.support import issue_statements

CANARY = "QZATREST" + uuid.uuid4().hex[:6].upper()


def _raw(session, sql: str) -> list[tuple]:
    return [tuple(row) for row in session.connection().exec_driver_sql(sql)]


def _patient_json(ids: dict, n: int) -> dict:
    return {
        "practice": ids["practice"],
        "account_number": f"AR{uuid.uuid4().hex[:8]}",
        "last_name": f"{CANARY}L{n}",
        "first_name": f"{CANARY}F{n}",
        "birth_date": "1961-04-03",
        "sex": "F",
        "address_line1": f"{CANARY}A{n}",
        "city": "Springfield",
        "state": "IL",
        "zip_code": "62704",
    }


def _as_system(app, fn):
    with app.app_context(), acting_as(system_principal("test:phi-at-rest")):
        return fn()


# -- 1. idempotency answers ------------------------------------------------------------------------


def test_idempotent_answers_are_encrypted_replayed_rotated_and_purged(app, session, api_client):
    ids = seed(session)
    biller = api_client("biller")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    patient = biller.post("/api/v1/patients", json=_patient_json(ids, 1), headers=key)
    assert patient.status_code == 201, patient.json
    pid = patient.json["id"]
    coverage = biller.post(
        f"/api/v1/patients/{pid}/coverages",
        json={"payer": ids["payer"], "member_id": f"{CANARY}M1", "effective_start": "2020-01-01"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert coverage.status_code == 201, coverage.json
    claim = biller.post(
        "/api/v1/claims",
        json=claim_json(ids, patient=pid, coverage=coverage.json["id"]),
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert claim.status_code == 201, claim.json

    # The stored answers are ciphertext: no name, member id or diagnosis in clear.
    session.rollback()
    stored = _raw(session, "SELECT public_id, response_body FROM idempotency_records")
    assert len(stored) == 3
    for public_id, body in stored:
        assert body.startswith("enc1:") and CANARY not in body and len(public_id) == 32
    diagnosis = claim.json["diagnoses"][0]
    diagnosis = diagnosis["code"] if isinstance(diagnosis, dict) else diagnosis
    assert not any(diagnosis.replace(".", "") in body for _, body in stored)

    # A retry is answered with the first answer, byte for byte, and the replay is audited.
    again = biller.post("/api/v1/patients", json=_patient_json(ids, 1) | {}, headers=key)
    assert again.status_code == 422  # a different account number: a different request
    first_body = _patient_json(ids, 1)
    replay_key = {"Idempotency-Key": uuid.uuid4().hex}
    created = biller.post("/api/v1/patients", json=first_body, headers=replay_key)
    replayed = biller.post("/api/v1/patients", json=first_body, headers=replay_key)
    assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_data() == created.get_data()
    session.rollback()
    assert session.scalar(select(func.count()).where(AuditEvent.event_type == "idempotency.replay")) == 1
    assert (
        session.scalar(
            select(func.count())
            .select_from(Patient)
            .where(account_number_is(session, first_body["account_number"]))
        )
        == 1
    )

    # Key rotation re-encrypts the stored answers, and a replay still reads them.
    before = dict(_raw(session, "SELECT public_id, response_body FROM idempotency_records"))
    session.rollback()
    report = rotate_data_key(state(app).engine, master_key_provider(state(app).settings), batch_size=2)
    assert report.rows_updated["idempotency_records"] == 4
    after = dict(_raw(session, "SELECT public_id, response_body FROM idempotency_records"))
    assert all(after[p] != before[p] and after[p].startswith(f"enc1:{report.key_id}:") for p in before)
    session.rollback()
    assert (
        biller.post("/api/v1/patients", json=first_body, headers=replay_key).get_data() == created.get_data()
    )

    # The purge deletes what expired, and only that.
    session.rollback()
    later = utcnow() + timedelta(hours=state(app).settings.IDEMPOTENCY_RETENTION_HOURS, minutes=1)
    assert _as_system(app, lambda: _purge(app, session, utcnow())).idempotency_records == 0
    assert _as_system(app, lambda: _purge(app, session, later)).idempotency_records == 4
    assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


def _purge(app, session, now, settings=None):
    report = purge(session, settings or state(app).settings, now)
    session.commit()
    return report


def test_a_failed_request_stores_no_answer(app, session, api_client):
    ids = seed(session)
    biller = api_client("biller")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    bad = _patient_json(ids, 2) | {"birth_date": (date.today() + timedelta(days=9)).isoformat()}
    assert biller.post("/api/v1/patients", json=bad, headers=key).status_code == 422
    session.rollback()
    assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    good = biller.post("/api/v1/patients", json=_patient_json(ids, 2), headers=key)
    assert good.status_code == 201 and "Idempotent-Replayed" not in good.headers


def test_the_purge_is_scheduled_and_has_a_command(database_url, tmp_path):
    assert registry(Settings())["maintenance-purge"].task == "claims_server.maintenance.purge"
    celery_app.loader.import_default_modules()
    assert "claims_server.maintenance.purge" in celery_app.tasks
    env = {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "i")}
    done = CliRunner().invoke(main, ["maintenance", "purge", "--json"], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {"files": 0, "idempotency_records": 0, "print_batches": 0}


def test_the_purge_task_runs_with_the_app_settings(app, session, api_client):
    """The beat entry's task (the worker runs the same body; the canary test runs it in one)."""
    from claims_server.tasks.maintenance import purge_task

    assert celery_app.conf.claims_settings.database_url == state(app).settings.database_url
    assert purge_task.apply().get() == {"files": 0, "idempotency_records": 0, "print_batches": 0}


# -- 2. print batches, outbound files ----------------------------------------------------------------


def test_print_batches_are_stored_encrypted_served_and_purged(app, session, api_client, tmp_path):
    issue_statements(session, state(app).session_factory)
    biller = api_client("biller")
    batch = biller.post("/api/v1/statements/print-batches", json={})
    assert batch.status_code == 201, batch.json
    assert not (outbox_dir(state(app).settings) / "print").exists(), "no clear PDF on our disk"
    assert list(Path(state(app).settings.INSTANCE_PATH).rglob("*.pdf")) == []
    session.rollback()
    names = [p.last_name for p in session.scalars(select(Patient))]
    raw = _raw(session, "SELECT pdf_content, manifest_content FROM statement_print_batches")
    assert len(raw) == 1 and all(bytes(v).startswith(b"ENC1") for v in raw[0])

    pdf = biller.get(f"/api/v1/statements/print-batches/{batch.json['id']}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text_of_pdf = " ".join(
        page.extract_text() for page in PdfReader(__import__("io").BytesIO(pdf.data)).pages
    )
    assert any(name.upper() in text_of_pdf.upper() for name in names)  # the PHI is really in there

    # Retention: the files are cleared, the row and its counts stay, the download says so.
    session.rollback()
    settings = state(app).settings
    later = utcnow() + timedelta(days=settings.PRINT_BATCH_RETENTION_DAYS, minutes=1)
    assert _as_system(app, lambda: _purge(app, session, later)).print_batches == 1
    row = session.scalars(select(StatementPrintBatch)).one()
    assert (row.pdf_content, row.manifest_content, row.statements) == (None, None, 2)
    gone = biller.get(f"/api/v1/statements/print-batches/{batch.json['id']}/manifest")
    assert gone.status_code == 410 and gone.mimetype == "application/problem+json"
    assert _as_system(app, lambda: _purge(app, session, later)).print_batches == 0
    purged = session.scalars(select(AuditEvent).where(AuditEvent.event_type == "statement.print_batch.purge"))
    assert [e.entity_id for e in purged] == [batch.json["id"]]


def test_print_batch_cli_writes_where_the_operator_says(database_url, session, app, tmp_path):
    issue_statements(session, state(app).session_factory)
    env = {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "i")}
    target = tmp_path / "for-the-mail-house"
    done = CliRunner().invoke(main, ["statements", "print-batch", "--json", "--out", str(target)], env=env)
    assert done.exit_code == 0, done.output
    out = json.loads(done.output)
    assert Path(out["pdf"]).parent == target and len(PdfReader(out["pdf"]).pages) == 4
    assert oct(os.stat(out["pdf"]).st_mode & 0o777) == "0o600"
    assert not (tmp_path / "i" / "statements").exists()


def _upload_270(app, session, base: Path) -> list[str]:
    factory = state(app).session_factory
    today = date.today()
    with acting_as(system_principal("test:phi-at-rest")):
        with unit_of_work(factory) as s:
            rendering = s.scalar(select(Provider).where(Provider.is_rendering).order_by(Provider.id))
            patient = s.scalars(select(Patient).order_by(Patient.id)).first()
            s.add(
                Encounter(
                    patient_id=patient.id,
                    rendering_provider_id=rendering.id,
                    date_of_service=today + timedelta(days=1),
                    place_of_service="11",
                )
            )
        with unit_of_work(factory) as s:
            check_ids = eligibility.queue_tomorrow(s, today)
        return eligibility.upload_batch(
            factory, check_ids, transport_factory=lambda r: route_transport(r, base)
        )


def test_outbound_files_are_removed_after_the_retention_period(app, session, tmp_path):
    seed(session)
    settings = state(app).settings
    base = Path(settings.INSTANCE_PATH)
    uploaded = _upload_270(app, session, base)
    outbox = base / "edi" / "outbox"
    assert uploaded and all((outbox / name).is_file() for name in uploaded)
    # The clearinghouse's own file and a file of a sub-folder it moved ours to.
    (outbox / "theirs.txt").write_text("not ours")
    (outbox / "processed").mkdir()
    os.replace(outbox / uploaded[0], outbox / "processed" / uploaded[0])
    # An email written without SMTP (the embedded default).
    from claims_server.models import Statement

    issue_statements(session, state(app).session_factory)
    statement = session.scalars(select(Statement).order_by(Statement.id)).first()
    _as_system(
        app,
        lambda: email_issued_statement(
            session,
            statement,
            settings=settings,
            now=utcnow(),
            mailer=FolderMailer(outbox_dir(settings) / "email"),
        ),
    )
    session.commit()
    emails = list((outbox_dir(settings) / "email").glob("*.eml"))
    assert len(emails) == 1

    assert _as_system(app, lambda: _purge(app, session, utcnow())).files == []  # nothing old yet
    later = utcnow() + timedelta(hours=settings.OUTBOUND_FILE_RETENTION_HOURS, minutes=1)
    removed = _as_system(app, lambda: _purge(app, session, later)).files
    assert sorted(Path(p).name for p in removed) == sorted([*uploaded, emails[0].name])
    assert [p.name for p in outbox.rglob("*") if p.is_file()] == ["theirs.txt"]
    assert session.scalar(select(func.count()).where(AuditEvent.event_type == "retention.purge")) == 1
