"""``/api/v1/claims/<claim id>/write-offs``: write off a claim's open balance, list, reverse.

Thin views over ``claims_server.ledger.write_offs``. Posting needs an ``Idempotency-Key``
header, handled like a payment (``payments.views``): the HTTP layer replays the stored
answer, and the key (scoped to the caller) names the journal entry, so a retry posts once.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from claims_server.api_common.fields import Money, PublicId, StrictBoolean, StrictInteger
from claims_server.api_common.openapi import idempotency_key_required, money_out, public_id_out
from claims_server.api_common.transactions import mutation, required_idempotency_key
from claims_server.app import db_session
from claims_server.claims.services import get_claim
from claims_server.errors import Unprocessable
from claims_server.ledger import approvals, write_offs
from claims_server.ledger.approval_views import ApprovalOutSchema
from claims_server.models import Payer, User
from claims_server.security.principal import current_principal

blp = Blueprint(
    "write_offs",
    __name__,
    url_prefix="/api/v1",
    description="Write-offs of a claim's open insurance or patient balance, with a reason from a fixed list",
)


class WriteOffInSchema(Schema):
    amount = Money(required=True)
    bucket = fields.String(
        required=True, validate=validate.OneOf([b.value for b in write_offs.WriteOffBucket])
    )
    reason = fields.String(
        required=True, validate=validate.OneOf([r.value for r in write_offs.WriteOffReason])
    )
    note = fields.String(load_default=None, validate=validate.Length(max=write_offs.MAX_NOTE))
    line = StrictInteger(load_default=None, strict=True, validate=validate.Range(1, 999))
    payer_id = PublicId(load_default=None)


class ReversalInSchema(Schema):
    reason = fields.String(
        required=True, validate=validate.OneOf([r.value for r in write_offs.ReversalReason])
    )


class WriteOffOutSchema(Schema):
    id = public_id_out(required=True)
    claim_id = public_id_out(required=True)
    bucket = fields.String(
        required=True, validate=validate.OneOf([b.value for b in write_offs.WriteOffBucket])
    )
    reason = fields.String(required=True)
    reason_label = fields.String(required=True)
    controllable = StrictBoolean(required=True)
    amount = money_out(required=True)
    note = fields.String(allow_none=True, required=True)
    effective_date = fields.Date(required=True)
    created_at = fields.DateTime(allow_none=True, required=True)
    reverses = public_id_out(allow_none=True, required=True)
    reversed_by = public_id_out(allow_none=True, required=True)
    replayed = StrictBoolean(required=True)


class WriteOffListSchema(Schema):
    items = fields.List(fields.Nested(WriteOffOutSchema), required=True)
    open_balance = fields.Dict(
        keys=fields.String(validate=validate.OneOf([b.value for b in write_offs.WriteOffBucket])),
        values=money_out(),
        required=True,
    )


def approval_limit() -> int | None:
    """The caller's per-write-off limit (config ``WRITE_OFF_BILLER_LIMIT_CENTS`` for billers)."""
    settings = current_app.extensions["claims_server"].settings
    return write_offs.approval_limit_for(current_principal().role, settings.WRITE_OFF_BILLER_LIMIT_CENTS)


def payer_of(public_id: str | None, field: str = "payer_id") -> Payer | None:
    if public_id is None:
        return None
    payer = db_session().scalar(select(Payer).where(Payer.public_id == public_id))
    if payer is None:
        raise Unprocessable(
            f"{field}: no payer has this id",
            errors=[
                {"field": field, "location": "json", "rule": "exists", "message": "no payer has this id"}
            ],
        )
    return payer


@blp.route("/claims/<claim_id>/write-offs", methods=["POST"], endpoint="create_write_off")
@mutation(idempotent=True)
@idempotency_key_required
@blp.arguments(WriteOffInSchema)
@blp.alt_response(201, schema=WriteOffOutSchema, description="the write-off, posted", success=True)
@blp.alt_response(200, schema=WriteOffOutSchema, description="a replay (same Idempotency-Key)", success=True)
@blp.alt_response(
    202,
    schema=ApprovalOutSchema,
    description="above the caller's limit: nothing posted, an approval request sent to a supervisor "
    "(GET /api/v1/approvals/{id})",
    success=True,
)
def create_write_off(data: dict[str, Any], claim_id: str) -> tuple[dict[str, Any], int]:
    """Write off all or part of the claim's insurance or patient balance (Idempotency-Key required).

    Above the biller limit nothing is posted: the answer is 202 with the approval request a
    billing supervisor decides (docs/write-offs.md).
    """
    session = db_session()
    done = write_offs.write_off_or_request(
        session,
        get_claim(session, claim_id),
        amount_cents=data["amount"],
        bucket=data["bucket"],
        reason=data["reason"],
        note=data["note"],
        line_number=data["line"],
        payer=payer_of(data["payer_id"]),
        idempotency_key=required_idempotency_key("a write-off"),
        approval_limit_cents=approval_limit(),
        requested_by=_requester(),
    )
    if isinstance(done, write_offs.WriteOffRequested):
        return approvals.view_of(session, done.approval).to_json_dict(), 202
    return done.to_json_dict(), 200 if done.replayed else 201


def _requester() -> User | None:
    user_id = current_principal().user_id
    return db_session().get(User, user_id) if user_id is not None else None


@blp.route("/claims/<claim_id>/write-offs", methods=["GET"], endpoint="list_write_offs")
@mutation()
@blp.alt_response(200, schema=WriteOffListSchema, success=True)
def list_write_offs(claim_id: str) -> dict[str, Any]:
    """The claim's write-offs and reversals, oldest first, with its open balances now."""
    session = db_session()
    claim = get_claim(session, claim_id)
    from claims_server.api_common.fields import cents_to_money

    balances = write_offs.open_balances(session, claim)
    return {
        "items": [w.to_json_dict() for w in write_offs.list_write_offs(session, claim)],
        "open_balance": {bucket.value: cents_to_money(cents) for bucket, cents in balances.items()},
    }


@blp.route(
    "/claims/<claim_id>/write-offs/<write_off_id>/reversal", methods=["POST"], endpoint="reverse_write_off"
)
@mutation(idempotent=True)
@blp.arguments(ReversalInSchema)
@blp.alt_response(201, schema=WriteOffOutSchema, description="the reversal", success=True)
def reverse_write_off(data: dict[str, Any], claim_id: str, write_off_id: str) -> tuple[dict[str, Any], int]:
    """Undo a write-off with a mirrored entry (at most once per write-off)."""
    session = db_session()
    done = write_offs.reverse_write_off(
        session, get_claim(session, claim_id), write_off_id, reason=data["reason"]
    )
    return done.to_json_dict(), 201
