"""Ownership: a patient sees only their own rows, an integration only its own; others get 404.

Services call ``scope_query(stmt, principal, Model)`` on every query that fetches
objects by id for an API caller, or ``get_owned(session, Model, public_id, principal)``
which raises ``NotFound`` (never 403: a 403 would confirm the object exists).

How a model is owned is declared once in ``OWNERSHIP``: the column holding the
patient's id (patients: ``id``; most rows: ``patient_id``) and the column naming the
integration (API token) that created it. A model with no entry for the caller's kind
is invisible to patients and integrations. Staff see everything (one practice per
installation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from claims_server.errors import NotFound
from claims_server.models import ApiToken, Coverage, Encounter, Patient, PatientPayment, Statement
from claims_server.models.payments import PaymentPlan
from claims_server.security.principal import Principal, PrincipalKind

T = TypeVar("T")


@dataclass(frozen=True)
class Owner:
    patient_column: str | None = None
    integration_column: str | None = None  # holds api_tokens.integration_name


#: Model -> how it is owned. Add your model here when patients or integrations may read it.
OWNERSHIP: dict[type[Any], Owner] = {
    Patient: Owner(patient_column="id"),
    Coverage: Owner(patient_column="patient_id"),
    Encounter: Owner(patient_column="patient_id"),
    Statement: Owner(patient_column="patient_id"),
    PatientPayment: Owner(patient_column="patient_id"),
    ApiToken: Owner(integration_column="integration_name"),
    PaymentPlan: Owner(patient_column="patient_id"),  # statements-delivery
}


def scope_query(stmt: Select[Any], principal: Principal, model: type[Any]) -> Select[Any]:
    """Restrict ``stmt`` (a select of ``model``) to what ``principal`` may see."""
    if principal.kind is PrincipalKind.SYSTEM or principal.is_staff:
        return stmt
    owner = OWNERSHIP.get(model)
    if principal.kind is PrincipalKind.PATIENT and owner and owner.patient_column and principal.patient_id:
        return stmt.where(getattr(model, owner.patient_column) == principal.patient_id)
    if (
        principal.kind is PrincipalKind.TOKEN
        and owner
        and owner.integration_column
        and principal.integration_name
    ):
        return stmt.where(getattr(model, owner.integration_column) == principal.integration_name)
    return stmt.where(false())


def get_owned(session: Session, model: type[T], public_id: str, principal: Principal) -> T:
    """The ``model`` row with ``public_id`` if ``principal`` may see it; else ``NotFound`` (404)."""
    stmt = scope_query(select(model).where(model.public_id == public_id), principal, model)  # type: ignore[attr-defined]
    found = session.scalar(stmt)
    if found is None:
        raise NotFound(f"no {model.__tablename__.removesuffix('s').replace('_', ' ')} with that id")  # type: ignore[attr-defined]
    return found
