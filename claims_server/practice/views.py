"""``/api/v1/practices`` and ``/api/v1/providers``."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from claims_server.api_common.pagination import PageArgsSchema
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.practice import services
from claims_server.practice.schemas import (
    PracticePageSchema,
    PracticePatchSchema,
    PracticeSchema,
    ProviderListArgsSchema,
    ProviderPageSchema,
    ProviderPatchSchema,
    ProviderSchema,
)

blp = Blueprint(
    "practice", __name__, url_prefix="/api/v1", description="The billing practice and its providers"
)


@blp.route("/practices", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, PracticePageSchema)
def list_practices(args: dict[str, Any]) -> dict[str, Any]:
    """List practices."""
    page = services.list_practices(db_session(), limit=args["limit"], cursor=args["cursor"])
    return {"items": page.items, "next_cursor": page.next_cursor}


@blp.route("/practices", methods=["POST"])
@mutation(idempotent=True)
@blp.arguments(PracticeSchema)
@blp.response(201, PracticeSchema)
def create_practice(data: dict[str, Any]) -> Any:
    """Create a practice (NPI check digit, EIN and ZIP+4 validated)."""
    return services.create_practice(db_session(), data)


@blp.route("/practices/<practice_id>", methods=["GET"])
@blp.response(200, PracticeSchema)
def get_practice(practice_id: str) -> Any:
    """Read a practice."""
    return services.get_practice(db_session(), practice_id)


@blp.route("/practices/<practice_id>", methods=["PATCH"])
@mutation()
@blp.arguments(PracticePatchSchema(partial=True))
@blp.response(200, PracticeSchema)
def update_practice(data: dict[str, Any], practice_id: str) -> Any:
    """Change some of a practice's fields."""
    session = db_session()
    return services.update_practice(session, services.get_practice(session, practice_id), data)


@blp.route("/providers", methods=["GET"])
@blp.arguments(ProviderListArgsSchema, location="query")
@blp.response(200, ProviderPageSchema)
def list_providers(args: dict[str, Any]) -> dict[str, Any]:
    """List providers (filters: practice, npi)."""
    limit, cursor = args.pop("limit"), args.pop("cursor")
    page = services.list_providers(db_session(), args, limit=limit, cursor=cursor)
    return {"items": [services.provider_to_json(p) for p in page.items], "next_cursor": page.next_cursor}


@blp.route("/providers", methods=["POST"])
@mutation(idempotent=True)
@blp.arguments(ProviderSchema)
@blp.response(201, ProviderSchema)
def create_provider(data: dict[str, Any]) -> dict[str, Any]:
    """Create a provider (NPI check digit validated; unique per practice)."""
    return services.provider_to_json(services.create_provider(db_session(), data))


@blp.route("/providers/<provider_id>", methods=["GET"])
@blp.response(200, ProviderSchema)
def get_provider(provider_id: str) -> dict[str, Any]:
    """Read a provider."""
    return services.provider_to_json(services.get_provider(db_session(), provider_id))


@blp.route("/providers/<provider_id>", methods=["PATCH"])
@mutation()
@blp.arguments(ProviderPatchSchema(partial=True))
@blp.response(200, ProviderSchema)
def update_provider(data: dict[str, Any], provider_id: str) -> dict[str, Any]:
    """Change some of a provider's fields."""
    session = db_session()
    provider = services.get_provider(session, provider_id)
    return services.provider_to_json(services.update_provider(session, provider, data))
