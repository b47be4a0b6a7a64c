"""Visits on the schedule (``encounters``): who sees the patient, when and where.

The practice's EHR or front desk puts tomorrow's appointments here (``POST
/api/v1/patients/{id}/encounters``); the nightly ``eligibility-check-tomorrow`` job checks
every patient with a visit tomorrow, and claims may name the visit they bill. The
schedule of one day is read with ``GET /api/v1/encounters?date=`` (a date is not PHI;
patients appear by public id only). A visit a claim already bills cannot be deleted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.api_common.crud import get_by_public_id
from claims_server.api_common.fields import Coded, ProviderRef, PublicId
from claims_server.api_common.pagination import Page, PageArgsSchema, PageSchema, paginate
from claims_server.claims.services import resolve_provider
from claims_server.errors import Conflict
from claims_server.models import Claim, Encounter, Patient, Practice

_POS = re.compile(r"^\d{2}$")


class EncounterSchema(Schema):
    """A visit: date, rendering provider, place of service (and facility)."""

    class Meta:
        ordered = True

    id = fields.String(dump_only=True)
    patient = fields.String(dump_only=True, metadata={"description": "patient public_id"})
    date_of_service = fields.Date(required=True, metadata={"example": "2026-12-08"})
    rendering_provider = ProviderRef(required=True)
    facility_provider = ProviderRef(load_default=None, allow_none=True)
    place_of_service = Coded(_POS, 'a place of service is 2 digits, e.g. "11"', load_default="11")
    created_at = fields.DateTime(dump_only=True)


class EncounterListSchema(Schema):
    items = fields.List(fields.Nested(EncounterSchema), required=True)


class EncounterPageSchema(PageSchema):
    items = fields.List(fields.Nested(EncounterSchema), required=True)


class EncounterDayArgsSchema(PageArgsSchema):
    date = fields.Date(required=True, metadata={"description": "the day of the schedule"})
    practice = PublicId(load_default=None, metadata={"description": "practice public_id"})


def create_encounter(session: Session, patient: Patient, data: Mapping[str, Any]) -> Encounter:
    """Schedule a visit for ``patient``; providers are the practice's, by public id or NPI."""
    rendering = resolve_provider(
        session, patient.practice_id, data["rendering_provider"], "rendering_provider"
    )
    facility = resolve_provider(
        session, patient.practice_id, data.get("facility_provider"), "facility_provider"
    )
    encounter = Encounter(
        patient_id=patient.id,
        rendering_provider_id=rendering.id,
        facility_provider_id=facility.id if facility is not None else None,
        date_of_service=data["date_of_service"],
        place_of_service=data.get("place_of_service") or "11",
    )
    session.add(encounter)
    session.flush()
    return encounter


def patient_encounters(session: Session, patient: Patient) -> list[Encounter]:
    stmt = select(Encounter).where(Encounter.patient_id == patient.id)
    return list(session.scalars(stmt.order_by(Encounter.date_of_service, Encounter.id)))


def day_schedule(
    session: Session, filters: Mapping[str, Any], *, limit: int, cursor: str | None
) -> Page[Encounter]:
    """The visits of ``filters["date"]`` (of one practice when ``filters["practice"]`` is set)."""
    query = select(Encounter).where(Encounter.date_of_service == filters["date"])
    if filters.get("practice"):
        practice_id = select(Practice.id).where(Practice.public_id == filters["practice"]).scalar_subquery()
        patients = select(Patient.id).where(Patient.practice_id == practice_id)
        query = query.where(Encounter.patient_id.in_(patients))
    return paginate(session, query, Encounter.id, limit=limit, cursor=cursor, filters=filters)


def get_encounter(session: Session, public_id: str) -> Encounter:
    return get_by_public_id(session, Encounter, public_id, "encounter")


def delete_encounter(session: Session, encounter: Encounter) -> None:
    """Cancel a visit; one a claim bills stays (409)."""
    if session.scalar(select(Claim.id).where(Claim.encounter_id == encounter.id).limit(1)) is not None:
        raise Conflict(
            "a claim bills this visit; it cannot be deleted",
            errors=[{"field": "encounter", "rule": "billed", "message": "a claim names this visit"}],
        )
    session.delete(encounter)
    session.flush()


def encounter_to_json(encounter: Encounter) -> dict[str, Any]:
    return {
        "id": encounter.public_id,
        "patient": encounter.patient.public_id,
        "date_of_service": encounter.date_of_service,
        "rendering_provider": encounter.rendering_provider.public_id,
        "facility_provider": encounter.facility_provider.public_id if encounter.facility_provider else None,
        "place_of_service": encounter.place_of_service,
        "created_at": encounter.created_at,
    }
