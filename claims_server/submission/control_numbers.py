"""Envelope control numbers (ISA13, GS06, ST02) handed out per route, never twice.

Clearinghouses reject an interchange whose ISA13 they have seen from the same sender
(TA1 note 025), and 999s and 277CAs are matched back to claims through GS06/ST02, so
each number is taken from a ``ControlNumberCounter`` row by one atomic
``UPDATE ... SET last_value = last_value + n ... RETURNING last_value``. The UPDATE
holds the row lock (PostgreSQL) or the database write lock (SQLite) until the caller's
transaction ends, so concurrent batchers on one route are serialized and a rolled-back
batch gives its numbers back together with everything that used them: a number is
"used" exactly when the interchange that carries it is committed.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from claims_server.errors import Conflict
from claims_server.models import ControlNumberCounter
from claims_server.models.common import utcnow
from claims_server.models.submissions import CONTROL_NUMBER_MAX, ControlNumberKind


class ControlNumbersExhausted(Conflict):
    """The route's counter reached 999,999,999 (ISA13 is N0 9/9); an operator must act."""


def _advance(session: Session, route_id: int, kind: ControlNumberKind, count: int) -> int | None:
    stmt = (
        update(ControlNumberCounter)
        .where(ControlNumberCounter.route_id == route_id, ControlNumberCounter.number_kind == kind)
        .values(last_value=ControlNumberCounter.last_value + count, updated_at=utcnow())
        .returning(ControlNumberCounter.last_value)
        .execution_options(synchronize_session=False)
    )
    try:
        return session.execute(stmt).scalar_one_or_none()
    except IntegrityError:
        # The CHECK (last_value <= 999,999,999) refused the increment.
        raise ControlNumbersExhausted(
            f"the {kind.value} counter of this route is exhausted (maximum {CONTROL_NUMBER_MAX}); "
            "agree a new sender id or a reset with the clearinghouse",
            errors=[{"field": "control_number", "rule": "range", "message": "counter exhausted"}],
        ) from None


def allocate(session: Session, route_id: int, kind: ControlNumberKind, count: int = 1) -> list[int]:
    """Reserve ``count`` consecutive numbers of ``kind`` on the route, in the caller's transaction."""
    if count < 1:
        raise ValueError("count must be at least 1")
    last = _advance(session, route_id, kind, count)
    if last is None:
        # First use on this route: create the counter (a concurrent first use may win the
        # insert; ON CONFLICT DO NOTHING lets both go on to the atomic UPDATE).
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert(ControlNumberCounter)
            .values(route_id=route_id, number_kind=kind, last_value=0, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["route_id", "number_kind"])
        )
        last = _advance(session, route_id, kind, count)
        if last is None:
            raise RuntimeError("the control number counter could not be created")
    return list(range(last - count + 1, last + 1))
