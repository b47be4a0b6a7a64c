"""Cycle rules: each rule and each dunning stage, with hand-made accounts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from statements import (
    AccountSnapshot,
    CycleAction,
    CycleRules,
    CycleRulesError,
    DunningStage,
    PreviousStatement,
    SkipReason,
    decide,
)

AS_OF = date(2026, 3, 2)
RULES = CycleRules(min_days_between=28, min_balance_cents=500, max_statements=4, reminders=2)


def previous(days_ago: int, step: int, balance: int = 10000) -> PreviousStatement:
    return PreviousStatement(AS_OF - timedelta(days=days_ago), balance, step)


def test_first_statement_for_a_new_balance() -> None:
    d = decide(RULES, AccountSnapshot(amount_due_cents=10000), AS_OF)
    assert (d.action, d.stage, d.step) == (CycleAction.SEND, DunningStage.FIRST, 1)


def test_every_dunning_stage_in_order_then_a_collections_hold() -> None:
    stages = []
    prev = None
    for _ in range(5):
        d = decide(RULES, AccountSnapshot(amount_due_cents=10000, previous=prev), AS_OF)
        stages.append((d.action, d.stage, d.step))
        prev = previous(30, d.step)
    assert stages == [
        (CycleAction.SEND, DunningStage.FIRST, 1),
        (CycleAction.SEND, DunningStage.REMINDER, 2),
        (CycleAction.SEND, DunningStage.REMINDER, 3),
        (CycleAction.SEND, DunningStage.FINAL_NOTICE, 4),
        (CycleAction.HOLD, DunningStage.COLLECTIONS_HOLD, 5),
    ]


def test_max_statements_cuts_the_sequence_and_the_last_one_is_the_final_notice() -> None:
    rules = CycleRules(max_statements=2, reminders=3)
    assert [rules.stage_for_step(n) for n in (1, 2, 3)] == [
        DunningStage.FIRST,
        DunningStage.FINAL_NOTICE,
        DunningStage.COLLECTIONS_HOLD,
    ]
    only_one = CycleRules(max_statements=1)
    assert [only_one.stage_for_step(n) for n in (1, 2)] == [DunningStage.FIRST, DunningStage.COLLECTIONS_HOLD]


def test_final_notice_repeats_while_max_statements_allows_more() -> None:
    rules = CycleRules(max_statements=5, reminders=1)
    assert [rules.stage_for_step(n) for n in range(1, 7)] == [
        DunningStage.FIRST,
        DunningStage.REMINDER,
        DunningStage.FINAL_NOTICE,
        DunningStage.FINAL_NOTICE,
        DunningStage.FINAL_NOTICE,
        DunningStage.COLLECTIONS_HOLD,
    ]


def test_at_most_one_statement_per_n_days() -> None:
    assert (
        decide(RULES, AccountSnapshot(10000, previous=previous(27, 1)), AS_OF).reason is SkipReason.TOO_SOON
    )
    assert decide(RULES, AccountSnapshot(10000, previous=previous(28, 1)), AS_OF).action is CycleAction.SEND


def test_minimum_balance() -> None:
    assert decide(RULES, AccountSnapshot(499), AS_OF).reason is SkipReason.BELOW_MINIMUM
    assert decide(RULES, AccountSnapshot(500), AS_OF).action is CycleAction.SEND
    assert decide(RULES, AccountSnapshot(0), AS_OF).reason is SkipReason.NO_BALANCE
    assert decide(RULES, AccountSnapshot(-300), AS_OF).reason is SkipReason.NO_BALANCE


def test_hold_and_payment_plan_are_skipped_before_anything_else() -> None:
    on_hold = AccountSnapshot(10000, on_hold=True, payment_plan_in_good_standing=True)
    assert decide(RULES, on_hold, AS_OF).reason is SkipReason.ON_HOLD
    plan = AccountSnapshot(10000, payment_plan_in_good_standing=True)
    assert decide(RULES, plan, AS_OF).reason is SkipReason.PAYMENT_PLAN


def test_balance_waiting_on_insurance_is_not_billed() -> None:
    waiting = AccountSnapshot(amount_due_cents=0, pending_insurance_cents=5000)
    assert decide(RULES, waiting, AS_OF).reason is SkipReason.WAITING_ON_INSURANCE


def test_a_payment_restarts_the_cycle_unless_configured_otherwise() -> None:
    prev = previous(30, 3)
    paying = AccountSnapshot(9000, previous=prev, payments_since_previous_cents=1000)
    assert decide(RULES, paying, AS_OF).step == 1
    strict = CycleRules(payment_resets_dunning=False)
    assert decide(strict, paying, AS_OF).step == 4
    paid_in_full = AccountSnapshot(
        9000, previous=previous(30, 3, balance=1000), payments_since_previous_cents=1000
    )
    assert decide(strict, paid_in_full, AS_OF).step == 1


def test_no_address_is_reported_with_the_stage_it_would_have_had() -> None:
    d = decide(RULES, AccountSnapshot(10000, has_address=False), AS_OF)
    assert (d.action, d.reason, d.stage) == (CycleAction.SKIP, SkipReason.NO_ADDRESS, DunningStage.FIRST)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("min_days_between", {"min_days_between": 0}),
        ("min_balance_cents", {"min_balance_cents": 0}),
        ("max_statements", {"max_statements": 0}),
        ("reminders", {"reminders": -1}),
        ("due_days", {"due_days": 0}),
    ],
)
def test_impossible_rules_are_refused_with_the_setting_named(field: str, kwargs: dict[str, int]) -> None:
    with pytest.raises(CycleRulesError) as caught:
        CycleRules(**kwargs)
    assert caught.value.setting == field


def test_due_date() -> None:
    assert CycleRules(due_days=21).due_date(AS_OF) == date(2026, 3, 23)
