"""``/api/v1/payers`` and ``/api/v1/clearinghouse-routes``."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from claims_server.api_common.pagination import PageArgsSchema
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.payers import services
from claims_server.payers.schemas import (
    PayerListArgsSchema,
    PayerPageSchema,
    PayerPatchSchema,
    PayerSchema,
    RoutePageSchema,
    RoutePatchSchema,
    RouteSchema,
)

blp = Blueprint("payers", __name__, url_prefix="/api/v1", description="Payers and clearinghouse routes")


@blp.route("/clearinghouse-routes", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, RoutePageSchema)
def list_routes(args: dict[str, Any]) -> dict[str, Any]:
    """List clearinghouse routes."""
    page = services.list_routes(db_session(), limit=args["limit"], cursor=args["cursor"])
    return {"items": [services.route_to_json(r) for r in page.items], "next_cursor": page.next_cursor}


@blp.route("/clearinghouse-routes", methods=["POST"])
@mutation(idempotent=True)
@blp.arguments(RouteSchema)
@blp.response(201, RouteSchema)
def create_route(data: dict[str, Any]) -> dict[str, Any]:
    """Create a clearinghouse route (settings never hold secrets)."""
    return services.route_to_json(services.create_route(db_session(), data))


@blp.route("/clearinghouse-routes/<route_id>", methods=["GET"])
@blp.response(200, RouteSchema)
def get_route(route_id: str) -> dict[str, Any]:
    """Read a clearinghouse route."""
    return services.route_to_json(services.get_route(db_session(), route_id))


@blp.route("/clearinghouse-routes/<route_id>", methods=["PATCH"])
@mutation()
@blp.arguments(RoutePatchSchema(partial=True))
@blp.response(200, RouteSchema)
def update_route(data: dict[str, Any], route_id: str) -> dict[str, Any]:
    """Change some of a route's fields."""
    session = db_session()
    return services.route_to_json(services.update_route(session, services.get_route(session, route_id), data))


@blp.route("/payers", methods=["GET"])
@blp.arguments(PayerListArgsSchema, location="query")
@blp.response(200, PayerPageSchema)
def list_payers(args: dict[str, Any]) -> dict[str, Any]:
    """List payers (filters: payer_id, route)."""
    limit, cursor = args.pop("limit"), args.pop("cursor")
    page = services.list_payers(db_session(), args, limit=limit, cursor=cursor)
    return {"items": [services.payer_to_json(p) for p in page.items], "next_cursor": page.next_cursor}


@blp.route("/payers", methods=["POST"])
@mutation(idempotent=True)
@blp.arguments(PayerSchema)
@blp.response(201, PayerSchema)
def create_payer(data: dict[str, Any]) -> dict[str, Any]:
    """Create a payer, optionally on a clearinghouse route."""
    return services.payer_to_json(services.create_payer(db_session(), data))


@blp.route("/payers/<payer_id>", methods=["GET"])
@blp.response(200, PayerSchema)
def get_payer(payer_id: str) -> dict[str, Any]:
    """Read a payer."""
    return services.payer_to_json(services.get_payer(db_session(), payer_id))


@blp.route("/payers/<payer_id>", methods=["PATCH"])
@mutation()
@blp.arguments(PayerPatchSchema(partial=True))
@blp.response(200, PayerSchema)
def update_payer(data: dict[str, Any], payer_id: str) -> dict[str, Any]:
    """Change some of a payer's fields."""
    session = db_session()
    return services.payer_to_json(services.update_payer(session, services.get_payer(session, payer_id), data))
