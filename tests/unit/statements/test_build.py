"""Statement model: amounts, aging, reasons, descriptions, visits, dunning text, bad input."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from coding import cpt
from statements import DunningStage, StatementInputError, build_statement
from statements.text import money, service_description, service_text
from tests.unit.statements.support import AS_OF, line, statement_input

DUE = AS_OF + timedelta(days=21)


def build(*lines, stage=DunningStage.FIRST, **extra):
    return build_statement(statement_input(*lines, **extra), stage=stage, step=1, due_date=DUE)


def test_amount_due_excludes_claims_waiting_on_insurance() -> None:
    s = build(
        line("A:1", 4000, AS_OF - timedelta(days=10)),
        line("B:1", 5000, AS_OF - timedelta(days=5), pending=15000, claim="CLAIMB"),
    )
    assert (s.balance_cents, s.pending_insurance_cents, s.amount_due_cents) == (9000, 5000, 4000)
    pending = [ln for ln in s.lines() if ln.pending_insurance]
    assert [ln.line_ref for ln in pending] == ["B:1"]
    # A line still with an insurer is never explained as "yours to pay".
    (reason,) = pending[0].reasons
    assert reason.label == "Waiting on insurance" and "yours to pay" not in reason.explanation


def test_aging_buckets_by_days_since_the_patient_became_responsible() -> None:
    s = build(
        line("A:1", 1000, AS_OF - timedelta(days=30)),  # current (0-30)
        line("A:2", 2000, AS_OF - timedelta(days=31)),  # 31-60
        line("A:3", 3000, AS_OF - timedelta(days=90)),  # 61-90
        line("A:4", 4000, AS_OF - timedelta(days=120)),  # 91-120
        line("A:5", 5000, AS_OF - timedelta(days=121)),  # over 120
    )
    a = s.aging
    assert (a.current_cents, a.days_31_60_cents, a.days_61_90_cents) == (1000, 2000, 3000)
    assert (a.days_91_120_cents, a.over_120_cents, a.over_90_cents) == (4000, 5000, 9000)
    assert a.total_cents == s.amount_due_cents == 15000


def test_credits_pay_the_oldest_balance_first() -> None:
    s = build(
        line("A:1", 1000, AS_OF - timedelta(days=5)),
        line("A:2", 2000, AS_OF - timedelta(days=100)),
        credit=-2500,
    )
    # 2,500 of credit: all of the 100-day-old 2,000, then 500 of the current 1,000.
    assert (s.aging.current_cents, s.aging.days_91_120_cents) == (500, 0)
    assert s.amount_due_cents == 500 == s.aging.total_cents


def test_credit_larger_than_the_balance_means_nothing_due() -> None:
    s = build(line("A:1", 1000, AS_OF), credit=-1500)
    assert (s.balance_cents, s.amount_due_cents, s.aging.total_cents) == (-500, 0, 0)


def test_account_summary_balances() -> None:
    s = build(
        line("A:1", 7000, AS_OF - timedelta(days=3)),
        previous_balance_cents=5000,
        payments_since_previous_cents=2000,
        adjustments_since_previous_cents=500,
    )
    # 5,000 previous + new - 2,000 payments - 500 adjustments = 7,000 => new charges 4,500.
    assert s.new_charges_cents == 4500
    assert s.previous_balance_cents + s.new_charges_cents - s.payments_cents - s.adjustments_cents == 7000


def test_plain_language_reasons_from_the_carc_explanations() -> None:
    s = build(line("A:1", 4000, AS_OF, parts=(("PR", "1", 3000), ("PR", "3", 1000), ("PR", "1", 0))))
    reasons = s.lines()[0].reasons
    assert [(r.label, r.amount_cents, r.code) for r in reasons] == [
        ("Deductible", 3000, "PR-1"),
        ("Copay", 1000, "PR-3"),
    ]
    assert "deductible" in reasons[0].explanation
    assert "copay" in reasons[1].explanation
    not_covered = build(line("A:1", 2500, AS_OF, parts=(("PR", "96", 2500),))).lines()[0].reasons[0]
    assert not_covered.label == "Not covered" and "does not cover" in not_covered.explanation
    coins = build(line("A:1", 1500, AS_OF, parts=(("PR", "2", 1500),))).lines()[0].reasons[0]
    assert coins.label == "Coinsurance" and "percentage share" in coins.explanation


def test_repeated_carcs_merge_and_self_pay_lines_get_a_reason() -> None:
    merged = build(line("A:1", 3000, AS_OF, parts=(("PR", "2", 1000), ("pr", "2", 2000)))).lines()[0]
    assert [(r.code, r.amount_cents) for r in merged.reasons] == [("PR-2", 3000)]
    self_pay = build(line("A:1", 8000, AS_OF, paid=0, adjusted=0)).lines()[0]
    assert [(r.label, r.amount_cents) for r in self_pay.reasons] == [("Amount due", 8000)]
    unknown = build(line("A:1", 900, AS_OF, parts=(("PR", "ZZ9", 900),))).lines()[0].reasons[0]
    assert unknown.label == "Your share" and "yours to pay" in unknown.explanation


def test_service_descriptions_hcpcs_then_licensed_cpt_then_the_code() -> None:
    assert service_description("G0008") == "Administration of influenza virus vaccine"
    long = service_description("E0114")
    assert long.startswith("Crutches underarm") and long.endswith("\u2026") and len(long) <= 60
    # Without the licensed CPT text: plain words by code range, never "Procedure 99213".
    assert service_description("99213") == "Office visit"
    assert service_description("99213", fallback="Follow-up visit") == "Follow-up visit"
    assert service_description("99213", fallback="99213") == "Office visit"
    assert service_description("0001U") == ""  # nothing known: the row shows the code once
    assert service_text("99213", "Office visit") == "99213 Office visit"
    assert service_text("0001U", "") == "0001U" and service_text("99212", "99212") == "99212"
    cpt.use(cpt.read_csv(b"code,short_description,long_description\n99213,Office visit est pt,Long\n"))
    try:
        assert service_description("99213") == "Office visit est pt"
    finally:
        cpt.use(None)


def test_visits_group_lines_by_claim_and_date_and_leave_out_settled_lines() -> None:
    s = build(
        line("A:2", 1500, date(2026, 1, 5), dos=date(2026, 1, 5)),
        line("A:1", 4000, date(2026, 1, 5), dos=date(2026, 1, 5)),
        line("B:1", 0, date(2025, 12, 1), claim="CLAIMB"),
        line("C:1", 2500, date(2025, 11, 2), claim="CLAIMC"),
    )
    assert [(v.service_date, [ln.line_ref for ln in v.lines]) for v in s.visits] == [
        (date(2025, 11, 2), ["C:1"]),
        (date(2026, 1, 5), ["A:1", "A:2"]),
    ]
    assert s.visits[1].balance_cents == 5500


@pytest.mark.parametrize(
    ("stage", "phrase"),
    [
        (DunningStage.FIRST, "Thank you for choosing"),
        (DunningStage.REMINDER, "Reminder: we have not yet received payment of $40.00"),
        (DunningStage.FINAL_NOTICE, "Final notice: your balance of $40.00 is past due"),
    ],
)
def test_dunning_message_by_stage(stage: DunningStage, phrase: str) -> None:
    s = build(line("A:1", 4000, AS_OF), stage=stage)
    assert phrase in s.dunning_message
    assert "03/23/2026" in s.dunning_message and "(217) 555-0100" in s.dunning_message


def test_no_statement_for_a_collections_hold() -> None:
    with pytest.raises(StatementInputError) as caught:
        build(line("A:1", 4000, AS_OF), stage=DunningStage.COLLECTIONS_HOLD)
    assert caught.value.rule == "no_statement_on_hold"


@pytest.mark.parametrize(
    ("lines", "extra", "field", "rule"),
    [
        ((line("A:1", 4000, AS_OF + timedelta(days=1)),), {}, "lines[0].responsible_since", "not_future"),
        ((line("A:1", 1, AS_OF),), {"credit": 5}, "account_credit_cents", "not_positive"),
        (
            (line("A:1", 4000, AS_OF),),
            {"payments_since_previous_cents": -1},
            "payments_since_previous_cents",
            "not_negative",
        ),
    ],
)
def test_bad_input_names_the_field_and_rule(lines, extra, field, rule) -> None:
    with pytest.raises(StatementInputError) as caught:
        build(*lines, **extra)
    assert (caught.value.field, caught.value.rule) == (field, rule)


def test_money_that_is_not_integer_cents_is_refused() -> None:
    bad = line("A:1", 4000, AS_OF)
    object.__setattr__(bad, "billed_cents", Decimal("150.00"))
    with pytest.raises(StatementInputError) as caught:
        build(bad)
    assert (caught.value.field, caught.value.rule) == ("lines[0].billed_cents", "integer_cents")


def test_money_format() -> None:
    assert [money(c) for c in (0, 5, 123456, -500)] == ["$0.00", "$0.05", "$1,234.56", "-$5.00"]
