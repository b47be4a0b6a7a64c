"""Statements to deliver: two self-pay-after-insurance patients billed by a real 835 and a real run.

Patient A's claim: 99213 100.00, paid 60.00, CO-45 10.00, PR-1 20.00, PR-3 10.00 (owes 30.00).
Patient B's claim: 99214 150.00, paid 90.00, CO-45 15.00, PR-2 45.00 (owes 45.00).
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from claims_server.models import Claim, Coverage, Statement
from claims_server.remittance.services import receive_and_post
from claims_server.security.principal import acting_as, system_principal
from claims_server.statements.services import run_statements
from statements import CycleRules
from tests.integration.remittance.support import Clp, Svc, World, build_835, make_claim, seed_world

AS_OF = date.today() + timedelta(days=1)


def acme_only_coverages(session: Session, world: World) -> list[Coverage]:
    """Coverages of patients whose only insurance is ACME, as themselves (the 835 pays them)."""
    coverages = session.scalars(select(Coverage).order_by(Coverage.id)).all()
    count: dict[int, int] = {}
    for c in coverages:
        count[c.patient_id] = count.get(c.patient_id, 0) + 1
    return [
        c
        for c in coverages
        if c.payer_id == world.payers["DEMOACME"]
        and count[c.patient_id] == 1
        and c.relationship_code.value == "18"
    ]


def issue_statements(session: Session, factory: sessionmaker[Session]) -> list[Statement]:
    """Post the 835 for both claims and run statements: two issued statements, A then B."""
    a, b = bill_two_patients(session, factory)
    with acting_as(system_principal("test:statements")):
        run_statements(session, AS_OF, rules=CycleRules())
        session.commit()
    rows = session.scalars(select(Statement).order_by(Statement.id)).all()
    by_patient = {row.patient_id: row for row in rows}
    return [by_patient[a.patient_id], by_patient[b.patient_id]]


def bill_two_patients(session: Session, factory: sessionmaker[Session]) -> tuple[Claim, Claim]:
    """Claims A and B billed and paid by a real 835: each patient owes a balance, no statement yet."""
    world = seed_world(session)
    first, second = acme_only_coverages(session, world)[:2]
    a = make_claim(session, world, "DLV-A", [("99213", 10000)], coverage=first)
    b = make_claim(session, world, "DLV-B", [("99214", 15000)], coverage=second)
    content = build_835(
        [
            Clp(
                "DLV-A",
                "1",
                10000,
                6000,
                3000,
                lines=[
                    Svc(
                        "99213",
                        10000,
                        6000,
                        [("CO", "45", 1000), ("PR", "1", 2000), ("PR", "3", 1000)],
                        lcn=a.service_lines[0].line_control_number,
                    )
                ],
            ),
            Clp(
                "DLV-B",
                "1",
                15000,
                9000,
                4500,
                lines=[
                    Svc(
                        "99214",
                        15000,
                        9000,
                        [("CO", "45", 1500), ("PR", "2", 4500)],
                        lcn=b.service_lines[0].line_control_number,
                    )
                ],
            ),
        ]
    )
    assert receive_and_post(factory, content).status == "posted"
    return a, b
