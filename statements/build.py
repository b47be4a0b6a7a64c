"""From ledger lines to a statement: visits, reasons, account summary, aging, amount due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from statements.explanations import ABOVE_ALLOWED_CARC
from statements.model import (
    Aging,
    DunningStage,
    LedgerLine,
    Statement,
    StatementInput,
    StatementInputError,
    StatementLine,
    Visit,
)
from statements.text import day, dunning_message, money, reasons_for, service_description

_CENT_FIELDS = (
    "billed_cents",
    "insurance_paid_cents",
    "adjustments_cents",
    "balance_cents",
    "patient_paid_cents",
    "patient_adjusted_cents",
    "insurance_pending_cents",
    "insurance_open_cents",
)


@dataclass(frozen=True, slots=True)
class AccountAmounts:
    """The three totals the cycle rules and the statement share."""

    balance_cents: int  # Σ line balances + account credit
    pending_insurance_cents: int  # positive balances on claims an insurer still has open
    amount_due_cents: int  # what the patient is asked to pay now (never below zero)


def validate_input(data: StatementInput) -> None:
    """Refuse an input that cannot make an honest statement (names field and rule, no values)."""
    if not data.account_number:
        raise StatementInputError("account_number", "required", "an account number is required")
    for i, line in enumerate(data.lines):
        for name in _CENT_FIELDS:
            value = getattr(line, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise StatementInputError(f"lines[{i}].{name}", "integer_cents", "must be integer cents")
        if line.responsible_since > data.statement_date:
            raise StatementInputError(
                f"lines[{i}].responsible_since", "not_future", "is after the statement date"
            )
    if data.account_credit_cents > 0:
        raise StatementInputError("account_credit_cents", "not_positive", "a credit cannot be positive")
    for name in ("payments_since_previous_cents", "adjustments_since_previous_cents"):
        if getattr(data, name) < 0:
            raise StatementInputError(name, "not_negative", "must not be negative")


def held_cents(line: LedgerLine) -> int:
    """The part of ``line``'s balance that must not be billed: PR-45 without balance billing.

    PR-45 is the charge above the allowed amount put on the patient; only a provider the
    plan lets balance-bill (out of network) may ask for it (``statements.explanations``).
    Otherwise it stays in the ledger, off the statement, until a person has the payer
    reprocess it as CO-45 or writes it off.
    """
    if line.balance_billing:
        return 0
    above = sum(
        part.amount_cents
        for part in line.responsibility
        if part.group.strip().upper() == "PR" and part.reason.strip().upper() == ABOVE_ALLOWED_CARC
    )
    return max(0, min(above, line.balance_cents))


def _owed(line: LedgerLine) -> int:
    """What the patient may be billed for ``line`` (the balance less any held part)."""
    return line.balance_cents - held_cents(line)


def _waiting(line: LedgerLine) -> bool:
    """The patient's part of a claim an insurer has not finished is not due yet."""
    return bool(line.insurance_pending_cents) and _owed(line) > 0


def account_amounts(data: StatementInput) -> AccountAmounts:
    """Balance, pending-insurance part and amount due of ``data``.

    A claim an insurer has not finished (a secondary still to pay, a denial being
    appealed) keeps its patient part out of the amount due: billing it now would ask
    the patient for money the insurer may still pay. A held part (:func:`held_cents`) is
    in none of the three.
    """
    balance = sum(_owed(line) for line in data.lines) + data.account_credit_cents
    pending = sum(_owed(line) for line in data.lines if _waiting(line))
    return AccountAmounts(balance, pending, max(0, balance - pending))


def age_balances(data: StatementInput) -> Aging:
    """Age the amount due by how long each line has been the patient's (0-30, 31-60, 61-90, 91-120, 120+).

    Credits (payments on account, overpaid lines) pay the oldest amounts first, as a
    patient's payment is applied in practice.
    """
    owed: list[tuple[int, int]] = []  # (age in days, cents)
    credit = -data.account_credit_cents
    for line in data.lines:
        if _waiting(line):
            continue
        cents = _owed(line)
        if cents > 0:
            owed.append(((data.statement_date - line.responsible_since).days, cents))
        else:
            credit -= cents
    owed.sort(key=lambda item: item[0], reverse=True)
    buckets = [0, 0, 0, 0, 0]
    for age, cents in owed:
        applied = min(credit, cents)
        credit -= applied
        cents -= applied
        if cents:
            buckets[_bucket_index(age)] += cents
    return Aging(*buckets)


def _bucket_index(age_days: int) -> int:
    for index, limit in enumerate((30, 60, 90, 120)):
        if age_days <= limit:
            return index
    return 4


def _statement_line(line: LedgerLine, credit_applied: int) -> StatementLine:
    """The printed row of ``line``, drawn from the ledger identity so that it adds up.

    You owe = what may be billed, unless the claim waits on insurance (then it is in "not
    due"), less the account credit the statement applies to it (shown as paid by you).
    Adjustments are what is left: the insurers' CO/OA/PI adjustments, the patient's
    write-offs and any held part, which is exactly what the ledger took off the line.
    """
    owed = _owed(line)
    waiting = _waiting(line)
    owe = (0 if waiting else owed) - credit_applied
    not_due = line.insurance_open_cents + (owed if waiting else 0)
    paid = line.patient_paid_cents + credit_applied
    return StatementLine(
        line_ref=line.line_ref,
        claim_ref=line.claim_ref,
        service_date=line.service_date,
        procedure_code=line.procedure_code,
        description=service_description(line.procedure_code, fallback=line.description),
        billed_cents=line.billed_cents,
        insurance_paid_cents=line.insurance_paid_cents,
        adjustments_cents=line.billed_cents - line.insurance_paid_cents - paid - not_due - owe,
        patient_paid_cents=paid,
        balance_cents=owe,
        reasons=reasons_for(
            line.responsibility, owed, pending_insurance=waiting, balance_billing=line.balance_billing
        ),
        pending_insurance=waiting,
        not_due_cents=not_due,
    )


def _shown(lines: tuple[LedgerLine, ...]) -> list[LedgerLine]:
    """Lines the patient sees (something billable on them), in visit order."""
    return sorted(
        (line for line in lines if _owed(line) != 0),
        key=lambda ln: (ln.service_date, ln.claim_ref, ln.line_ref),
    )


def _credit_applied(lines: list[LedgerLine], credit_cents: int) -> tuple[dict[str, int], int]:
    """Account credit (payments on account) applied to the rows it pays, oldest first.

    The same order as the aging (and as a payment is allocated), so the row that the
    patient's earlier payment covers shows it as paid instead of "You owe" with the money
    on another row. Returns line_ref -> applied and the credit left (<= 0).
    """
    credit = -credit_cents
    applied: dict[str, int] = {}
    for line in sorted(lines, key=lambda ln: (ln.responsible_since, ln.service_date, ln.line_ref)):
        if credit <= 0:
            break
        due = 0 if _waiting(line) else _owed(line)
        if due > 0:
            take = min(credit, due)
            applied[line.line_ref] = take
            credit -= take
    return applied, -credit


def group_visits(lines: tuple[LedgerLine, ...], credit_cents: int = 0) -> tuple[Visit, ...]:
    """Rows grouped by visit (claim, date of service, provider), oldest first.

    ``credit_cents`` (<= 0): the account credit applied to the rows (see :func:`_credit_applied`).
    """
    shown = _shown(lines)
    applied, _left = _credit_applied(shown, credit_cents)
    groups: dict[tuple[str, date, str], list[StatementLine]] = {}
    for line in shown:
        key = (line.claim_ref, line.service_date, line.provider_name)
        groups.setdefault(key, []).append(_statement_line(line, applied.get(line.line_ref, 0)))
    return tuple(
        Visit(service_date=dos, provider_name=provider, lines=tuple(items))
        for (_, dos, provider), items in groups.items()
    )


def build_statement(data: StatementInput, *, stage: DunningStage, step: int, due_date: date) -> Statement:
    """The statement for ``data`` at dunning ``stage`` (decided by ``statements.cycle.decide``)."""
    validate_input(data)
    if stage is DunningStage.COLLECTIONS_HOLD:
        raise StatementInputError("stage", "no_statement_on_hold", "a collections hold sends no statement")
    if due_date < data.statement_date:
        raise StatementInputError("due_date", "after_statement_date", "is before the statement date")
    amounts = account_amounts(data)
    # previous + new charges - payments - adjustments = balance: new charges are what moved
    # to the patient since the last statement (PR transfers, self-pay charges).
    new_charges = (
        amounts.balance_cents
        - data.previous_balance_cents
        + data.payments_since_previous_cents
        + data.adjustments_since_previous_cents
    )
    message = dunning_message(
        stage,
        practice_name=data.practice.name,
        phone=data.practice.phone_text(),
        amount_due=money(amounts.amount_due_cents),
        due_date=day(due_date),
    )
    return Statement(
        statement_date=data.statement_date,
        due_date=due_date,
        account_number=data.account_number,
        statement_ref=data.statement_ref,
        practice=data.practice,
        guarantor=data.guarantor,
        patient_name=data.patient_name,
        visits=group_visits(data.lines, data.account_credit_cents),
        previous_balance_cents=data.previous_balance_cents,
        new_charges_cents=new_charges,
        payments_cents=data.payments_since_previous_cents,
        adjustments_cents=data.adjustments_since_previous_cents,
        balance_cents=amounts.balance_cents,
        pending_insurance_cents=amounts.pending_insurance_cents,
        account_credit_cents=data.account_credit_cents,
        amount_due_cents=amounts.amount_due_cents,
        aging=age_balances(data),
        dunning_stage=stage,
        dunning_step=step,
        dunning_message=message,
        unapplied_credit_cents=_credit_applied(_shown(data.lines), data.account_credit_cents)[1],
        held_cents=sum(held_cents(line) for line in data.lines),
    )
