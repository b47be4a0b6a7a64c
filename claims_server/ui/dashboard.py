"""Dashboard (``/ui/dashboard``): the KPIs and their monthly trend, A/R aging by payer, top denial reasons.

Figures come from ``claims_server.reports.services`` (definitions in docs/kpis.md); charts
from ``claims_server.reports.charts`` (inline SVG, readable without colour), each with a
data table beside it. Nothing here is PHI: the KPIs are counts and sums, A/R is by payer,
and the claim-based figures are read with column queries, so a view is not a PHI read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask import Response, request

from claims_server.app import db_session
from claims_server.reports import charts
from claims_server.reports.services import (
    BUCKET_LABELS,
    AgingReport,
    DenialReason,
    KpiPeriod,
    ar_aging,
    kpi_trend,
    month_periods,
    top_denial_reasons,
)
from claims_server.security import clock
from claims_server.ui.blueprint import bp, page

#: (KPI name, label, True when a higher value is better), in the order shown.
KPI_LABELS: tuple[tuple[str, str, bool], ...] = (
    ("clean_claim_rate", "Clean claim rate", True),
    ("first_pass_resolution_rate", "First-pass resolution", True),
    ("denial_rate_count", "Denial rate (claims)", False),
    ("denial_rate_dollars", "Denial rate (dollars)", False),
    ("days_in_ar", "Days in A/R", False),
    ("net_collection_rate", "Net collection rate", True),
)
MONTH_CHOICES = (3, 6, 12)
DEFAULT_MONTHS = 6


@dataclass(frozen=True)
class KpiTile:
    name: str
    label: str
    value: Decimal | None
    unit: str
    previous: Decimal | None
    numerator: int
    denominator: int
    definition: str
    higher_is_better: bool
    note: str = ""  # why the value is n/a although figures exist (a credit A/R, no revenue)

    @property
    def change(self) -> str:
        """The change from the previous period in words (never colour alone)."""
        if self.value is None or self.previous is None:
            return "no earlier figure to compare"
        delta = self.value - self.previous
        if delta == 0:
            return "unchanged from the month before"
        unit = "points" if self.unit == "percent" else "days"
        better = (delta > 0) == self.higher_is_better
        return f"{'up' if delta > 0 else 'down'} {abs(delta)} {unit} from the month before ({'better' if better else 'worse'})"


def _period_label(start: date, end: date, *, short: bool = False) -> str:
    """The month ("November 2026"), with the days covered when not over; short: two lines."""
    if short:
        return f"{start:%b}\n{start:%Y}"
    month_end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return f"{start:%B %Y}" + (f" (1-{end.day})" if end < month_end else "")


def from_first_month_with_data(trend: list[KpiPeriod]) -> list[KpiPeriod]:
    """``trend`` without its leading months that have nothing to count (every KPI's figures
    zero and no value): a new practice's chart starts at its first month of claims instead of
    a row of empty months. The last month always stays (its tiles are the page's headline)."""
    for index, period in enumerate(trend):
        if any(k.value is not None or k.numerator or k.denominator for k in period.kpis):
            return trend[index:]
    return trend[-1:]


def _tiles(trend: list[KpiPeriod]) -> list[KpiTile]:
    current = trend[-1]
    before = trend[-2] if len(trend) > 1 else None
    out = []
    for name, label, higher in KPI_LABELS:
        kpi = next(k for k in current.kpis if k.name == name)
        out.append(
            KpiTile(
                name,
                label,
                kpi.value,
                kpi.unit,
                before.value(name) if before else None,
                kpi.numerator,
                kpi.denominator,
                kpi.definition,
                higher,
                kpi.note,
            )
        )
    return out


def _trend_chart(trend: list[KpiPeriod]) -> Any:
    periods = tuple(_period_label(p.start, p.end, short=True) for p in trend)
    series = tuple(
        (label, "days" if name == "days_in_ar" else "percent", tuple(p.value(name) for p in trend))
        for name, label, _ in KPI_LABELS
    )
    return charts.kpi_trend_svg(
        periods,
        series,
        title=f"KPI trend by month, {_period_label(trend[0].start, trend[0].end)} to {_period_label(trend[-1].start, trend[-1].end)}",
        description="One small chart per indicator, one labelled point per month; the table below lists the same values.",
    )


def _aging_chart(report: AgingReport) -> Any:
    if not report.rows:
        return None
    rows = tuple(
        (r.label or "Unknown payer", tuple(r.buckets[b] for b in BUCKET_LABELS)) for r in report.rows
    )
    return charts.aging_svg(
        BUCKET_LABELS,
        rows,
        title=f"A/R aging by payer as of {report.as_of.isoformat()}",
        description="One bar per payer split by the age of the balance in days, each part hatched differently "
        "and labelled in dollars; the table below has the exact amounts.",
    )


def _denials_chart(reasons: list[DenialReason], meanings: dict[str, str]) -> Any:
    if not reasons:
        return None
    bars = tuple((f"{r.code} {meanings.get(r.code, '')}".strip()[:60], r.claims) for r in reasons)
    return charts.denial_reasons_svg(
        bars,
        title="Top denial reasons",
        description="Claims denied on their first remittance, by reason code, most frequent first; "
        "the table below has the counts and amounts.",
    )


def _meanings(reasons: list[DenialReason]) -> dict[str, str]:
    from coding.adjustment_codes import lookup

    out = {}
    for r in reasons:
        entry = lookup("carc", r.reason_code) if r.reason_code else None
        out[r.code] = entry.meaning if entry else ("no reason code sent" if not r.reason_code else "")
    return out


def _parse_args() -> tuple[date, int, dict[str, str]]:
    errors: dict[str, str] = {}
    today = clock.now().date()
    as_of = today
    raw = (request.args.get("as_of") or "").strip()
    if raw:
        try:
            as_of = date.fromisoformat(raw)
        except ValueError:
            errors["as_of"] = "Enter a date as YYYY-MM-DD."
    months = DEFAULT_MONTHS
    raw_months = (request.args.get("months") or "").strip()
    if raw_months:
        if raw_months.isdigit() and int(raw_months) in MONTH_CHOICES:
            months = int(raw_months)
        else:
            errors["months"] = f"Choose {', '.join(str(m) for m in MONTH_CHOICES)} months."
    return as_of, months, errors


@bp.route("/dashboard", methods=["GET"], endpoint="dashboard")
def dashboard() -> Response:
    """KPIs with their trend, A/R aging by payer, top denial reasons, as of a day."""
    session = db_session()
    as_of, months, errors = _parse_args()
    periods = month_periods(as_of, months)
    trend = from_first_month_with_data(kpi_trend(session, periods))
    aging = ar_aging(session, as_of=as_of, by="payer")
    reasons = top_denial_reasons(session, start=periods[0][0], end=as_of)
    meanings = _meanings(reasons)
    return page(
        "dashboard.html",
        422 if errors else 200,
        errors=errors,
        as_of=as_of,
        months=months,
        month_choices=MONTH_CHOICES,
        tiles=_tiles(trend),
        trend=trend,
        kpi_labels=KPI_LABELS,
        period_label=_period_label,
        trend_chart=_trend_chart(trend),
        aging=aging,
        buckets=BUCKET_LABELS,
        aging_chart=_aging_chart(aging),
        reasons=reasons,
        meanings=meanings,
        denials_chart=_denials_chart(reasons, meanings),
        window_start=periods[0][0],
        trimmed=len(trend) < len(periods),
    )
