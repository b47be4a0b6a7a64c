"""Users, their sessions, API tokens, patient links, the key ring and the audit log.

Only hashes of secrets are stored (password hash, SHA-256 of session, API and patient
link tokens); the TOTP secret is encrypted like PHI. ``AuditEvent`` is append-only
(database triggers) and hash-chained (``prev_hash`` -> ``hash``, see
``claims_server.security.audit``). ``EncryptionKey`` holds data keys wrapped by the
master key (``claims_server.security.keys``), never a key in clear.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_server.db import Base
from claims_server.models.common import (
    CreatedMixin,
    EnumText,
    IdType,
    JsonType,
    PublicIdMixin,
    TimestampMixin,
    UTCDateTime,
    enum_check,
    utcnow,
)
from claims_server.models.encrypted import EncryptedString


class Role(StrEnum):
    BILLER = "biller"
    BILLING_SUPERVISOR = "billing_supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"
    INTEGRATION = "integration"


class AuditAction(StrEnum):
    """FHIR AuditEvent.action."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class AuditOutcome(IntEnum):
    """FHIR AuditEvent.outcome: 0 success, 4 minor failure, 8 serious failure, 12 major failure."""

    SUCCESS = 0
    MINOR_FAILURE = 4
    SERIOUS_FAILURE = 8
    MAJOR_FAILURE = 12


class User(PublicIdMixin, TimestampMixin, Base):
    """A person who signs in (or the owner of an integration token)."""

    __tablename__ = "users"
    __table_args__ = (
        enum_check("role", Role),
        CheckConstraint("failed_login_count >= 0", name="failed_login_count_nonnegative"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    display_name: Mapped[str] = mapped_column(String(150))
    email: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(EnumText(Role, 20))
    password_hash: Mapped[str | None] = mapped_column(String(255))  # argon2id; NULL for integration users
    totp_secret: Mapped[str | None] = mapped_column(EncryptedString(512))  # base32, encrypted at rest
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)  # set once a code confirmed it
    # RFC 6238 time step of the last accepted code: a code of this step or an older one is refused
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    sessions: Mapped[list[UserSession]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class UserSession(CreatedMixin, Base):
    """A signed-in browser session; the cookie holds the token, the table its SHA-256."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    user_id: Mapped[int] = mapped_column(IdType, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    source_address: Mapped[str | None] = mapped_column(String(45))  # IPv4 or IPv6 text

    user: Mapped[User] = relationship(back_populates="sessions")


class ApiToken(PublicIdMixin, CreatedMixin, Base):
    """A bearer token for integrations; ``scopes`` limits what it may do."""

    __tablename__ = "api_tokens"
    __table_args__ = (enum_check("role", Role),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(12))  # first characters, shown to tell tokens apart
    scopes: Mapped[list[str]] = mapped_column(JsonType, default=list)
    role: Mapped[Role] = mapped_column(EnumText(Role, 20), default=Role.INTEGRATION)
    owner_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"), index=True)
    integration_name: Mapped[str | None] = mapped_column(String(100))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    owner: Mapped[User | None] = relationship()


class AuditEvent(Base):
    """Who did what to which record, when, from where, with what outcome.

    Modelled on FHIR AuditEvent. ``details`` never holds PHI values, only field names.
    ``hash`` = SHA-256 over the canonical event and ``prev_hash``; ``key_id`` names the
    HMAC/signing key so keys can rotate without breaking verification.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        enum_check("action", AuditAction),
        CheckConstraint(f"outcome IN ({', '.join(str(int(o)) for o in AuditOutcome)})", name="outcome"),
        Index("ix_audit_events_entity_type_entity_id", "entity_type", "entity_id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)  # also the chain order
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"), index=True)
    actor_token_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("api_tokens.id"))
    actor_role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[AuditAction] = mapped_column(EnumText(AuditAction, 1))
    event_type: Mapped[str] = mapped_column(String(64))  # e.g. claim.submit, patient.read
    entity_type: Mapped[str | None] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))  # public_id of the entity
    patient_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("patients.id"), index=True)
    outcome: Mapped[int] = mapped_column(SmallInteger, default=AuditOutcome.SUCCESS)  # AuditOutcome
    source_address: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    prev_hash: Mapped[str | None] = mapped_column(String(64))  # NULL for the first event
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str | None] = mapped_column(String(64))


class KeyPurpose(StrEnum):
    """What a key of the ring is for; each purpose has its own keys."""

    DATA = "data"  # AES-256-GCM field and file encryption
    BLIND_INDEX = "blind_index"  # HMAC-SHA256 of normalised search values
    AUDIT = "audit"  # HMAC-SHA256 of the audit hash chain
    AUDIT_SIGNING = "audit_signing"  # Ed25519 private key signing audit checkpoints


class EncryptionKey(CreatedMixin, Base):
    """One key of the ring, wrapped by the master key (``provider`` names who can unwrap it).

    The newest non-retired key of a purpose is the active one; older keys still decrypt
    what they encrypted until ``keys rotate`` has moved every value to the new key.
    """

    __tablename__ = "encryption_keys"
    __table_args__ = (enum_check("purpose", KeyPurpose),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)  # short random hex, in every ciphertext
    purpose: Mapped[KeyPurpose] = mapped_column(EnumText(KeyPurpose, 16), index=True)
    provider: Mapped[str] = mapped_column(String(40))  # e.g. "local:<master key fingerprint>"
    wrapped_key: Mapped[str] = mapped_column(Text)  # base64 of the provider's wrapped form
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PatientAccessLink(PublicIdMixin, CreatedMixin, Base):
    """A one-time, expiring link letting a patient see their own statements without an account.

    The link token (in the URL fragment the patient receives) is consumed by the first
    successful birth-date check, which opens a short patient session (its own token).
    """

    __tablename__ = "patient_access_links"
    __table_args__ = (CheckConstraint("failed_attempts >= 0", name="failed_attempts_nonnegative"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    patient_id: Mapped[int] = mapped_column(IdType, ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))
    session_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    session_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    session_last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
