"""The dashboard's KPIs after the demo's billing day: charges, payments and adjustments share one
calendar (charge on the day the claim is sent, payment on BPR16 = the 835's date), so the current
month's figures are sensible and earlier months show "n/a", never a negative number of days."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from claims_server.app import state
from claims_server.demo_day import run_billing_day
from claims_server.models import JournalEntry, Remittance
from claims_server.models.common import utcnow
from claims_server.reports.services import ar_aging, kpi_trend, kpis, kpis_to_json, month_periods
from tests.integration.claims.support import seed
from tests.integration.reports.support import overpaid_claim


def test_billing_day_kpis_of_the_current_month_are_sensible(app, session, tmp_path):
    seed(session)
    today = utcnow().date()  # the day the 837s carry (BHT), so the day the 835s pay
    run_billing_day(state(app).session_factory, tmp_path / "day", today=today)
    session.rollback()

    remittances = session.scalars(select(Remittance)).all()  # one per payer
    assert remittances and {(r.payment_date, r.production_date) for r in remittances} == {(today, today)}
    # Every entry of the day is dated today: charges when sent, payments when paid.
    assert set(session.scalars(select(JournalEntry.effective_date).distinct())) == {today}

    trend = kpi_trend(session, month_periods(today, 6))
    current = {k.name: k for k in trend[-1].kpis}
    ncr = current["net_collection_rate"]
    assert ncr.numerator > 0, "30 paid claims collected cash this month"
    assert ncr.value is not None and Decimal(0) < ncr.value <= Decimal(100)
    days = current["days_in_ar"]
    assert days.value is not None and Decimal(0) <= days.value <= Decimal(90)
    assert 0 < days.numerator < days.denominator  # A/R left after today's payments < today's charges
    # Before the billing day nothing happened: no figure at all, and never a negative one.
    for period in trend[:-1]:
        assert period.value("days_in_ar") is None and period.value("net_collection_rate") is None
    assert all((p.value("days_in_ar") or 0) >= 0 for p in trend)

    # The Medicaid claim served 120 days ago is charged today but still ages from its service.
    aging = ar_aging(session, as_of=today, by="payer")
    assert aging.totals["91-120"] == 6500


def test_a_credit_ar_is_said_in_words_not_shown_as_negative_days(session):
    overpaid_claim(session)

    got = {k.name: k for k in kpis(session, start=date(2026, 1, 1), end=date(2026, 1, 31))}
    days = got["days_in_ar"]
    assert (days.numerator, days.denominator) == (-3503, 10000)  # -31.5 days before this change
    assert days.value is None
    assert days.note == "A/R is a credit balance of $35.03 at the end of the period"
    (as_json,) = [k for k in kpis_to_json(date(2026, 1, 1), date(2026, 1, 31), [days])["kpis"]]
    assert as_json["value"] is None and as_json["note"] == days.note
    # A month without charges in the 90-day window and no A/R: n/a, nothing to explain.
    empty = {k.name: k for k in kpis(session, start=date(2025, 6, 1), end=date(2025, 6, 30))}
    assert empty["days_in_ar"].value is None and empty["days_in_ar"].note == ""
