"""``GET /api/v1/claims/<id>/remittance-detail``: what the payers said about one claim.

The claim screen's remittance sections as JSON (``claims_server.remittance.claim_detail``):
per service line the payers' adjudications in force (allowed, paid, each CAS adjustment
with its explanation, remark codes), every adjudication of the claim with its kind and
state (original, correction, reversal; current, reversed, superseded, held...), and the
related claims (replacement/void ↔ original, secondary/tertiary ↔ primary). Staff only; the
read is audited like the claim's (PHI: the claim's lines and amounts).
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from claims_server.app import db_session
from claims_server.claims.services import get_claim
from claims_server.remittance.claim_detail import claim_remittance_detail

blp = Blueprint(
    "claim_remittances",
    __name__,
    url_prefix="/api/v1/claims",
    description="One claim's remittance detail: per-line adjudications in force, the adjudication "
    "history, related claims.",
)

_MONEY = {"description": "decimal string, e.g. 12.34"}


class ClaimRemitAdjustmentOutSchema(Schema):
    group = fields.String(required=True, metadata={"description": "CAS01: CO, PR, OA, PI, CR"})
    reason = fields.String(required=True, metadata={"description": "CAS02 (CARC)"})
    amount = fields.String(required=True, metadata=_MONEY)
    quantity = fields.String(allow_none=True)
    group_meaning = fields.String(allow_none=True)
    meaning = fields.String(allow_none=True, metadata={"description": "the CARC's explanation"})
    patient_explanation = fields.String(allow_none=True)
    biller_action = fields.String(allow_none=True)


class ClaimRemitRemarkOutSchema(Schema):
    code = fields.String(required=True, metadata={"description": "RARC (LQ*HE)"})
    meaning = fields.String(allow_none=True)


class ClaimRemitLineAdjudicationOutSchema(Schema):
    payer = fields.String(required=True)
    remittance = fields.String(required=True, metadata={"description": "the remittance's public id"})
    trace_number = fields.String(required=True, metadata={"description": "TRN02 (check or EFT trace)"})
    adjudication_kind = fields.String(allow_none=True)
    procedure = fields.String(required=True, metadata={"description": "SVC01-2"})
    charge = fields.String(required=True, metadata=_MONEY)
    allowed = fields.String(allow_none=True, metadata=_MONEY | {"description": "AMT*B6, when given"})
    paid = fields.String(required=True, metadata=_MONEY)
    adjustments = fields.List(fields.Nested(ClaimRemitAdjustmentOutSchema), required=True)
    remarks = fields.List(fields.Nested(ClaimRemitRemarkOutSchema), required=True)


class ClaimRemitLineOutSchema(Schema):
    line_number = fields.Integer(required=True)
    procedure = fields.String(required=True)
    service_date = fields.String(allow_none=True)
    charge = fields.String(required=True, metadata=_MONEY)
    adjudications = fields.List(fields.Nested(ClaimRemitLineAdjudicationOutSchema), required=True)


class ClaimRemitAdjudicationOutSchema(Schema):
    payer = fields.String(allow_none=True)
    remittance = fields.String(required=True)
    trace_number = fields.String(required=True)
    payment_method = fields.String(allow_none=True)
    payment_date = fields.String(allow_none=True)
    received_at = fields.String(allow_none=True)
    status_code = fields.String(required=True, metadata={"description": "CLP02"})
    status = fields.String(allow_none=True)
    adjudication_kind = fields.String(allow_none=True)
    adjudication_state = fields.String(allow_none=True)
    in_force = fields.Boolean(required=True, metadata={"description": "the ledger reflects it"})
    past = fields.Boolean(required=True, metadata={"description": "reversed, superseded or rejected"})
    hold_reason = fields.String(allow_none=True)
    charge = fields.String(required=True, metadata=_MONEY)
    paid = fields.String(required=True, metadata=_MONEY)
    patient_responsibility = fields.String(allow_none=True, metadata=_MONEY)
    payer_claim_control_number = fields.String(allow_none=True)
    adjustments = fields.List(fields.Nested(ClaimRemitAdjustmentOutSchema), required=True)


class ClaimRemitRelatedClaimOutSchema(Schema):
    relation = fields.String(required=True)
    claim = fields.String(required=True, metadata={"description": "public id"})
    claim_number = fields.String(required=True, metadata={"description": "patient control number (CLM01)"})
    state = fields.String(required=True)
    frequency_code = fields.String(required=True)
    coverage_order = fields.Integer(required=True)


class ClaimRemittanceDetailSchema(Schema):
    claim = fields.String(required=True)
    claim_number = fields.String(required=True)
    patient = fields.String(required=True)
    lines = fields.List(fields.Nested(ClaimRemitLineOutSchema), required=True)
    current = fields.List(fields.Nested(ClaimRemitAdjudicationOutSchema), required=True)
    adjudications = fields.List(fields.Nested(ClaimRemitAdjudicationOutSchema), required=True)
    related = fields.List(fields.Nested(ClaimRemitRelatedClaimOutSchema), required=True)


@blp.route("/<string:claim_id>/remittance-detail", methods=["GET"])
@blp.response(200, ClaimRemittanceDetailSchema)
@blp.alt_response(404, description="no such claim")
def get_claim_remittance_detail(claim_id: str) -> dict[str, Any]:
    """The claim's per-line remittance detail, adjudication history and related claims."""
    session = db_session()
    return claim_remittance_detail(session, get_claim(session, claim_id))
