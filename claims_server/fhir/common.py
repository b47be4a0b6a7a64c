"""What the FHIR mapping modules share: code systems, money, dates, references, search params."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select

from claims_server.fhir.outcome import FhirError, Issue

# Our own identifier systems: not PHI (control and trace numbers the payers echo).
SID = "https://claims-server.dev/fhir/sid/"
PCN_SYSTEM = SID + "patient-control-number"  # CLM01 / CLP01 / REF*EJ
PAYER_CLAIM_SYSTEM = SID + "payer-claim-control-number"  # CLP07 / REF*1K / REF*F8
TRACE_SYSTEM = SID + "trace-number"  # 835 TRN02
ELIGIBILITY_TRACE_SYSTEM = SID + "eligibility-trace-number"  # 270/271 TRN02
ACCOUNT_SYSTEM = SID + "account-number"  # the practice's patient account number
PAYER_ID_SYSTEM = SID + "payer-id"  # 2010BB NM109
AUDIT_HASH_SYSTEM = SID + "audit-hash"

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"
HCPCS_SYSTEM = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
POS_SYSTEM = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
CARC_SYSTEM = "https://x12.org/codes/claim-adjustment-reason-codes"
RARC_SYSTEM = "https://x12.org/codes/remittance-advice-remark-codes"
CLAIM_STATUS_CATEGORY_SYSTEM = "https://x12.org/codes/claim-status-category-codes"
CLAIM_STATUS_SYSTEM = "https://x12.org/codes/claim-status-codes"
CLAIM_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/claim-type"
PROCESS_PRIORITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/processpriority"
SUBSCRIBER_RELATIONSHIP_SYSTEM = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
ADJUDICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/adjudication"
C4BB_ADJUDICATION_SYSTEM = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
C4BB_DISCRIMINATOR_SYSTEM = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator"
C4BB_PROFESSIONAL_PROFILE = (
    "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Professional-NonClinician"
)

FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def money(cents: int | None) -> dict[str, Any] | None:
    """FHIR Money from integer cents (Decimal, never float)."""
    if cents is None:
        return None
    return {"value": Decimal(cents).scaleb(-2), "currency": "USD"}


def cents_of(value: Any, expression: str) -> int:
    """Integer cents from a FHIR Money.value (parsed as Decimal); 422 naming ``expression`` otherwise."""
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")) or isinstance(value, bool):
        raise FhirError(422, [Issue("an amount in dollars with at most two decimals", "value", expression)])
    return int(amount * 100)


def instant(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def reference(resource_type: str, public_id: str | None) -> dict[str, str] | None:
    return {"reference": f"{resource_type}/{public_id}"} if public_id else None


def identifier(system: str, value: str | None) -> dict[str, str] | None:
    return {"system": system, "value": value} if value else None


def coding(system: str, code: str | None, display: str | None = None) -> dict[str, Any] | None:
    if not code:
        return None
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str | None, display: str | None = None) -> dict[str, Any] | None:
    found = coding(system, code, display)
    return {"coding": [found]} if found else None


def prune(value: Any) -> Any:
    """Drop None, empty lists and empty objects (FHIR forbids empty elements)."""
    if isinstance(value, dict):
        pruned = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, [], {}, "")}
    if isinstance(value, list):
        return [v for v in (prune(v) for v in value) if v not in (None, [], {}, "")]
    return value


def reference_id(ref: Any, resource_type: str, expression: str) -> str:
    """The id in ``{"reference": "<Type>/<id>"}``; 422 naming ``expression`` otherwise."""
    text = ref.get("reference") if isinstance(ref, dict) else None
    kind, _, public_id = (text or "").partition("/")
    if kind != resource_type or not FHIR_ID.match(public_id):
        raise FhirError(
            422, [Issue(f"must reference a {resource_type} as {resource_type}/<id>", "invalid", expression)]
        )
    return public_id


# -- search parameters ----------------------------------------------------------------------------

_DATE_PREFIXES = ("eq", "ge", "le", "gt", "lt")


@dataclass(frozen=True)
class DateBound:
    prefix: str
    start: datetime  # inclusive start of the value's precision
    end: datetime  # exclusive end


def parse_date_param(name: str, raw: str) -> DateBound:
    """``ge2026-01-01`` etc. (FHIR date search: eq, ge, le, gt, lt; a day or an instant)."""
    prefix, value = ("eq", raw)
    if raw[:2] in _DATE_PREFIXES:
        prefix, value = raw[:2], raw[2:]
    try:
        if len(value) == 10:
            start = datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
            return DateBound(prefix, start, start + timedelta(days=1))
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(
            400, [Issue(f"{name}: expected [eq|ge|le|gt|lt]YYYY-MM-DD or an instant", "value", name)]
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return DateBound(prefix, moment, moment + timedelta(seconds=1))


def apply_date(query: Select[Any], column: Any, bound: DateBound, *, as_date: bool = False) -> Select[Any]:
    start: Any = bound.start.date() if as_date else bound.start
    end: Any = bound.end.date() if as_date else bound.end
    if bound.prefix == "ge":
        return query.where(column >= start)
    if bound.prefix == "gt":
        return query.where(column >= end)
    if bound.prefix == "le":
        return query.where(column < end)
    if bound.prefix == "lt":
        return query.where(column < start)
    return query.where(column >= start, column < end)


def parse_token(name: str, raw: str) -> tuple[str | None, str]:
    """``system|value`` or ``value`` (FHIR token search)."""
    system, bar, value = raw.partition("|")
    if not bar:
        return None, raw
    if not value:
        raise FhirError(400, [Issue(f"{name}: the value after '|' is missing", "value", name)])
    return system or None, value


def parse_reference_param(name: str, raw: str, resource_type: str) -> str:
    """``Patient/<id>`` or ``<id>`` -> the id."""
    kind, slash, public_id = raw.rpartition("/")
    if slash and kind != resource_type:
        raise FhirError(400, [Issue(f"{name}: must name a {resource_type}", "value", name)])
    if not FHIR_ID.match(public_id):
        raise FhirError(400, [Issue(f"{name}: not a resource id", "value", name)])
    return public_id
