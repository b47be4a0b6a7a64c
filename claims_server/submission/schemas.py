"""Request and response shapes of ``/api/v1/batches`` (money is a decimal string; no PHI)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from claims_server.api_common.fields import PublicId, StrictBoolean, StrictInteger
from claims_server.api_common.pagination import PageArgsSchema, PageSchema
from claims_server.models.submissions import BatchState
from claims_server.submission.sending import NOT_BATCHED_REASONS

#: The most claims one request may name (the workspace sends what one screen shows).
MAX_CLAIM_IDS = 10_000
_MONEY = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "example": "1250.00"}


class SendInSchema(Schema):
    """``POST /batches``: every ready claim, or the chosen ones; one route or all; a dry run."""

    claim_ids = fields.List(
        PublicId(),
        load_default=None,
        validate=validate.Length(min=1, max=MAX_CLAIM_IDS),
        metadata={"description": "claims to send (public ids); default: every ready claim"},
    )
    route = PublicId(
        load_default=None, metadata={"description": "clearinghouse route public id; default: every route"}
    )
    dry_run = StrictBoolean(
        load_default=False, metadata={"description": "show what would be batched; change nothing"}
    )


class PayerTotalSchema(Schema):
    payer = fields.String(required=True, metadata={"description": "payer public id"})
    payer_name = fields.String(required=True)
    claims = StrictInteger(required=True)
    total = fields.String(required=True, metadata=_MONEY)


class BatchSummarySchema(Schema):
    id = fields.String(
        required=True, allow_none=True, metadata={"description": "batch public id; null in a dry run"}
    )
    route = fields.String(required=True, metadata={"description": "clearinghouse route public id"})
    route_name = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "837P or 837I"})
    claims = StrictInteger(required=True)
    total_charge = fields.String(required=True, metadata=_MONEY)
    per_payer = fields.List(fields.Nested(PayerTotalSchema), required=True)
    state = fields.String(
        required=True,
        metadata={
            "description": "the batch's state after sending (dry_run in a dry run): sent; built when "
            "queued for the workers; failed, or built with last_error when the broker refused it "
            "(both kept and sent again by the resume-unsent-batches job)"
        },
    )
    last_error = fields.String(
        required=True, allow_none=True, metadata={"description": "why the batch did not go (no patient data)"}
    )


class HeldFindingSchema(Schema):
    rule_id = fields.String(required=True)
    severity = fields.String(required=True)
    message = fields.String(required=True)
    path = fields.String(allow_none=True)
    loop = fields.String(allow_none=True)
    hint = fields.String(allow_none=True)
    source = fields.String(allow_none=True)


class HeldClaimSchema(Schema):
    claim = fields.String(required=True, metadata={"description": "claim public id"})
    patient_control_number = fields.String(required=True)
    findings = fields.List(fields.Nested(HeldFindingSchema), required=True)


class NotReadySchema(Schema):
    claim = fields.String(required=True)
    state = fields.String(required=True)


class NotBatchedSchema(Schema):
    claim = fields.String(required=True, metadata={"description": "claim public id"})
    reason = fields.String(required=True, metadata={"enum": list(NOT_BATCHED_REASONS)})
    message = fields.String(required=True)


class SendReportSchema(Schema):
    dry_run = StrictBoolean(required=True)
    nothing_ready = StrictBoolean(
        required=True, metadata={"description": "no claim was (or would be) batched or held"}
    )
    batches = fields.List(fields.Nested(BatchSummarySchema), required=True)
    claims_batched = StrictInteger(required=True)
    total_charge = fields.String(required=True, metadata=_MONEY)
    held = fields.List(
        fields.Nested(HeldClaimSchema),
        required=True,
        metadata={"description": "claims the checks kept out (back to draft), with their findings"},
    )
    held_count = StrictInteger(required=True)
    not_ready = fields.List(
        fields.Nested(NotReadySchema),
        required=True,
        metadata={"description": "chosen claims that were not ready, with their state"},
    )
    not_ready_count = StrictInteger(required=True)
    not_batched = fields.List(
        fields.Nested(NotBatchedSchema),
        required=True,
        metadata={
            "description": "chosen claims that were ready but went in no batch (still ready), with the "
            "reason: other_route (not the route chosen), no_route (the payer has no active route), "
            "in_use (another send had it at that moment)"
        },
    )
    not_batched_count = StrictInteger(required=True)
    unrouted_claims = StrictInteger(
        required=True, metadata={"description": "ready claims whose payer has no active route (left ready)"}
    )


class BatchListArgsSchema(PageArgsSchema):
    state = fields.String(
        load_default=None,
        validate=validate.OneOf([s.value for s in BatchState]),
        metadata={"description": "one batch state"},
    )
    route = PublicId(load_default=None, metadata={"description": "clearinghouse route public id"})


class BatchSchema(Schema):
    id = fields.String(required=True)
    route = fields.String(required=True)
    route_name = fields.String(required=True)
    kind = fields.String(required=True)
    state = fields.String(required=True)
    claims = StrictInteger(required=True)
    total_charge = fields.String(required=True, metadata=_MONEY)
    per_payer = fields.List(fields.Nested(PayerTotalSchema), required=True)
    attempts = StrictInteger(required=True)
    last_error = fields.String(required=True, allow_none=True)
    built_at = fields.String(required=True, allow_none=True)
    sent_at = fields.String(required=True, allow_none=True)


class BatchPageSchema(PageSchema):
    items = fields.List(fields.Nested(BatchSchema), required=True)


class Ta1Schema(Schema):
    status = fields.String(required=True)
    meaning = fields.String(required=True)
    note_code = fields.String(allow_none=True)


class BatchFileSchema(Schema):
    id = fields.String(required=True, metadata={"description": "EDI file public id"})
    kind = fields.String(required=True, metadata={"description": "837P, 837I, 999 or 277CA"})
    direction = fields.String(required=True, metadata={"description": "out (sent) or in (received)"})
    status = fields.String(required=True)
    received_at = fields.String(required=True, allow_none=True)
    processed_at = fields.String(required=True, allow_none=True)
    answer = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "what the 999 or 277CA said about this batch"},
    )
    download = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "the raw file: GET /api/v1/batches/{id}/files/{file_id} (audited)"},
    )


class BatchDetailSchema(BatchSchema):
    ta1 = fields.Nested(Ta1Schema, required=True, allow_none=True)
    files = fields.List(fields.Nested(BatchFileSchema), required=True)
