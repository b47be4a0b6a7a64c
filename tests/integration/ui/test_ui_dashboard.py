"""Dashboard: KPIs with their monthly trend, A/R aging by payer, top denial reasons; charts readable
without colour, each with a data table."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from claims_server.reports import charts
from claims_server.reports.services import ar_aging, kpi_trend, month_periods, top_denial_reasons
from claims_server.ui.blueprint import money
from tests.integration.ui.money_support import audit_events, with_request_id


def test_the_dashboard_shows_the_services_figures(app, session, api_client, billing_day):
    auditor = api_client("auditor")  # a read-only role sees the dashboard
    answer, request_id = with_request_id(auditor, "GET", "/ui/dashboard")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    today = date.today()

    trend = kpi_trend(session, month_periods(today, 6))
    for kpi in trend[-1].kpis:
        tile = re.search(rf'id="kpi-{kpi.name}">.*?<span class="value">([^<]*)</span>', html, re.S)
        assert tile, kpi.name
        expected = "n/a" if kpi.value is None else f"{kpi.value} {'%' if kpi.unit == 'percent' else 'days'}"
        assert tile.group(1) == expected
    table = html[html.index('id="trend-table"') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == 1 + 6  # header + one row per KPI, one column per month

    aging = ar_aging(session, as_of=today, by="payer")
    assert aging.rows, "the billing day leaves insurance receivables"
    aging_table = html[html.index('id="aging-table"') :]
    for row in aging.rows:
        assert row.label in aging_table and money(row.total_cents) in aging_table
    assert money(aging.total_cents) in aging_table

    reasons = top_denial_reasons(session, start=month_periods(today, 6)[0][0], end=today)
    assert reasons, "the billing day has a denial"
    assert reasons[0].code in html[html.index('id="denials-table"') :]

    assert html.count('role="img"') == 3  # trend, aging, denial reasons
    assert len(set(re.findall(r'\bid="([^"]+)"', html))) == len(re.findall(r'\bid="([^"]+)"', html))
    # Aggregates only: viewing the dashboard reads no patient's record.
    assert audit_events(session, request_id, "R") == []


def test_bad_dashboard_input_gets_a_message_next_to_the_field(app, session, api_client):
    biller = api_client("biller")
    answer = biller.get("/ui/dashboard?as_of=31-12-2026&months=7")
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert 'id="f-as_of-error">Enter a date as YYYY-MM-DD.' in html
    assert 'id="f-months-error">' in html
    assert "<h1>Dashboard</h1>" in html  # the page still answers, with the defaults
    ok = biller.get("/ui/dashboard?as_of=2026-01-31&months=3")
    assert ok.status_code == 200 and "January 2026" in ok.get_data(as_text=True)


def test_roles(app, api_client):
    assert api_client("integration").get("/ui/dashboard").status_code == 403
    assert api_client("billing_supervisor").get("/ui/dashboard").status_code == 200


def test_charts_are_readable_without_colour_and_cached():
    aging = charts.aging_svg(
        ("0-30", "31-60"),
        (("Payer & <Co> $5", (123456, 5000)), ("Other", (0, 2500))),
        title="A/R <aging>",
        description="desc",
    )
    assert aging.startswith("<svg") and 'role="img"' in aging
    assert '<title id="ar-aging-title">A/R &lt;aging&gt;</title>' in aging
    assert aging.count("<pattern") == 2  # one hatch per bucket, so colour is not needed
    assert "$1,235" in aging and "$1,285" in aging  # direct labels (segment, bar total), half up
    assert "Payer &amp; &lt;Co&gt; $5" in aging  # names are text, escaped, not mathtext
    assert "<metadata" not in aging and "<?xml" not in aging
    ids = re.findall(r'\bid="([^"]+)"', aging)
    assert all(i.startswith("ar-aging-") for i in ids)
    for ref in re.findall(r"url\(#([^)]+)\)", aging):
        assert ref in ids
    assert (
        charts.aging_svg(
            ("0-30", "31-60"),
            (("Payer & <Co> $5", (123456, 5000)), ("Other", (0, 2500))),
            title="A/R <aging>",
            description="desc",
        )
        is aging
    )  # cached: the same data draws nothing

    trend = charts.kpi_trend_svg(
        ("Jan\n2026", "Feb\n2026"),
        (
            ("Clean claim rate", "percent", (Decimal("75.0"), None)),
            ("Days in A/R", "days", (None, Decimal("45.1"))),
        ),
        title="trend",
        description="d",
    )
    assert "75.0 %" in trend and "45.1 d" in trend and trend.count("n/a") == 2
    denials = charts.denial_reasons_svg((("CO-16 info missing", 3), ("CO-97", 1)), title="t", description="d")
    assert "3 claims" in denials and "1 claim<" in denials and "<pattern" in denials
    assert charts.dollars(-150) == "-$2" and charts.dollars(149) == "$1"


def test_a_kpi_that_cannot_be_computed_says_why_on_its_tile(app, session, api_client):
    """An overpaid claim leaves A/R a credit: the tile shows n/a and the reason, never negative days."""
    from tests.integration.reports.support import overpaid_claim

    overpaid_claim(session)

    page = api_client("biller").get("/ui/dashboard?as_of=2026-01-31&months=3").get_data(as_text=True)
    tile = page[page.index('id="kpi-days_in_ar"') :]
    tile = tile[: tile.index("</li>")]
    assert '<span class="value">n/a</span>' in tile
    assert "A/R is a credit balance of $35.03 at the end of the period" in tile
    assert "-" not in re.sub(r"<[^>]+>", "", tile.split('class="value">')[1].split("</span>")[0])
