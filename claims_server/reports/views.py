"""``/api/v1/reports``: A/R aging and KPIs, as JSON or spreadsheet-safe CSV (``?format=csv``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from claims_server.app import db_session
from claims_server.models.common import utcnow
from claims_server.reports import services

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/api/v1/reports",
    description="A/R aging by payer or patient as of any past date, and revenue-cycle KPIs (HFMA MAP Keys).",
)

_FORMAT = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class AgingArgsSchema(Schema):
    as_of = fields.Date(load_default=None, metadata={"description": "default: today"})
    by = fields.String(load_default="payer", validate=validate.OneOf(["payer", "patient"]))
    format = _FORMAT


class KpiArgsSchema(Schema):
    start = fields.Date(load_default=None, metadata={"description": "default: 30 days before end"})
    end = fields.Date(load_default=None, metadata={"description": "default: today"})
    format = _FORMAT


def _csv(text: str, name: str) -> Response:
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@blp.route("/ar-aging", methods=["GET"])
@blp.arguments(AgingArgsSchema, location="query")
@blp.response(200)
def ar_aging(args: dict[str, Any]) -> Any:
    """A/R aging 0-30/31-60/61-90/91-120/120+ from ledger postings dated on or before ``as_of``."""
    as_of = args["as_of"] or utcnow().date()
    report = services.ar_aging(db_session(), as_of=as_of, by=args["by"])
    if args["format"] == "csv":
        return _csv(services.aging_to_csv(report), f"ar-aging-{report.by}-{as_of.isoformat()}")
    return services.aging_to_json(report)


@blp.route("/kpis", methods=["GET"])
@blp.arguments(KpiArgsSchema, location="query")
@blp.response(200)
def kpis(args: dict[str, Any]) -> Any:
    """Clean claim, first-pass resolution and denial rates, days in A/R, net collection rate."""
    end = args["end"] or utcnow().date()
    start = args["start"] or end - timedelta(days=29)
    items = services.kpis(db_session(), start=start, end=end)
    if args["format"] == "csv":
        return _csv(services.kpis_to_csv(items), f"kpis-{start.isoformat()}-{end.isoformat()}")
    return services.kpis_to_json(start, end, items)
