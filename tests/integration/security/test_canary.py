"""Canary test: PHI never reaches the database, files, logs, Redis or temp folders in clear.

Synthetic patients carry unique canary strings (of this run) in every PHI text field, then
every write path and the real pipeline run on some of them:

- API writes through an authenticated staff client: patients, coverages and claims (ready),
  every other one with an ``Idempotency-Key`` (and one replayed), a work-item comment and an
  appeal letter carrying canaries;
- FHIR: a transaction Bundle (Patient, Coverage, Claim) on ``/fhir/R4``;
- the workspace (``/ui``, signed in, CSRF token): a write-off with a note and an appeal
  letter typed into the claim screen's forms (there is no CSV import to exercise);
- ``build_batches`` writes the 837s, ``send_batch`` uploads them over the folder adapter;
- the simulator answers (999, 277CA), ``poll_inbox`` processes the answers, then the
  simulator pays: the 835 is stored and posted to the ledger by ``post_remittance`` in a
  real Celery worker over Redis (in-process when encryption is off: the worker process
  runs with the suite's settings, encryption on), which also runs the retention purge task;
- statements: a run, a print batch (downloaded) and an email to a real SMTP server;
- eligibility: a batch 270 for canary patients uploaded to the route's outbox, answered by
  the simulated payer, the 271 polled;
- a failed request (a 422 quoting a canary, a failed sign-in with a canary user name) and
  exports (A/R aging by patient as CSV, the audit trail).

The outbox is the clearinghouse's territory and holds 837s and 270s in clear (they carry
PHI by definition): the test checks they are there, with canaries, then runs the retention
purge as of ``OUTBOUND_FILE_RETENTION_HOURS`` later and searches everything, outbox included.

The search covers the database (a ``pg_dump`` on PostgreSQL; the SQLite file with its
-wal/-shm; and every row of every table read raw), the logs (this process's and the
worker's), every key and value of the test Redis database (Celery messages decoded), the
instance, upload, temp, inbox and outbox folders: 0 canaries with encryption on. A control
canary stored on purpose in a field that is not PHI (the practice's name) must be found by
the same search in the database dump, so the search is live; with ``FIELD_ENCRYPTION=off``
the same search finds the PHI canaries too.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from claims_server import create_app
from claims_server.app import state
from claims_server.clearinghouse import services as clearinghouse
from claims_server.demo_seed import ROUTE_NAME
from claims_server.models import (
    Claim,
    ClaimState,
    ClearinghouseRoute,
    Coverage,
    Patient,
    Remittance,
    RemittanceState,
    Role,
    WorkItem,
)
from claims_server.security.authn import create_user, open_session
from claims_server.security.principal import acting_as, system_principal
from claims_server.simulator.service import run_once
from claims_server.submission.services import build_batches
from tests.conftest import _empty_tables
from tests.integration.claims.support import claim_json, seed
from tests.integration.delivery.conftest import smtp_server  # noqa: F401  (the SMTP server fixture)
from tests.services import REDIS_URL, in_ci, redis_available

PATIENTS = 400
API_PATIENTS = 24
TEXT_FIELDS = ("last_name", "first_name", "middle_name", "address_line1", "address_line2", "city")


class Canaries:
    """Unique strings of this run (a rerun or the other parameter never matches old residue)."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:6].upper()
        self.all: set[str] = set()

    def __call__(self, n: int, field: str) -> str:
        value = f"QZ{self.run}{field[:3].upper()}{n:05d}"
        self.all.add(value)
        return value


def _scan(blobs: list[bytes], canary: Canaries) -> set[str]:
    """The canaries found anywhere in ``blobs`` (one regex pass over all of them, any case)."""
    pattern = re.compile(rb"QZ" + canary.run.encode() + rb"[A-Z_]{3}[0-9]{5}", re.IGNORECASE)
    found = {m.upper().decode() for m in pattern.findall(b"\0".join(blobs))}
    return {c for c in canary.all if c.upper() in found}


def _files(root: Path, *, skip: tuple[Path, ...] = (), since: float | None = None) -> list[bytes]:
    out = []
    if not root.exists():
        return out
    for path in root.rglob("*"):
        try:
            if not path.is_file() or any(path.is_relative_to(s) for s in skip):
                continue
            stat = path.stat()
            if (since is not None and stat.st_mtime < since) or stat.st_size > 50_000_000:
                continue
            out.append(path.read_bytes())
        except OSError:
            continue  # another process's file vanished while we walked
    return out


def _database_rows(engine: Any) -> list[bytes]:
    """Every value of every table, read raw (bytes as stored, text as stored)."""
    out: list[bytes] = []
    with engine.connect() as conn:
        for table in conn.dialect.get_table_names(conn):
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        out.append(bytes(value))
                    elif value is not None:
                        out.append(str(value).encode())
    return out


def _redis_values() -> list[bytes]:
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    out: list[bytes] = []
    for key in r.scan_iter():
        out.append(key)
        kind = r.type(key)
        if kind == b"string":
            values = [r.get(key) or b""]
        elif kind == b"list":
            values = r.lrange(key, 0, -1)
        elif kind == b"hash":
            values = [b for pair in r.hgetall(key).items() for b in pair]
        elif kind == b"set":
            values = list(r.smembers(key))
        elif kind == b"zset":
            values = r.zrange(key, 0, -1)
        else:
            values = []
        for value in values:
            out.append(value)
            # Celery (kombu) messages carry the task arguments base64-encoded in "body".
            try:
                message = json.loads(value)
                if isinstance(message, dict) and isinstance(message.get("body"), str):
                    out.append(base64.b64decode(message["body"]))
            except (ValueError, TypeError):
                continue
    return out


def _seed_canary_patients(session: Any, canary: Canaries, practice_id: int, payer_id: int) -> None:
    patients = []
    for n in range(PATIENTS):
        patients.append(
            Patient(
                practice_id=practice_id,
                account_number=f"C{canary.run}{n:05d}",
                birth_date=date(1950 + n % 50, 1 + n % 12, 1 + n % 28),
                sex="U",
                email=f"{canary(n, 'email')}@example.com".lower(),
                **{f: canary(n, f) for f in TEXT_FIELDS},
            )
        )
    session.add_all(patients)
    session.flush()
    session.add_all(
        Coverage(
            patient_id=p.id,
            payer_id=payer_id,
            coverage_order=1,
            member_id=canary(n, "member_id"),
            subscriber_last_name=canary(n, "subscriber_last"),
            effective_start=date(2020, 1, 1),
        )
        for n, p in enumerate(patients[:200])
    )
    canary.all.update(f"{canary(n, 'email')}@example.com".lower() for n in range(PATIENTS))


def _staff_client(app: Any, role: Role = Role.BILLING_SUPERVISOR) -> Any:
    factory = state(app).session_factory
    with app.app_context(), acting_as(system_principal("test:canary")), factory() as session:
        user = create_user(
            session,
            username=f"canary-{uuid.uuid4().hex[:8]}",
            display_name="Canary staff",
            role=role,
            password=None,
        )
        user.totp_secret, user.totp_enabled = pyotp.random_base32(), True  # signed in with MFA
        token = open_session(session, user, state(app).settings, user.created_at)
        session.commit()
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def _api_workload(client: Any, ids: dict[str, Any], canary: Canaries) -> list[str]:
    """Patients, coverages and ready claims written through the API; returns the claim ids.

    Every other patient goes with an ``Idempotency-Key`` on each write (the stored answers
    carry the canaries), and the first of those patients is sent twice (a replay).
    """
    claims = []
    for n in range(PATIENTS, PATIENTS + API_PATIENTS):
        headers = (lambda: {"Idempotency-Key": uuid.uuid4().hex}) if n % 2 == 0 else dict
        document = {
            "practice": ids["practice"],
            "account_number": f"API{canary.run}{n}",
            "last_name": canary(n, "last_name"),
            "first_name": canary(n, "first_name"),
            "birth_date": "1961-04-0" + str(1 + n % 9),
            "sex": "F",
            "address_line1": canary(n, "address_line1"),
            "city": canary(n, "city"),
            "state": "IL",
            "zip_code": "62704",
        }
        if n % 3 == 0:
            document["email"] = f"{canary(n, 'email')}@example.com".lower()
            canary.all.add(document["email"])
        patient_headers = headers()
        patient = client.post("/api/v1/patients", json=document, headers=patient_headers)
        assert patient.status_code == 201, patient.get_json()
        if n == PATIENTS:
            replay = client.post("/api/v1/patients", json=document, headers=patient_headers)
            assert replay.headers.get("Idempotent-Replayed") == "true", replay.get_json()
        pid = patient.get_json()["id"]
        coverage = client.post(
            f"/api/v1/patients/{pid}/coverages",
            json={
                "payer": ids["payer"],
                "member_id": canary(n, "member_id"),
                "effective_start": "2020-01-01",
            },
            headers=headers(),
        )
        assert coverage.status_code == 201, coverage.get_json()
        doc = claim_json(ids, patient=pid, coverage=coverage.get_json()["id"], ready=True)
        claim = client.post("/api/v1/claims", json=doc, headers=headers())
        assert claim.status_code == 201, claim.get_json()
        assert claim.get_json()["state"] == "ready", claim.get_json()["findings"]
        claims.append(claim.get_json()["id"])
    return claims


def _fhir_workload(client: Any, ids: dict[str, Any], canary: Canaries) -> None:
    """A transaction Bundle (Patient, Coverage, Claim) with canaries on ``/fhir/R4``."""
    from tests.integration.fhir.conftest import transaction_bundle

    n = PATIENTS + API_PATIENTS
    bundle = transaction_bundle(ids | {"payer_id": "DEMOACME", "practice_npi": ids["practice_npi"]})
    patient, coverage = bundle["entry"][0]["resource"], bundle["entry"][1]["resource"]
    patient["name"] = [{"family": canary(n, "last_name"), "given": [canary(n, "first_name")]}]
    patient["address"][0]["line"] = [canary(n, "address_line1")]
    patient["address"][0]["city"] = canary(n, "city")
    coverage["subscriberId"] = canary(n, "member_id")
    answer = client.post(
        "/fhir/R4", data=json.dumps(bundle, default=str), headers={"Content-Type": "application/fhir+json"}
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _ui_workload(client: Any, claim_ids: list[str], denied: list[str], canary: Canaries) -> int:
    """The claim screen's forms (signed in, CSRF token): a write-off note, an appeal letter.

    Returns how many forms were posted (a claim with no open balance shows no write-off form).
    """
    posted = 0
    for claim_id in claim_ids:
        page = client.get(f"/ui/claims/{claim_id}").get_data(as_text=True)
        if 'id="write-off-form"' not in page:
            continue
        form_html = page[page.index('id="write-off-form"') :]
        form_html = form_html[: form_html.index("</form>")]
        amount = re.search(r'name="wo_amount" type="text" value="([^"]*)"', form_html)
        bucket = re.search(r'<option value="(\w+)" selected', form_html)
        form = {
            "csrf_token": _CSRF.search(form_html).group(1),
            "wo_key": re.search(r'name="wo_key" value="([^"]+)"', form_html).group(1),
            "wo_amount": "1.00" if amount is None else amount.group(1),
            "wo_bucket": bucket.group(1) if bucket else "insurance",
            "wo_reason": "small_balance",
            "wo_note": f"Spoke with {canary(2, 'wo_note')} about it",
        }
        answer = client.post(f"/ui/claims/{claim_id}/write-off", data=form)
        assert answer.status_code in (303, 422), answer.status_code
        if answer.status_code == 303:
            posted += 1
            break
    for claim_id in denied[1:2]:
        page = client.get(f"/ui/claims/{claim_id}").get_data(as_text=True)
        answer = client.post(
            f"/ui/claims/{claim_id}/appeal",
            data={"csrf_token": _CSRF.search(page).group(1), "letter_text": f"Re: {canary(3, 'letter')}"},
        )
        assert answer.status_code == 303, answer.status_code
        posted += 1
    return posted


def _statements_workload(client: Any, canary: Canaries, smtp: Any) -> None:
    """A statement run, a print batch (downloaded), and an email to the SMTP server."""
    run = client.post(
        "/api/v1/statements/runs", json={"as_of": (date.today() + timedelta(days=1)).isoformat()}
    )
    assert run.status_code == 202, run.get_json()
    issued = client.get("/api/v1/statements?state=issued&limit=200").get_json()["items"]
    assert issued, "the run issued no statement: nothing to print or email"
    batch = client.post("/api/v1/statements/print-batches", json={})
    if batch.status_code == 201:
        pdf = client.get(f"/api/v1/statements/print-batches/{batch.get_json()['id']}/pdf")
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    else:
        assert batch.status_code == 422, batch.get_json()  # every statement went by email
    emailed = 0
    for statement in client.get("/api/v1/statements?limit=200").get_json()["items"]:
        if statement["state"] in ("issued", "delivered"):
            sent = client.post(f"/api/v1/statements/{statement['id']}/email")
            if sent.status_code == 200:
                emailed += 1
                break
    assert emailed == 1 and len(smtp.messages) == 1, "no statement could be emailed"


def _eligibility_workload(app: Any, base: Path, route_id: int, claim_patients: list[int]) -> list[str]:
    """Tomorrow's visit for canary patients: their 270 to the outbox, answered, 271 polled."""
    from claims_server.db import unit_of_work
    from claims_server.eligibility import services as eligibility
    from claims_server.models import Encounter, Provider
    from claims_server.simulator.eligibility import answer_270_file

    factory = state(app).session_factory
    today = date.today()

    def transport(route: ClearinghouseRoute) -> Any:
        return clearinghouse.route_transport(route, base)

    with acting_as(system_principal("test:canary")):
        with unit_of_work(factory) as session:
            rendering = session.scalar(select(Provider).where(Provider.is_rendering).order_by(Provider.id))
            for patient_id in claim_patients[:3]:
                session.add(
                    Encounter(
                        patient_id=patient_id,
                        rendering_provider_id=rendering.id,
                        date_of_service=today + timedelta(days=1),
                        place_of_service="11",
                    )
                )
        with unit_of_work(factory) as session:
            check_ids = eligibility.queue_tomorrow(session, today)
        names = eligibility.upload_batch(factory, check_ids, transport_factory=transport)
        outbox, inbox = base / "edi" / "outbox", base / "edi" / "inbox"
        for name in names:
            answer_270_file((outbox / name).read_bytes(), name, inbox)
        eligibility.poll_answers(factory, route_id, transport_factory=transport)
    return names


def _pg_dump(database_url: str) -> bytes:
    """The whole database as ``pg_dump`` writes it (plain SQL, data included)."""
    url = make_url(database_url)
    binary = shutil.which("pg_dump")
    assert binary, "pg_dump is needed to search the PostgreSQL database as a dump"
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run([binary, "--no-owner", libpq], capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


class Pipeline:
    """Send and poll through the real Celery worker over Redis, or in-process without one."""

    def __init__(self, app: Any, route_id: int, base: Path, worker: dict[str, str] | None) -> None:
        self.factory = state(app).session_factory
        self.route_id = route_id
        self.base = base
        self.worker = worker
        if worker is not None:
            from celery import Celery

            self.celery = Celery(broker=worker["broker_url"], backend=worker["broker_url"])

    def _task(self, name: str, arg: int) -> Any:
        assert self.worker is not None
        result = self.celery.send_task(name, args=[arg], queue=self.worker["queue"])
        return result.get(timeout=120)

    def _transport(self, route: ClearinghouseRoute) -> Any:
        return clearinghouse.route_transport(route, self.base)

    def send(self, batch_id: int) -> None:
        if self.worker is not None:
            self._task("claims_server.clearinghouse.send_batch", batch_id)
        else:
            clearinghouse.send_batch(self.factory, batch_id, transport_factory=self._transport)

    def poll(self) -> None:
        """Store and process the inbox: 999/277CA, and the 835 posted by ``post_remittance``."""
        if self.worker is not None:
            self._task("claims_server.clearinghouse.poll_inbox", self.route_id)
        else:
            with acting_as(system_principal("test:canary")):
                clearinghouse.poll_inbox(self.factory, self.route_id, transport_factory=self._transport)


@pytest.mark.parametrize("encryption", ["on", "off"])
def test_no_canary_anywhere_after_the_workload(request, database_url, tmp_path, capfd, encryption):
    from claims_server.models import Practice
    from claims_server.models.common import utcnow
    from claims_server.retention import purge

    started = time.time() - 1
    smtp = request.getfixturevalue("smtp_server")  # a real SMTP server (aiosmtpd)
    # That server runs in this process and logs each recipient ("mail.log"): its log is the
    # mail host's, the destination of the email, not ours, so it is kept out of our output.
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(logging.getLogger("mail.log"), "disabled", True)
    if encryption == "off":
        # In-process tasks (the statement run's chunks) open their own engine, whose cipher
        # comes from the environment: a fresh one, with encryption off like the app.
        from claims_server.statements import tasks as statement_tasks

        monkeypatch.setenv("FIELD_ENCRYPTION", "off")
        monkeypatch.setattr(statement_tasks, "_factories", {})
    worker = None
    if encryption == "on" and (redis_available() or in_ci()):
        worker = request.getfixturevalue("celery_worker_process")
    instance = tmp_path / "instance"
    config: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance),
        "TESTING": True,
        "FIELD_ENCRYPTION": encryption,
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": smtp.port,
        "SMTP_SECURITY": "none",
    }
    if redis_available():
        config["REDIS_URL"] = REDIS_URL
    app = create_app(config)
    engine = state(app).engine
    factory = state(app).session_factory
    canary = Canaries()
    # The control: a canary-shaped value in a field that is not PHI (the practice's name).
    control = f"QZ{canary.run}CTL00000"
    try:
        with factory() as session, acting_as(system_principal("test:canary")):
            ids = seed(session)
            route_id = session.scalar(
                select(ClearinghouseRoute.id).where(ClearinghouseRoute.name == ROUTE_NAME)
            )
            payer = session.scalar(select(Coverage).where(Coverage.public_id == ids["coverage"])).payer_id
            practice = session.scalar(select(Patient).where(Patient.public_id == ids["patient"])).practice_id
            session.get(Practice, practice).name = control
            ids["practice_npi"] = session.get(Practice, practice).npi
            _seed_canary_patients(session, canary, practice, payer)
            session.commit()
        client = _staff_client(app)
        claim_ids = _api_workload(client, ids, canary)
        _fhir_workload(client, ids, canary)

        # The worker resolves the route's folders under its own INSTANCE_PATH.
        base = Path(worker["log"]).parent if worker is not None else tmp_path / "clearinghouse"
        outbox, inbox = base / "edi" / "outbox", base / "edi" / "inbox"
        pipeline = Pipeline(app, route_id, base, worker)
        with factory() as session, acting_as(system_principal("test:canary")):
            batching = build_batches(session, route_id=route_id, today=date.today())
            session.commit()
        assert batching.claims_batched >= API_PATIENTS + 1
        for batch_id in batching.batch_ids:
            pipeline.send(batch_id)
        staged = [p for p in outbox.iterdir() if p.is_file() and p.name.startswith(".")]
        assert staged == [], "the folder adapter left staging copies in the outbox"
        run_once(outbox, inbox)  # 999 + 277CA
        pipeline.poll()
        run_once(outbox, inbox)  # the 835
        pipeline.poll()
        assert [p for p in inbox.iterdir() if p.is_file()] == [], "inbound files must not stay in clear"
        with factory() as session:
            posted = session.scalars(select(Remittance)).all()
            assert posted and all(r.state is RemittanceState.POSTED for r in posted)

        # Free text written through the API: a work-item comment and an appeal letter.
        with factory() as session:
            item = session.scalars(select(WorkItem).order_by(WorkItem.id)).first()
            api_claims = [c for c in session.scalars(select(Claim)) if c.public_id in claim_ids]
            denied = [
                c.public_id for c in api_claims if c.state in (ClaimState.DENIED, ClaimState.PARTIALLY_PAID)
            ]
            claim_patients = [c.patient_id for c in api_claims]
        if item is not None:
            comment = client.post(
                f"/api/v1/workqueue/items/{item.public_id}/comments",
                json={"body": f"Called {canary(1, 'comment')} about the denial"},
            )
            assert comment.status_code in (200, 201), comment.get_json()
        if denied:
            letter = client.post(
                f"/api/v1/claims/{denied[0]}/appeals",
                json={"letter_text": f"Re: {canary(1, 'letter')}, please reconsider."},
            )
            assert letter.status_code == 201, letter.get_json()
        # The workspace's forms, then statements (run, print batch, email) and eligibility.
        assert _ui_workload(client, claim_ids, denied, canary) >= 1
        _statements_workload(client, canary, smtp)
        sent_270 = _eligibility_workload(app, base, route_id, claim_patients)
        assert sent_270, "no 270 went to the outbox"

        # A failed request quoting a canary, a failed sign-in, and exports.
        failed = client.post(
            "/api/v1/patients",
            json={
                "practice": ids["practice"],
                "account_number": "X",
                "last_name": canary(1, "last_name"),
                "first_name": canary(1, "first_name"),
                "birth_date": (date.today() + timedelta(days=30)).isoformat(),
                "sex": "F",
            },
        )
        assert failed.status_code == 422
        anonymous = app.test_client()
        login = anonymous.post(
            "/api/v1/auth/login", json={"username": canary(2, "last_name"), "password": "x"}
        )
        assert login.status_code == 401
        export = client.get("/api/v1/reports/ar-aging?by=patient&format=csv")
        assert export.status_code == 200
        auditor = _staff_client(app, Role.AUDITOR)
        assert auditor.get("/api/v1/auth/audit-events?limit=1000").status_code == 200

        with engine.connect() as conn:
            codes = [r[0] for r in conn.execute(text("SELECT code FROM claim_diagnoses"))]
        assert codes
        assert all(c.startswith("enc1:") for c in codes) == (encryption == "on")

        # The outbox holds the 837s and 270s in clear (the search sees them) until the
        # retention purge removes them; the worker runs the scheduled purge task too.
        assert _scan(_files(outbox), canary), "the 837s and 270s in the outbox carry canaries"
        if worker is not None:
            assert set(
                pipeline.celery.send_task("claims_server.maintenance.purge", queue=worker["queue"]).get(
                    timeout=120
                )
            ) == {"files", "idempotency_records", "print_batches"}
        settings = state(app).settings
        later = utcnow() + timedelta(hours=settings.OUTBOUND_FILE_RETENTION_HOURS, minutes=1)
        with factory() as session, acting_as(system_principal("test:canary")):
            purged = purge(session, settings, later, base_dir=base)
            session.commit()
        assert set(sent_270) <= {Path(p).name for p in purged.files}

        # --- the search ------------------------------------------------------------------------
        out, err = capfd.readouterr()
        sources: dict[str, list[bytes]] = {"output": [out.encode(), err.encode()]}
        sources["database rows"] = _database_rows(engine)
        if engine.dialect.name == "sqlite":
            db = Path(make_url(database_url).database or "")
            dump = b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.is_file())
        else:
            dump = _pg_dump(database_url)
        sources["database dump"] = [dump]
        if worker is not None:
            sources["worker log"] = [Path(worker["log"]).read_bytes()]
        if redis_available():
            sources["redis"] = _redis_values()
        sources["test folder"] = _files(tmp_path)
        sources["clearinghouse folders"] = _files(base, since=started)
        sources["instance"] = _files(instance)
        sources["temp"] = _files(Path(tempfile.gettempdir()), since=started)
        blobs = [blob for found in sources.values() for blob in found]
        # The control proves the search: found in the dump and the rows by the same scan.
        assert control.encode() in dump and control.encode() in b"\0".join(_database_rows(engine))
        control_check = Canaries()
        control_check.run, control_check.all = canary.run, {control}
        assert _scan([dump], control_check) == {control}, "the search does not find what is there"
        hits = _scan(blobs, canary)
        if encryption == "on":
            where = sorted(name for name, found in sources.items() if _scan(found, canary))

            assert hits == set(), f"{len(hits)} canaries leaked into {where}, e.g. {sorted(hits)[:3]}"
        else:
            assert len(hits) > PATIENTS, "the control run must find the canaries, or the search is not live"
    finally:
        _empty_tables(engine)
        engine.dispose()
