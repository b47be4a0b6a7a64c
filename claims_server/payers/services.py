"""Payer and clearinghouse-route services (no Flask)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.api_common.audit import audit
from claims_server.api_common.crud import apply_fields, get_by_public_id, reference
from claims_server.api_common.pagination import Page, paginate
from claims_server.clearinghouse.http_transport import parse_http_settings
from claims_server.clearinghouse.transport import TransportConfigError
from claims_server.errors import Conflict, Unprocessable
from claims_server.models import AuditAction, ClearinghouseRoute, Payer, TransportKind, UsageIndicator

ROUTE_FIELDS = [
    "name",
    "transport",
    "settings",
    "sender_id_qualifier",
    "sender_id",
    "receiver_id_qualifier",
    "receiver_id",
    "application_sender_code",
    "application_receiver_code",
    "usage_indicator",
    "active",
]
PAYER_FIELDS = [
    "name",
    "payer_id",
    "claim_filing_indicator",
    "timely_filing_days",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "zip_code",
    "remittance_payer_identifier",
    "supports_eligibility",
    "active",
]


def _audit(session: Session, action: AuditAction, kind: str, row: Any, changed: list[str]) -> None:
    audit(
        session,
        action=action,
        event_type=f"{kind}.{'create' if action is AuditAction.CREATE else 'update'}",
        entity_type=kind,
        entity_id=row.public_id,
        details={"fields": sorted(changed)},
    )


def _unique(session: Session, column: Any, value: Any, row_id: int | None, field: str, what: str) -> None:
    clash = session.scalar(select(column.class_.id).where(column == value))
    if clash is not None and clash != row_id:
        raise Conflict(
            f"another {what} has this {field}",
            errors=[{"field": field, "rule": "unique", "message": "already used"}],
        )


def _check_transport_settings(route: ClearinghouseRoute) -> None:
    """An ``http`` route's settings are checked when saved, not first when a batch is sent."""
    if route.transport != TransportKind.HTTP:
        return
    try:
        parse_http_settings(route.settings or {})
    except TransportConfigError as exc:
        raise Unprocessable(
            str(exc), errors=[{"field": "settings", "rule": "http_transport", "message": str(exc)}]
        ) from None


def _check_usage(data: Mapping[str, Any], route: ClearinghouseRoute | None) -> None:
    """Production (ISA15 P: the clearinghouse forwards claims to payers) only on purpose."""
    if data.get("usage_indicator") != UsageIndicator.PRODUCTION.value:
        return
    if route is not None and route.usage_indicator == UsageIndicator.PRODUCTION:
        return
    if data.get("confirm_production") is not True:
        raise Unprocessable(
            "switching a route to production usage (ISA15 P) needs confirm_production: true",
            errors=[
                {
                    "field": "usage_indicator",
                    "rule": "confirm_production",
                    "message": "P sends real claims to payers; repeat the request with confirm_production: true",
                }
            ],
        )


def create_route(session: Session, data: Mapping[str, Any]) -> ClearinghouseRoute:
    _check_usage(data, None)
    _unique(session, ClearinghouseRoute.name, data["name"], None, "name", "route")
    route = ClearinghouseRoute()
    changed = apply_fields(route, data, ROUTE_FIELDS)
    _check_transport_settings(route)
    session.add(route)
    session.flush()
    _audit(session, AuditAction.CREATE, "clearinghouse_route", route, changed)
    return route


def update_route(session: Session, route: ClearinghouseRoute, data: Mapping[str, Any]) -> ClearinghouseRoute:
    _check_usage(data, route)
    if "name" in data:
        _unique(session, ClearinghouseRoute.name, data["name"], route.id, "name", "route")
    changed = apply_fields(route, data, ROUTE_FIELDS)
    _check_transport_settings(route)
    session.flush()
    _audit(session, AuditAction.UPDATE, "clearinghouse_route", route, changed)
    return route


def get_route(session: Session, public_id: str) -> ClearinghouseRoute:
    return get_by_public_id(session, ClearinghouseRoute, public_id, "clearinghouse route")


def list_routes(session: Session, *, limit: int, cursor: str | None) -> Page[ClearinghouseRoute]:
    return paginate(
        session, select(ClearinghouseRoute), ClearinghouseRoute.id, limit=limit, cursor=cursor, filters={}
    )


def _set_route(session: Session, payer: Payer, data: Mapping[str, Any]) -> list[str]:
    if "route" not in data:
        return []
    route = reference(session, ClearinghouseRoute, data["route"], "route", "clearinghouse route")
    new_id = route.id if route is not None else None
    if payer.route_id == new_id:
        return []
    payer.route_id = new_id
    payer.route = route
    return ["route"]


def create_payer(session: Session, data: Mapping[str, Any]) -> Payer:
    _unique(session, Payer.payer_id, data["payer_id"], None, "payer_id", "payer")
    payer = Payer()
    changed = apply_fields(payer, data, PAYER_FIELDS) + _set_route(session, payer, data)
    session.add(payer)
    session.flush()
    _audit(session, AuditAction.CREATE, "payer", payer, changed)
    return payer


def update_payer(session: Session, payer: Payer, data: Mapping[str, Any]) -> Payer:
    if "payer_id" in data:
        _unique(session, Payer.payer_id, data["payer_id"], payer.id, "payer_id", "payer")
    changed = apply_fields(payer, data, PAYER_FIELDS) + _set_route(session, payer, data)
    session.flush()
    _audit(session, AuditAction.UPDATE, "payer", payer, changed)
    return payer


def get_payer(session: Session, public_id: str) -> Payer:
    return get_by_public_id(session, Payer, public_id, "payer")


def list_payers(
    session: Session, filters: Mapping[str, Any], *, limit: int, cursor: str | None
) -> Page[Payer]:
    query = select(Payer)
    if filters.get("payer_id"):
        query = query.where(Payer.payer_id == filters["payer_id"])
    if filters.get("route"):
        route_id = select(ClearinghouseRoute.id).where(ClearinghouseRoute.public_id == filters["route"])
        query = query.where(Payer.route_id == route_id.scalar_subquery())
    return paginate(session, query, Payer.id, limit=limit, cursor=cursor, filters=filters)


def payer_to_json(payer: Payer) -> dict[str, Any]:
    out = {name: getattr(payer, name) for name in PAYER_FIELDS}
    out["claim_filing_indicator"] = str(payer.claim_filing_indicator)
    out.update(public_id=payer.public_id, route=payer.route.public_id if payer.route is not None else None)
    return out


def route_to_json(route: ClearinghouseRoute) -> dict[str, Any]:
    out = {name: getattr(route, name) for name in ROUTE_FIELDS}
    out.update(
        public_id=route.public_id,
        transport=str(route.transport),
        usage_indicator=str(route.usage_indicator),
    )
    return out
