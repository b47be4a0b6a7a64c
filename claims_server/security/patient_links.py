"""One-time, expiring statement links for patients, checked against the birth date.

A link token (``csl_...``, 256 random bits, stored as SHA-256) goes to the patient in
the statement, in the URL fragment so it never reaches server logs. Posting it with
the right birth date consumes the link and opens a short patient session (``csp_...``)
that can read only that patient's statements. Five wrong birth dates revoke the link; each
attempt is counted atomically before the date is compared (``reserve_attempt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from claims_server.config import Settings
from claims_server.models import Patient, PatientAccessLink
from claims_server.models.security import AuditAction, AuditOutcome
from claims_server.security.audit import audit_event
from claims_server.security.authn import LINK_PREFIX, PATIENT_PREFIX, AuthError, new_token, token_hash
from claims_server.security.principal import PATIENT_ROLE, Principal, PrincipalKind, acting_as

MAX_BIRTH_DATE_ATTEMPTS = 5
#: A patient session ends this long after the birth-date check, whatever the activity.
PATIENT_SESSION_ABSOLUTE = timedelta(hours=1)


@dataclass(frozen=True)
class IssuedLink:
    token: str
    link: PatientAccessLink


def create_patient_link(
    session: Session, patient: Patient, *, created_by_user_id: int | None, settings: Settings, now: datetime
) -> IssuedLink:
    """Issue a link for ``patient`` (flushes; the caller commits)."""
    token = new_token(LINK_PREFIX)
    link = PatientAccessLink(
        patient_id=patient.id,
        token_hash=token_hash(token),
        expires_at=now + timedelta(hours=settings.PATIENT_LINK_HOURS),
        created_by_user_id=created_by_user_id,
        created_at=now,
        failed_attempts=0,
    )
    session.add(link)
    session.flush()
    audit_event(
        session,
        action=AuditAction.CREATE,
        event_type="patient_link.create",
        entity_type="patient_access_link",
        entity_id=link.public_id,
        patient_id=patient.id,
    )
    return IssuedLink(token, link)


def usable_link(session: Session, token_digest: str, now: datetime) -> PatientAccessLink | None:
    """The link whose token hashes to ``token_digest``, if it is not revoked, used or expired."""
    link = session.scalar(select(PatientAccessLink).where(PatientAccessLink.token_hash == token_digest))
    if link is None or link.revoked_at is not None or link.used_at is not None or now >= link.expires_at:
        return None
    return link


def verify_patient_link(
    session: Session, *, token_digest: str, birth_date: date, now: datetime
) -> tuple[str, PatientAccessLink]:
    """Consume the link when the birth date matches; returns a patient session token. Commits.

    The link is found by the SHA-256 of its token (``authn.token_hash``): callers that keep
    a pending link between requests (the patient pages' session cookie) hold only the hash.
    """
    link = session.scalar(select(PatientAccessLink).where(PatientAccessLink.token_hash == token_digest))
    refused = AuthError("the link is invalid, expired or already used, or the birth date does not match")
    if link is None:
        raise refused
    actor = Principal(
        PrincipalKind.PATIENT,
        role=PATIENT_ROLE,
        patient_id=link.patient_id,
        link_id=link.id,
        name=f"patient-link:{link.public_id}",
    )
    if link.revoked_at is not None or link.used_at is not None or now >= link.expires_at:
        reason = "revoked" if link.revoked_at else "used" if link.used_at else "expired"
        _audit_failure(session, link, actor, reason)
        session.commit()
        raise refused
    attempt = reserve_attempt(session, link.id, now)
    if attempt is None:  # another request used the last attempt (or the link) meanwhile
        session.refresh(link)
        _audit_failure(session, link, actor, "attempts")
        session.commit()
        raise refused
    patient = session.get(Patient, link.patient_id)
    if patient is None or patient.birth_date != birth_date:
        if attempt >= MAX_BIRTH_DATE_ATTEMPTS:
            link.revoked_at = now
        _audit_failure(session, link, actor, "birth_date")
        session.commit()
        raise refused
    session_token = new_token(PATIENT_PREFIX)
    link.failed_attempts = attempt - 1  # this attempt succeeded
    link.used_at = now
    link.session_token_hash = token_hash(session_token)
    link.session_expires_at = now + PATIENT_SESSION_ABSOLUTE
    link.session_last_seen_at = now
    with acting_as(actor):
        audit_event(
            session,
            action=AuditAction.EXECUTE,
            event_type="patient_link.verify",
            entity_type="patient_access_link",
            entity_id=link.public_id,
            patient_id=link.patient_id,
        )
    session.commit()
    return session_token, link


def reserve_attempt(session: Session, link_id: int, now: datetime) -> int | None:
    """Count one birth-date attempt atomically, before the date is compared; its number, or None.

    One conditional UPDATE (``failed_attempts = failed_attempts + 1 WHERE failed_attempts < max``
    and the link still usable) ``RETURNING`` the new count: concurrent attempts queue on the
    row (PostgreSQL) or the write lock (SQLite), so at most ``MAX_BIRTH_DATE_ATTEMPTS`` dates
    are ever compared for a link. A matching date consumes the link (and takes its attempt
    back off the count of failures).
    """
    attempts = session.execute(
        update(PatientAccessLink)
        .where(
            PatientAccessLink.id == link_id,
            PatientAccessLink.failed_attempts < MAX_BIRTH_DATE_ATTEMPTS,
            PatientAccessLink.revoked_at.is_(None),
            PatientAccessLink.used_at.is_(None),
            PatientAccessLink.expires_at > now,
        )
        .values(failed_attempts=PatientAccessLink.failed_attempts + 1)
        .returning(PatientAccessLink.failed_attempts)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    link = session.get(PatientAccessLink, link_id)
    if attempts is not None and link is not None:
        set_committed_value(link, "failed_attempts", attempts)
    return attempts


def _audit_failure(session: Session, link: PatientAccessLink, actor: Principal, reason: str) -> None:
    with acting_as(actor):
        audit_event(
            session,
            action=AuditAction.EXECUTE,
            event_type="patient_link.verify",
            entity_type="patient_access_link",
            entity_id=link.public_id,
            patient_id=link.patient_id,
            outcome=AuditOutcome.MINOR_FAILURE,
            details={"reason": reason, "attempts": link.failed_attempts},
        )
