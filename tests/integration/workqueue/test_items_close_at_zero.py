"""A work item about a claim's balance closes exactly when that balance reaches zero, not before
(docs/write-offs.md, "Work items close at zero"): a sequence of partial write-offs or patient
payments leaves it open with the right balance shown (hand-computed cents), the last cent closes it."""

from __future__ import annotations

from datetime import date

import pytest

from claims_server.ledger.write_offs import WriteOffBucket, WriteOffReason, write_off
from claims_server.models import PaymentMethod
from claims_server.models.payments import PaymentSource
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.payments.services import record_patient_payment
from claims_server.workqueue.services import (
    RecommendedAction,
    item_balance_cents,
    item_facts,
    open_work_item,
    resolution_code,
)
from tests.integration.payments.support import owed_claim
from tests.integration.remittance.support import seed_world
from tests.integration.workqueue.support import LineAnswer, adjudicate

INS, PT = WriteOffBucket.INSURANCE, WriteOffBucket.PATIENT


@pytest.fixture
def world(session):
    return seed_world(session)


def _item(session, claim, queue, action=RecommendedAction.REVIEW, claim_payment=None):
    item = open_work_item(
        session,
        queue=queue,
        claim=claim,
        claim_payment=claim_payment,
        reason_codes=[],
        recommended_action=action,
        explanation="",
        dedupe_key=f"t:{queue.value}:{claim.id}",
    )
    session.commit()
    return item


def _shown(session, item) -> int:
    """The amount the queue shows for the item (cents), and the balance the service closes it on."""
    session.expire_all()
    shown = item_facts(session, [item])[item.id][1]
    assert shown == item_balance_cents(session, item)
    return shown


def _wo(session, claim, cents, bucket, key):
    write_off(
        session,
        claim,
        amount_cents=cents,
        bucket=bucket,
        reason=WriteOffReason.TIMELY_FILING if bucket is INS else WriteOffReason.SMALL_BALANCE,
        idempotency_key=key,
    )
    session.commit()


def test_a_partial_write_off_of_a_denial_leaves_it_open_with_the_new_balance(session, world):
    """The issue's case: 5.00 of a 65.00 denial leaves 60.00 open and the item with it."""
    claim = owed_claim(session, world, "ZERO-DEN", [("99213", 6500, 0)], since=date(2026, 1, 10))
    denial = adjudicate(
        session, claim, status="4", lines=[LineAnswer(0, [("CO", "29", 6500)])], move_state=False
    )
    item = _item(session, claim, WorkQueue.DENIED, RecommendedAction.WRITE_OFF, denial)
    assert _shown(session, item) == 6500
    _wo(session, claim, 500, INS, "den-1")
    assert item.status is WorkItemStatus.OPEN and _shown(session, item) == 6000
    _wo(session, claim, 5999, INS, "den-2")
    assert item.status is WorkItemStatus.OPEN and _shown(session, item) == 1
    _wo(session, claim, 1, INS, "den-3")  # the last cent
    session.refresh(item)
    assert item.status is WorkItemStatus.RESOLVED
    assert resolution_code(item).value == "written_off"


@pytest.mark.parametrize(
    "queue", [WorkQueue.DENIED, WorkQueue.REJECTED, WorkQueue.UNPAID, WorkQueue.NEEDS_SECONDARY]
)
def test_an_item_about_what_the_payer_owes_closes_at_its_last_cent(session, world, queue):
    """120.00 owed by the payer, 55.00 by the patient: the patient's share does not keep it open."""
    claim = owed_claim(
        session,
        world,
        f"ZERO-{queue.value[:6]}",
        [("99213", 15000, 4000), ("36415", 2500, 1500)],
        since=date(2026, 1, 10),
    )
    item = _item(session, claim, queue)
    patient_item = _item(session, claim, WorkQueue.PATIENT_BALANCE)
    assert _shown(session, item) == 12000 and _shown(session, patient_item) == 5500
    _wo(session, claim, 2000, INS, f"{queue}-1")  # 120.00 - 20.00
    assert item.status is WorkItemStatus.OPEN and _shown(session, item) == 10000
    _wo(session, claim, 9999, INS, f"{queue}-2")  # 100.00 - 99.99
    assert item.status is WorkItemStatus.OPEN and _shown(session, item) == 1
    _wo(session, claim, 1, INS, f"{queue}-3")
    session.refresh(item)
    assert item.status is WorkItemStatus.RESOLVED and item.resolution.startswith("system: the balance")
    # The patient still owes 55.00: their item stays open, with that balance.
    session.refresh(patient_item)
    assert patient_item.status is WorkItemStatus.OPEN and _shown(session, patient_item) == 5500


def test_a_patient_balance_item_closes_when_the_patient_has_paid_the_last_cent(session, world):
    claim = owed_claim(
        session, world, "ZERO-PAT", [("99213", 15000, 4000), ("36415", 2500, 1500)], since=date(2026, 1, 10)
    )
    item = _item(session, claim, WorkQueue.PATIENT_BALANCE, RecommendedAction.BILL_PATIENT)
    denial_like = _item(session, claim, WorkQueue.UNPAID)

    def pay(cents: int, key: str) -> None:
        record_patient_payment(
            session,
            patient_id=claim.patient_id,
            amount_cents=cents,
            source=PaymentSource.FRONT_DESK,
            method=PaymentMethod.CASH,
            idempotency_key=key,
        )
        session.commit()

    pay(2000, "p1")  # 55.00 - 20.00
    assert item.status is WorkItemStatus.OPEN and _shown(session, item) == 3500
    _wo(session, claim, 3499, PT, "p-wo")  # a small-balance write-off of all but a cent
    assert item.status is WorkItemStatus.OPEN and _shown(session, item) == 1
    pay(1, "p2")
    session.refresh(item)
    assert item.status is WorkItemStatus.RESOLVED and resolution_code(item).value == "payment_received"
    # What the payer owes (120.00) is another balance: that item stays open.
    session.refresh(denial_like)
    assert denial_like.status is WorkItemStatus.OPEN and _shown(session, denial_like) == 12000
