"""The billing day's own records: the scheduler's jobs, the practice's fee schedule, charge imports.

- ``ScheduledJob``: one row per periodic job (``claims_server.scheduler``). The in-process
  runner of ``claims-server serve`` takes a job by writing its lease (``lease_owner``,
  ``lease_expires_at``) in one conditional UPDATE, so several gunicorn workers run each job
  once; ``claims-server beat`` records the same columns. Outcomes hold counts, never PHI.
- ``FeeScheduleEntry``: the practice's charge per procedure code (and modifier, '' for none):
  what charge entry and charge import fill in when the biller leaves the charge empty.
- ``ChargeImport``: one imported charge file, by the SHA-256 of its bytes (unique per
  practice): the same file twice imports nothing. The file itself is not kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from claims_server.db import Base
from claims_server.models.common import (
    IdType,
    JsonType,
    PublicIdMixin,
    TimestampMixin,
    UTCDateTime,
)


class ScheduledJob(Base):
    """A periodic job's lease, last run and next run (one row per job name)."""

    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_outcome: Mapped[str | None] = mapped_column(String(16))  # ok | failed
    last_detail: Mapped[Any] = mapped_column(JsonType, nullable=True)  # counts and ids, never PHI
    last_error: Mapped[str | None] = mapped_column(String(500))  # exception class and message, never PHI
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    run_count: Mapped[int] = mapped_column(Integer, default=0)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)


class FeeScheduleEntry(TimestampMixin, Base):
    """The practice's standard charge for one procedure code (and modifier)."""

    __tablename__ = "fee_schedule_entries"
    __table_args__ = (
        UniqueConstraint("practice_id", "procedure_code", "modifier"),
        CheckConstraint("charge_cents >= 0", name="charge_nonnegative"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    practice_id: Mapped[int] = mapped_column(IdType, ForeignKey("practices.id"), index=True)
    procedure_code: Mapped[str] = mapped_column(String(5))
    modifier: Mapped[str] = mapped_column(String(2), default="")  # '' = any / none
    charge_cents: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(String(80))  # the practice's own label


class ChargeImport(PublicIdMixin, TimestampMixin, Base):
    """One imported charge file (CSV), known by its bytes' SHA-256."""

    __tablename__ = "charge_imports"
    __table_args__ = (
        UniqueConstraint("practice_id", "file_sha256"),
        CheckConstraint("total_charge_cents >= 0", name="total_charge_nonnegative"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    practice_id: Mapped[int] = mapped_column(IdType, ForeignKey("practices.id"), index=True)
    file_sha256: Mapped[str] = mapped_column(String(64))
    owner_integration: Mapped[str | None] = mapped_column(String(100), index=True)
    created_by: Mapped[str | None] = mapped_column(String(100))  # principal id, never PHI
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    claim_count: Mapped[int] = mapped_column(Integer, default=0)
    ready_count: Mapped[int] = mapped_column(Integer, default=0)
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    total_charge_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    summary: Mapped[Any] = mapped_column(JsonType, nullable=True)  # counts per state, never PHI
