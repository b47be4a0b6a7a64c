"""Practice and provider services (no Flask): create, update, read, list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.api_common.audit import audit
from claims_server.api_common.crud import apply_fields, get_by_public_id, reference
from claims_server.api_common.pagination import Page, paginate
from claims_server.errors import Conflict, Unprocessable
from claims_server.models import AuditAction, Practice, Provider, ProviderEntityType

PRACTICE_FIELDS = [
    "name",
    "npi",
    "tax_id",
    "taxonomy_code",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "zip_code",
    "phone",
    "contact_name",
    "contact_email",
    "submitter_id",
    "pay_to_address_line1",
    "pay_to_address_line2",
    "pay_to_city",
    "pay_to_state",
    "pay_to_zip_code",
    "active",
]
PROVIDER_FIELDS = [
    "entity_type",
    "last_name",
    "first_name",
    "middle_name",
    "name_suffix",
    "credential",
    "npi",
    "taxonomy_code",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "zip_code",
    "is_rendering",
    "is_referring",
    "is_supervising",
    "is_facility",
    "active",
]


def _audit(session: Session, action: AuditAction, kind: str, row: Any, changed: list[str]) -> None:
    verb = "create" if action is AuditAction.CREATE else "update"
    audit(
        session,
        action=action,
        event_type=f"{kind}.{verb}",
        entity_type=kind,
        entity_id=row.public_id,
        details={"fields": sorted(changed)},
    )


def _check_practice(data: Mapping[str, Any], row: Practice | None) -> None:
    contact = {k: data.get(k, getattr(row, k, None)) for k in ("phone", "contact_email")}
    if not any(contact.values()):
        # 1000A PER needs at least one communication number.
        raise Unprocessable(
            "the practice needs a phone or contact_email (837 submitter contact, 1000A PER)",
            errors=[
                {"field": "phone", "rule": "submitter_contact", "message": "phone or contact_email required"}
            ],
        )


def create_practice(session: Session, data: Mapping[str, Any]) -> Practice:
    _check_practice(data, None)
    practice = Practice()
    changed = apply_fields(practice, data, PRACTICE_FIELDS)
    session.add(practice)
    session.flush()
    _audit(session, AuditAction.CREATE, "practice", practice, changed)
    return practice


def update_practice(session: Session, practice: Practice, data: Mapping[str, Any]) -> Practice:
    _check_practice(data, practice)
    changed = apply_fields(practice, data, PRACTICE_FIELDS)
    session.flush()
    _audit(session, AuditAction.UPDATE, "practice", practice, changed)
    return practice


def get_practice(session: Session, public_id: str) -> Practice:
    return get_by_public_id(session, Practice, public_id, "practice")


def list_practices(session: Session, *, limit: int, cursor: str | None) -> Page[Practice]:
    return paginate(session, select(Practice), Practice.id, limit=limit, cursor=cursor, filters={})


def _check_provider(data: Mapping[str, Any], row: Provider | None) -> None:
    merged = {k: data.get(k, getattr(row, k, None)) for k in ("entity_type", "first_name", "is_facility")}
    person = merged["entity_type"] == ProviderEntityType.INDIVIDUAL.value
    if person and not merged["first_name"]:
        raise Unprocessable(
            "an individual provider needs first_name (NM104)",
            errors=[{"field": "first_name", "rule": "required_for_individual", "message": "required"}],
        )
    if merged["is_facility"]:
        address = {
            k: data.get(k, getattr(row, k, None)) for k in ("address_line1", "city", "state", "zip_code")
        }
        missing = [k for k, v in address.items() if not v]
        zip_code = address["zip_code"] or ""
        if missing or len(zip_code) != 9:
            # 2310C N3/N4 are required and the ZIP must be ZIP+4.
            raise Unprocessable(
                "a service facility needs a street address, city, state and 9-digit ZIP (2310C N3/N4)",
                errors=[
                    {"field": k, "rule": "facility_address", "message": "required for a facility"}
                    for k in (missing or ["zip_code"])
                ],
            )


def create_provider(session: Session, data: Mapping[str, Any]) -> Provider:
    practice = reference(session, Practice, data["practice"], "practice", "practice")
    _check_provider(data, None)
    if session.scalar(
        select(Provider.id).where(Provider.practice_id == practice.id, Provider.npi == data["npi"])
    ):
        raise Conflict(
            "the practice already has a provider with this NPI",
            errors=[{"field": "npi", "rule": "unique", "message": "already used in this practice"}],
        )
    provider = Provider(practice_id=practice.id)
    changed = apply_fields(provider, data, PROVIDER_FIELDS)
    session.add(provider)
    session.flush()
    _audit(session, AuditAction.CREATE, "provider", provider, changed)
    return provider


def update_provider(session: Session, provider: Provider, data: Mapping[str, Any]) -> Provider:
    if "practice" in data and data["practice"] != provider.practice.public_id:
        raise Unprocessable(
            "a provider cannot move to another practice",
            errors=[{"field": "practice", "rule": "immutable", "message": "cannot change"}],
        )
    _check_provider(data, provider)
    if "npi" in data and data["npi"] != provider.npi:
        clash = session.scalar(
            select(Provider.id).where(
                Provider.practice_id == provider.practice_id, Provider.npi == data["npi"]
            )
        )
        if clash:
            raise Conflict(
                "the practice already has a provider with this NPI",
                errors=[{"field": "npi", "rule": "unique", "message": "already used in this practice"}],
            )
    changed = apply_fields(provider, data, PROVIDER_FIELDS)
    session.flush()
    _audit(session, AuditAction.UPDATE, "provider", provider, changed)
    return provider


def get_provider(session: Session, public_id: str) -> Provider:
    return get_by_public_id(session, Provider, public_id, "provider")


def list_providers(
    session: Session, filters: Mapping[str, Any], *, limit: int, cursor: str | None
) -> Page[Provider]:
    query = select(Provider)
    if filters.get("practice"):
        query = query.where(
            Provider.practice_id
            == select(Practice.id).where(Practice.public_id == filters["practice"]).scalar_subquery()
        )
    if filters.get("npi"):
        query = query.where(Provider.npi == filters["npi"])
    return paginate(session, query, Provider.id, limit=limit, cursor=cursor, filters=filters)


def provider_to_json(provider: Provider) -> dict[str, Any]:
    out = {name: getattr(provider, name) for name in PROVIDER_FIELDS}
    out["entity_type"] = str(provider.entity_type)
    out.update(
        public_id=provider.public_id,
        practice=provider.practice.public_id,
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )
    return out
