"""The one place API services and the claim state machine append audit events.

Every change to PHI or money leaves a hash-chained audit record (ARCHITECTURE.md); the
record is written in the caller's transaction so it is saved with the change or not at
all. ``details`` carries field names, codes and ids, never PHI values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from claims_server.models import AuditAction


def audit(
    session: Session,
    *,
    action: AuditAction,
    event_type: str,
    entity_type: str,
    entity_id: str,
    patient_id: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one audit event (``event_type`` such as ``claim.ready``, ``patient.update``)."""
    from claims_server.security.audit import audit_event

    audit_event(
        session,
        action=action,
        event_type=event_type,
        entity_type=entity_type,
        entity_id=entity_id,
        patient_id=patient_id,
        details=dict(details or {}),
    )
