"""Cycle rules: who gets a statement today, at which dunning stage, and who needs a person.

The cadence practices use (athenahealth, Tebra): a first statement once insurance has
finished, reminders every cycle while the balance stays open, a final notice, then the
account stops receiving statements and waits for a person (collections review, payment
plan, hardship write-off). Nothing here sends an account to a collection agency: the
hold is where a human decides.

Order of the checks (the first that applies decides, so the skip reason is unambiguous):
already a statement this cycle, hold, payment plan in good standing, nothing owed,
waiting on insurance, below the minimum, then the dunning step; a step past
``max_statements`` is a collections hold instead of a statement.

The cycle: a patient gets at most one statement in any ``min_days_between`` days. A
statement (not void) dated less than that many days before the run's ``as_of`` date, on
it, or after it (a back-dated run) means the patient already has this cycle's statement:
a second run on the same day issues nothing new and counts them as
``already_this_cycle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from statements.model import DunningStage, PreviousStatement


class CycleAction(StrEnum):
    SEND = "send"
    SKIP = "skip"
    HOLD = "hold"  # place a collections hold: a person must review the account


class SkipReason(StrEnum):
    ON_HOLD = "on_hold"
    PAYMENT_PLAN = "payment_plan"
    NO_BALANCE = "no_balance"
    WAITING_ON_INSURANCE = "waiting_on_insurance"
    BELOW_MINIMUM = "below_minimum"
    ALREADY_THIS_CYCLE = "already_this_cycle"  # a statement within min_days_between of as_of
    TOO_SOON = "already_this_cycle"  # the former name (an alias)
    NO_ADDRESS = "no_address"


class CycleRulesError(ValueError):
    """A rule set that cannot work (names the setting and the rule)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


@dataclass(frozen=True, slots=True)
class CycleRules:
    """The practice's statement policy (defaults: a 28-day cycle, $5 minimum, 4 statements).

    ``min_days_between`` is the cycle: at most one statement per patient in that many days.
    """

    min_days_between: int = 28  # at most one statement per this many days
    min_balance_cents: int = 500  # below this, no statement (the stamp costs more)
    max_statements: int = 4  # statements per dunning cycle before a collections hold
    reminders: int = 2  # reminder statements between the first and the final notice
    due_days: int = 21  # due date = statement date + this
    payment_resets_dunning: bool = True  # a payment since the last statement starts a new cycle
    # Payer ids whose plans allow balance billing (PR-45 billable); others' PR-45 is held off.
    balance_billing_payers: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.min_days_between < 1:
            raise CycleRulesError("min_days_between", "must be at least 1 day")
        if self.min_balance_cents < 1:
            raise CycleRulesError("min_balance_cents", "must be at least 1 cent")
        if self.max_statements < 1:
            raise CycleRulesError("max_statements", "must be at least 1")
        if self.reminders < 0:
            raise CycleRulesError("reminders", "must not be negative")
        if self.due_days < 1:
            raise CycleRulesError("due_days", "must be at least 1 day")

    def stage_for_step(self, step: int) -> DunningStage:
        """The stage of the ``step``-th statement of a cycle (1-based).

        The sequence is first, ``reminders`` reminders, final notice (repeated while
        ``max_statements`` allows more); ``max_statements`` may cut it short, and then the
        last statement sent is the final notice, because the patient must be told before
        a person reviews the account. The first statement is always a plain one.
        """
        if step < 1:
            raise ValueError("dunning steps start at 1")
        if step > self.max_statements:
            return DunningStage.COLLECTIONS_HOLD
        if step == 1:
            return DunningStage.FIRST
        if step == self.max_statements or step >= self.reminders + 2:
            return DunningStage.FINAL_NOTICE
        return DunningStage.REMINDER

    def due_date(self, statement_date: date) -> date:
        return statement_date + timedelta(days=self.due_days)


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """What the cycle rules look at for one patient on the run date."""

    amount_due_cents: int  # owed now, excluding claims waiting on insurance
    pending_insurance_cents: int = 0  # patient's part on claims an insurer still has open
    previous: PreviousStatement | None = None
    payments_since_previous_cents: int = 0
    on_hold: bool = False  # a collections hold or a manual hold that is not released
    payment_plan_in_good_standing: bool = False
    has_address: bool = True
    already_this_cycle: bool = False  # a statement dated within min_days_between of as_of, before or after


@dataclass(frozen=True, slots=True)
class CycleDecision:
    action: CycleAction
    reason: SkipReason | None = None
    stage: DunningStage | None = None
    step: int = 0  # dunning step of the statement to send (or of the hold)


def decide(rules: CycleRules, account: AccountSnapshot, as_of: date) -> CycleDecision:
    """Apply the cycle rules (see the module docstring) to one account."""
    previous = account.previous
    if account.already_this_cycle or (
        previous is not None and abs((as_of - previous.statement_date).days) < rules.min_days_between
    ):
        return CycleDecision(CycleAction.SKIP, SkipReason.ALREADY_THIS_CYCLE)
    if account.on_hold:
        return CycleDecision(CycleAction.SKIP, SkipReason.ON_HOLD)
    if account.payment_plan_in_good_standing:
        return CycleDecision(CycleAction.SKIP, SkipReason.PAYMENT_PLAN)
    if account.amount_due_cents <= 0:
        reason = (
            SkipReason.WAITING_ON_INSURANCE if account.pending_insurance_cents > 0 else SkipReason.NO_BALANCE
        )
        return CycleDecision(CycleAction.SKIP, reason)
    if account.amount_due_cents < rules.min_balance_cents:
        return CycleDecision(CycleAction.SKIP, SkipReason.BELOW_MINIMUM)
    step = next_step(rules, previous, account.payments_since_previous_cents)
    stage = rules.stage_for_step(step)
    if stage is DunningStage.COLLECTIONS_HOLD:
        return CycleDecision(CycleAction.HOLD, stage=stage, step=step)
    if not account.has_address:
        return CycleDecision(CycleAction.SKIP, SkipReason.NO_ADDRESS, stage=stage, step=step)
    return CycleDecision(CycleAction.SEND, stage=stage, step=step)


def next_step(rules: CycleRules, previous: PreviousStatement | None, payments_since_cents: int) -> int:
    """The dunning step of the next statement: 1 starts a cycle, else one more than the last.

    A new cycle starts when there was no statement, when the last one was paid in full,
    or (``payment_resets_dunning``) when any payment came in since: a patient who is
    paying is not escalated towards collections.
    """
    if previous is None or previous.dunning_step < 1:
        return 1
    if payments_since_cents >= previous.balance_cents > 0:
        return 1
    if rules.payment_resets_dunning and payments_since_cents > 0:
        return 1
    return previous.dunning_step + 1
