"""``/api/v1/saved-filters``: the caller's own named work-queue filters (list, save, delete).

The schema checks the JSON types; ``saved_filters`` checks the rules (name 1 to 80
characters and unique for the user, a query the queue page accepts) and names the field
and the rule in the 422, before anything is written. Another user's filter is a 404.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.errors import ApiError
from claims_server.models import SavedFilter, User
from claims_server.security.principal import current_principal
from claims_server.workqueue import saved_filters

blp = Blueprint(
    "saved_filters",
    __name__,
    url_prefix="/api/v1/saved-filters",
    description="A user's named work-queue filters: the query string of GET /api/v1/workqueue/items "
    "(and of the workspace's queue page), e.g. queue=denied&sort=amount&order=desc. Each user sees only "
    "their own.",
)


class SavedFilterInSchema(Schema):
    name = fields.String(
        required=True, metadata={"maxLength": saved_filters.MAX_NAME, "example": "Big denials"}
    )
    query = fields.String(
        required=True,
        metadata={
            "maxLength": saved_filters.MAX_QUERY,
            "description": f"query string; keys: {', '.join(saved_filters.FILTER_KEYS)}",
            "example": "queue=denied&min_amount=100.00&sort=amount&order=desc",
        },
    )


class SavedFilterSchema(Schema):
    class Meta:
        ordered = True

    id = fields.String()
    name = fields.String()
    query = fields.String(metadata={"description": "canonical: known keys in a fixed order, blanks dropped"})
    created_at = fields.String()


class SavedFilterListSchema(Schema):
    items = fields.List(fields.Nested(SavedFilterSchema), required=True)


class NoUser(ApiError):
    status, slug, title = 403, "forbidden", "Forbidden"


def _me() -> User:
    user_id = current_principal().user_id
    user = db_session().get(User, user_id) if user_id is not None else None
    if user is None:
        raise NoUser("saved filters belong to a signed-in user")
    return user


def _json(saved: SavedFilter) -> dict[str, Any]:
    return {
        "id": saved.public_id,
        "name": saved.name,
        "query": saved.query,
        "created_at": saved.created_at.isoformat(),
    }


@blp.route("", methods=["GET"])
@blp.response(200, SavedFilterListSchema)
def list_saved_filters() -> dict[str, Any]:
    """The caller's saved filters, in the order they were saved."""
    return {"items": [_json(f) for f in saved_filters.list_saved_filters(db_session(), _me())]}


@blp.route("", methods=["POST"])
@mutation()
@blp.arguments(SavedFilterInSchema)
@blp.response(201, SavedFilterSchema)
def save_filter(data: dict[str, Any]) -> dict[str, Any]:
    """Save a filter under a name (422 naming ``name`` or ``query`` when either is not acceptable)."""
    return _json(saved_filters.save_filter(db_session(), _me(), data["name"], data["query"]))


@blp.route("/<filter_id>", methods=["DELETE"])
@mutation()
@blp.response(204)
def delete_saved_filter(filter_id: str) -> None:
    """Delete one of the caller's saved filters (404 for anyone else's)."""
    saved_filters.delete_saved_filter(db_session(), _me(), filter_id)
