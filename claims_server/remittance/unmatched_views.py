"""``/api/v1/unmatched-payments``: 835 claim payments that matched no claim; apply by hand, or return.

Thin views over ``claims_server.remittance.unmatched``. An unmatched payment is named by the
public id of its ``unmatched`` work item (a claim payment has no public id of its own). The
answer carries the patient as the 835 named them (PHI, audited as a read of the stored file);
it never travels in a URL. Billers apply and return (returns above their refund limit wait
for approval); auditors read.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from claims_server.api_common.fields import Money
from claims_server.api_common.openapi import idempotency_key_required, money_out, public_id_out
from claims_server.api_common.transactions import mutation, required_idempotency_key
from claims_server.app import db_session
from claims_server.ledger.credit_views import (
    CreditRefundSchema,
    current_user_row,
    refund_answer,
    refund_limit,
)
from claims_server.models.ledger import RefundMethod
from claims_server.remittance import unmatched
from claims_server.security.principal import current_principal

blp = Blueprint(
    "unmatched_payments",
    __name__,
    url_prefix="/api/v1",
    description="Unmatched 835 claim payments in full (payer, trace, CLP01, amounts, the patient as "
    "named), a suggested claim; apply one to a claim by hand, or return it to the payer",
)


class UnmatchedSuggestionSchema(Schema):
    claim = public_id_out(required=True)
    patient_control_number = fields.String(required=True)
    why = fields.List(fields.String(), required=True)


class UnmatchedSchema(Schema):
    class Meta:
        ordered = True

    id = public_id_out(required=True)  # its unmatched work item's id
    work_item_status = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(["unmatched", "applied", "returned"]))
    remittance = public_id_out(required=True)
    payer = public_id_out(allow_none=True, required=True)
    payer_name = fields.String(allow_none=True, required=True)
    trace_number = fields.String(required=True, metadata={"description": "TRN02"})
    check_date = fields.String(allow_none=True, required=True, metadata={"description": "BPR16"})
    position = fields.Integer(required=True)
    patient_control_number = fields.String(required=True, metadata={"description": "CLP01"})
    payer_claim_control_number = fields.String(
        allow_none=True, required=True, metadata={"description": "CLP07"}
    )
    status_code = fields.String(required=True, metadata={"description": "CLP02"})
    patient_name = fields.String(allow_none=True, required=True, metadata={"description": "NM1*QC (PHI)"})
    service_date = fields.String(allow_none=True, required=True)
    billed = money_out(required=True, metadata={"description": "CLP03"})
    paid = money_out(required=True, metadata={"description": "CLP04"})
    patient_responsibility = money_out(allow_none=True, required=True, metadata={"description": "CLP05"})
    unapplied = money_out(required=True, metadata={"description": "still in unapplied payments"})
    applied_to = public_id_out(allow_none=True, required=True)
    applied_by = fields.String(allow_none=True, required=True)
    credit = fields.String(required=True, metadata={"description": "its payer credit id"})
    suggestions = fields.List(fields.Nested(UnmatchedSuggestionSchema), required=True)


class UnmatchedListArgs(Schema):
    include_done = fields.Boolean(load_default=False)


class UnmatchedListSchema(Schema):
    items = fields.List(fields.Nested(UnmatchedSchema), required=True)
    total_paid = money_out(
        required=True, metadata={"description": "Σ money received in open unmatched payments"}
    )


class UnmatchedApplyInSchema(Schema):
    claim = fields.String(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "the claim's public id or claim number (CLP01)"},
    )


class UnmatchedApplyOutSchema(Schema):
    payment = fields.Nested(UnmatchedSchema, required=True)
    claim = public_id_out(required=True)
    claim_state = fields.String(required=True)
    outcome = fields.Dict(required=True, metadata={"description": "what the posting engine did"})


class UnmatchedReturnInSchema(Schema):
    amount = Money(load_default=None, metadata={"description": "default: all that is unapplied"})
    method = fields.String(
        required=True, validate=validate.OneOf([RefundMethod.CHECK.value, RefundMethod.PAYER_OFFSET.value])
    )
    reference = fields.String(load_default=None, validate=validate.Length(max=80))
    note = fields.String(load_default=None, validate=validate.Length(max=2000))


@blp.route("/unmatched-payments", methods=["GET"], endpoint="list_unmatched_payments")
@blp.arguments(UnmatchedListArgs, location="query")
@blp.response(200, UnmatchedListSchema)
def list_unmatched_payments(args: dict[str, Any]) -> dict[str, Any]:
    """Unmatched claim payments, newest first (open ones; ``include_done`` adds applied and returned)."""
    from claims_server.api_common.fields import cents_to_money

    session = db_session()
    rows = unmatched.list_unmatched(session, include_done=args["include_done"])
    named: dict[int, Any] = {}
    items = []
    for item, payment in rows:
        if payment.remittance_id not in named:
            named[payment.remittance_id] = unmatched.patients_as_named(session, payment.remittance)
        items.append(
            unmatched.detail_json(
                session, item, payment, named=named[payment.remittance_id], with_suggestions=False
            )
        )
    return {"items": items, "total_paid": cents_to_money(unmatched.sum_unmatched_paid(session))}


@blp.route("/unmatched-payments/<item_id>", methods=["GET"], endpoint="get_unmatched_payment")
@blp.response(200, UnmatchedSchema)
def get_unmatched_payment(item_id: str) -> dict[str, Any]:
    """One unmatched payment in full, with suggested claims (same payer, similar CLP01, amount, date)."""
    session = db_session()
    item, payment = unmatched.get_unmatched(session, item_id)
    return unmatched.detail_json(session, item, payment)


@blp.route("/unmatched-payments/<item_id>/apply", methods=["POST"], endpoint="apply_unmatched_payment")
@mutation(idempotent=True)
@blp.arguments(UnmatchedApplyInSchema)
@blp.response(200, UnmatchedApplyOutSchema)
@blp.alt_response(409, description="the payment was applied or decided already")
def apply_unmatched_payment(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    """Post the payment to a claim as if it had matched (422 naming ``claim`` when it may not)."""
    session = db_session()
    item, payment = unmatched.get_unmatched(session, item_id)
    claim = unmatched.find_claim(session, data["claim"])
    outcome = unmatched.apply_to_claim(session, item, payment, claim, actor=current_principal().name)
    assert claim is not None
    return {
        "payment": unmatched.detail_json(session, item, payment, with_suggestions=False),
        "claim": claim.public_id,
        "claim_state": claim.state.value,
        "outcome": outcome,
    }


@blp.route("/unmatched-payments/<item_id>/refund", methods=["POST"], endpoint="return_unmatched_payment")
@mutation(idempotent=True)
@idempotency_key_required
@blp.arguments(UnmatchedReturnInSchema)
@blp.alt_response(201, schema=CreditRefundSchema, description="the payer refund, posted", success=True)
@blp.alt_response(
    202, schema=CreditRefundSchema, description="above your limit: waiting for approval", success=True
)
@blp.alt_response(200, schema=CreditRefundSchema, description="a replay (same Idempotency-Key)", success=True)
def return_unmatched_payment(data: dict[str, Any], item_id: str) -> tuple[dict[str, Any], int]:
    """Return the payment to the payer: a check with a refund letter, or an offset of a later 835."""
    session = db_session()
    _, payment = unmatched.get_unmatched(session, item_id)
    outcome = unmatched.return_to_payer(
        session,
        payment,
        amount_cents=data["amount"],
        method=data["method"],
        reference=data["reference"],
        note=data["note"],
        idempotency_key=required_idempotency_key("a refund"),
        requested_by=current_user_row(),
        limit_cents=refund_limit(),
    )
    return refund_answer(outcome)
