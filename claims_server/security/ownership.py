"""Ownership: a patient sees only their own rows, an integration only its own; others get 404.

Services call ``scope_query(stmt, principal, Model)`` on every query that fetches
objects by id for an API caller, or ``get_owned(session, Model, public_id, principal)``
which raises ``NotFound`` (never 403: a 403 would confirm the object exists). The shared
look-ups ``api_common.crud.get_by_public_id`` and ``reference`` apply the same scope for
the current principal, so every service that resolves an id from a request is covered.

How a model is owned is declared once in ``OWNERSHIP``:

* ``patient_column``: the column holding the patient's id (patients: ``id``; most rows:
  ``patient_id``) for patient-link sessions;
* ``integration_column``: the column naming the integration (``api_tokens.integration_name``)
  that created the row. It is stamped on flush from the acting token
  (``_stamp_integration_owner``), so no service can forget it;
* ``integration_parent``: (foreign key column, parent model): the row belongs to the
  integration that owns its parent (a coverage is its patient's, a remittance its 835 file's);
* ``shared``: reference data without PHI (practice, providers, payers) that every
  integration may read.

A model with no entry for the caller's kind is invisible to patients and integrations.
Staff see everything (one practice per installation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, event, false, select
from sqlalchemy.orm import Session

from claims_server.errors import NotFound
from claims_server.models import (
    ApiToken,
    Appeal,
    ChargeImport,
    Claim,
    ClaimPayment,
    Coverage,
    EdiFile,
    EligibilityCheck,
    Encounter,
    Patient,
    PatientPayment,
    Payer,
    Practice,
    Provider,
    Remittance,
    Statement,
    WorkItem,
)
from claims_server.models.payments import PaymentPlan
from claims_server.security.principal import Principal, PrincipalKind, current_principal

T = TypeVar("T")


@dataclass(frozen=True)
class Owner:
    patient_column: str | None = None
    integration_column: str | None = None  # holds api_tokens.integration_name
    integration_parent: tuple[str, type[Any]] | None = None  # (foreign key column, parent model)
    shared: bool = False  # reference data, no PHI: every integration may read it


#: Reference data of the practice (no PHI) that integrations need to name in what they send.
SHARED = Owner(shared=True)

#: Model -> how it is owned. Add your model here when patients or integrations may read it.
OWNERSHIP: dict[type[Any], Owner] = {
    Practice: SHARED,
    Provider: SHARED,
    Payer: SHARED,
    Patient: Owner(patient_column="id", integration_column="owner_integration"),
    Coverage: Owner(patient_column="patient_id", integration_parent=("patient_id", Patient)),
    Encounter: Owner(patient_column="patient_id", integration_parent=("patient_id", Patient)),
    Claim: Owner(integration_column="owner_integration"),
    ChargeImport: Owner(integration_column="owner_integration"),
    WorkItem: Owner(integration_parent=("claim_id", Claim)),
    Appeal: Owner(integration_parent=("claim_id", Claim)),
    EligibilityCheck: Owner(integration_parent=("coverage_id", Coverage)),
    Statement: Owner(patient_column="patient_id", integration_parent=("patient_id", Patient)),
    PatientPayment: Owner(patient_column="patient_id", integration_parent=("patient_id", Patient)),
    PaymentPlan: Owner(patient_column="patient_id", integration_parent=("patient_id", Patient)),
    EdiFile: Owner(integration_column="owner_integration"),
    Remittance: Owner(integration_parent=("edi_file_id", EdiFile)),
    ClaimPayment: Owner(integration_parent=("remittance_id", Remittance)),
    ApiToken: Owner(integration_column="integration_name"),
}


def _integration_filter(model: type[Any], integration_name: str) -> Any:
    """The WHERE clause limiting ``model`` to rows of ``integration_name``, or None: none are."""
    owner = OWNERSHIP.get(model)
    if owner is None:
        return None
    if owner.integration_column:
        return getattr(model, owner.integration_column) == integration_name
    if owner.integration_parent:
        column, parent = owner.integration_parent
        parent_filter = _integration_filter(parent, integration_name)
        if parent_filter is None:
            return None
        return getattr(model, column).in_(select(parent.id).where(parent_filter))
    return None


def scope_query(stmt: Select[Any], principal: Principal, model: type[Any]) -> Select[Any]:
    """Restrict ``stmt`` (a select of ``model``) to what ``principal`` may see."""
    if principal.kind is PrincipalKind.SYSTEM or principal.is_staff:
        return stmt
    owner = OWNERSHIP.get(model)
    if principal.kind in (PrincipalKind.TOKEN, PrincipalKind.PATIENT) and owner and owner.shared:
        return stmt
    if principal.kind is PrincipalKind.PATIENT and owner and owner.patient_column and principal.patient_id:
        return stmt.where(getattr(model, owner.patient_column) == principal.patient_id)
    if principal.kind is PrincipalKind.TOKEN and principal.integration_name:
        where = _integration_filter(model, principal.integration_name)
        if where is not None:
            return stmt.where(where)
    return stmt.where(false())


def get_owned(session: Session, model: type[T], public_id: str, principal: Principal) -> T:
    """The ``model`` row with ``public_id`` if ``principal`` may see it; else ``NotFound`` (404)."""
    stmt = scope_query(select(model).where(model.public_id == public_id), principal, model)  # type: ignore[attr-defined]
    found = session.scalar(stmt)
    if found is None:
        raise NotFound(f"no {model.__tablename__.removesuffix('s').replace('_', ' ')} with that id")  # type: ignore[attr-defined]
    return found


def find_owned(
    session: Session, model: type[T], public_id: str, principal: Principal | None = None
) -> T | None:
    """The ``model`` row with ``public_id`` if the caller (default: the current principal) may see it."""
    stmt = select(model).where(model.public_id == public_id)  # type: ignore[attr-defined]
    return session.scalar(scope_query(stmt, principal or current_principal(), model))


@event.listens_for(Session, "before_flush")
def _stamp_integration_owner(session: Session, _context: Any, _instances: Any) -> None:
    """Rows an integration token creates carry its name in their ``integration_column``."""
    principal = current_principal()
    if principal.kind is not PrincipalKind.TOKEN or not principal.integration_name:
        return
    for row in session.new:
        owner = OWNERSHIP.get(type(row))
        if owner and owner.integration_column and getattr(row, owner.integration_column, None) is None:
            setattr(row, owner.integration_column, principal.integration_name)
