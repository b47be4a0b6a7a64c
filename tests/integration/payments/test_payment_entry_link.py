"""A patient payment's journal entry names the payment itself (``journal_entries.patient_payment_id``)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from claims_server.models import JournalEntry, JournalEventType, PatientPayment, PaymentMethod
from claims_server.models.payments import PaymentReceipt, PaymentSource
from claims_server.payments.services import record_patient_payment
from tests.integration.payments.support import owed_claim


def _pay(session, patient_id: int, amount: int, key: str):
    return record_patient_payment(
        session,
        patient_id=patient_id,
        amount_cents=amount,
        source=PaymentSource.FRONT_DESK,
        method=PaymentMethod.CASH,
        idempotency_key=key,
    )


def test_the_payment_entry_leads_to_its_payment_without_the_receipt(session, world):
    claim = owed_claim(session, world, "LINKPAY1", [("99213", 15000, 4000)], since=date(2026, 1, 10))
    first = _pay(session, claim.patient_id, 1500, "link-1")
    second = _pay(session, claim.patient_id, 1000, "link-2")
    session.commit()

    for outcome in (first, second):
        entry = session.scalar(
            select(JournalEntry).where(JournalEntry.patient_payment_id == outcome.payment.id)
        )
        assert entry is not None
        assert entry.event_type == JournalEventType.PATIENT_PAYMENT
        assert entry.id == outcome.receipt.journal_entry_id
        # Straight from the entry to the payment (no join through payment_receipts).
        payment = session.get(PatientPayment, entry.patient_payment_id)
        assert payment is not None and payment.amount_cents == outcome.payment.amount_cents

    # Every patient-payment entry is linked; no other entry names a payment.
    rows = session.execute(select(JournalEntry.event_type, JournalEntry.patient_payment_id)).all()
    linked = sorted(pid for event, pid in rows if event == JournalEventType.PATIENT_PAYMENT)
    assert linked == sorted([first.payment.id, second.payment.id])
    assert all(pid is None for event, pid in rows if event != JournalEventType.PATIENT_PAYMENT)


def test_a_replayed_payment_adds_no_second_linked_entry(session, world):
    claim = owed_claim(session, world, "LINKPAY2", [("99213", 15000, 4000)], since=date(2026, 1, 10))
    first = _pay(session, claim.patient_id, 2000, "link-replay")
    session.commit()
    again = _pay(session, claim.patient_id, 2000, "link-replay")
    session.commit()
    assert again.replayed and again.payment.id == first.payment.id
    entries = session.scalars(
        select(JournalEntry.id).where(JournalEntry.patient_payment_id == first.payment.id)
    ).all()
    receipt = session.scalar(
        select(PaymentReceipt).where(PaymentReceipt.patient_payment_id == first.payment.id)
    )
    assert entries == [receipt.journal_entry_id]
