"""Canary test: PHI never reaches the database files, logs, Redis or temp/upload folders in clear.

1,000 synthetic patients carry unique canary strings (of this run) in every PHI text field,
then the real pipeline runs on some of them:

- API writes through an authenticated staff client: patients, coverages, claims (ready),
  a work-item comment and an appeal letter carrying canaries;
- ``build_batches`` writes the 837s, ``send_batch`` uploads them over the folder adapter;
- the simulator answers (999, 277CA), ``poll_inbox`` processes the answers, then the
  simulator pays: the 835 is stored and posted to the ledger by ``post_remittance`` in a
  real Celery worker over Redis (in-process when encryption is off: the worker process
  runs with the suite's settings, encryption on);
- a failed request (a 422 quoting a canary, a failed sign-in with a canary user name) and
  exports (A/R aging by patient as CSV, the audit trail).

Then the search covers the database (the SQLite file with its -wal/-shm, and every row of
every table read raw, which is what it means on PostgreSQL), the logs (this process's and
the worker's), every key and value of the test Redis database (Celery messages decoded),
the instance, upload, temp and inbox folders: 0 canaries with encryption on. The outbox
the clearinghouse reads holds 837s, which carry PHI by definition, and is left out; the
test checks instead that nothing but finished 837s is there (no staging copies). With
``FIELD_ENCRYPTION=off`` the same search finds the canaries, so the search is live.
"""

from __future__ import annotations

import base64
import json
import re
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
from tests.services import REDIS_URL, in_ci, redis_available

PATIENTS = 1000
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
    """Patients, coverages and ready claims written through the API; returns the claim ids."""
    claims = []
    for n in range(PATIENTS, PATIENTS + API_PATIENTS):
        patient = client.post(
            "/api/v1/patients",
            json={
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
            },
        )
        assert patient.status_code == 201, patient.get_json()
        pid = patient.get_json()["id"]
        coverage = client.post(
            f"/api/v1/patients/{pid}/coverages",
            json={
                "payer": ids["payer"],
                "member_id": canary(n, "member_id"),
                "effective_start": "2020-01-01",
            },
        )
        assert coverage.status_code == 201, coverage.get_json()
        doc = claim_json(ids, patient=pid, coverage=coverage.get_json()["id"], ready=True)
        claim = client.post("/api/v1/claims", json=doc)
        assert claim.status_code == 201, claim.get_json()
        assert claim.get_json()["state"] == "ready", claim.get_json()["findings"]
        claims.append(claim.get_json()["id"])
    return claims


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
    started = time.time() - 1
    worker = None
    if encryption == "on" and (redis_available() or in_ci()):
        worker = request.getfixturevalue("celery_worker_process")
    instance = tmp_path / "instance"
    config: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance),
        "TESTING": True,
        "FIELD_ENCRYPTION": encryption,
    }
    if redis_available():
        config["REDIS_URL"] = REDIS_URL
    app = create_app(config)
    engine = state(app).engine
    factory = state(app).session_factory
    canary = Canaries()
    try:
        with factory() as session, acting_as(system_principal("test:canary")):
            ids = seed(session)
            route_id = session.scalar(
                select(ClearinghouseRoute.id).where(ClearinghouseRoute.name == ROUTE_NAME)
            )
            payer = session.scalar(select(Coverage).where(Coverage.public_id == ids["coverage"])).payer_id
            practice = session.scalar(select(Patient).where(Patient.public_id == ids["patient"])).practice_id
            _seed_canary_patients(session, canary, practice, payer)
            session.commit()
        client = _staff_client(app)
        claim_ids = _api_workload(client, ids, canary)

        # The worker resolves the route's folders under its own INSTANCE_PATH.
        base = Path(worker["log"]).parent if worker is not None else tmp_path / "clearinghouse"
        outbox, inbox = base / "edi" / "outbox", base / "edi" / "inbox"
        pipeline = Pipeline(app, route_id, base, worker)
        with factory() as session, acting_as(system_principal("test:canary")):
            batching = build_batches(session, route_id=route_id, today=date.today())
            session.commit()
        assert batching.claims_batched >= API_PATIENTS
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
            denied = [
                c.public_id
                for c in session.scalars(select(Claim))
                if c.public_id in claim_ids and c.state in (ClaimState.DENIED, ClaimState.PARTIALLY_PAID)
            ]
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

        # --- the search ------------------------------------------------------------------------
        out, err = capfd.readouterr()
        blobs = [out.encode(), err.encode(), *_database_rows(engine)]
        if engine.dialect.name == "sqlite":
            db = Path(make_url(database_url).database or "")
            blobs += [p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.is_file()]
        if worker is not None:
            blobs.append(Path(worker["log"]).read_bytes())
        if redis_available():
            blobs += _redis_values()
        blobs += _files(tmp_path, skip=(outbox,))
        blobs += _files(base, skip=(outbox,), since=started)
        blobs += _files(instance)
        blobs += _files(Path(tempfile.gettempdir()), skip=(outbox,), since=started)
        hits = _scan(blobs, canary)
        if encryption == "on":
            assert hits == set(), f"{len(hits)} canaries leaked, e.g. {sorted(hits)[:3]}"
        else:
            assert len(hits) > PATIENTS, "the control run must find the canaries, or the search is not live"
    finally:
        _empty_tables(engine)
        engine.dispose()
