"""Payer and clearinghouse-route JSON."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from claims_server.api_common.fields import (
    Coded,
    PublicId,
    StrictBoolean,
    StrictInteger,
    UsState,
    X12Text,
    Zip,
)
from claims_server.api_common.pagination import PageArgsSchema, PageSchema
from claims_server.models import ClaimFilingIndicator, TransportKind, UsageIndicator

_ISA_QUALIFIER = re.compile(r"^[0-9A-Z]{2}$")
#: Settings keys that would hold a secret; secrets are referenced by name, never stored in a route.
SECRET_KEYS = frozenset({"password", "private_key", "passphrase", "secret", "token", "api_key"})


class RouteSchema(Schema):
    """A clearinghouse connection and the envelope identities used on it."""

    class Meta:
        ordered = True

    id = fields.String(attribute="public_id", dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    transport = fields.String(required=True, validate=validate.OneOf([t.value for t in TransportKind]))
    settings = fields.Dict(
        keys=fields.String(),
        load_default=dict,
        metadata={"description": "host, port, folders, username, secret *names*; never secrets themselves"},
    )
    sender_id_qualifier = Coded(
        _ISA_QUALIFIER, "an ISA id qualifier is 2 characters, e.g. ZZ", load_default="ZZ", element="ISA/ISA05"
    )
    sender_id = X12Text(required=True, max_length=15, element="ISA/ISA06", metadata={"description": "ISA06"})
    receiver_id_qualifier = Coded(
        _ISA_QUALIFIER, "an ISA id qualifier is 2 characters, e.g. ZZ", load_default="ZZ", element="ISA/ISA07"
    )
    receiver_id = X12Text(
        required=True, max_length=15, element="ISA/ISA08", metadata={"description": "ISA08"}
    )
    application_sender_code = X12Text(
        required=True, max_length=15, element="GS/GS02", metadata={"description": "GS02"}
    )
    application_receiver_code = X12Text(
        required=True, max_length=15, element="GS/GS03", metadata={"description": "GS03"}
    )
    usage_indicator = fields.String(
        load_default=UsageIndicator.TEST.value,
        validate=validate.OneOf(
            [u.value for u in UsageIndicator], error="must be T (test) or P (production)"
        ),
        metadata={"description": "ISA15; P only together with confirm_production: true"},
    )
    confirm_production = StrictBoolean(
        load_only=True,
        load_default=False,
        metadata={
            "description": "must be true to create a route with, or switch a route to, usage_indicator P"
        },
    )
    active = StrictBoolean(load_default=True)

    @validates("settings")
    def _no_secrets(self, value: dict[str, Any], **kwargs: object) -> None:
        secret = sorted(k for k in value if k.lower() in SECRET_KEYS)
        if secret:
            raise ValidationError(
                f"must not hold secrets ({', '.join(secret)}); store them outside and reference them by name"
            )


class RoutePageSchema(PageSchema):
    items = fields.List(fields.Nested(RouteSchema), required=True)


class PayerSchema(Schema):
    """A payer as the practice's clearinghouse knows it."""

    class Meta:
        ordered = True

    id = fields.String(attribute="public_id", dump_only=True)
    name = X12Text(required=True, max_length=60, element="2010BB/NM1/NM103")
    payer_id = X12Text(
        required=True,
        max_length=80,
        element="2010BB/NM1/NM109",
        metadata={"description": "2010BB NM109 (PI)", "example": "60054"},
    )
    claim_filing_indicator = fields.String(
        required=True,
        validate=validate.OneOf(
            [c.value for c in ClaimFilingIndicator], error="must be an SBR09 code (CI, MB, MC...)"
        ),
    )
    route = PublicId(
        load_default=None, allow_none=True, metadata={"description": "clearinghouse route public_id"}
    )
    timely_filing_days = StrictInteger(load_default=365, validate=validate.Range(min=1, max=3650))
    address_line1 = X12Text(load_default=None, allow_none=True, max_length=55, element="2010BB/N3/N301")
    address_line2 = X12Text(load_default=None, allow_none=True, max_length=55, element="2010BB/N3/N302")
    city = X12Text(load_default=None, allow_none=True, max_length=30, element="2010BB/N4/N401")
    state = UsState(load_default=None, allow_none=True)
    zip_code = Zip(load_default=None, allow_none=True)
    remittance_payer_identifier = X12Text(load_default=None, allow_none=True, max_length=50)
    supports_eligibility = StrictBoolean(load_default=True)
    active = StrictBoolean(load_default=True)


class PayerPageSchema(PageSchema):
    items = fields.List(fields.Nested(PayerSchema), required=True)


class PayerListArgsSchema(PageArgsSchema):
    payer_id = fields.String(load_default=None, metadata={"description": "exact payer id"})
    route = PublicId(load_default=None)


class RoutePatchSchema(RouteSchema):
    """PATCH body: any subset of the fields."""


class PayerPatchSchema(PayerSchema):
    """PATCH body: any subset of the fields."""
