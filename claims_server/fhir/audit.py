"""The hash-chained audit log → AuditEvent (auditor and admin only; the row is FHIR-shaped already).

The id is the row's chain hash (64 hex digits, unique), not its row id. ``details``
never holds PHI values (security.audit), so it is served as entity.detail.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.fhir import search
from claims_server.fhir.claims import date_filter
from claims_server.fhir.common import SID, instant, parse_token, prune, reference
from claims_server.fhir.patients import ID_PARAM, PATIENT_PARAM, id_filter, patient_filter
from claims_server.models import ApiToken, AuditEvent, Patient, User

EVENT_TYPE_SYSTEM = "https://claims-server.dev/fhir/CodeSystem/audit-event-type"
#: Our audited entity types that are FHIR resources here.
_RESOURCE_OF = {
    "patient": "Patient",
    "coverage": "Coverage",
    "claim": "Claim",
    "statement": "Invoice",
    "eligibility_check": "CoverageEligibilityRequest",
}


def audit_event_to_fhir(
    event: AuditEvent, actors: dict[tuple[str, int], str], patients: dict[int, str]
) -> dict[str, Any]:
    who: dict[str, Any] = {"display": event.actor_role or "system"}
    if event.actor_user_id is not None:
        who["identifier"] = {"system": SID + "user", "value": actors.get(("user", event.actor_user_id))}
    elif event.actor_token_id is not None:
        who["identifier"] = {
            "system": SID + "api-token",
            "value": actors.get(("token", event.actor_token_id)),
        }
    entities: list[dict[str, Any]] = []
    if event.entity_id:
        kind = _RESOURCE_OF.get(event.entity_type or "")
        what = (
            reference(kind, event.entity_id)
            if kind
            else {"identifier": {"system": SID + (event.entity_type or "entity"), "value": event.entity_id}}
        )
        entities.append(
            {
                "what": what,
                "detail": [
                    {"type": key, "valueString": json.dumps(value, sort_keys=True, default=str)}
                    for key, value in sorted((event.details or {}).items())
                ],
            }
        )
    if event.patient_id is not None and patients.get(event.patient_id):
        entities.append(
            {
                "what": reference("Patient", patients[event.patient_id]),
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
            }
        )
    return prune(
        {
            "resourceType": "AuditEvent",
            "id": event.hash,
            "type": {"system": EVENT_TYPE_SYSTEM, "code": event.event_type},
            "action": event.action.value,
            "recorded": instant(event.occurred_at),
            "outcome": str(int(event.outcome)),
            "agent": [
                {
                    "who": who,
                    "requestor": True,
                    "network": {"address": event.source_address, "type": "2"}
                    if event.source_address
                    else None,
                }
            ],
            "source": {"observer": {"display": "claims-server"}, "site": event.request_id},
            "entity": entities,
        }
    )


def _render(session: Session, events: list[AuditEvent]) -> list[dict[str, Any]]:
    """Actors and patients by public id, loaded once for the page (no row ids leave the server)."""
    user_ids = {e.actor_user_id for e in events if e.actor_user_id is not None}
    token_ids = {e.actor_token_id for e in events if e.actor_token_id is not None}
    patient_ids = {e.patient_id for e in events if e.patient_id is not None}
    actors: dict[tuple[str, int], str] = {}
    if user_ids:
        actors.update(
            {
                ("user", i): p
                for i, p in session.execute(select(User.id, User.public_id).where(User.id.in_(user_ids)))
            }
        )
    if token_ids:
        actors.update(
            {
                ("token", i): p
                for i, p in session.execute(
                    select(ApiToken.id, ApiToken.public_id).where(ApiToken.id.in_(token_ids))
                )
            }
        )
    patients = (
        dict(session.execute(select(Patient.id, Patient.public_id).where(Patient.id.in_(patient_ids))).all())
        if patient_ids
        else {}
    )
    return [audit_event_to_fhir(e, actors, patients) for e in events]


def read_audit_event(session: Session, event_hash: str) -> dict[str, Any]:
    event = session.scalar(select(AuditEvent).where(AuditEvent.hash == event_hash))
    if event is None:
        raise search.not_found("AuditEvent")
    return _render(session, [event])[0]


def _action_filter(query: Any, raw: str) -> Any:
    _, value = parse_token("action", raw)
    return query.where(AuditEvent.action == value)


def search_audit_events(session: Session, args: search.SearchArgs) -> tuple[list[dict[str, Any]], str | None]:
    handlers = {
        "_id": id_filter(AuditEvent.hash),
        "date": date_filter(AuditEvent.occurred_at, "date"),
        "patient": patient_filter(AuditEvent.patient_id),
        "action": _action_filter,
    }
    found = search.page(session, search.apply(select(AuditEvent), args, handlers), AuditEvent.id, args)
    return _render(session, list(found.items)), found.next_cursor


AUDIT_EVENT = search.ResourceKind(
    "AuditEvent",
    read_audit_event,
    search_audit_events,
    (
        ID_PARAM,
        PATIENT_PARAM,
        search.SearchParam("date", "date", "when the event was recorded"),
        search.SearchParam("action", "token", "C, R, U, D or E"),
    ),
)
