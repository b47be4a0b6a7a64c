"""Patient and coverage JSON. PHI travels in bodies only, never in URLs or query strings."""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from claims_server.api_common.fields import (
    PublicId,
    StrictBoolean,
    StrictInteger,
    UsState,
    X12Text,
    Zip,
    phone_field,
)
from claims_server.api_common.pagination import PageArgsSchema, PageSchema
from claims_server.models import RelationshipToSubscriber, Sex

_SEX = validate.OneOf([s.value for s in Sex], error="must be F, M or U (DMG03)")


def _not_future(value: date | None) -> None:
    if value is not None and value > date.today():
        raise ValidationError("must not be in the future")


class PatientSchema(Schema):
    class Meta:
        ordered = True

    id = fields.String(attribute="public_id", dump_only=True)
    practice = PublicId(required=True, metadata={"description": "practice public_id"})
    account_number = X12Text(required=True, max_length=38, metadata={"example": "A-000123"})
    last_name = X12Text(required=True, max_length=60)
    first_name = X12Text(required=True, max_length=35)
    middle_name = X12Text(load_default=None, allow_none=True, max_length=25)
    name_suffix = X12Text(load_default=None, allow_none=True, max_length=10)
    birth_date = fields.Date(required=True, validate=_not_future)
    sex = fields.String(required=True, validate=_SEX)
    address_line1 = X12Text(load_default=None, allow_none=True, max_length=55)
    address_line2 = X12Text(load_default=None, allow_none=True, max_length=55)
    city = X12Text(load_default=None, allow_none=True, max_length=30)
    state = UsState(load_default=None, allow_none=True)
    zip_code = Zip(load_default=None, allow_none=True)
    phone = phone_field(load_default=None, allow_none=True)
    email = fields.Email(load_default=None, allow_none=True)
    active = StrictBoolean(load_default=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class PatientPageSchema(PageSchema):
    items = fields.List(fields.Nested(PatientSchema), required=True)


class PatientListArgsSchema(PageArgsSchema):
    """List filters. No patient identifier here: a URL is logged by proxies and browsers, so
    lookups by account number, member id or name go in the body of ``POST /patients/search``."""

    practice = PublicId(load_default=None)


#: The ways to search for a patient: each is a set of fields given together, and alone.
SEARCH_WAYS: tuple[tuple[str, ...], ...] = (
    ("member_id",),
    ("account_number",),
    ("last_name", "first_name", "birth_date"),
)
#: The name way: the last name alone, or narrowed by first name and birth date.
NAME_WAY = SEARCH_WAYS[2]


class PatientSearchSchema(Schema):
    """Find patients by member id, by the practice's account number (exact), or by last name
    (exact, normalised), narrowed by first name and birth date when given."""

    member_id = fields.String(load_default=None, validate=validate.Length(min=1, max=80))
    account_number = fields.String(load_default=None, validate=validate.Length(min=1, max=38))
    last_name = fields.String(load_default=None, validate=validate.Length(min=1, max=60))
    first_name = fields.String(load_default=None, validate=validate.Length(min=1, max=35))
    birth_date = fields.Date(load_default=None)

    #: ``_one_way`` in the document: a member id alone, an account number alone, or the three
    #: name fields together (the fields of the other ways absent or null).
    openapi_extra = {
        "anyOf": [
            {
                "required": ["last_name"] if way == NAME_WAY else list(way),
                "properties": {name: {"type": "string"} for name in way}
                | {name: {"type": "null"} for other in SEARCH_WAYS if other != way for name in other},
            }
            for way in SEARCH_WAYS
        ]
    }

    @validates_schema
    def _one_way(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [way for way in SEARCH_WAYS if any(data.get(name) for name in way)]
        if len(given) > 1:
            raise ValidationError(
                "search by member_id, by account_number or by name and birth date, one of them", given[1][0]
            )
        if not given:
            raise ValidationError(
                "give member_id, or account_number, or last_name (with first_name and birth_date to narrow it)",
                "member_id",
            )
        if given[0] == NAME_WAY:
            if not data.get("last_name"):  # a first name or birth date alone matches too many
                raise ValidationError("give the last name (first name and birth date narrow it)", "last_name")
            return
        missing = [name for name in given[0] if not data.get(name)]
        if missing:  # named at the first field still to fill in
            raise ValidationError(f"give {', '.join(given[0])} together", missing[0])


class CoverageSchema(Schema):
    class Meta:
        ordered = True

    id = fields.String(attribute="public_id", dump_only=True)
    patient = fields.String(dump_only=True)
    payer = PublicId(required=True, metadata={"description": "payer public_id"})
    coverage_order = StrictInteger(
        load_default=1, validate=validate.OneOf([1, 2, 3], error="must be 1 (primary), 2 or 3")
    )
    member_id = X12Text(required=True, max_length=80)
    group_number = X12Text(load_default=None, allow_none=True, max_length=50)
    group_name = X12Text(load_default=None, allow_none=True, max_length=60)
    plan_name = X12Text(load_default=None, allow_none=True, max_length=100)
    insurance_type_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=3))
    relationship_code = fields.String(
        load_default=RelationshipToSubscriber.SELF.value,
        validate=validate.OneOf(
            [r.value for r in RelationshipToSubscriber], error="must be an SBR02/PAT01 code"
        ),
    )
    subscriber_patient = PublicId(load_default=None, allow_none=True)
    subscriber_last_name = X12Text(load_default=None, allow_none=True, max_length=60)
    subscriber_first_name = X12Text(load_default=None, allow_none=True, max_length=35)
    subscriber_middle_name = X12Text(load_default=None, allow_none=True, max_length=25)
    subscriber_birth_date = fields.Date(load_default=None, allow_none=True, validate=_not_future)
    subscriber_sex = fields.String(load_default=None, allow_none=True, validate=_SEX)
    subscriber_address_line1 = X12Text(load_default=None, allow_none=True, max_length=55)
    subscriber_address_line2 = X12Text(load_default=None, allow_none=True, max_length=55)
    subscriber_city = X12Text(load_default=None, allow_none=True, max_length=30)
    subscriber_state = UsState(load_default=None, allow_none=True)
    subscriber_zip_code = Zip(load_default=None, allow_none=True)
    effective_start = fields.Date(required=True)
    effective_end = fields.Date(load_default=None, allow_none=True)
    active = StrictBoolean(load_default=True)

    @validates("insurance_type_code")
    def _type(self, value: str | None, **kwargs: Any) -> None:
        if value is not None and not value.isalnum():
            raise ValidationError("must be an SBR05 insurance type code (letters or digits)")

    @validates_schema
    def _dates(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("effective_start"), data.get("effective_end")
        if start and end and end < start:
            raise ValidationError("must not be before effective_start", "effective_end")


class CoverageListSchema(Schema):
    items = fields.List(fields.Nested(CoverageSchema), required=True)


class PatientPatchSchema(PatientSchema):
    """PATCH body: any subset of the fields."""


class CoveragePatchSchema(CoverageSchema):
    """PATCH body: any subset of the fields."""
