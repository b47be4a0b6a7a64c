"""Ledger situations the reports tests (and the dashboard's) build on."""

from __future__ import annotations

from datetime import date

from claims_server.ledger.services import Leg
from claims_server.models import Claim, JournalEventType
from tests.integration.claims.support import seed
from tests.integration.workqueue.support import AR_INS, CASH, GROSS, make_claim, post


def overpaid_claim(session) -> Claim:
    """A $100.00 charge on 2026-01-10 paid $135.03 on 2026-01-20: A/R is a $35.03 credit in January."""
    claim = make_claim(session, seed(session))
    payer, patient = claim.coverage.payer_id, claim.patient_id
    post(
        session,
        "c:over",
        JournalEventType.CHARGE,
        date(2026, 1, 10),
        [Leg(AR_INS, 10000, claim.id, None, payer, patient), Leg(GROSS, -10000, claim.id, None, payer)],
    )
    post(
        session,
        "p:over",
        JournalEventType.INSURANCE_PAYMENT,
        date(2026, 1, 20),
        [Leg(CASH, 13503, claim.id, None, payer), Leg(AR_INS, -13503, claim.id, None, payer, patient)],
    )
    session.commit()
    return claim
