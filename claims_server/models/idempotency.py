"""Stored responses for ``Idempotency-Key`` requests, so a retried POST is answered, not redone.

The stored body is what the first request answered, and that answer usually carries PHI (a
created patient, coverage or claim), so it is encrypted like every PHI column: AES-256-GCM
under the data key, bound to this row's ``public_id`` (``security/fields.py``). Records are
deleted once ``expires_at`` passes (``claims_server.retention.purge``, scheduled).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from claims_server.db import Base
from claims_server.models.common import CreatedMixin, IdType, PublicIdMixin, UTCDateTime
from claims_server.models.encrypted import EncryptedText


class IdempotencyRecord(PublicIdMixin, CreatedMixin, Base):
    """One (principal, key): the request's fingerprint and the response it got.

    A retry with the same key and fingerprint gets the stored response; the same key
    with a different fingerprint is a client error (422), never a second execution.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    principal: Mapped[str] = mapped_column(String(100))  # "user:<public_id>" or "token:<public_id>"
    key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of method, path and body
    response_status: Mapped[int | None] = mapped_column(SmallInteger)  # NULL while the request runs
    # The answer's body as sent (JSON text), encrypted: not marked PHI_INFO because it is a copy
    # of what the request's own audited change wrote; a replay is audited when it happens.
    response_body: Mapped[str | None] = mapped_column(EncryptedText())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
