"""Setup shared by the PostgreSQL benchmarks (never timed): a scratch database, the demo
practice ready for ``benchmarks/synth_835.py``'s remittance, and acknowledged claims that
match it (CLM01 ``PCN{i:09d}``, two lines each with REF*6R ``{i:07d}-{k}``, synth_835's
procedures and charges), inserted in bulk.

Imported as ``seed`` by the benchmark scripts, which put ``benchmarks/`` on ``sys.path``.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Sequence
from datetime import date

from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TRN03 = "1512345678"  # synth_835's payer identifier
DOS = date(2024, 1, 5)  # synth_835's service date


def admin_engine() -> Engine:
    """An AUTOCOMMIT connection to the PostgreSQL server, to create and drop databases."""
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def create_database(admin: Engine, name: str, *, template: str | None = None) -> str:
    """``CREATE DATABASE name`` (a copy of ``template`` if given); its URL."""
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_databases(admin: Engine, names: Sequence[str]) -> None:
    """Drop ``names`` in reverse order of creation (copies before their template)."""
    with admin.connect() as conn:
        for name in reversed(names):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_database(given_url: str | None, prefix: str) -> tuple[str, Callable[[], None]]:
    """The database a benchmark run uses: ``given_url`` (left as it is), or a new empty one named
    ``{prefix}_<random>``; and the function that drops what was created (call it at the end).
    Also sets the benchmark-only synthetic MASTER_KEY (encryption on, throwaway key), as the tests do."""
    os.environ.setdefault("MASTER_KEY", base64.b64encode(b"bench-only-master-key-32-bytes!!").decode())
    if given_url is not None:
        return given_url, lambda: None
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = admin_engine()
    url = create_database(admin, name)

    def drop() -> None:
        drop_databases(admin, [name])
        admin.dispose()

    return url, drop


def seed_demo_practice(factory: sessionmaker[Session]) -> int:
    """The demo practice, with its DEMOACME payer answering to synth_835's TRN03; the payer's id."""
    from claims_server.db import unit_of_work
    from claims_server.demo_seed import seed_practice
    from claims_server.models import Payer

    with unit_of_work(factory) as session:
        seed_practice(session)
    with unit_of_work(factory) as session:
        acme = session.scalar(select(Payer).where(Payer.payer_id == "DEMOACME"))
        acme.remittance_payer_identifier = TRN03
        return acme.id


def insert_acknowledged_claims(
    session: Session,
    numbers: range,
    *,
    practice_id: int,
    patient_coverages: Sequence[tuple[int, int]],
    rendering_provider_id: int | None = None,
) -> None:
    """Claim ``i`` for each of ``numbers``, acknowledged, for the (patient id, coverage id)
    at the same place in ``patient_coverages``, with the two lines synth_835 pays."""
    import synth_835

    from claims_server.models import Claim, ClaimState, ServiceLine
    from claims_server.models.common import new_public_id, utcnow

    now = utcnow()
    charges = {i: [5_000 + (i * 37 + k * 1_913) % 45_000 for k in range(2)] for i in numbers}
    rows = [
        {
            "public_id": new_public_id(),
            "practice_id": practice_id,
            "patient_id": patient_id,
            "coverage_id": coverage_id,
            "coverage_order": 1,
            "patient_control_number": f"PCN{i:09d}",
            "state": ClaimState.ACKNOWLEDGED,
            "state_changed_at": now,
            "place_of_service": "11",
            "total_charge_cents": sum(charges[i]),
            "rendering_provider_id": rendering_provider_id,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        for i, (patient_id, coverage_id) in zip(numbers, patient_coverages, strict=True)
    ]
    ids = session.scalars(insert(Claim).returning(Claim.id, sort_by_parameter_order=True), rows).all()
    session.execute(
        insert(ServiceLine),
        [
            {
                "claim_id": claim_id,
                "line_number": k + 1,
                "line_control_number": f"{i:07d}-{k + 1}",
                "procedure_code": synth_835._PROCEDURES[(i + k) % len(synth_835._PROCEDURES)],
                "modifier1": "25" if (i + k) % 7 == 0 else None,
                "charge_cents": charges[i][k],
                "units": "1",
                "diagnosis_pointers": "1",
                "service_date_from": DOS,
                "created_at": now,
                "updated_at": now,
            }
            for i, claim_id in zip(numbers, ids, strict=True)
            for k in range(2)
        ],
    )
