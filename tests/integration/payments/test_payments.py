"""Patient payments: validation, line-by-line allocation, explicit credits, exactly-once posting."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from claims_server.errors import Conflict
from claims_server.ledger import balance, unbalanced_entries
from claims_server.models import (
    AccountCode,
    AuditEvent,
    JournalEntry,
    PatientPayment,
    PaymentMethod,
    Posting,
    Statement,
    StatementState,
)
from claims_server.models.payments import PaymentReceipt, PaymentSource
from claims_server.payments.processors import TEST_APPROVE, SimulatedProcessor
from claims_server.payments.services import (
    OnlineCharge,
    PaymentRefused,
    open_lines,
    patient_balance,
    record_patient_payment,
)
from tests.integration.payments.support import owed_claim

JAN, FEB = date(2026, 1, 10), date(2026, 2, 10)


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def owed(session, world):
    """The patient owes 40.00 + 15.00 on a January claim and 25.00 on a February one (80.00)."""
    older = owed_claim(session, world, "PAYOLD1", [("99213", 15000, 4000), ("36415", 2500, 1500)], since=JAN)
    newer = owed_claim(session, world, "PAYNEW1", [("99214", 20000, 2500)], since=FEB)
    return {"patient": older.patient_id, "older": older, "newer": newer}


def _pay(session, owed, amount, key="k1", **kw):
    kw.setdefault("source", PaymentSource.FRONT_DESK)
    kw.setdefault("method", PaymentMethod.CASH)
    return record_patient_payment(
        session, patient_id=owed["patient"], amount_cents=amount, idempotency_key=key, **kw
    )


@pytest.mark.parametrize(
    ("amount", "rule"),
    [
        (0, "positive"),
        (-500, "positive"),
        (12.5, "integer_cents"),
        ("1250", "integer_cents"),
        (True, "integer_cents"),
    ],
)
def test_refuses_zero_negative_and_non_cent_amounts(session, owed, amount, rule):
    with pytest.raises(PaymentRefused) as caught:
        _pay(session, owed, amount)
    assert caught.value.errors[0]["field"] == "amount" and caught.value.errors[0]["rule"] == rule
    session.rollback()
    assert _count(session, PatientPayment) == 0 and _count(session, PaymentReceipt) == 0
    assert patient_balance(session, owed["patient"]) == 8000


def test_refuses_a_method_the_source_does_not_take_and_a_check_without_its_number(session, owed):
    with pytest.raises(PaymentRefused) as caught:
        _pay(session, owed, 1000, source=PaymentSource.MAIL, method=PaymentMethod.CASH)
    assert caught.value.errors[0]["rule"] == "method_for_source"
    with pytest.raises(PaymentRefused) as caught:
        _pay(session, owed, 1000, source=PaymentSource.MAIL, method=PaymentMethod.CHECK)
    assert caught.value.errors[0] == {
        "field": "reference",
        "rule": "check_number",
        "message": "a mailed check needs its check number",
    }


def test_pays_the_oldest_lines_first_and_the_ledger_balances(session, owed):
    outcome = _pay(session, owed, 5000)
    session.commit()
    older, newer = owed["older"], owed["newer"]
    # 50.00: 40.00 closes the first January line, 10.00 of the 15.00 on the second.
    assert [(a.claim_id, a.amount_cents) for a in outcome.allocations] == [(older.id, 4000), (older.id, 1000)]
    assert outcome.open_balance_after_cents == 3000 and not outcome.replayed
    assert balance(session, [AccountCode.AR_PATIENT], claim_id=older.id) == 500
    assert balance(session, [AccountCode.AR_PATIENT], claim_id=newer.id) == 2500
    assert balance(session, [AccountCode.CASH_CLEARING], patient_id=owed["patient"]) == 5000
    assert unbalanced_entries(session) == []
    assert outcome.receipt.applied_cents == 5000 and outcome.receipt.credit_cents == 0
    audit = session.scalars(select(AuditEvent).where(AuditEvent.event_type == "patient_payment.create")).one()
    assert audit.entity_id == outcome.payment.public_id and audit.patient_id == owed["patient"]
    assert audit.details["amount_cents"] == 5000 and audit.details["source"] == "front_desk"
    assert [line.balance_cents for line in open_lines(session, owed["patient"])] == [500, 2500]


def test_overpayment_is_refused_unless_a_credit_is_asked_for(session, owed):
    with pytest.raises(PaymentRefused) as caught:
        _pay(session, owed, 8001)
    assert caught.value.errors[0]["rule"] == "overpayment"
    assert caught.value.extra["open_balance_cents"] == 8000
    session.rollback()
    assert _count(session, JournalEntry) == 3 + 2  # two charges, three patient-responsibility entries

    outcome = _pay(session, owed, 10000, key="credit", allow_credit=True)
    session.commit()
    assert outcome.receipt.applied_cents == 8000 and outcome.receipt.credit_cents == 2000
    assert balance(session, [AccountCode.AR_PATIENT], patient_id=owed["patient"]) == 0
    assert balance(session, [AccountCode.PATIENT_CREDIT], patient_id=owed["patient"]) == -2000
    assert patient_balance(session, owed["patient"]) == -2000
    assert unbalanced_entries(session) == []


def test_the_same_key_pays_once_and_another_payment_under_it_conflicts(session, owed):
    first = _pay(session, owed, 2000, key="double-click")
    session.commit()
    again = _pay(session, owed, 2000, key="double-click")
    session.commit()
    assert again.replayed and again.payment.id == first.payment.id
    assert _count(session, PatientPayment) == 1 and _count(session, PaymentReceipt) == 1
    assert patient_balance(session, owed["patient"]) == 6000
    with pytest.raises(Conflict):
        _pay(session, owed, 2500, key="double-click")


def test_two_concurrent_requests_with_one_key_post_one_payment(factory, owed):
    results: list[object] = []
    barrier = threading.Barrier(2)
    processor = SimulatedProcessor()

    def submit() -> None:
        with factory() as s:
            barrier.wait()
            try:
                outcome = record_patient_payment(
                    s,
                    patient_id=owed["patient"],
                    amount_cents=3000,
                    source=PaymentSource.LINK,
                    method=PaymentMethod.PORTAL,
                    idempotency_key="patient:7:race",
                    charge=OnlineCharge(processor, TEST_APPROVE),
                )
                s.commit()
                results.append(outcome.replayed)
            except Exception as exc:  # the assertion below names any failure
                results.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results, key=str) == [False, True], results
    with factory() as s:
        assert _count(s, PatientPayment) == 1
        assert patient_balance(s, owed["patient"]) == 5000
        # Charged once, and the payment records that charge.
        assert list(processor.charges) == ["patient:7:race"]
        assert s.scalar(select(PatientPayment.reference)) == processor.charges["patient:7:race"].reference


def test_a_statement_of_another_patient_is_refused_and_a_paid_balance_closes_statements(session, owed, world):
    other = world.with_secondary.patient_id
    foreign = Statement(
        patient_id=other, statement_date=FEB, due_date=FEB, balance_cents=100, state=StatementState.ISSUED
    )
    own = Statement(
        patient_id=owed["patient"],
        statement_date=FEB,
        due_date=FEB,
        balance_cents=8000,
        state=StatementState.DELIVERED,
    )
    session.add_all([foreign, own])
    session.commit()
    with pytest.raises(PaymentRefused) as caught:
        _pay(session, owed, 1000, statement_id=foreign.id)
    assert caught.value.errors[0]["field"] == "statement_id"
    session.rollback()
    _pay(
        session,
        owed,
        8000,
        key="all",
        statement_id=own.id,
        source=PaymentSource.MAIL,
        method=PaymentMethod.CHECK,
        reference="1042",
    )
    session.commit()
    session.refresh(own)
    assert own.state is StatementState.PAID
    payment = session.scalars(select(PatientPayment)).one()
    assert payment.statement_id == own.id and payment.reference == "1042"
    # Every posting of the payment names the patient; the A/R credits name a claim and line.
    legs = session.scalars(
        select(Posting).join(JournalEntry).where(JournalEntry.memo == "mail payment")
    ).all()
    assert {leg.patient_id for leg in legs} == {owed["patient"]}
    assert sum(leg.amount_cents for leg in legs) == 0 and len(legs) == 4
