"""Payment plans: a monthly amount over selected patient balances, and missed-payment detection.

Installment ``k`` (0-based) is due on ``first_due_date`` plus ``k`` months (the day is
clamped to the month's end: a plan started on the 31st falls due on Feb 28/29). By
installment ``k`` the patient should have paid ``min(total, (k + 1) * monthly)``; an
installment is *missed* when, ``grace_days`` after its due date, the payments posted
to the plan's claims since the plan began fall short of that. Everything is derived
from the ledger, so a payment posted late or a reversal is seen on the next check.

A plan is *in good standing* when it is active and not behind; statements skip such
patients (``patients_in_good_standing``). Missing ``default_after`` installments in a
row defaults the plan: statements resume, and a person gets a work item.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claims_server.api_common.fields import cents_to_money
from claims_server.errors import NotFound
from claims_server.models import (
    Account,
    AccountCode,
    AuditAction,
    Claim,
    JournalEntry,
    JournalEventType,
    Patient,
    Posting,
    WorkQueue,
)
from claims_server.models.payments import PaymentPlan, PaymentPlanItem, PaymentPlanState
from claims_server.payments.services import PaymentRefused, open_lines
from claims_server.security.audit import audit_event
from claims_server.security.principal import current_principal

#: Longest plan offered (months); longer agreements are a collections decision.
MAX_PLAN_MONTHS = 36
#: Days after a due date before the installment counts as missed (mail and bank delays).
DEFAULT_GRACE_DAYS = 10
#: Installments behind at once that default the plan.
DEFAULT_AFTER_MISSED = 2


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, the day clamped to the target month's length."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Installment:
    number: int  # 1-based for people
    due_date: date
    expected_cumulative_cents: int
    paid_by_grace_end_cents: int
    missed: bool


@dataclass(frozen=True)
class PlanStatus:
    """A plan's position on ``as_of``: what was due, what was paid, what is behind."""

    plan_id: str
    as_of: date
    state: PaymentPlanState
    total_cents: int
    paid_cents: int
    remaining_cents: int  # the plan claims' open patient balance
    due_cents: int  # cumulative amount due by as_of (installments whose grace ended)
    behind_cents: int
    installments: tuple[Installment, ...]
    next_due_date: date | None

    @property
    def missed_count(self) -> int:
        return sum(1 for i in self.installments if i.missed)

    @property
    def in_good_standing(self) -> bool:
        return self.state is PaymentPlanState.ACTIVE and self.behind_cents <= 0

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.plan_id,
            "as_of": self.as_of.isoformat(),
            "state": self.state.value,
            "total": cents_to_money(self.total_cents),
            "paid": cents_to_money(self.paid_cents),
            "remaining": cents_to_money(self.remaining_cents),
            "due": cents_to_money(self.due_cents),
            "behind": cents_to_money(max(self.behind_cents, 0)),
            "in_good_standing": self.in_good_standing,
            "missed_installments": self.missed_count,
            "next_due_date": self.next_due_date.isoformat() if self.next_due_date else None,
            "installments": [
                {
                    "number": i.number,
                    "due_date": i.due_date.isoformat(),
                    "expected_cumulative": cents_to_money(i.expected_cumulative_cents),
                    "missed": i.missed,
                }
                for i in self.installments
            ],
        }


def create_payment_plan(
    session: Session,
    *,
    patient_id: int,
    claim_ids: Sequence[int],
    monthly_amount_cents: int,
    first_due_date: date,
    today: date,
) -> PaymentPlan:
    """Open a plan over the patient balances of ``claim_ids`` (flushes; the caller commits).

    Refused (422): no claims, a claim of another patient or with no patient balance, a
    claim already in an active plan, a non-positive monthly amount, a first due date in
    the past, or a term longer than ``MAX_PLAN_MONTHS``.
    """
    if isinstance(monthly_amount_cents, bool) or not isinstance(monthly_amount_cents, int):
        raise PaymentRefused(
            "monthly_amount: not cents", errors=[{"field": "monthly_amount", "rule": "integer_cents"}]
        )
    if monthly_amount_cents <= 0:
        raise PaymentRefused(
            "monthly_amount: must be greater than zero",
            errors=[{"field": "monthly_amount", "rule": "positive", "message": "must be greater than zero"}],
        )
    if not claim_ids:
        raise PaymentRefused(
            "claims: select at least one balance",
            errors=[{"field": "claims", "rule": "required", "message": "select at least one balance"}],
        )
    if first_due_date < today:
        raise PaymentRefused(
            "first_due_date: must not be in the past",
            errors=[{"field": "first_due_date", "rule": "not_past", "message": "must not be in the past"}],
        )
    if session.get(Patient, patient_id) is None:
        raise NotFound("no patient with that id")
    owed_by_claim: dict[int, int] = {}
    for line in open_lines(session, patient_id):
        if line.claim_id is not None:
            owed_by_claim[line.claim_id] = owed_by_claim.get(line.claim_id, 0) + line.balance_cents
    wanted = list(dict.fromkeys(claim_ids))
    for claim_id in wanted:
        claim = session.get(Claim, claim_id)
        if claim is None or claim.patient_id != patient_id or owed_by_claim.get(claim_id, 0) <= 0:
            raise PaymentRefused(
                "claims: a selected claim has no patient balance for this patient",
                errors=[{"field": "claims", "rule": "patient_balance", "message": "no patient balance"}],
            )
    taken = session.scalar(
        select(func.count())
        .select_from(PaymentPlanItem)
        .join(PaymentPlan, PaymentPlan.id == PaymentPlanItem.payment_plan_id)
        .where(PaymentPlan.state == PaymentPlanState.ACTIVE, PaymentPlanItem.claim_id.in_(wanted))
    )
    if taken:
        raise PaymentRefused(
            "claims: a selected balance is already in an active payment plan",
            errors=[{"field": "claims", "rule": "one_active_plan", "message": "already in an active plan"}],
        )
    total = sum(owed_by_claim[c] for c in wanted)
    months = -(-total // monthly_amount_cents)
    if months > MAX_PLAN_MONTHS:
        raise PaymentRefused(
            f"monthly_amount: the plan would run {months} months; the longest offered is {MAX_PLAN_MONTHS}",
            errors=[
                {
                    "field": "monthly_amount",
                    "rule": "max_term",
                    "message": f"at most {MAX_PLAN_MONTHS} months",
                }
            ],
        )
    plan = PaymentPlan(
        patient_id=patient_id,
        state=PaymentPlanState.ACTIVE,
        monthly_amount_cents=monthly_amount_cents,
        total_cents=total,
        start_date=today,
        first_due_date=first_due_date,
        missed_installments=0,
        created_by_user_id=current_principal().user_id,
        items=[PaymentPlanItem(claim_id=c, amount_cents=owed_by_claim[c]) for c in wanted],
    )
    session.add(plan)
    session.flush()
    audit_event(
        session,
        action=AuditAction.CREATE,
        event_type="payment_plan.create",
        entity_type="payment_plan",
        entity_id=plan.public_id,
        patient_id=patient_id,
        details={
            "claims": len(wanted),
            "total_cents": total,
            "monthly_amount_cents": monthly_amount_cents,
            "months": months,
        },
    )
    return plan


def _plan_payments(session: Session, plan: PaymentPlan, until: date) -> list[tuple[date, int]]:
    """(effective date, cents) of patient payments applied to the plan's claims since it began."""
    claim_ids = [item.claim_id for item in plan.items]
    started = plan.start_date
    rows = session.execute(
        select(JournalEntry.effective_date, func.sum(Posting.amount_cents))
        .join(JournalEntry, JournalEntry.id == Posting.journal_entry_id)
        .join(Account, Account.id == Posting.account_id)
        .where(
            Account.code == AccountCode.AR_PATIENT.value,
            Posting.patient_id == plan.patient_id,
            Posting.claim_id.in_(claim_ids),
            JournalEntry.event_type == JournalEventType.PATIENT_PAYMENT,
            JournalEntry.effective_date >= started,
            JournalEntry.effective_date <= until,
        )
        .group_by(JournalEntry.effective_date)
    ).all()
    return [(day, -int(total)) for day, total in rows if total]


def _remaining(session: Session, plan: PaymentPlan) -> int:
    owed = 0
    claim_ids = {item.claim_id for item in plan.items}
    for line in open_lines(session, plan.patient_id):
        if line.claim_id in claim_ids:
            owed += line.balance_cents
    return owed


def plan_status(
    session: Session, plan: PaymentPlan, as_of: date, *, grace_days: int = DEFAULT_GRACE_DAYS
) -> PlanStatus:
    """Where ``plan`` stands on ``as_of`` (reads the ledger; changes nothing)."""
    payments = _plan_payments(session, plan, as_of)
    paid = sum(cents for _, cents in payments)
    months = -(-plan.total_cents // plan.monthly_amount_cents)
    installments: list[Installment] = []
    due = 0
    next_due: date | None = None
    for k in range(months):
        expected = min(plan.total_cents, (k + 1) * plan.monthly_amount_cents)
        due_date = add_months(plan.first_due_date, k)
        if next_due is None and expected > paid:
            next_due = due_date  # the first installment the payments so far do not cover
        grace_end = due_date + timedelta(days=grace_days)
        if grace_end >= as_of:
            continue
        paid_by = sum(cents for day, cents in payments if day <= grace_end)
        installments.append(Installment(k + 1, due_date, expected, paid_by, paid_by < expected))
        due = expected
    remaining = _remaining(session, plan)
    if remaining <= 0:
        next_due = None
    return PlanStatus(
        plan_id=plan.public_id,
        as_of=as_of,
        state=plan.state,
        total_cents=plan.total_cents,
        paid_cents=paid,
        remaining_cents=remaining,
        due_cents=due,
        behind_cents=due - paid,
        installments=tuple(installments),
        next_due_date=next_due,
    )


@dataclass(frozen=True)
class PlanCheck:
    plan: PaymentPlan
    status: PlanStatus
    newly_missed: int
    changed_state: bool


def _active_plans(session: Session, patient_ids: Iterable[int] | None = None) -> list[PaymentPlan]:
    stmt = select(PaymentPlan).where(PaymentPlan.state == PaymentPlanState.ACTIVE).order_by(PaymentPlan.id)
    if patient_ids is not None:
        stmt = stmt.where(PaymentPlan.patient_id.in_(list(patient_ids)))
    return list(session.scalars(stmt))


def check_payment_plans(
    session: Session,
    as_of: date,
    *,
    grace_days: int = DEFAULT_GRACE_DAYS,
    default_after: int = DEFAULT_AFTER_MISSED,
) -> list[PlanCheck]:
    """Detect missed installments on every active plan (flushes; the caller commits).

    A plan whose balances are paid is completed. A newly missed installment is audited
    and opens a ``patient_balance`` work item (one per installment, idempotent); a plan
    ``default_after`` installments behind is defaulted. Running it twice for the same
    day changes nothing the second time.
    """
    from claims_server.workqueue.services import open_work_item

    results: list[PlanCheck] = []
    for plan in _active_plans(session):
        status = plan_status(session, plan, as_of, grace_days=grace_days)
        changed = False
        newly = max(status.missed_count - plan.missed_installments, 0)
        if status.remaining_cents <= 0:
            plan.state = PaymentPlanState.COMPLETED
            changed = True
        else:
            behind_installments = -(-max(status.behind_cents, 0) // plan.monthly_amount_cents)
            for installment in status.installments:
                if not installment.missed:
                    continue
                first_claim = session.get(Claim, plan.items[0].claim_id)
                open_work_item(
                    session,
                    queue=WorkQueue.PATIENT_BALANCE,
                    claim=first_claim,
                    reason_codes=[],
                    recommended_action="contact_patient_about_payment_plan",
                    explanation=(
                        f"Payment plan installment {installment.number} due {installment.due_date.isoformat()} "
                        "was not paid within the grace period."
                    ),
                    dedupe_key=f"payment_plan:{plan.public_id}:missed:{installment.number}",
                    priority=1,
                )
            if behind_installments >= default_after:
                plan.state = PaymentPlanState.DEFAULTED
                changed = True
        if newly:
            audit_event(
                session,
                action=AuditAction.UPDATE,
                event_type="payment_plan.missed",
                entity_type="payment_plan",
                entity_id=plan.public_id,
                patient_id=plan.patient_id,
                details={"missed_installments": status.missed_count, "behind_cents": status.behind_cents},
            )
        if changed:
            audit_event(
                session,
                action=AuditAction.UPDATE,
                event_type=f"payment_plan.{plan.state.value}",
                entity_type="payment_plan",
                entity_id=plan.public_id,
                patient_id=plan.patient_id,
            )
        plan.missed_installments = status.missed_count
        plan.last_checked_on = as_of
        results.append(
            PlanCheck(plan, plan_status(session, plan, as_of, grace_days=grace_days), newly, changed)
        )
    session.flush()
    return results


def patients_in_good_standing(
    session: Session,
    as_of: date,
    *,
    patient_ids: Iterable[int] | None = None,
    grace_days: int = DEFAULT_GRACE_DAYS,
) -> set[int]:
    """Patients with an active payment plan that is not behind on ``as_of`` (statements skip them)."""
    good: set[int] = set()
    for plan in _active_plans(session, patient_ids):
        if plan_status(session, plan, as_of, grace_days=grace_days).in_good_standing:
            good.add(plan.patient_id)
    return good


def cancel_payment_plan(session: Session, plan: PaymentPlan) -> PaymentPlan:
    """End an active plan at the patient's or the practice's request (statements resume)."""
    if plan.state is not PaymentPlanState.ACTIVE:
        raise PaymentRefused(
            "the payment plan is not active",
            errors=[{"field": "state", "rule": "active", "message": "not active"}],
        )
    plan.state = PaymentPlanState.CANCELLED
    audit_event(
        session,
        action=AuditAction.UPDATE,
        event_type="payment_plan.cancelled",
        entity_type="payment_plan",
        entity_id=plan.public_id,
        patient_id=plan.patient_id,
    )
    session.flush()
    return plan
