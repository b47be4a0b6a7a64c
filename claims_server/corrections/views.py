"""``/api/v1``: replacement (frequency 7) and void (8) claims, appeals, and next-payer claims."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.claims.schemas import ClaimOutSchema
from claims_server.claims.services import claim_to_json, get_claim, transition
from claims_server.corrections import services
from claims_server.errors import NotFound
from claims_server.models import ClaimState, WorkItem
from claims_server.models.workqueue import Appeal, AppealStatus
from claims_server.secondary.services import create_next_payer_claim

blp = Blueprint(
    "corrections",
    __name__,
    url_prefix="/api/v1",
    description="After adjudication: replacement and void claims (REF*F8 = the payer's claim number), "
    "appeals with their filing deadline, and the next payer's claim with the prior payer's COB.",
)


class ReasonSchema(Schema):
    reason = fields.String(load_default=None, validate=validate.Length(max=200))


class AppealInSchema(Schema):
    work_item = fields.String(load_default=None, metadata={"description": "work item public id"})
    letter_text = fields.String(load_default=None, validate=validate.Length(max=services.MAX_LETTER))
    determined = fields.Date(
        load_default=None, metadata={"description": "determination date; default: the 835's"}
    )


class AppealPatchSchema(Schema):
    letter_text = fields.String(required=True, validate=validate.Length(min=1, max=services.MAX_LETTER))


class AppealDecisionSchema(Schema):
    outcome = fields.String(
        required=True, validate=validate.OneOf([AppealStatus.WON, AppealStatus.LOST, AppealStatus.WITHDRAWN])
    )


class AppealSchema(Schema):
    class Meta:
        ordered = True

    id = fields.String()
    claim = fields.String()
    work_item = fields.String(allow_none=True)
    status = fields.String()
    deadline = fields.String()
    letter_text = fields.String(allow_none=True)
    submitted_at = fields.String(allow_none=True)
    decided_at = fields.String(allow_none=True)


def appeal_to_json(appeal: Appeal) -> dict[str, Any]:
    item = db_session().get(WorkItem, appeal.work_item_id) if appeal.work_item_id is not None else None
    return {
        "id": appeal.public_id,
        "claim": appeal.claim.public_id,
        "work_item": item.public_id if item is not None else None,
        "status": appeal.status.value,
        "deadline": appeal.deadline.isoformat(),
        "letter_text": appeal.letter_text,
        "submitted_at": appeal.submitted_at.isoformat() if appeal.submitted_at else None,
        "decided_at": appeal.decided_at.isoformat() if appeal.decided_at else None,
    }


def _appeal(public_id: str) -> Appeal:
    appeal = db_session().scalar(select(Appeal).where(Appeal.public_id == public_id))
    if appeal is None:
        raise NotFound("no appeal has this id")
    return appeal


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


@blp.route("/claims/<claim_id>/appeals", methods=["POST"])
@mutation()
@blp.arguments(AppealInSchema)
@blp.response(201, AppealSchema)
def open_appeal(data: dict[str, Any], claim_id: str) -> dict[str, Any]:
    """Open a draft appeal with its deadline (Medicare 120 days; others APPEAL_DEADLINE_DAYS)."""
    session = db_session()
    item = None
    if data["work_item"]:
        item = session.scalar(select(WorkItem).where(WorkItem.public_id == data["work_item"]))
        if item is None:
            raise NotFound("no work item has this id")
    appeal = services.open_appeal(
        session,
        get_claim(session, claim_id),
        work_item=item,
        letter_text=data["letter_text"],
        determined=data["determined"],
        default_days=int(current_app.config.get("APPEAL_DEADLINE_DAYS", services.DEFAULT_APPEAL_DAYS)),
    )
    session.flush()
    return appeal_to_json(appeal)


@blp.route("/appeals/<appeal_id>", methods=["GET"])
@blp.response(200, AppealSchema)
def get_appeal(appeal_id: str) -> dict[str, Any]:
    """Read an appeal."""
    return appeal_to_json(_appeal(appeal_id))


@blp.route("/appeals/<appeal_id>", methods=["PATCH"])
@mutation()
@blp.arguments(AppealPatchSchema)
@blp.response(200, AppealSchema)
def update_appeal(data: dict[str, Any], appeal_id: str) -> dict[str, Any]:
    """Replace a draft appeal's letter."""
    return appeal_to_json(services.update_letter(db_session(), _appeal(appeal_id), data["letter_text"]))


@blp.route("/appeals/<appeal_id>/submit", methods=["POST"])
@mutation()
@blp.response(200, AppealSchema)
def submit_appeal(appeal_id: str) -> dict[str, Any]:
    """Mark the appeal submitted (refused past the deadline or without a letter)."""
    return appeal_to_json(services.submit_appeal(db_session(), _appeal(appeal_id)))


@blp.route("/appeals/<appeal_id>/decision", methods=["POST"])
@mutation()
@blp.arguments(AppealDecisionSchema)
@blp.response(200, AppealSchema)
def decide_appeal(data: dict[str, Any], appeal_id: str) -> dict[str, Any]:
    """Record the payer's decision (won, lost) or withdraw the appeal."""
    return appeal_to_json(services.decide_appeal(db_session(), _appeal(appeal_id), data["outcome"]))
