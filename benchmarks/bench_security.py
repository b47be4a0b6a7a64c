"""Security benchmarks: field encryption, audit append and verification, key rotation, blind index.

    python benchmarks/bench_security.py

Each figure is printed beside an anchor measured in the same run (plain HMAC of the same
payload, an unencrypted INSERT of the same rows, ...). Targets: encrypt+decrypt <= 5 us,
audit append >= 2,000 events/s, verification >= 50,000 events/s, rotation >= 5,000 rows/s,
blind-index lookup <= 1 ms.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("MASTER_KEY", "YmVuY2htYXJrLW9ubHktbWFzdGVyLWtleS0zMmJ5dGU=")


def main() -> None:
    from sqlalchemy import text

    from claims_server import create_app
    from claims_server.app import state
    from claims_server.migrate import upgrade
    from claims_server.models import Patient, Practice
    from claims_server.models.encrypted import EncryptedAttr
    from claims_server.security.audit import AuditAction, audit_event
    from claims_server.security.checkpoints import verify_audit_chain
    from claims_server.security.keys import master_key_provider
    from claims_server.security.rotation import rotate_data_key
    from claims_server.security.search import find_patients_by_name_dob

    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    upgrade(url)
    app = create_app(
        {"DATABASE_URL": url, "INSTANCE_PATH": str(tmp / "instance"), "TESTING": True, "LOG_LEVEL": "WARNING"}
    )
    cipher = app.extensions["claims_security"].cipher
    engine = state(app).engine
    factory = state(app).session_factory

    attr = EncryptedAttr("last_name", "patients", "last_name", "text")
    n = 100_000
    t = time.perf_counter()
    for _ in range(n):
        cipher.open(
            attr,
            "0123456789abcdef0123456789abcdef",
            cipher.seal(attr, "0123456789abcdef0123456789abcdef", "Johnson-Smith").stored,
        )
    field_us = (time.perf_counter() - t) / n * 1e6
    key = os.urandom(32)
    t = time.perf_counter()
    for _ in range(n):
        hmac.new(key, b"patients|last_name|Johnson-Smith", hashlib.sha256).hexdigest()
    hmac_us = (time.perf_counter() - t) / n * 1e6
    print(
        f"field encrypt+decrypt: {field_us:.2f} us   (anchor: HMAC-SHA256 of the same payload {hmac_us:.2f} us; target <= 5)"
    )

    events = 20_000
    t = time.perf_counter()
    with factory() as session:
        for i in range(events):
            audit_event(
                session,
                action=AuditAction.READ,
                event_type="claim.read",
                entity_type="claim",
                entity_id=f"{i:032x}",
                details={"n": i},
            )
            if i % 500 == 499:
                session.commit()
        session.commit()
    append_rate = events / (time.perf_counter() - t)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE plain_events (id INTEGER PRIMARY KEY, event_type TEXT, entity_id TEXT, details TEXT)"
            )
        )
        t = time.perf_counter()
        conn.execute(
            text("INSERT INTO plain_events (event_type, entity_id, details) VALUES ('claim.read', :e, '{}')"),
            [{"e": f"{i:032x}"} for i in range(events)],
        )
        plain_rate = events / (time.perf_counter() - t)
    print(
        f"audit append: {append_rate:,.0f} events/s   (anchor: unchained executemany INSERT {plain_rate:,.0f} rows/s; target >= 2,000)"
    )

    with engine.connect() as conn:
        t = time.perf_counter()
        report = verify_audit_chain(conn, cipher.ring, None)
        verify_rate = report.events / (time.perf_counter() - t)
        t = time.perf_counter()
        rows = conn.execute(text("SELECT * FROM audit_events ORDER BY id")).all()
        for r in rows:
            hashlib.sha256(repr(r).encode()).digest()
        anchor = len(rows) / (time.perf_counter() - t)
    assert report.ok
    print(
        f"audit verify: {verify_rate:,.0f} events/s   (anchor: raw SELECT + SHA-256 per row {anchor:,.0f} rows/s; target >= 50,000)"
    )

    patients = 10_000
    with factory() as session:
        practice = Practice(
            name="Bench",
            npi="1234567893",
            tax_id="123456789",
            address_line1="1 Main",
            city="X",
            state="IL",
            zip_code="627040000",
            submitter_id="S",
        )
        session.add(practice)
        session.flush()
        t = time.perf_counter()
        session.add_all(
            [
                Patient(
                    practice_id=practice.id,
                    account_number=f"B{i:06d}",
                    last_name=f"Last{i}",
                    first_name=f"First{i}",
                    birth_date=date(1970, 1, 1 + i % 28),
                    sex="F",
                    city="Springfield",
                    phone="2175550100",
                )
                for i in range(patients)
            ]
        )
        session.commit()
        insert_rate = patients / (time.perf_counter() - t)
    t = time.perf_counter()
    result = rotate_data_key(engine, master_key_provider(state(app).settings), batch_size=2000)
    rotate_rate = result.rows_updated["patients"] / (time.perf_counter() - t)
    print(
        f"key rotation: {rotate_rate:,.0f} rows/s   (anchor: encrypted ORM INSERT of the same rows {insert_rate:,.0f} rows/s; target >= 5,000)"
    )

    with factory() as session:
        lookups = 500
        t = time.perf_counter()
        for i in range(lookups):
            found = find_patients_by_name_dob(session, f"last{i}", f"FIRST{i}", date(1970, 1, 1 + i % 28))
            assert len(found) == 1
        lookup_ms = (time.perf_counter() - t) / lookups * 1000
        t = time.perf_counter()
        for i in range(lookups):
            session.execute(
                text("SELECT id FROM patients WHERE account_number = :a"), {"a": f"B{i:06d}"}
            ).all()
        anchor_ms = (time.perf_counter() - t) / lookups * 1000
    print(
        f"blind-index lookup: {lookup_ms:.3f} ms   (anchor: indexed plain lookup by account number {anchor_ms:.3f} ms; target <= 1)"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
