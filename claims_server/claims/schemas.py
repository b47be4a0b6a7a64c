"""The claim JSON shape: one schema for create, update, validate, read and the CLI.

Field names follow the 837 claim dataclasses (``lines[i].procedure``,
``lines[i].modifiers[k]``, ``diagnoses[k]``) so the scrubber's findings point at the
same paths the client sent. Money is a decimal string (``"125.00"``): JSON numbers are
refused for money. Patient and coverage are referenced by ``public_id``; providers by
``public_id`` or NPI. Diagnoses are ICD-10-CM codes, with or without the dot.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from claims_server.api_common.fields import (
    Coded,
    DecimalString,
    Money,
    ProviderRef,
    PublicId,
    StrictBoolean,
    StrictInteger,
    X12Text,
)
from claims_server.api_common.pagination import PageArgsSchema, PageSchema
from claims_server.models import ClaimFrequency, ClaimKind, ClaimState, UnitBasis

_ICD10 = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")
_PROCEDURE = re.compile(r"^[A-Z0-9]{5}$")
_MODIFIER = re.compile(r"^[A-Z0-9]{2}$")
_POS = re.compile(r"^\d{2}$")
_NDC = re.compile(r"^\d{11}$")
_STATE = re.compile(r"^[A-Z]{2}$")

MAX_LINES = 50  # 837P 2400 repeat
MAX_DIAGNOSES = 12  # 837P HI


class IcdCode(fields.String):
    """An ICD-10-CM code, dot optional, case-insensitive; stored upper-case without the dot."""

    default_error_messages = {
        "icd": 'must be an ICD-10-CM code such as "E11.9" (letter, 2 characters, up to 4 more)'
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if not _ICD10.match(text):
            raise self.make_error("icd")
        return text.replace(".", "")


class ServiceLineSchema(Schema):
    """One service line (837P loop 2400)."""

    line_number = StrictInteger(dump_only=True, metadata={"example": 1})
    procedure = Coded(
        _PROCEDURE,
        'must be a 5-character CPT or HCPCS code such as "99213"',
        required=True,
        metadata={"example": "99213"},
    )
    modifiers = fields.List(
        Coded(_MODIFIER, 'a modifier is 2 letters or digits, e.g. "25"'),
        load_default=list,
        validate=validate.Length(max=4, error="at most 4 modifiers per line (SV101-3..6)"),
        metadata={"example": ["25"]},
    )
    description = X12Text(load_default=None, allow_none=True, max_length=80, metadata={"example": None})
    charge = Money(required=True, metadata={"description": "line charge (SV102), a decimal string"})
    units = DecimalString(load_default="1", metadata={"example": "1", "description": "SV104, decimal string"})
    unit_basis = fields.String(
        load_default=UnitBasis.UNITS.value,
        validate=validate.OneOf([u.value for u in UnitBasis], error="must be UN (units) or MJ (minutes)"),
    )
    service_date = fields.Date(required=True, metadata={"example": "2024-11-04"})
    service_date_end = fields.Date(load_default=None, allow_none=True)
    diagnosis_pointers = fields.List(
        StrictInteger(validate=validate.Range(min=1, max=MAX_DIAGNOSES, error="a pointer is 1-12")),
        load_default=lambda: [1],
        validate=validate.Length(min=1, max=4, error="1-4 diagnosis pointers per line (SV107)"),
        metadata={"example": [1, 2]},
    )
    place_of_service = Coded(
        _POS, 'a place of service is 2 digits, e.g. "11"', load_default=None, allow_none=True
    )
    line_control_number = X12Text(
        load_default=None,
        allow_none=True,
        max_length=30,
        metadata={"description": "REF*6R; generated when absent"},
    )
    rendering_provider = ProviderRef(load_default=None, allow_none=True)
    ndc = Coded(_NDC, "an NDC is 11 digits (5-4-2) without hyphens", load_default=None, allow_none=True)
    drug_quantity = DecimalString(load_default=None, allow_none=True)
    drug_unit = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(
            ["F2", "GR", "ME", "ML", "UN"], error="must be F2, GR, ME, ML or UN (CTP05-1)"
        ),
    )
    revenue_code = Coded(
        re.compile(r"^\d{4}$"), "a revenue code is 4 digits", load_default=None, allow_none=True
    )

    @validates_schema
    def _checks(self, data: dict[str, Any], **kwargs: Any) -> None:
        end = data.get("service_date_end")
        if end is not None and end < data["service_date"]:
            raise ValidationError("must not be before service_date", "service_date_end")
        if data.get("ndc") and not (data.get("drug_quantity") and data.get("drug_unit")):
            raise ValidationError("an NDC needs drug_quantity and drug_unit (2410 CTP)", "ndc")
        pointers = data.get("diagnosis_pointers") or []
        if len(set(pointers)) != len(pointers):
            raise ValidationError("diagnosis pointers must not repeat", "diagnosis_pointers")


class ClaimInSchema(Schema):
    """The claim as a client sends it (create, update, validate, the CLI)."""

    class Meta:
        ordered = True

    patient = PublicId(required=True, metadata={"description": "patient public_id"})
    coverage = PublicId(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "coverage public_id; default: the patient's primary coverage on the first DOS"
        },
    )
    claim_kind = fields.String(
        load_default=ClaimKind.PROFESSIONAL.value,
        validate=validate.OneOf([k.value for k in ClaimKind]),
    )
    patient_control_number = X12Text(
        load_default=None,
        allow_none=True,
        max_length=20,
        metadata={"description": "CLM01 (≤20 characters); generated when absent"},
    )
    frequency_code = fields.String(
        load_default=ClaimFrequency.ORIGINAL.value,
        validate=validate.OneOf([f.value for f in ClaimFrequency], error="must be 1, 7 or 8 (CLM05-3)"),
    )
    original_claim = PublicId(
        load_default=None,
        allow_none=True,
        metadata={"description": "the claim replaced or voided (frequency 7/8)"},
    )
    payer_claim_control_number = X12Text(load_default=None, allow_none=True, max_length=50)
    place_of_service = Coded(
        _POS, 'a place of service is 2 digits, e.g. "11"', load_default=None, allow_none=True
    )
    facility_type_code = Coded(
        re.compile(r"^\d{2}$"), "a facility type code is 2 digits (837I)", load_default=None, allow_none=True
    )
    rendering_provider = ProviderRef(load_default=None, allow_none=True)
    referring_provider = ProviderRef(load_default=None, allow_none=True)
    supervising_provider = ProviderRef(load_default=None, allow_none=True)
    facility_provider = ProviderRef(load_default=None, allow_none=True)
    prior_authorization = X12Text(load_default=None, allow_none=True, max_length=50)
    referral_number = X12Text(load_default=None, allow_none=True, max_length=50)
    related_causes = fields.List(
        fields.String(validate=validate.OneOf(["AA", "EM", "OA"], error="must be AA, EM or OA (CLM11)")),
        load_default=list,
        validate=validate.Length(max=3),
    )
    accident_state = Coded(_STATE, "a state is the 2-letter USPS code", load_default=None, allow_none=True)
    onset_date = fields.Date(load_default=None, allow_none=True)
    accident_date = fields.Date(load_default=None, allow_none=True)
    diagnoses = fields.List(
        IcdCode(),
        required=True,
        validate=validate.Length(min=1, max=MAX_DIAGNOSES, error="1-12 diagnosis codes (837P HI)"),
        metadata={"example": ["E11.9", "I10"]},
    )
    lines = fields.List(
        fields.Nested(ServiceLineSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_LINES, error="1-50 service lines (837P 2400)"),
    )
    ready = StrictBoolean(
        load_default=False,
        load_only=True,
        metadata={"description": "create/update: store as ready when the scrubber finds no error"},
    )
    version = StrictInteger(
        load_default=None,
        allow_none=True,
        load_only=True,
        metadata={"description": "update: the version you read; a concurrent change answers 409"},
    )

    @validates_schema
    def _checks(self, data: dict[str, Any], **kwargs: Any) -> None:
        diagnoses = data.get("diagnoses") or []
        if len(set(diagnoses)) != len(diagnoses):
            raise ValidationError("a diagnosis code must not repeat", "diagnoses")
        if data.get("frequency_code") in ("7", "8") and not (
            data.get("original_claim") or data.get("payer_claim_control_number")
        ):
            raise ValidationError(
                "frequency 7 or 8 needs original_claim or payer_claim_control_number (REF*F8)",
                "frequency_code",
            )
        if "AA" in (data.get("related_causes") or []) and not data.get("accident_state"):
            raise ValidationError("an auto accident (AA) needs accident_state (CLM11-4)", "accident_state")
        if data.get("claim_kind") == ClaimKind.INSTITUTIONAL.value and not data.get("facility_type_code"):
            raise ValidationError("an institutional claim needs facility_type_code", "facility_type_code")
        numbers = [
            ln.get("line_control_number") for ln in data.get("lines") or [] if ln.get("line_control_number")
        ]
        if len(set(numbers)) != len(numbers):
            raise ValidationError("line control numbers must be unique within the claim", "lines")

    @post_load
    def _defaults(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("claim_kind") == ClaimKind.PROFESSIONAL.value and not data.get("place_of_service"):
            data["place_of_service"] = "11"  # office, the most common professional setting
        return data


CLAIM_EXAMPLE: dict[str, Any] = {
    "patient": "3f2a9c1e5b7d4e0f8a6c2b1d9e7f5a3c",
    "coverage": "9b8a7c6d5e4f30211f2e3d4c5b6a7980",
    "place_of_service": "11",
    "rendering_provider": "1234567893",
    "diagnoses": ["E11.9", "I10"],
    "lines": [
        {
            "procedure": "99214",
            "modifiers": ["25"],
            "charge": "175.00",
            "units": "1",
            "service_date": "2024-11-04",
            "diagnosis_pointers": [1, 2],
        },
        {"procedure": "83036", "charge": "45.00", "service_date": "2024-11-04", "diagnosis_pointers": [1]},
    ],
    "ready": True,
}


class FindingSchema(Schema):
    """One scrubber finding, ``path`` in the claim JSON's terms."""

    rule_id = fields.String(metadata={"example": "DX_INVALID"})
    severity = fields.String(metadata={"example": "error", "enum": ["error", "warning", "info"]})
    message = fields.String()
    path = fields.String(metadata={"example": "diagnoses[0]"})
    hint = fields.String()
    source = fields.String(
        metadata={"description": "claim, or the record the field belongs to (practice, patient, coverage)"}
    )


class ValidationResultSchema(Schema):
    valid = StrictBoolean(metadata={"description": "no finding of severity error"})
    errors = StrictInteger()
    warnings = StrictInteger()
    findings = fields.List(fields.Nested(FindingSchema))


class PartyRefSchema(Schema):
    id = fields.String(attribute="public_id")


class PayerRefSchema(Schema):
    id = fields.String(attribute="public_id")
    name = fields.String()
    payer_id = fields.String()


class ServiceLineOutSchema(ServiceLineSchema):
    """A stored line: references are rendered as provider public_ids."""


class ClaimOutSchema(Schema):
    """A stored claim."""

    class Meta:
        ordered = True

    id = fields.String(metadata={"example": "0ba759b8109244ae8dcf506052bb88eb"})
    state = fields.String(metadata={"enum": [s.value for s in ClaimState]})
    state_changed_at = fields.DateTime()
    allowed_transitions = fields.List(fields.String())
    version = StrictInteger()
    patient = fields.String()
    coverage = fields.String()
    payer = fields.Nested(PayerRefSchema)
    claim_kind = fields.String()
    patient_control_number = fields.String()
    frequency_code = fields.String()
    original_claim = fields.String(allow_none=True)
    payer_claim_control_number = fields.String(allow_none=True)
    place_of_service = fields.String(allow_none=True)
    facility_type_code = fields.String(allow_none=True)
    rendering_provider = fields.String(allow_none=True)
    referring_provider = fields.String(allow_none=True)
    supervising_provider = fields.String(allow_none=True)
    facility_provider = fields.String(allow_none=True)
    prior_authorization = fields.String(allow_none=True)
    referral_number = fields.String(allow_none=True)
    related_causes = fields.List(fields.String())
    accident_state = fields.String(allow_none=True)
    onset_date = fields.Date(allow_none=True)
    accident_date = fields.Date(allow_none=True)
    total_charge = Money()
    diagnoses = fields.List(fields.String())
    lines = fields.List(fields.Nested(ServiceLineOutSchema))
    findings = fields.List(fields.Nested(FindingSchema))
    scrubbed_at = fields.DateTime(allow_none=True)
    submitted_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ClaimPageSchema(PageSchema):
    items = fields.List(fields.Nested(ClaimOutSchema), required=True)


class ClaimListArgsSchema(PageArgsSchema):
    """Filters of ``GET /claims`` (all optional, combined with AND)."""

    state = fields.List(
        fields.String(validate=validate.OneOf([s.value for s in ClaimState])),
        load_default=list,
        metadata={"description": "one or more states (repeat the parameter)"},
    )
    payer = PublicId(load_default=None, metadata={"description": "payer public_id"})
    patient = PublicId(load_default=None, metadata={"description": "patient public_id"})
    service_date_from = fields.Date(load_default=None, metadata={"description": "a line's DOS on or after"})
    service_date_to = fields.Date(load_default=None, metadata={"description": "a line's DOS on or before"})
    created_from = fields.DateTime(
        load_default=None, metadata={"description": "created at or after (ISO 8601)"}
    )
    created_to = fields.DateTime(load_default=None, metadata={"description": "created before (ISO 8601)"})


class ClaimNoteSchema(Schema):
    """A note on a claim: a user's reason for a change (the claim's audit event names the note's id)."""

    class Meta:
        ordered = True

    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["reason"]))
    note = fields.String(required=True)
    author = fields.String(
        required=True, allow_none=True, metadata={"description": "the user's id; null: the system or a token"}
    )
    created_at = fields.DateTime(required=True)


class ClaimNoteListSchema(Schema):
    items = fields.List(fields.Nested(ClaimNoteSchema), required=True)


class TransitionSchema(Schema):
    """Body of ``POST /claims/{id}/<transition>`` (optional). ``reason`` is kept as a claim note
    (encrypted; ``GET /claims/{id}/notes``), not in the audit trail."""

    reason = X12Text(load_default=None, allow_none=True, max_length=200, allow_blank=True)
