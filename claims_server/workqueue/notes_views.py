"""``/api/v1``: follow-up notes on claims, patients and work items, and "my follow-ups".

Why ``follow-up-notes`` and not ``notes``: ``GET /api/v1/claims/{id}/notes`` already answers
with the claim's *reason* notes (what a user gave as the reason for a transition, a void, a
replacement; ``claims.notes``), a different record with a different shape. One name for the
new resource on all three subjects keeps them alike:

- ``GET|POST /api/v1/claims/{id}/follow-up-notes``
- ``GET|POST /api/v1/patients/{id}/follow-up-notes``
- ``GET|POST /api/v1/workqueue/items/{id}/follow-up-notes`` (beside the item's other actions)
- ``GET /api/v1/follow-ups?user=me`` (due on ``as_of``, default the server's today; or upcoming)

The schema checks the JSON types; the service checks the rules (kind, length, markup,
follow-up date) and names field and rule in the 422, before anything is written.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.claims.services import get_claim
from claims_server.errors import Unprocessable
from claims_server.models import NoteKind, User
from claims_server.models.common import utcnow
from claims_server.patients.services import get_patient
from claims_server.security.principal import current_principal
from claims_server.workqueue import notes, services
from claims_server.workqueue.schemas import WorkItemSchema

blp = Blueprint(
    "follow_up_notes",
    __name__,
    url_prefix="/api/v1",
    description="Follow-up notes (call, payer portal, letter, internal; encrypted, append-only, audited) on "
    "claims, patients and work items; a follow-up date on a work item's note snoozes the item until then.",
)


class NoteInSchema(Schema):
    """A new note. ``body``: plain text, 1 to 4,000 characters, no markup."""

    kind = fields.String(
        required=True, metadata={"enum": [k.value for k in NoteKind], "example": NoteKind.CALL.value}
    )
    body = fields.String(required=True, metadata={"maxLength": notes.MAX_BODY})
    follow_up_on = fields.Date(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "work item notes only: the item sleeps until this day (today to a year ahead, "
            "server date UTC) and goes to the author if unassigned"
        },
    )


class NoteOutSchema(Schema):
    class Meta:
        ordered = True

    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in NoteKind]))
    body = fields.String(required=True)
    follow_up_on = fields.Date(required=True, allow_none=True)
    author = fields.String(required=True, allow_none=True, metadata={"description": "user public id"})
    author_name = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    claim = fields.String(required=True, allow_none=True)
    patient = fields.String(required=True, allow_none=True)
    work_item = fields.String(required=True, allow_none=True)


class NoteListSchema(Schema):
    items = fields.List(fields.Nested(NoteOutSchema), required=True)


class FollowUpArgsSchema(Schema):
    user = fields.String(
        load_default="me",
        validate=validate.Length(max=32),
        metadata={"description": "'me' or a user public id"},
    )
    as_of = fields.Date(
        load_default=None, metadata={"description": "the day to look from (default: today, UTC)"}
    )
    when = fields.String(load_default="due", validate=validate.OneOf(["due", "upcoming"]))


class FollowUpSchema(Schema):
    follow_up_on = fields.Date(required=True)
    note = fields.Nested(NoteOutSchema, required=True)
    item = fields.Nested(WorkItemSchema, required=True)


class FollowUpListSchema(Schema):
    user = fields.String(required=True)
    as_of = fields.Date(required=True)
    when = fields.String(required=True)
    items = fields.List(fields.Nested(FollowUpSchema), required=True)


def _author() -> User | None:
    user_id = current_principal().user_id
    return db_session().get(User, user_id) if user_id is not None else None


def _list(subject: notes.NoteSubject) -> dict[str, Any]:
    session = db_session()
    return {"items": notes.notes_to_json(session, notes.list_notes(session, subject))}


def _add(subject: notes.NoteSubject, data: dict[str, Any]) -> dict[str, Any]:
    session = db_session()
    note = notes.add_note(
        session,
        subject,
        kind=data["kind"],
        body=data["body"],
        follow_up_on=data["follow_up_on"],
        author=_author(),
        today=utcnow().date(),
    )
    return notes.notes_to_json(session, [note])[0]


@blp.route("/claims/<claim_id>/follow-up-notes", methods=["GET"])
@blp.response(200, NoteListSchema)
def list_claim_notes(claim_id: str) -> dict[str, Any]:
    """The claim's follow-up notes and those of its work items, newest first (a PHI read, audited)."""
    return _list(notes.NoteSubject(claim=get_claim(db_session(), claim_id)))


@blp.route("/claims/<claim_id>/follow-up-notes", methods=["POST"])
@mutation()
@blp.arguments(NoteInSchema)
@blp.response(201, NoteOutSchema)
def add_claim_note(data: dict[str, Any], claim_id: str) -> dict[str, Any]:
    """Add a note on the claim (no follow-up date: that belongs on one of its work items)."""
    return _add(notes.NoteSubject(claim=get_claim(db_session(), claim_id)), data)


@blp.route("/patients/<patient_id>/follow-up-notes", methods=["GET"])
@blp.response(200, NoteListSchema)
def list_patient_notes(patient_id: str) -> dict[str, Any]:
    """Every follow-up note about the patient (on the patient, its claims, their items), newest first."""
    return _list(notes.NoteSubject(patient=get_patient(db_session(), patient_id, audit_read=False)))


@blp.route("/patients/<patient_id>/follow-up-notes", methods=["POST"])
@mutation()
@blp.arguments(NoteInSchema)
@blp.response(201, NoteOutSchema)
def add_patient_note(data: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """Add a note on the patient's account."""
    return _add(notes.NoteSubject(patient=get_patient(db_session(), patient_id, audit_read=False)), data)


@blp.route("/workqueue/items/<item_id>/follow-up-notes", methods=["GET"])
@blp.response(200, NoteListSchema)
def list_item_notes(item_id: str) -> dict[str, Any]:
    """The work item's follow-up notes, newest first."""
    return _list(notes.NoteSubject(item=services.get_work_item(db_session(), item_id)))


@blp.route("/workqueue/items/<item_id>/follow-up-notes", methods=["POST"])
@mutation()
@blp.arguments(NoteInSchema)
@blp.response(201, NoteOutSchema)
def add_item_note(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    """Add a note on the item; with ``follow_up_on`` after today the item sleeps until then."""
    return _add(notes.NoteSubject(item=services.get_work_item(db_session(), item_id)), data)


@blp.route("/follow-ups", methods=["GET"])
@blp.arguments(FollowUpArgsSchema, location="query")
@blp.response(200, FollowUpListSchema)
def list_follow_ups(args: dict[str, Any]) -> dict[str, Any]:
    """A user's follow-ups: work items whose follow-up date (from the user's latest follow-up
    note on each) is ``as_of`` or earlier and that are not resolved; ``when=upcoming``: later."""
    session = db_session()
    if args["user"] == "me":
        user = _author()
    else:
        user = session.scalar(select(User).where(User.public_id == args["user"]))
    if user is None:
        raise Unprocessable(
            "no user has this id",
            errors=[{"field": "user", "rule": "exists", "message": "'me' or a user's id"}],
        )
    as_of = args["as_of"] or utcnow().date()
    rows = notes.follow_ups(session, user, today=as_of, due=args["when"] == "due")
    items = [row.item for row in rows]
    facts = services.item_facts(session, items)
    rendered = notes.notes_to_json(session, [row.note for row in rows])
    return {
        "user": user.public_id,
        "as_of": as_of,
        "when": args["when"],
        "items": [
            {
                "follow_up_on": row.follow_up_on,
                "note": note,
                "item": services.item_to_json(row.item, facts.get(row.item.id), today=as_of),
            }
            for row, note in zip(rows, rendered, strict=True)
        ],
    }
