"""The computed queues: unpaid past N days, needs secondary, patient balance; idempotent sweeps."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from claims_server.ledger.services import Leg
from claims_server.models import JournalEventType, WorkItem
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.workqueue.services import sweep, unpaid_by_payer
from tests.integration.workqueue.support import AR_INS, AR_PT, CASH, LineAnswer, adjudicate, make_claim, post


def _today() -> date:
    """Today when asked (a module-level date goes stale when the suite runs past midnight UTC)."""
    return datetime.now(UTC).date()


def _items(session, queue: WorkQueue) -> list[WorkItem]:
    return list(session.scalars(select(WorkItem).where(WorkItem.queue == queue).order_by(WorkItem.id)))


def test_unpaid_past_n_days_by_payer(session, ids):
    old = make_claim(session, ids, submitted=datetime.now(UTC) - timedelta(days=45))
    make_claim(session, ids, submitted=datetime.now(UTC) - timedelta(days=10))
    session.commit()

    rows = unpaid_by_payer(session, days=30, as_of=_today())
    assert [(r.payer_name, r.claims, r.amount_cents, r.oldest_days) for r in rows] == [
        (old.coverage.payer.name, 1, 22050, 45)
    ]
    assert [r.claims for r in unpaid_by_payer(session, days=5, as_of=_today())] == [2]

    first = sweep(session, as_of=_today(), unpaid_days=30)
    session.commit()
    assert first.opened["unpaid"] == 1
    (item,) = _items(session, WorkQueue.UNPAID)
    assert item.claim_id == old.id
    assert item.recommended_action == "review"
    dos = min(line.service_date_from for line in old.service_lines)
    assert item.due_date == dos + timedelta(days=old.coverage.payer.timely_filing_days)

    second = sweep(session, as_of=_today(), unpaid_days=30)
    assert second.opened["unpaid"] == 0 and second.resolved["unpaid"] == 0

    adjudicate(session, old, status="1", lines=[LineAnswer(17500), LineAnswer(4550)])
    third = sweep(session, as_of=_today(), unpaid_days=30)
    session.commit()
    assert third.resolved["unpaid"] == 1
    assert item.status is WorkItemStatus.RESOLVED
    assert item.resolution.startswith("payment_received")


def test_patient_balance_opens_and_settles(session, ids):
    claim = make_claim(session, ids)
    day = date(2026, 1, 10)
    payer, patient = claim.coverage.payer_id, claim.patient_id
    # PR-2 coinsurance of 25.00 moved from the payer to the patient.
    post(
        session,
        "t:pr",
        JournalEventType.PATIENT_RESPONSIBILITY,
        day,
        [Leg(AR_PT, 2500, claim.id, None, None, patient), Leg(AR_INS, -2500, claim.id, None, payer, patient)],
    )
    session.commit()
    assert sweep(session, as_of=_today()).opened["patient_balance"] == 1
    (item,) = _items(session, WorkQueue.PATIENT_BALANCE)
    assert item.recommended_action == "bill_patient"
    assert "25.00" in item.comments[0].body

    post(
        session,
        "t:pay",
        JournalEventType.PATIENT_PAYMENT,
        day,
        [Leg(CASH, 2500, claim.id, None, None, patient), Leg(AR_PT, -2500, claim.id, None, None, patient)],
    )
    result = sweep(session, as_of=_today())
    session.commit()
    assert result.resolved["patient_balance"] == 1 and result.opened["patient_balance"] == 0
    assert item.resolution.startswith("balance_settled")  # fmt: skip


def test_needs_secondary_after_primary_pays_but_not_after_crossover(session, ids):
    claim = make_claim(session, ids)
    crossed = make_claim(session, ids)
    assert claim.coverage_order == 1
    answer = [
        LineAnswer(10000, [("CO", "45", 5000), ("PR", "2", 2500)]),
        LineAnswer(3000, [("PR", "1", 1550)]),
    ]
    payment = adjudicate(session, claim, status="1", lines=answer)
    adjudicate(session, crossed, status="19", lines=answer, crossover_name="DEMO SUPPLEMENT")
    session.commit()

    result = sweep(session, as_of=_today())
    session.commit()
    assert result.opened["needs_secondary"] == 1
    (item,) = _items(session, WorkQueue.NEEDS_SECONDARY)
    assert item.claim_id == claim.id and item.claim_payment_id == payment.id
    assert item.recommended_action == "bill_secondary"
    assert "40.50 remains" in item.comments[0].body

    from claims_server.secondary.services import create_next_payer_claim

    # The item asked for the next payer's claim: creating it closes the item at once (a system
    # note, not a person's resolution code), and the next sweep has nothing left to do.
    nxt = create_next_payer_claim(session, claim)
    session.commit()
    assert item.status is WorkItemStatus.RESOLVED and item.resolved_at is not None
    assert item.resolution == f"system: the next payer's claim {nxt.public_id} was created (coverage order 2)"
    again = sweep(session, as_of=_today())
    session.commit()
    assert again.resolved["needs_secondary"] == 0 and again.opened["needs_secondary"] == 0


def test_sweep_command_line(session, ids, database_url, monkeypatch):
    from click.testing import CliRunner

    from claims_server.cli import main

    make_claim(session, ids, submitted=datetime.now(UTC) - timedelta(days=45))
    session.commit()
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    first = runner.invoke(main, ["workqueue", "sweep", "--json"])
    assert first.exit_code == 0, first.output

    assert json.loads(first.output)["opened"]["unpaid"] == 1
    second = runner.invoke(main, ["workqueue", "sweep", "--json"])
    assert json.loads(second.output)["opened"]["unpaid"] == 0
    counts = runner.invoke(main, ["workqueue", "counts"])
    assert "unpaid: 1 active" in counts.output
