"""KPI trend by month and the top denial reasons, against hand-computed figures."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from claims_server.errors import Unprocessable
from claims_server.reports.services import kpi_trend, kpis, month_periods, top_denial_reasons
from tests.integration.workqueue.support import LineAnswer, adjudicate, make_claim


def test_month_periods_end_on_the_day_and_cross_years():
    assert month_periods(date(2026, 3, 15), 3) == [
        (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 15)),
    ]
    assert month_periods(date(2026, 1, 31), 2) == [
        (date(2025, 12, 1), date(2025, 12, 31)),
        (date(2026, 1, 1), date(2026, 1, 31)),
    ]
    with pytest.raises(Unprocessable):
        month_periods(date(2026, 1, 31), 0)


def _two_months(session, ids):
    """January: E paid in full. February: A paid, B denied CO-16 (claim and lines), D's line CO-97."""
    jan, feb = datetime(2026, 1, 10, 12, tzinfo=UTC), datetime(2026, 2, 3, 12, tzinfo=UTC)
    e = make_claim(session, ids, submitted=jan)
    a, b, d = (make_claim(session, ids, submitted=feb) for _ in range(3))
    adjudicate(
        session, e, status="1", payment_date=date(2026, 1, 20), lines=[LineAnswer(17500), LineAnswer(4550)]
    )
    adjudicate(
        session,
        a,
        status="1",
        payment_date=date(2026, 2, 15),
        lines=[
            LineAnswer(10000, [("CO", "45", 5000), ("PR", "2", 2500)]),
            LineAnswer(3000, [("PR", "1", 1550)]),
        ],
    )
    adjudicate(
        session,
        b,
        status="4",
        payment_date=date(2026, 2, 16),
        lines=[LineAnswer(0, [("CO", "16", 17500)]), LineAnswer(0, [("CO", "16", 4550)])],
    )
    adjudicate(
        session,
        d,
        status="1",
        payment_date=date(2026, 2, 20),
        lines=[LineAnswer(17500), LineAnswer(0, [("CO", "97", 4550), ("PR", "1", 0)])],
    )
    # A later 835 about B (its second) does not change B's initial denial.
    adjudicate(
        session,
        b,
        status="1",
        payment_date=date(2026, 2, 25),
        lines=[LineAnswer(17500), LineAnswer(4550)],
        move_state=False,
    )
    session.commit()  # fmt: skip


def test_trend_equals_the_kpis_of_each_period(session, ids):
    _two_months(session, ids)
    periods = month_periods(date(2026, 2, 28), 2)
    trend = kpi_trend(session, periods)
    assert [(p.start, p.end) for p in trend] == periods
    for point, (start, end) in zip(trend, periods, strict=True):
        assert point.kpis == kpis(session, start=start, end=end)
    january, february = trend
    assert january.value("denial_rate_count") == Decimal("0.0")
    assert january.value("first_pass_resolution_rate") == Decimal("100.0")
    assert (january.kpis[0].numerator, january.kpis[0].denominator) == (1, 1)  # clean: E
    assert february.value("denial_rate_count") == Decimal("66.7")  # B and D of A, B, D
    assert february.value("first_pass_resolution_rate") == Decimal("33.3")  # A
    assert february.value("no_such_kpi") is None


def test_top_denial_reasons_count_claims_once_and_sum_amounts(session, ids):
    _two_months(session, ids)
    reasons = top_denial_reasons(session, start=date(2026, 2, 1), end=date(2026, 2, 28))
    assert [(r.code, r.claims, r.amount_cents) for r in reasons] == [
        ("CO-16", 1, 22050),  # B: both lines, one claim; more dollars ranks first among equals
        ("CO-97", 1, 4550),  # D's denied line; its PR-1 is not a denial reason
    ]
    assert top_denial_reasons(session, start=date(2026, 1, 1), end=date(2026, 1, 31)) == []
    assert len(top_denial_reasons(session, start=date(2026, 2, 1), end=date(2026, 2, 28), limit=1)) == 1


def test_whole_claim_denial_without_cas_is_reported_as_none_given(session, ids):
    claim = make_claim(session, ids, submitted=datetime(2026, 3, 2, tzinfo=UTC))
    adjudicate(
        session, claim, status="4", payment_date=date(2026, 3, 9), lines=[LineAnswer(0), LineAnswer(0)]
    )
    session.commit()
    (reason,) = top_denial_reasons(session, start=date(2026, 3, 1), end=date(2026, 3, 31))
    assert (reason.code, reason.claims, reason.amount_cents) == ("none given", 1, 0)


def test_trend_refuses_a_reversed_period(session):
    with pytest.raises(Unprocessable):
        kpi_trend(session, [(date(2026, 3, 1), date(2026, 2, 1))])
