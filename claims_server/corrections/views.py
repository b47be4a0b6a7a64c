"""``/api/v1``: replacement (frequency 7) and void (8) claims, appeals, and next-payer claims."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from claims_server.api_common.pagination import PageArgsSchema, PageSchema, decode_cursor, encode_cursor
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.claims.schemas import ClaimOutSchema
from claims_server.claims.services import claim_to_json, get_claim, transition
from claims_server.corrections import appeals, services
from claims_server.errors import Unprocessable
from claims_server.models import ClaimState, WorkItem
from claims_server.models.workqueue import Appeal, AppealLevel, AppealStatus
from claims_server.secondary.services import create_next_payer_claim
from claims_server.security.principal import current_principal

blp = Blueprint(
    "corrections",
    __name__,
    url_prefix="/api/v1",
    description="After adjudication: replacement and void claims (REF*F8 = the payer's claim number), "
    "appeals with their filing deadline, and the next payer's claim with the prior payer's COB.",
)


class ReasonSchema(Schema):
    reason = fields.String(load_default=None, validate=validate.Length(max=200))


@blp.route("/claims/<claim_id>/replacement", methods=["POST"])
@mutation()
@blp.arguments(ReasonSchema)
@blp.response(201, ClaimOutSchema)
@blp.alt_response(409, description="not adjudicated, no payer claim number, or already superseded")
def create_replacement(data: dict[str, Any], claim_id: str) -> dict[str, Any]:
    """Create a draft frequency-7 replacement of an adjudicated claim; edit it, then make it ready."""
    session = db_session()
    claim = services.create_replacement_claim(session, get_claim(session, claim_id), reason=data["reason"])
    return claim_to_json(claim)


@blp.route("/claims/<claim_id>/void", methods=["POST"])
@mutation()
@blp.arguments(ReasonSchema, required=False)
@blp.response(201, ClaimOutSchema, description="the new frequency-8 void claim (the claim was adjudicated)")
@blp.alt_response(200, schema=ClaimOutSchema, description="the claim itself, now voided", success=True)
@blp.alt_response(409, description="not voidable in its state, or already superseded")
def create_void(data: dict[str, Any] | None, claim_id: str) -> tuple[dict[str, Any], int]:
    """Void a claim, as the staff workspace does: one the payer adjudicated gets a draft
    frequency-8 void claim (same services, REF*F8; 201); a draft, ready or rejected one is
    voided in place (200). One route: the claims blueprint's plain transition used to shadow it."""
    session = db_session()
    claim = get_claim(session, claim_id)
    reason = (data or {}).get("reason") or None
    if ClaimState(claim.state) in services.ADJUDICATED_STATES:
        return claim_to_json(services.create_void_claim(session, claim, reason=reason)), 201
    return claim_to_json(transition(session, claim, "void", reason=reason)), 200


@blp.route("/claims/<claim_id>/next-payer-claim", methods=["POST"])
@mutation()
@blp.response(201, ClaimOutSchema)
@blp.alt_response(409, description="not adjudicated, crossed over, nothing left, or no next coverage")
def create_next_payer(claim_id: str) -> dict[str, Any]:
    """Create the draft claim for the patient's next coverage (secondary/tertiary, sent with COB)."""
    session = db_session()
    return claim_to_json(create_next_payer_claim(session, get_claim(session, claim_id)))


# -- appeals (claims_server.corrections.appeals; docs/appeals.md) ----------------------------------


class AppealInSchema(Schema):
    work_item = fields.String(
        load_default=None,
        metadata={"description": "work item public id; default: the claim's open denial item"},
    )
    letter_text = fields.String(
        load_default=None,
        validate=validate.Length(max=appeals.MAX_LETTER),
        metadata={
            "description": "plain text; default: a letter generated from the denial codes and the claim"
        },
    )
    determined = fields.Date(
        load_default=None, metadata={"description": "denial (determination) date; default: the 835's"}
    )


class AttachmentSchema(Schema):
    name = fields.String(required=True, metadata={"description": "the document's name (plain text)"})
    kind = fields.String(required=True, metadata={"enum": list(appeals.ATTACHMENT_KINDS)})
    added_at = fields.String(dump_only=True)


class AppealPatchSchema(Schema):
    letter_text = fields.String(validate=validate.Length(min=1, max=appeals.MAX_LETTER))
    attachments = fields.List(
        fields.Dict(),
        validate=validate.Length(max=appeals.MAX_ATTACHMENTS),
        metadata={"description": "[{name, kind}]"},
    )


class AppealDecisionSchema(Schema):
    outcome = fields.String(
        required=True,
        validate=validate.OneOf([*appeals.OUTCOME_CHOICES, AppealStatus.WON.value, AppealStatus.LOST.value]),
        metadata={
            "description": "overturned, partially_overturned, upheld, or withdrawn (won/lost: older names)"
        },
    )


class AppealListArgsSchema(PageArgsSchema):
    status = fields.List(
        fields.String(validate=validate.OneOf([s.value for s in AppealStatus])),
        load_default=None,
        metadata={"description": "repeat for several; default every status"},
    )
    level = fields.String(load_default=None, validate=validate.OneOf([lv.value for lv in AppealLevel]))
    overdue = fields.Boolean(load_default=None, metadata={"description": "drafts past their deadline"})
    claim = fields.String(load_default=None, metadata={"description": "claim public id"})


class AppealSchema(Schema):
    class Meta:
        ordered = True

    id = fields.String()
    claim = fields.String()
    claim_number = fields.String(metadata={"description": "our claim number (CLM01)"})
    payer = fields.String(metadata={"description": "payer name"})
    work_item = fields.String(allow_none=True)
    work_item_queue = fields.String(allow_none=True)
    level = fields.String()
    status = fields.String()
    outcome = fields.String(allow_none=True)
    denial_date = fields.String(allow_none=True)
    deadline = fields.String()
    days_left = fields.Integer()
    overdue = fields.Boolean()
    parent = fields.String(allow_none=True)
    letter_text = fields.String(allow_none=True)
    attachments = fields.List(fields.Nested(AttachmentSchema))
    submitted_at = fields.String(allow_none=True)
    decided_at = fields.String(allow_none=True)


class AppealPageSchema(PageSchema):
    items = fields.List(fields.Nested(AppealSchema), required=True)


def appeal_to_json(appeal: Appeal, *, with_letter: bool = True) -> dict[str, Any]:
    session = db_session()
    session.flush()
    item = session.get(WorkItem, appeal.work_item_id) if appeal.work_item_id is not None else None
    parent = session.get(Appeal, appeal.parent_appeal_id) if appeal.parent_appeal_id is not None else None
    return {
        "id": appeal.public_id,
        "claim": appeal.claim.public_id,
        "claim_number": appeal.claim.patient_control_number,
        "payer": appeals.payer_of(appeal).name,
        "work_item": item.public_id if item is not None else None,
        "work_item_queue": item.queue.value if item is not None else None,
        "level": AppealLevel(appeal.level).value,
        "status": appeal.status.value,
        "outcome": appeal.outcome.value if appeal.outcome else None,
        "denial_date": appeal.denial_date.isoformat() if appeal.denial_date else None,
        "deadline": appeal.deadline.isoformat(),
        "days_left": appeals.days_left(appeal),
        "overdue": appeals.is_overdue(appeal),
        "parent": parent.public_id if parent is not None else None,
        "letter_text": appeal.letter_text if with_letter else None,
        "attachments": appeals.attachments_of(appeal),
        "submitted_at": appeal.submitted_at.isoformat() if appeal.submitted_at else None,
        "decided_at": appeal.decided_at.isoformat() if appeal.decided_at else None,
    }


def _default_days() -> int:
    return int(current_app.config.get("APPEAL_DEADLINE_DAYS", appeals.DEFAULT_APPEAL_DAYS))


@blp.route("/appeals", methods=["GET"])
@blp.arguments(AppealListArgsSchema, location="query")
@blp.response(200, AppealPageSchema)
def list_appeals(args: dict[str, Any]) -> dict[str, Any]:
    """Appeals by deadline (soonest first), filtered by status, level, overdue or claim; the
    letter is left out of lists (read one appeal for it). Cursor: the last (deadline, id)."""
    session = db_session()
    filters = appeals.AppealFilters(
        status=[AppealStatus(s) for s in args["status"]] if args["status"] else None,
        level=AppealLevel(args["level"]) if args["level"] else None,
        overdue=args["overdue"],
    )
    if args["claim"]:
        filters.claim_id = get_claim(session, args["claim"]).id
    fingerprint = {k: v for k, v in args.items() if k not in ("limit", "cursor")}
    stmt = appeals.appeal_select(filters)
    after = decode_cursor(args["cursor"], fingerprint)
    if after is not None:
        stmt = appeals.after_key(stmt, date.fromordinal(after >> 40), after & ((1 << 40) - 1))
    rows = list(session.scalars(stmt.limit(args["limit"] + 1)))
    more = len(rows) > args["limit"]
    rows = rows[: args["limit"]]
    cursor = None
    if more:
        last = rows[-1]
        cursor = encode_cursor((last.deadline.toordinal() << 40) | last.id, fingerprint)
    return {"items": [appeal_to_json(a, with_letter=False) for a in rows], "next_cursor": cursor}


@blp.route("/claims/<claim_id>/appeals", methods=["POST"])
@mutation()
@blp.arguments(AppealInSchema)
@blp.response(201, AppealSchema)
@blp.alt_response(409, description="not adjudicated, no 835 to appeal, or an appeal is already live")
def open_appeal(data: dict[str, Any], claim_id: str) -> dict[str, Any]:
    """Open a draft first-level appeal: deadline from the payer family's table and the denial
    date, a letter generated from the denial codes and the claim (unless given); the claim's
    denial item moves to the appeal queue, due on the deadline."""
    session = db_session()
    item = None
    if data["work_item"]:
        item = session.scalar(select(WorkItem).where(WorkItem.public_id == data["work_item"]))
        if item is None:
            raise Unprocessable(
                "no work item has this id",
                errors=[{"field": "work_item", "rule": "exists", "message": "unknown id"}],
            )
    appeal = appeals.open_appeal(
        session,
        get_claim(session, claim_id),
        work_item=item,
        letter_text=data["letter_text"],
        determined=data["determined"],
        default_days=_default_days(),
        user_id=current_principal().user_id,
    )
    return appeal_to_json(appeal)


@blp.route("/appeals/<appeal_id>", methods=["GET"])
@blp.response(200, AppealSchema)
def get_appeal(appeal_id: str) -> dict[str, Any]:
    """Read an appeal, with its letter and attachments."""
    return appeal_to_json(appeals.get_appeal(db_session(), appeal_id))


@blp.route("/appeals/<appeal_id>", methods=["PATCH"])
@mutation()
@blp.arguments(AppealPatchSchema)
@blp.response(200, AppealSchema)
@blp.alt_response(409, description="the appeal is no longer a draft")
def update_appeal(data: dict[str, Any], appeal_id: str) -> dict[str, Any]:
    """Replace a draft's letter and/or its attachments list (the whole list)."""
    appeal = appeals.update_appeal(
        db_session(),
        appeals.get_appeal(db_session(), appeal_id),
        letter_text=data.get("letter_text"),
        attachments=data.get("attachments"),
    )
    return appeal_to_json(appeal)


@blp.route("/appeals/<appeal_id>/submit", methods=["POST"])
@mutation()
@blp.response(200, AppealSchema)
@blp.alt_response(409, description="the appeal is not a draft")
def submit_appeal(appeal_id: str) -> dict[str, Any]:
    """Mark the appeal submitted (refused past the deadline or without a letter)."""
    return appeal_to_json(appeals.submit_appeal(db_session(), appeals.get_appeal(db_session(), appeal_id)))


@blp.route("/appeals/<appeal_id>/decision", methods=["POST"])
@mutation()
@blp.arguments(AppealDecisionSchema)
@blp.response(200, AppealSchema)
def decide_appeal(data: dict[str, Any], appeal_id: str) -> dict[str, Any]:
    """Record the payer's outcome (overturned, partially_overturned: won, the item closes;
    upheld: lost, the item returns to the denial queue) or withdraw the appeal."""
    session = db_session()
    appeal = appeals.record_outcome(
        session, appeals.get_appeal(session, appeal_id), data["outcome"], default_days=_default_days()
    )
    return appeal_to_json(appeal)


@blp.route("/appeals/<appeal_id>/next-level", methods=["POST"])
@mutation()
@blp.response(201, AppealSchema)
@blp.alt_response(409, description="the next level is already open")
def open_next_level(appeal_id: str) -> dict[str, Any]:
    """Open the next level (second, then external) of a lost appeal."""
    session = db_session()
    appeal = appeals.open_next_level(
        session,
        appeals.get_appeal(session, appeal_id),
        default_days=_default_days(),
        user_id=current_principal().user_id,
    )
    return appeal_to_json(appeal)
