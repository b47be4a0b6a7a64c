"""The dashboard's trend starts at the first month with data, not a fixed window of empty months."""

from __future__ import annotations

import re
from datetime import date

from claims_server.reports.services import Kpi, KpiPeriod, kpi_trend, month_periods
from claims_server.ui.dashboard import from_first_month_with_data


def _month_headers(html: str) -> list[str]:
    table = html[html.index('id="trend-table"') :]
    head = table[: table.index("</thead>")]
    return re.findall(r'<th scope="col" class="num">([^<]+)</th>', head)


def _period(month: int, *figures: tuple[int, int]) -> KpiPeriod:
    kpis = [Kpi(f"k{n}", None, "percent", num, den, "") for n, (num, den) in enumerate(figures)]
    return KpiPeriod(date(2026, month, 1), date(2026, month, 28), kpis)


def test_leading_empty_months_are_dropped_and_later_gaps_kept():
    trend = [
        _period(1, (0, 0)),
        _period(2, (0, 0)),
        _period(3, (0, 4)),
        _period(4, (0, 0)),
        _period(5, (1, 2)),
    ]
    assert [p.start.month for p in from_first_month_with_data(trend)] == [3, 4, 5]
    assert [p.start.month for p in from_first_month_with_data(trend[:2])] == [
        2
    ]  # nothing at all: the last month


def test_an_empty_practice_shows_one_month_and_says_why(api_client):
    html = api_client("biller").get("/ui/dashboard?as_of=2026-06-15&months=12").get_data(as_text=True)
    assert _month_headers(html) == ["June 2026 (1-15)"]


def test_after_a_billing_day_the_trend_starts_at_its_first_month(session, api_client, billing_day):
    today = date.today()
    html = api_client("biller").get("/ui/dashboard?months=12").get_data(as_text=True)
    headers = _month_headers(html)
    full = kpi_trend(session, month_periods(today, 12))
    first = next(
        i
        for i, p in enumerate(full)
        if any(k.value is not None or k.numerator or k.denominator for k in p.kpis)
    )
    assert len(headers) == 12 - first
    assert 1 <= len(headers) < 12  # the demo's claims are recent: the empty months before them are gone
    assert "the first month with data" in html
