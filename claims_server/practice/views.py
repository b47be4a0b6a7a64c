"""``/api/v1/practices``, ``/api/v1/providers`` and ``/api/v1/fee-schedule``."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from claims_server.api_common.pagination import PageArgsSchema
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.practice import fee_schedule, services
from claims_server.practice.schemas import (
    FeeEntryQuerySchema,
    FeeSchedulePutResultSchema,
    FeeSchedulePutSchema,
    FeeScheduleQuerySchema,
    FeeScheduleSchema,
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


# -- the fee schedule (claims_server.practice.fee_schedule) -------------------------------------


def _schedule(practice: Any) -> dict[str, Any]:
    session = db_session()
    return {
        "practice": practice.public_id,
        "items": [fee_schedule.fee_to_json(e) for e in fee_schedule.list_fees(session, practice.id)],
    }


@blp.route("/fee-schedule", methods=["GET"])
@blp.arguments(FeeScheduleQuerySchema, location="query")
@blp.response(200, FeeScheduleSchema)
def get_fee_schedule(args: dict[str, Any]) -> dict[str, Any]:
    """The practice's fee schedule: its standard charge per procedure code and modifier.

    Charge entry fills an empty line charge from it. ``practice`` may be left out while
    the server holds one practice.
    """
    return _schedule(fee_schedule.practice_for(db_session(), args["practice"]))


@blp.route("/fee-schedule", methods=["PUT"])
@mutation()
@blp.arguments(FeeScheduleQuerySchema, location="query")
@blp.arguments(FeeSchedulePutSchema)
@blp.response(200, FeeSchedulePutResultSchema)
@blp.alt_response(422, description="an entry is invalid (errors name entries.<index>.<field>)")
def put_fee_schedule(args: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Upsert entries by procedure and modifier; with ``replace: true`` the schedule becomes exactly
    the list. All or nothing: one bad entry refuses the whole request."""
    session = db_session()
    practice = fee_schedule.practice_for(session, args["practice"])
    change = fee_schedule.save_fees(session, practice, body["entries"], replace=body["replace"])
    return {
        **_schedule(practice),
        "created": change.created,
        "updated": change.updated,
        "deleted": change.deleted,
    }


@blp.route("/fee-schedule/<procedure>", methods=["DELETE"])
@mutation()
@blp.arguments(FeeEntryQuerySchema, location="query")
@blp.response(204)
def delete_fee_schedule_entry(args: dict[str, Any], procedure: str) -> None:
    """Delete the entry of ``procedure`` (and ``modifier``; empty: the code's own charge)."""
    session = db_session()
    practice = fee_schedule.practice_for(session, args["practice"])
    fee_schedule.delete_fee(session, practice, procedure, args.get("modifier") or "")
