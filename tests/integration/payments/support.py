"""Builders for the payment tests: claims whose lines the patient owes, posted straight to the ledger.

Each patient balance is stated by the test in cents (a charge entry, then a patient
responsibility entry per line), so every expected allocation is computed by the reader.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from claims_server.ledger import Leg, ensure_claims_receivable, post_entry
from claims_server.ledger.services import claim_charge
from claims_server.models import AccountCode, Claim, JournalEventType
from tests.integration.remittance.support import World, make_claim


def owed_claim(
    session: Session,
    world: World,
    pcn: str,
    owed: list[tuple[str, int, int]],
    *,
    since: date,
) -> Claim:
    """A claim with lines [(procedure, charge, patient owes)], the patient's part billed on ``since``."""
    claim = make_claim(session, world, pcn, [(code, charge) for code, charge, _ in owed])
    ensure_claims_receivable(session, [claim_charge(claim)])
    payer = claim.coverage.payer_id
    for line, (_, _, cents) in zip(claim.service_lines, owed, strict=True):
        if cents:
            post_entry(
                session,
                event_type=JournalEventType.PATIENT_RESPONSIBILITY,
                idempotency_key=f"test-pr:{claim.public_id}:{line.id}",
                postings=[
                    Leg(AccountCode.AR_PATIENT, cents, claim.id, line.id, None, claim.patient_id),
                    Leg(AccountCode.AR_INSURANCE, -cents, claim.id, line.id, payer, claim.patient_id),
                ],
                effective_date=since,
            )
    session.commit()
    return claim
