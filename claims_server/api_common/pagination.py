"""Keyset (cursor) pagination with opaque, signed cursors.

Lists are ordered by the row id (insertion order), and a page is "the next ``limit``
rows after the last id the previous page showed". Unlike offsets, rows inserted or
deleted while a client pages through never make it skip or repeat a row. The cursor
is signed with the app's secret key (so it cannot be forged to jump elsewhere) and
bound to the query's filters: a cursor used with different filters is refused (422)
instead of silently returning a page of another list.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from marshmallow import Schema, fields, validate
from sqlalchemy import Select
from sqlalchemy.orm import Session

from claims_server.api_common.fields import StrictInteger
from claims_server.errors import Unprocessable

T = TypeVar("T")
MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class PageArgsSchema(Schema):
    """``limit`` (1-200, default 50) and ``cursor`` (``next_cursor`` of the previous page)."""

    limit = StrictInteger(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT, error="limit must be between 1 and 200"),
        metadata={"description": "page size, at most 200"},
    )
    cursor = fields.String(
        load_default=None,
        validate=validate.Length(max=512),
        metadata={"description": "next_cursor from the previous page (opaque)"},
    )


class PageSchema(Schema):
    """The envelope of every list: ``items`` and ``next_cursor`` (null on the last page)."""

    next_cursor = fields.String(allow_none=True, required=True, metadata={"example": None})


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="claims-server.cursor")


def _filter_fingerprint(filters: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {k: v for k, v in filters.items() if v not in (None, [], "")}, sort_keys=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def decode_cursor(cursor: str | None, filters: Mapping[str, Any]) -> int | None:
    """The last id of the previous page, or None for the first page; 422 for a bad cursor."""
    if not cursor:
        return None
    try:
        payload = _serializer().loads(cursor)
    except BadSignature:
        raise Unprocessable(
            "the cursor is not one this server issued",
            errors=[{"field": "cursor", "location": "query", "rule": "cursor", "message": "invalid cursor"}],
        ) from None
    if not isinstance(payload, dict) or payload.get("f") != _filter_fingerprint(filters):
        raise Unprocessable(
            "the cursor belongs to a list with different filters; start again without a cursor",
            errors=[
                {
                    "field": "cursor",
                    "location": "query",
                    "rule": "cursor_filters",
                    "message": "filters changed",
                }
            ],
        )
    after = payload.get("after")
    if not isinstance(after, int):
        raise Unprocessable(
            "the cursor is malformed", errors=[{"field": "cursor", "message": "invalid cursor"}]
        )
    return after


def encode_cursor(last_id: int, filters: Mapping[str, Any]) -> str:
    return _serializer().dumps({"after": last_id, "f": _filter_fingerprint(filters)})


def paginate(
    session: Session,
    query: Select[Any],
    id_column: Any,
    *,
    limit: int,
    cursor: str | None,
    filters: Mapping[str, Any],
    descending: bool = False,
) -> Page[Any]:
    """One page of ``query`` (which selects ORM entities) ordered by ``id_column`` (newest first if ``descending``)."""
    after = decode_cursor(cursor, filters)
    if after is not None:
        query = query.where(id_column < after if descending else id_column > after)
    order = id_column.desc() if descending else id_column
    rows: Sequence[Any] = session.scalars(query.order_by(order).limit(limit + 1)).all()
    items = list(rows[:limit])
    next_cursor = encode_cursor(items[-1].id, filters) if len(rows) > limit and items else None
    return Page(items, next_cursor)
