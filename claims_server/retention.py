"""Retention of PHI kept outside the encrypted columns' long-term home: one purge for all of it.

What the purge removes (settings in ``claims_server.config``; docs/security.md lists every
place PHI can be):

- ``idempotency_records`` whose replay window has passed (``expires_at``, set from
  ``IDEMPOTENCY_RETENTION_HOURS``): the stored answers are encrypted, and deleted here
  instead of only being skipped on lookup;
- the PDF and manifest of print batches older than ``PRINT_BATCH_RETENTION_DAYS``
  (encrypted; the row and its counts stay, ``purged_at`` says when, downloads answer 410);
- files the server wrote for someone else to collect, older than
  ``OUTBOUND_FILE_RETENTION_HOURS``: the 837s and 270s in each folder route's outbox
  (only files named as one of our outbound EDI files, so a clearinghouse's own files are
  left alone; the stored copy stays encrypted in ``edi_files``), ``.eml`` files written
  without SMTP and CLI print-batch files under ``STATEMENT_OUTBOX``.

It runs as the scheduler's ``maintenance-purge`` job (hourly, docs/scheduler.md) and as
``claims-server maintenance purge``. Running it twice
removes nothing the second time. The report names counts and file names (server
generated, no PHI), never contents.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from claims_server.clearinghouse.transport import TransportConfigError, transport_for
from claims_server.config import Settings
from claims_server.models import (
    AuditAction,
    ClearinghouseRoute,
    EdiFile,
    FileDirection,
    IdempotencyRecord,
    StatementPrintBatch,
    TransportKind,
)
from claims_server.security.audit import audit_event

#: Statement outbox sub-folders and the names the server gives its files there.
_STATEMENT_FILES = (("email", ".eml"), ("print", ".pdf"), ("print", ".manifest.csv"))


@dataclass
class PurgeReport:
    """What one purge removed."""

    idempotency_records: int = 0
    print_batches: int = 0
    files: list[str] = field(default_factory=list)  # paths removed

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "idempotency_records": self.idempotency_records,
            "print_batches": self.print_batches,
            "files": len(self.files),
        }


def purge_idempotency_records(session: Session, now: datetime) -> int:
    """Delete the records whose replay window has passed (the caller commits)."""
    result = session.execute(
        delete(IdempotencyRecord)
        .where(IdempotencyRecord.expires_at.is_not(None), IdempotencyRecord.expires_at < now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def purge_print_batches(session: Session, settings: Settings, now: datetime) -> int:
    """Clear the PDF and manifest of batches past ``PRINT_BATCH_RETENTION_DAYS``; audited."""
    cutoff = now - timedelta(days=settings.PRINT_BATCH_RETENTION_DAYS)
    rows = session.scalars(
        select(StatementPrintBatch).where(
            StatementPrintBatch.purged_at.is_(None), StatementPrintBatch.created_at < cutoff
        )
    ).all()
    for row in rows:
        row.pdf_content = None
        row.manifest_content = None
        row.purged_at = now
        audit_event(
            session,
            action=AuditAction.DELETE,
            event_type="statement.print_batch.purge",
            entity_type="statement_print_batch",
            entity_id=row.public_id,
            details={"retention_days": settings.PRINT_BATCH_RETENTION_DAYS},
        )
    return len(rows)


def _old_files(folder: Path, cutoff: float, *, recursive: bool) -> Iterator[Path]:
    if not folder.is_dir():
        return
    for path in folder.rglob("*") if recursive else folder.iterdir():
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime <= cutoff:
                yield path
        except OSError:
            continue  # gone while we walked (a clearinghouse collected it)


def _remove(paths: Iterable[Path], report: PurgeReport) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        report.files.append(str(path))


def folder_outboxes(session: Session, base_dir: str | os.PathLike[str]) -> list[Path]:
    """The outbox folder of every folder route (relative paths resolve against ``base_dir``)."""
    out = []
    for route in session.scalars(
        select(ClearinghouseRoute).where(ClearinghouseRoute.transport == TransportKind.FOLDER)
    ):
        try:
            transport = transport_for("folder", route.settings or {}, base_dir=base_dir)
        except TransportConfigError:
            continue
        out.append(Path(transport.outbox))  # type: ignore[attr-defined]
    return sorted(set(out))


def purge_outbound_files(
    session: Session, settings: Settings, now: datetime, *, base_dir: str | os.PathLike[str] | None = None
) -> list[str]:
    """Delete our outbound EDI files in folder outboxes and statement files past retention."""
    from claims_server.statements.delivery import outbox_dir

    report = PurgeReport()
    cutoff = (now - timedelta(hours=settings.OUTBOUND_FILE_RETENTION_HOURS)).timestamp()
    for outbox in folder_outboxes(session, base_dir or settings.INSTANCE_PATH):
        candidates = list(_old_files(outbox, cutoff, recursive=True))
        ours: set[str] = set()
        names = sorted({p.name for p in candidates})
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            ours.update(
                session.scalars(
                    select(EdiFile.stored_name).where(
                        EdiFile.direction == FileDirection.OUTBOUND, EdiFile.stored_name.in_(chunk)
                    )
                )
            )
        _remove((p for p in candidates if p.name in ours), report)
    statements = outbox_dir(settings)
    for sub, suffix in _STATEMENT_FILES:
        _remove(
            (
                p
                for p in _old_files(statements / sub, cutoff, recursive=False)
                if p.name.endswith(suffix) and (sub == "email" or p.name.startswith("statements-"))
            ),
            report,
        )
    return report.files


def purge(
    session: Session, settings: Settings, now: datetime, *, base_dir: str | os.PathLike[str] | None = None
) -> PurgeReport:
    """Run every purge (see module docstring); the caller commits the database part."""
    report = PurgeReport()
    report.idempotency_records = purge_idempotency_records(session, now)
    report.print_batches = purge_print_batches(session, settings, now)
    report.files = purge_outbound_files(session, settings, now, base_dir=base_dir)
    if report.idempotency_records or report.print_batches or report.files:
        audit_event(
            session,
            action=AuditAction.DELETE,
            event_type="retention.purge",
            entity_type="retention",
            details=report.to_json_dict(),
        )
    return report
