"""Request and response shapes of ``/api/v1/remittances`` (money is a decimal string)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from claims_server.api_common.fields import StrictBoolean, StrictInteger
from claims_server.api_common.pagination import PageArgsSchema, PageSchema


class UploadArgsSchema(Schema):
    """``?dry_run=true``: compute and show the posting, change nothing."""

    dry_run = StrictBoolean(load_default=False, metadata={"description": "show what would be posted only"})
    confirm_foreign = StrictBoolean(
        load_default=False,
        metadata={
            "description": "post an 835 whose payer or payee is not ours, or none of whose claims is ours "
            "(a billing supervisor's confirmation; without it such a file is refused with 409 naming "
            "confirm_foreign, stored but not posted)"
        },
    )


class RemittanceListArgsSchema(PageArgsSchema):
    state = fields.String(
        load_default=None,
        validate=validate.OneOf(["received", "posted", "failed", "held"]),
        metadata={"description": "received, posted, failed or held (every claim a possible duplicate)"},
    )


class RemittanceSummarySchema(Schema):
    id = fields.String(required=True)
    state = fields.String(required=True)
    edi_file = fields.String(required=True)
    trace_number = fields.String(required=True)
    payer_identifier = fields.String(required=True)
    payer = fields.String(allow_none=True)
    payer_name = fields.String(allow_none=True)
    payment = fields.String(required=True, metadata={"example": "1234.50"})
    payment_method = fields.String(required=True)
    payment_date = fields.String(allow_none=True)
    posted_at = fields.String(allow_none=True)
    claims = StrictInteger(required=True)
    unmatched_claims = StrictInteger(required=True)
    held_claims = StrictInteger(
        required=True,
        metadata={"description": "claims held (possible duplicate, would overdraw, unmatched reversal)"},
    )


class RemittancePageSchema(PageSchema):
    items = fields.List(fields.Nested(RemittanceSummarySchema), required=True)


class PlbWorkItemSchema(Schema):
    id = fields.String(required=True)
    status = fields.String(required=True)


class ProviderAdjustmentSchema(Schema):
    """One PLB adjustment. Its reference (PLB03-2) is not shown: it may carry a member id; what
    it was matched to is."""

    provider_identifier = fields.String(required=True, metadata={"description": "PLB01"})
    fiscal_period_date = fields.String(allow_none=True, metadata={"description": "PLB02"})
    reason = fields.String(required=True, metadata={"description": "PLB03-1: WO, L6, FB, 72, CS, ..."})
    reason_label = fields.String(required=True, metadata={"example": "overpayment recovery"})
    amount = fields.String(
        required=True,
        metadata={"description": "PLB04: positive, the payer kept it from this payment; negative, added it"},
    )
    reference_kind = fields.String(
        allow_none=True,
        metadata={
            "description": "what the reference names: claim (our claim number), payer_claim (a claim "
            "number this payer sent), other (none of ours), none (no reference)"
        },
    )
    claim = fields.String(allow_none=True, metadata={"description": "public id of the claim it names"})
    matched_identifier = fields.String(
        allow_none=True,
        metadata={
            "description": "our patient control number, or the payer's claim number, it was matched by"
        },
    )
    work_item = fields.Nested(
        PlbWorkItemSchema, allow_none=True, metadata={"description": "its reconciliation item"}
    )


class RemittanceDetailSchema(RemittanceSummarySchema):
    claim_payments = fields.List(fields.Dict(), required=True)
    provider_adjustments = fields.List(fields.Nested(ProviderAdjustmentSchema), required=True)
    remittance_postings = fields.List(fields.Dict(), required=True)
    unmatched = fields.List(fields.Dict(), required=True)


class PostingReportSchema(Schema):
    edi_file = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "posted, duplicate, dry_run or failed"})
    dry_run = StrictBoolean(required=True)
    duplicate = StrictBoolean(required=True)
    summary = fields.Dict(
        required=True,
        metadata={
            "description": "counts and totals: claims_parsed = claims_posted + claims_held + claims_queued "
            "+ claims_informational, paid_posted_cents, entries_posted, work_items_opened, held_remittances"
        },
    )
    remittances = fields.List(
        fields.Dict(),
        required=True,
        metadata={
            "description": "per transaction set: the payment, claims_posted / claims_held / claims_queued, "
            "held (every claim a possible duplicate), the completeness checks and each claim's outcome"
        },
    )
    findings = fields.List(fields.Dict(), required=True)
    error = fields.Dict(allow_none=True)
    origin = fields.Dict(
        metadata={
            "description": "is the file ours: per payment the payer (known?), the payee (our NPI/TIN?), "
            "claims and claims_matched (CLP01), foreign and its reasons; posting a foreign file needs "
            "confirm_foreign=true from a billing supervisor"
        }
    )
