"""``/api/v1/credit-balances`` and ``/api/v1/refunds``: patient and payer credits, refunds, transfers, holds.

Thin views over ``claims_server.ledger.credits``. A credit is named by its credit id (public
ids only: ``patient.<id>``, ``claim.<id>``, ``payer.<remittance id>.<CLP position>``).
Refunds and transfers need an ``Idempotency-Key`` header (it names the journal entry, so a
retry posts once). Billers refund up to ``REFUND_BILLER_LIMIT_CENTS``; above it the refund
waits as an approval request (202). Auditors read.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from claims_server.api_common.fields import Money, PublicId
from claims_server.api_common.openapi import idempotency_key_required, money_out, public_id_out
from claims_server.api_common.transactions import mutation, required_idempotency_key
from claims_server.app import db_session
from claims_server.claims.services import get_claim
from claims_server.errors import NotFound
from claims_server.ledger import credits
from claims_server.models import User
from claims_server.models.ledger import RefundMethod
from claims_server.security.principal import current_principal

blp = Blueprint(
    "credit_balances",
    __name__,
    url_prefix="/api/v1",
    description="Credit balances (patient overpayments, negative patient balances, unapplied payer "
    "money) with their origin; refunds, transfers to another open balance of the patient, holds",
)


class CreditSchema(Schema):
    class Meta:
        ordered = True

    id = fields.String(
        required=True, metadata={"description": "patient.<id>, claim.<id> or payer.<remittance>.<n>"}
    )
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in credits.CreditKind]))
    amount = money_out(required=True, metadata={"description": "what can be refunded or transferred now"})
    balance = money_out(required=True, metadata={"description": "the credit on the ledger"})
    reserved = money_out(required=True, metadata={"description": "refunds waiting for approval"})
    patient = public_id_out(allow_none=True, required=True)
    claim = public_id_out(allow_none=True, required=True)
    payer = public_id_out(allow_none=True, required=True)
    payer_name = fields.String(allow_none=True, required=True)
    remittance = public_id_out(allow_none=True, required=True)
    origin = fields.List(fields.Dict(), required=True, metadata={"description": "what made the credit"})
    refund_methods = fields.List(fields.String(), required=True)
    work_item = public_id_out(allow_none=True, required=True)
    work_item_status = fields.String(allow_none=True, required=True)
    snoozed_until = fields.String(allow_none=True, required=True)


class CreditListSchema(Schema):
    items = fields.List(fields.Nested(CreditSchema), required=True)


class CreditRefundSchema(Schema):
    class Meta:
        ordered = True

    id = public_id_out(required=True)
    kind = fields.String(required=True)
    method = fields.String(required=True)
    state = fields.String(required=True)
    amount = money_out(required=True)
    patient = public_id_out(allow_none=True, required=True)
    claim = public_id_out(allow_none=True, required=True)
    payer = public_id_out(allow_none=True, required=True)
    remittance = public_id_out(allow_none=True, required=True)
    clp_position = fields.Integer(allow_none=True, required=True)
    reference = fields.String(allow_none=True, required=True)
    approval_request = public_id_out(allow_none=True, required=True)
    journal_entry = public_id_out(allow_none=True, required=True)
    offset_by_plb = fields.Boolean(required=True)
    issued_at = fields.String(allow_none=True, required=True)
    created_at = fields.String(allow_none=True, required=True)
    letter = fields.String(
        allow_none=True, required=True, metadata={"description": "payer refund letter (check)"}
    )
    replayed = fields.Boolean()


class CreditRefundListSchema(Schema):
    items = fields.List(fields.Nested(CreditRefundSchema), required=True)


class CreditRefundInSchema(Schema):
    amount = Money(required=True)
    method = fields.String(required=True, validate=validate.OneOf([m.value for m in RefundMethod]))
    reference = fields.String(load_default=None, validate=validate.Length(max=credits.MAX_REFERENCE))
    note = fields.String(load_default=None, validate=validate.Length(max=credits.MAX_NOTE))


class CreditTransferInSchema(Schema):
    amount = Money(required=True)
    claim_id = PublicId(required=True, metadata={"description": "the claim of the same patient to pay"})


class CreditTransferOutSchema(Schema):
    journal_entry = public_id_out(required=True)
    claim = public_id_out(required=True)
    amount = money_out(required=True)
    replayed = fields.Boolean(required=True)


class CreditHoldInSchema(Schema):
    until = fields.Date(required=True)
    note = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class CreditHoldOutSchema(Schema):
    work_item = public_id_out(required=True)
    status = fields.String(required=True)
    snoozed_until = fields.String(allow_none=True, required=True)


def refund_limit() -> int | None:
    """The caller's refund limit (config ``REFUND_BILLER_LIMIT_CENTS`` for billers; None: no limit)."""
    settings = current_app.extensions["claims_server"].settings
    return credits.refund_limit_for(current_principal().role, settings.REFUND_BILLER_LIMIT_CENTS)


def current_user_row() -> User | None:
    user_id = current_principal().user_id
    return db_session().get(User, user_id) if user_id is not None else None


def refund_answer(outcome: credits.RefundOutcome) -> tuple[dict[str, Any], int]:
    body = {**credits.refund_json(db_session(), outcome.refund), "replayed": outcome.replayed}
    if outcome.replayed:
        return body, 200
    return body, 202 if outcome.approval is not None else 201


@blp.route("/credit-balances", methods=["GET"], endpoint="list_credit_balances")
@blp.response(200, CreditListSchema)
def list_credit_balances() -> dict[str, Any]:
    """Every credit now (computed from the ledger), with its origin and its work item."""
    session = db_session()
    return {"items": [credits.credit_json(session, c) for c in credits.list_credits(session)]}


@blp.route("/credit-balances/<credit_id>", methods=["GET"], endpoint="get_credit_balance")
@blp.response(200, CreditSchema)
def get_credit_balance(credit_id: str) -> dict[str, Any]:
    """One credit as it is now (404 when it is gone)."""
    session = db_session()
    credit = credits.get_credit(session, credit_id)
    assert credit is not None
    return credits.credit_json(session, credit)


@blp.route("/credit-balances/<credit_id>/refund", methods=["POST"], endpoint="refund_credit_balance")
@mutation(idempotent=True)
@idempotency_key_required
@blp.arguments(CreditRefundInSchema)
@blp.alt_response(201, schema=CreditRefundSchema, description="the refund, posted", success=True)
@blp.alt_response(
    202, schema=CreditRefundSchema, description="above your limit: waiting for approval", success=True
)
@blp.alt_response(200, schema=CreditRefundSchema, description="a replay (same Idempotency-Key)", success=True)
def refund_credit_balance(data: dict[str, Any], credit_id: str) -> tuple[dict[str, Any], int]:
    """Refund all or part of a credit (patient: check or card_reversal; payer: check or payer_offset)."""
    outcome = credits.refund_credit(
        db_session(),
        credit_id,
        amount_cents=data["amount"],
        method=data["method"],
        reference=data["reference"],
        note=data["note"],
        idempotency_key=required_idempotency_key("a refund"),
        requested_by=current_user_row(),
        limit_cents=refund_limit(),
    )
    return refund_answer(outcome)


@blp.route("/credit-balances/<credit_id>/transfer", methods=["POST"], endpoint="transfer_credit_balance")
@mutation(idempotent=True)
@idempotency_key_required
@blp.arguments(CreditTransferInSchema)
@blp.alt_response(201, schema=CreditTransferOutSchema, description="the transfer, posted", success=True)
@blp.alt_response(
    200, schema=CreditTransferOutSchema, description="a replay (same Idempotency-Key)", success=True
)
def transfer_credit_balance(data: dict[str, Any], credit_id: str) -> tuple[dict[str, Any], int]:
    """Move a patient's credit to the open patient balance of another claim of the same patient."""
    session = db_session()
    try:
        target = get_claim(session, data["claim_id"])
    except NotFound:
        raise credits.refuse("claim", "exists", "no claim has this id") from None
    done = credits.transfer_credit(
        session,
        credit_id,
        amount_cents=data["amount"],
        target=target,
        idempotency_key=required_idempotency_key("a transfer"),
    )
    from claims_server.api_common.fields import cents_to_money

    body = {
        "journal_entry": done.entry.public_id,
        "claim": target.public_id,
        "amount": cents_to_money(done.amount_cents),
        "replayed": done.replayed,
    }
    return body, 200 if done.replayed else 201


@blp.route("/credit-balances/<credit_id>/hold", methods=["POST"], endpoint="hold_credit_balance")
@mutation()
@blp.arguments(CreditHoldInSchema)
@blp.response(200, CreditHoldOutSchema)
def hold_credit_balance(data: dict[str, Any], credit_id: str) -> dict[str, Any]:
    """Hold a credit: its work item sleeps until ``until`` with the note (nothing is posted)."""
    item = credits.hold_credit(
        db_session(), credit_id, until=data["until"], note=data["note"], author=current_user_row()
    )
    return {
        "work_item": item.public_id,
        "status": item.status.value,
        "snoozed_until": item.snoozed_until.date().isoformat() if item.snoozed_until else None,
    }


@blp.route("/refunds", methods=["GET"], endpoint="list_refunds")
@blp.response(200, CreditRefundListSchema)
def list_refunds() -> dict[str, Any]:
    """Refunds, newest first (the last 100)."""
    session = db_session()
    return {"items": [credits.refund_json(session, r) for r in credits.list_refunds(session)]}


@blp.route("/refunds/<refund_id>", methods=["GET"], endpoint="get_refund")
@blp.response(200, CreditRefundSchema)
def get_refund(refund_id: str) -> dict[str, Any]:
    """One refund, with the payer refund letter when it is a payer check."""
    session = db_session()
    return credits.refund_json(session, credits.get_refund(session, refund_id))
