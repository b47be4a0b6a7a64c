"""Small helpers the resource services share: look up by ``public_id``, apply loaded fields."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from claims_server.errors import NotFound, Unprocessable
from claims_server.security.ownership import find_owned

M = TypeVar("M")


def get_by_public_id(session: Session, model: type[M], public_id: str, what: str) -> M:
    """The row of ``model`` with this ``public_id`` the caller may see, or 404 naming ``what``.

    Scoped by ``security.ownership`` for the current principal: another integration's or
    patient's row is a 404 like a missing one.
    """
    row = find_owned(session, model, public_id)
    if row is None:
        raise NotFound(f"no {what} has this id")
    return row


def reference(session: Session, model: type[M], public_id: str | None, field: str, what: str) -> M | None:
    """A referenced row by ``public_id``; a missing one (or one the caller may not see, see
    ``security.ownership``) is a 422 naming the request field."""
    if public_id is None:
        return None
    row = find_owned(session, model, public_id)
    if row is None:
        raise Unprocessable(
            f"{field}: no {what} has this id",
            errors=[
                {"field": field, "location": "json", "rule": "exists", "message": f"no {what} has this id"}
            ],
        )
    return row


def apply_fields(row: Any, data: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """Set each of ``names`` present in ``data`` on ``row``; returns the names that changed."""
    changed = []
    for name in names:
        if name in data and getattr(row, name) != data[name]:
            setattr(row, name, data[name])
            changed.append(name)
    return changed
