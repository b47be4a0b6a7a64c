"""Practice and provider JSON. Text that reaches an 837 refuses the X12 delimiters."""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from claims_server.api_common.fields import (
    Coded,
    Money,
    Npi,
    PublicId,
    StrictBoolean,
    UsState,
    X12Text,
    Zip,
    phone_field,
    taxonomy_field,
)
from claims_server.api_common.pagination import PageArgsSchema, PageSchema
from claims_server.models import ProviderEntityType
from edi.identifiers import is_valid_ein


class PracticeSchema(Schema):
    """The billing provider organisation; ``submitter_id`` is the ETIN the clearinghouse assigned."""

    class Meta:
        ordered = True

    id = fields.String(attribute="public_id", dump_only=True)
    name = X12Text(
        required=True,
        max_length=60,
        element="2010AA/NM1/NM103",
        metadata={"example": "Larkspur Family Medicine"},
    )
    npi = Npi(required=True)
    tax_id = fields.String(required=True, metadata={"example": "930000017", "pattern": r"^\d{9}$"})
    taxonomy_code = taxonomy_field(load_default=None, allow_none=True)
    address_line1 = X12Text(
        required=True,
        max_length=55,
        element="2010AA/N3/N301",
        metadata={"description": "street address, not a PO box"},
    )
    address_line2 = X12Text(load_default=None, allow_none=True, max_length=55, element="2010AA/N3/N302")
    city = X12Text(required=True, max_length=30, element="2010AA/N4/N401")
    state = UsState(required=True)
    zip_code = Zip(plus4=True, required=True)
    phone = phone_field(load_default=None, allow_none=True)
    contact_name = X12Text(load_default=None, allow_none=True, max_length=60, element="1000A/PER/PER02")
    contact_email = X12Text(
        load_default=None,
        allow_none=True,
        max_length=256,
        validate=validate.Email(error="must be an e-mail address"),
    )
    submitter_id = X12Text(
        required=True, max_length=80, element="1000A/NM1/NM109", metadata={"example": "SUB12345"}
    )
    pay_to_address_line1 = X12Text(
        load_default=None, allow_none=True, max_length=55, element="2010AB/N3/N301"
    )
    pay_to_address_line2 = X12Text(
        load_default=None, allow_none=True, max_length=55, element="2010AB/N3/N302"
    )
    pay_to_city = X12Text(load_default=None, allow_none=True, max_length=30, element="2010AB/N4/N401")
    pay_to_state = UsState(load_default=None, allow_none=True)
    pay_to_zip_code = Zip(load_default=None, allow_none=True)
    active = StrictBoolean(load_default=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    @validates("tax_id")
    def _ein(self, value: str, **kwargs: object) -> None:
        if not is_valid_ein(value):
            raise ValidationError("must be an EIN of 9 digits without a hyphen (REF*EI)")


class PracticePageSchema(PageSchema):
    items = fields.List(fields.Nested(PracticeSchema), required=True)


class ProviderSchema(Schema):
    """A rendering, referring, supervising or facility provider of a practice."""

    class Meta:
        ordered = True

    id = fields.String(attribute="public_id", dump_only=True)
    practice = PublicId(required=True, metadata={"description": "practice public_id"})
    entity_type = fields.String(
        load_default=ProviderEntityType.INDIVIDUAL.value,
        validate=validate.OneOf([e.value for e in ProviderEntityType]),
    )
    last_name = X12Text(
        required=True,
        max_length=60,
        element="2310B/NM1/NM103",
        metadata={"description": "last name or organisation name"},
    )
    first_name = X12Text(load_default=None, allow_none=True, max_length=35, element="2310B/NM1/NM104")
    middle_name = X12Text(load_default=None, allow_none=True, max_length=25, element="2310B/NM1/NM105")
    name_suffix = X12Text(load_default=None, allow_none=True, max_length=10, element="2310B/NM1/NM107")
    credential = X12Text(load_default=None, allow_none=True, max_length=20)
    npi = Npi(required=True)
    taxonomy_code = taxonomy_field(load_default=None, allow_none=True)
    # A provider's address is written only for a service facility (2310C N3/N4).
    address_line1 = X12Text(load_default=None, allow_none=True, max_length=55, element="2310C/N3/N301")
    address_line2 = X12Text(load_default=None, allow_none=True, max_length=55, element="2310C/N3/N302")
    city = X12Text(load_default=None, allow_none=True, max_length=30, element="2310C/N4/N401")
    state = UsState(load_default=None, allow_none=True)
    zip_code = Zip(load_default=None, allow_none=True)
    is_rendering = StrictBoolean(load_default=False)
    is_referring = StrictBoolean(load_default=False)
    is_supervising = StrictBoolean(load_default=False)
    is_facility = StrictBoolean(load_default=False)
    active = StrictBoolean(load_default=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class ProviderPageSchema(PageSchema):
    items = fields.List(fields.Nested(ProviderSchema), required=True)


class ProviderListArgsSchema(PageArgsSchema):
    practice = PublicId(load_default=None)
    npi = Npi(load_default=None)


class PracticePatchSchema(PracticeSchema):
    """PATCH body: any subset of the fields."""


class ProviderPatchSchema(ProviderSchema):
    """PATCH body: any subset of the fields."""


# -- the fee schedule -------------------------------------------------------------------------

#: The most entries one fee schedule (and one PUT or CSV file) may hold.
MAX_FEE_ENTRIES = 20_000
#: The most entries one PUT carries (a bigger schedule goes in several PUTs, or by CSV with
#: ``claims-server fee-schedule import``): small enough that a list one over it still fits the
#: JSON body limit (JSON_MAX_BYTES), so it is refused naming ``entries``, not as a 413.
MAX_FEE_ENTRIES_PER_REQUEST = 5_000
FEE_PROCEDURE = re.compile(r"^[A-Z0-9]{5}$")
FEE_MODIFIER = re.compile(r"^([A-Z0-9]{2})?$")


class FeeEntrySchema(Schema):
    """One fee: the practice's standard charge for a procedure code, and modifier ('' = any other)."""

    class Meta:
        ordered = True

    procedure = Coded(
        FEE_PROCEDURE,
        'must be a 5-character CPT or HCPCS code such as "99213"',
        required=True,
        metadata={"example": "99213"},
    )
    modifier = Coded(
        FEE_MODIFIER,
        'a modifier is 2 letters or digits, e.g. "26"; empty for the code\'s own charge',
        load_default="",
        allow_none=True,
        metadata={
            "example": "",
            "description": "empty: the charge with no modifier, or with a modifier that has no entry",
        },
    )
    charge = Money(required=True, metadata={"description": "the standard charge, a decimal string"})
    description = X12Text(
        load_default=None,
        allow_none=True,
        max_length=80,
        metadata={"example": "Office visit, established, low", "description": "the practice's own label"},
    )


class FeeScheduleQuerySchema(Schema):
    """Which practice's schedule: optional while the server holds exactly one practice."""

    practice = PublicId(
        load_default=None, metadata={"description": "practice public_id; optional when there is one practice"}
    )


class FeeEntryQuerySchema(FeeScheduleQuerySchema):
    modifier = Coded(
        FEE_MODIFIER,
        'a modifier is 2 letters or digits, e.g. "26"; empty for the code\'s own charge',
        load_default="",
        metadata={"description": "the entry's modifier; empty (default): the code's own charge"},
    )


class FeeSchedulePutSchema(Schema):
    """``entries`` upserted by (procedure, modifier); with ``replace`` the schedule becomes exactly them."""

    class Meta:
        ordered = True

    replace = StrictBoolean(
        load_default=False,
        metadata={"description": "true: entries not in the list are deleted; false (default): upsert only"},
    )
    entries = fields.List(
        fields.Nested(FeeEntrySchema),
        required=True,
        validate=validate.Length(
            max=MAX_FEE_ENTRIES_PER_REQUEST,
            error=f"at most {MAX_FEE_ENTRIES_PER_REQUEST} entries per request",
        ),
        metadata={
            "example": [{"procedure": "99213", "modifier": "", "charge": "125.00", "description": None}]
        },
    )

    @validates_schema
    def _unique(self, data: dict[str, object], **kwargs: object) -> None:
        seen: dict[tuple[str, str], int] = {}
        for i, entry in enumerate(data.get("entries") or []):  # type: ignore[arg-type]
            key = (entry["procedure"], entry.get("modifier") or "")
            if key in seen:
                raise ValidationError(
                    {"entries": {i: {"procedure": [f"repeats entry {seen[key]} (same code and modifier)"]}}}
                )
            seen[key] = i


class FeeScheduleSchema(Schema):
    """A practice's fee schedule, by procedure code and modifier."""

    class Meta:
        ordered = True

    practice = fields.String(required=True, metadata={"description": "practice public_id"})
    items = fields.List(fields.Nested(FeeEntrySchema), required=True)


class FeeSchedulePutResultSchema(FeeScheduleSchema):
    created = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    deleted = fields.Integer(required=True)
