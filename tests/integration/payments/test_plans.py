"""Payment plans: creation rules, installments due, missed-payment detection, default, completion."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from claims_server.models import AuditEvent, PaymentMethod, WorkItem, WorkQueue
from claims_server.models.payments import PaymentPlanState, PaymentSource
from claims_server.payments.plans import (
    add_months,
    cancel_payment_plan,
    check_payment_plans,
    create_payment_plan,
    patients_in_good_standing,
    plan_status,
)
from claims_server.payments.services import PaymentRefused, record_patient_payment
from tests.integration.payments.support import owed_claim

START = date(2026, 2, 20)


@pytest.fixture
def owed(session, world):
    """The patient owes 60.00 on one claim and 30.00 on another (90.00)."""
    first = owed_claim(session, world, "PLAN1", [("99213", 15000, 6000)], since=date(2026, 1, 5))
    second = owed_claim(session, world, "PLAN2", [("99214", 20000, 3000)], since=date(2026, 1, 20))
    return {"patient": first.patient_id, "claims": [first.id, second.id]}


def _plan(session, owed, monthly=3000, first_due=date(2026, 3, 1), claims=None):
    plan = create_payment_plan(
        session,
        patient_id=owed["patient"],
        claim_ids=claims or owed["claims"],
        monthly_amount_cents=monthly,
        first_due_date=first_due,
        today=START,
    )
    session.commit()
    return plan


def _pay(session, owed, cents, on, key, plan=None):
    record_patient_payment(
        session,
        patient_id=owed["patient"],
        amount_cents=cents,
        source=PaymentSource.FRONT_DESK,
        method=PaymentMethod.CARD,
        idempotency_key=key,
        received_on=on,
        payment_plan_id=plan.id if plan else None,
    )
    session.commit()


def test_add_months_clamps_to_the_end_of_the_month():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2027, 12, 15), 2) == date(2028, 2, 15)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"monthly": 0}, "positive"),
        ({"monthly": 200}, "max_term"),  # 90.00 at 2.00 a month is 45 months
        ({"first_due": date(2026, 2, 1)}, "not_past"),
    ],
)
def test_plan_creation_rules(session, owed, kwargs, rule):
    with pytest.raises(PaymentRefused) as caught:
        _plan(session, owed, **kwargs)
    assert caught.value.errors[0]["rule"] == rule


def test_a_balance_is_in_one_active_plan_and_must_be_owed(session, owed, world):
    plan = _plan(session, owed, claims=[owed["claims"][0]])
    assert (plan.total_cents, plan.state) == (6000, PaymentPlanState.ACTIVE)
    with pytest.raises(PaymentRefused) as caught:
        _plan(session, owed, claims=[owed["claims"][0]])
    assert caught.value.errors[0]["rule"] == "one_active_plan"
    session.rollback()
    paid_off = owed_claim(session, world, "PLAN3", [("99212", 9000, 0)], since=date(2026, 1, 5))
    with pytest.raises(PaymentRefused) as caught:
        _plan(session, owed, claims=[paid_off.id])
    assert caught.value.errors[0]["rule"] == "patient_balance"
    session.rollback()
    cancel_payment_plan(session, plan)
    session.commit()
    assert _plan(session, owed, claims=[owed["claims"][0]]).state is PaymentPlanState.ACTIVE


def test_installments_missed_detection_default_and_idempotent_checks(session, owed):
    plan = _plan(session, owed)  # 90.00 at 30.00: due Mar 1, Apr 1, May 1 (10 days' grace)
    status = plan_status(session, plan, date(2026, 3, 5))
    assert status.installments == () and status.in_good_standing and status.next_due_date == date(2026, 3, 1)
    assert patients_in_good_standing(session, date(2026, 3, 5)) == {owed["patient"]}

    _pay(session, owed, 3000, date(2026, 3, 3), "m1", plan)
    on_time = plan_status(session, plan, date(2026, 3, 20))
    assert [(i.number, i.missed) for i in on_time.installments] == [(1, False)]
    assert (on_time.paid_cents, on_time.due_cents, on_time.remaining_cents) == (3000, 3000, 6000)
    assert on_time.next_due_date == date(2026, 4, 1)

    # April's 30.00 never comes: on April 20 (grace ended April 11) it is missed.
    (check,) = check_payment_plans(session, date(2026, 4, 20))
    session.commit()
    assert (check.newly_missed, check.status.behind_cents, check.plan.state) == (
        1,
        3000,
        PaymentPlanState.ACTIVE,
    )
    assert not check.status.in_good_standing
    assert patients_in_good_standing(session, date(2026, 4, 20)) == set()
    items = session.scalars(select(WorkItem).where(WorkItem.queue == WorkQueue.PATIENT_BALANCE)).all()
    assert [i.dedupe_key for i in items] == [f"payment_plan:{plan.public_id}:missed:2"]
    missed_events = session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == "payment_plan.missed")
    ).all()
    assert len(missed_events) == 1 and missed_events[0].patient_id == owed["patient"]

    (again,) = check_payment_plans(session, date(2026, 4, 20))
    session.commit()
    assert again.newly_missed == 0
    assert len(session.scalars(select(WorkItem)).all()) == 1
    assert (
        len(session.scalars(select(AuditEvent).where(AuditEvent.event_type == "payment_plan.missed")).all())
        == 1
    )

    # May is missed too: two installments behind defaults the plan, and statements resume.
    (defaulted,) = check_payment_plans(session, date(2026, 5, 20))
    session.commit()
    assert (defaulted.plan.state, defaulted.status.behind_cents, defaulted.plan.missed_installments) == (
        PaymentPlanState.DEFAULTED,
        6000,
        2,
    )
    assert check_payment_plans(session, date(2026, 6, 20)) == []  # only active plans are checked


def test_catching_up_restores_good_standing_and_paying_off_completes(session, owed):
    plan = _plan(session, owed)
    _pay(session, owed, 3000, date(2026, 3, 2), "c1", plan)
    check_payment_plans(session, date(2026, 4, 20))
    session.commit()
    _pay(session, owed, 3000, date(2026, 4, 21), "c2", plan)  # late, but caught up
    status = plan_status(session, plan, date(2026, 4, 22))
    assert status.in_good_standing and status.missed_count == 1 and status.behind_cents == 0
    _pay(session, owed, 3000, date(2026, 4, 25), "c3", plan)
    (done,) = check_payment_plans(session, date(2026, 4, 26))
    session.commit()
    assert done.plan.state is PaymentPlanState.COMPLETED and done.status.remaining_cents == 0


def test_plan_payments_go_to_the_plan_claims_first(session, owed, world):
    newest = owed_claim(session, world, "PLAN4", [("99215", 25000, 5000)], since=date(2026, 2, 1))
    plan = _plan(session, owed, claims=[newest.id], monthly=2500)
    # Oldest-first would pay PLAN1; a payment on the plan pays the plan's claim.
    _pay(session, owed, 2500, date(2026, 3, 1), "p1", plan)
    status = plan_status(session, plan, date(2026, 3, 20))
    assert (status.paid_cents, status.remaining_cents, status.behind_cents) == (2500, 2500, 0)


@pytest.mark.redis
@pytest.mark.worker
def test_the_daily_check_runs_in_a_real_worker(session, owed, celery_worker_process):
    from celery import Celery

    plan = _plan(session, owed)
    client = Celery(broker=celery_worker_process["broker_url"], backend=celery_worker_process["broker_url"])
    result = client.send_task(
        "claims_server.payments.check_plans", args=["2026-04-20"], queue=celery_worker_process["queue"]
    )
    assert result.get(timeout=60) == {
        "as_of": "2026-04-20",
        "plans": 1,
        "newly_missed": 2,
        "state_changes": 1,
    }
    session.expire_all()
    assert session.get(type(plan), plan.id).state is PaymentPlanState.DEFAULTED
