"""Every X12 interchange in and out, with what answered it, and the raw file read back (audited).

The list reads file metadata with column queries: the encrypted ``content`` is neither
loaded nor decrypted, and no PHI-bearing entity is loaded, so listing files is not a PHI
read. Reading a raw file is: :func:`read_raw_file` decrypts it (``EdiFile.content`` is
``EncryptedBytes``, AES-GCM bound to the file's public id) and appends, per download, one
READ audit event naming the file and one naming each patient whose data the file carries
(HIPAA 164.312(b)).

Acknowledgment status, per the X12 acknowledgment chain (TA1 for the envelope, 999
005010X231A1 for the syntax of each transaction set, 277CA 005010X214 for each claim's
front-end edits):

- an outbound 837: its TA1 (``Interchange.ta1_status``), the 999 verdict on its
  functional group (AK9) and the 277CA outcome per claim of its batch (accepted /
  rejected / other, by the category of each claim's statuses);
- an inbound 999: the batch it answered and its AK9 code; an inbound 277CA: how many
  claim statuses it carried by outcome; an inbound 835: its payments (trace numbers and
  posting state).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from claims_server.api_common.audit import audit
from claims_server.api_common.pagination import decode_cursor, encode_cursor
from claims_server.errors import NotFound
from claims_server.models import (
    Ack999Result,
    AuditAction,
    BatchClaim,
    Claim,
    ClaimPayment,
    ClaimStatusEvent,
    Coverage,
    EdiFile,
    EdiFileKind,
    EdiFileStatus,
    EligibilityCheck,
    FileDirection,
    Interchange,
    Patient,
    Remittance,
    SubmissionBatch,
)
from claims_server.security.audit import audit_events_bulk
from edi.x277ca import category_outcome

#: Meaning of the codes a reader sees (TA104; 999 IK501/AK901).
TA1_CODES = {"A": "accepted", "E": "accepted with errors", "R": "rejected"}
ACK999_CODES = {
    "A": "accepted",
    "E": "accepted with errors",
    "M": "rejected: message authentication failed",
    "P": "partially accepted",
    "R": "rejected",
    "W": "rejected: assurance failed",
    "X": "rejected: content could not be analysed",
}
CLAIM_FILE_KINDS = (EdiFileKind.CLAIM_837P, EdiFileKind.CLAIM_837I)


@dataclass(frozen=True)
class FileFilters:
    """What the list may be narrowed by; none of it is PHI, so it may travel in a URL."""

    direction: FileDirection | None = None
    kind: EdiFileKind | None = None
    status: EdiFileStatus | None = None
    received_from: date | None = None
    received_to: date | None = None
    public_id: str | None = None  # one file

    def as_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction.value if self.direction else None,
            "kind": self.kind.value if self.kind else None,
            "status": self.status.value if self.status else None,
            "received_from": self.received_from.isoformat() if self.received_from else None,
            "received_to": self.received_to.isoformat() if self.received_to else None,
            "file": self.public_id,
        }


@dataclass
class Acknowledgment:
    """One answer in the chain: what (TA1, 999, 277CA, 835 ...), its code and meaning, and where from."""

    source: str  # "TA1", "999", "277CA", "835", "processing"
    code: str
    meaning: str
    file: str | None = None  # public id of the answering (or answered) file
    batch: str | None = None


@dataclass
class FileRow:
    """One interchange as the history lists it: metadata and its acknowledgments (no content)."""

    id: int
    public_id: str
    direction: FileDirection
    kind: EdiFileKind
    status: EdiFileStatus
    size_bytes: int
    sha256: str
    received_at: datetime
    processed_at: datetime | None
    sender_id: str | None
    interchange_control_number: str | None
    batch_id: int | None
    error_summary: dict[str, Any] | None
    batch: str | None = None  # the batch's public id
    batch_state: str | None = None
    acknowledgments: list[Acknowledgment] = field(default_factory=list)


@dataclass
class FileHistoryPage:
    rows: list[FileRow]
    next_cursor: str | None


_COLUMNS = (
    EdiFile.id,
    EdiFile.public_id,
    EdiFile.direction,
    EdiFile.kind,
    EdiFile.status,
    EdiFile.size_bytes,
    EdiFile.sha256,
    EdiFile.received_at,
    EdiFile.processed_at,
    EdiFile.sender_id,
    EdiFile.interchange_control_number,
    EdiFile.batch_id,
    EdiFile.error_summary,
)


def _filtered(query: Select[Any], filters: FileFilters) -> Select[Any]:
    if filters.public_id is not None:
        query = query.where(EdiFile.public_id == filters.public_id)
    if filters.direction is not None:
        query = query.where(EdiFile.direction == filters.direction)
    if filters.kind is not None:
        query = query.where(EdiFile.kind == filters.kind)
    if filters.status is not None:
        query = query.where(EdiFile.status == filters.status)
    if filters.received_from is not None:
        query = query.where(EdiFile.received_at >= datetime.combine(filters.received_from, time.min, UTC))
    if filters.received_to is not None:
        end = datetime.combine(filters.received_to + timedelta(days=1), time.min, UTC)
        query = query.where(EdiFile.received_at < end)
    return query


def file_history(
    session: Session, filters: FileFilters, *, limit: int = 50, cursor: str | None = None
) -> FileHistoryPage:
    """One page of files, newest first, each with its acknowledgments (a few queries per page)."""
    fingerprint = filters.as_dict()
    before = decode_cursor(cursor, fingerprint)
    query = _filtered(select(*_COLUMNS), filters)
    if before is not None:
        query = query.where(EdiFile.id < before)
    result = session.execute(query.order_by(EdiFile.id.desc()).limit(limit + 1)).all()
    rows = [FileRow(*r) for r in result[:limit]]
    _attach_acknowledgments(session, rows)
    next_cursor = encode_cursor(rows[-1].id, fingerprint) if len(result) > limit and rows else None
    return FileHistoryPage(rows, next_cursor)


def kind_counts(session: Session) -> dict[tuple[str, str], int]:
    """Files per (direction, kind): the totals shown above the list."""
    stmt = select(EdiFile.direction, EdiFile.kind, func.count()).group_by(EdiFile.direction, EdiFile.kind)
    return {(d.value, k.value): int(n) for d, k, n in session.execute(stmt)}


def _attach_acknowledgments(session: Session, rows: list[FileRow]) -> None:
    by_id = {r.id: r for r in rows}
    batch_ids = {r.batch_id for r in rows if r.batch_id is not None}
    batches: dict[int, tuple[str, str]] = {}
    if batch_ids:
        for batch_id, public_id, batch_state in session.execute(
            select(SubmissionBatch.id, SubmissionBatch.public_id, SubmissionBatch.state).where(
                SubmissionBatch.id.in_(batch_ids)
            )
        ):
            batches[batch_id] = (public_id, batch_state.value)
    for r in rows:
        if r.batch_id in batches:
            r.batch, r.batch_state = batches[r.batch_id]

    outbound = [r for r in rows if r.direction is FileDirection.OUTBOUND]
    if outbound:
        _ta1_of_outbound(session, outbound)
    claim_files = [r for r in outbound if r.kind in CLAIM_FILE_KINDS and r.batch_id is not None]
    if claim_files:
        _999_of_batches(session, claim_files)
        _277ca_of_batches(session, claim_files)
    inbound = [r for r in rows if r.direction is FileDirection.INBOUND]
    _answers_in_inbound(session, inbound, by_id)
    for r in rows:
        if r.status is EdiFileStatus.FAILED:
            reason = (r.error_summary or {}).get("message") or (r.error_summary or {}).get("rule") or ""
            r.acknowledgments.append(Acknowledgment("processing", "failed", str(reason)[:200]))


def _ta1_of_outbound(session: Session, outbound: list[FileRow]) -> None:
    by_id = {r.id: r for r in outbound}
    for file_id, status, note in session.execute(
        select(Interchange.edi_file_id, Interchange.ta1_status, Interchange.ta1_note_code).where(
            Interchange.edi_file_id.in_(list(by_id)), Interchange.ta1_status.is_not(None)
        )
    ):
        meaning = TA1_CODES.get(status, status) + (f" (note {note})" if note else "")
        by_id[file_id].acknowledgments.append(Acknowledgment("TA1", status, meaning))


def _999_of_batches(session: Session, claim_files: list[FileRow]) -> None:
    by_batch: dict[int, list[FileRow]] = {}
    for r in claim_files:
        by_batch.setdefault(r.batch_id or 0, []).append(r)
    for batch_id, code, answered_by in session.execute(
        select(Ack999Result.batch_id, Ack999Result.acknowledgment_code, EdiFile.public_id)
        .join(EdiFile, EdiFile.id == Ack999Result.edi_file_id)
        .where(Ack999Result.batch_id.in_(list(by_batch)), Ack999Result.transaction_set_id.is_(None))
        .order_by(Ack999Result.id)
    ):
        for r in by_batch.get(batch_id, []):
            r.acknowledgments.append(Acknowledgment("999", code, ACK999_CODES.get(code, code), answered_by))


def _277ca_of_batches(session: Session, claim_files: list[FileRow]) -> None:
    """Per batch: how many of its claims the 277CAs accepted, rejected or answered otherwise.

    A claim counts once, by its latest status (the last 277CA's word stands).
    """
    by_batch = {r.batch_id: r for r in claim_files}
    latest: dict[tuple[int, int], str] = {}
    for batch_id, claim_id, category in session.execute(
        select(BatchClaim.batch_id, ClaimStatusEvent.claim_id, ClaimStatusEvent.category_code)
        .join(ClaimStatusEvent, ClaimStatusEvent.claim_id == BatchClaim.claim_id)
        .where(BatchClaim.batch_id.in_(list(by_batch)))
        .order_by(ClaimStatusEvent.id)
    ):
        latest[(batch_id, claim_id)] = category_outcome(category)
    counts: dict[int, dict[str, int]] = {}
    for (batch_id, _), outcome in latest.items():
        counts.setdefault(batch_id, {}).setdefault(outcome, 0)
        counts[batch_id][outcome] += 1
    for batch_id, outcomes in counts.items():
        text = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        code = "rejected" if outcomes.get("rejected") else "accepted" if outcomes.get("accepted") else "other"
        by_batch[batch_id].acknowledgments.append(Acknowledgment("277CA", code, f"claims: {text}"))


def _answers_in_inbound(session: Session, inbound: list[FileRow], by_id: Mapping[int, FileRow]) -> None:
    ids = [r.id for r in inbound]
    if not ids:
        return
    for file_id, code, batch in session.execute(
        select(Ack999Result.edi_file_id, Ack999Result.acknowledgment_code, SubmissionBatch.public_id)
        .outerjoin(SubmissionBatch, SubmissionBatch.id == Ack999Result.batch_id)
        .where(Ack999Result.edi_file_id.in_(ids), Ack999Result.transaction_set_id.is_(None))
        .order_by(Ack999Result.id)
    ):
        by_id[file_id].acknowledgments.append(
            Acknowledgment("999", code, ACK999_CODES.get(code, code), batch=batch)
        )
    outcomes: dict[int, dict[str, int]] = {}
    for file_id, category, n in session.execute(
        select(ClaimStatusEvent.edi_file_id, ClaimStatusEvent.category_code, func.count())
        .where(ClaimStatusEvent.edi_file_id.in_(ids))
        .group_by(ClaimStatusEvent.edi_file_id, ClaimStatusEvent.category_code)
    ):
        slot = outcomes.setdefault(file_id, {})
        slot[category_outcome(category)] = slot.get(category_outcome(category), 0) + int(n)
    for file_id, counts in outcomes.items():
        text = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        code = "rejected" if counts.get("rejected") else "accepted" if counts.get("accepted") else "other"
        by_id[file_id].acknowledgments.append(Acknowledgment("277CA", code, f"statuses: {text}"))
    for file_id, remittance, trace, remittance_state in session.execute(
        select(Remittance.edi_file_id, Remittance.public_id, Remittance.trace_number, Remittance.state)
        .where(Remittance.edi_file_id.in_(ids))
        .order_by(Remittance.id)
    ):
        by_id[file_id].acknowledgments.append(
            Acknowledgment("835", remittance_state.value, f"payment trace {trace}", file=remittance)
        )


@dataclass(frozen=True)
class RawFile:
    public_id: str
    name: str
    content: bytes
    patients: int  # how many patients' data the file carries (each audited)


def patients_in_file(session: Session, edi_file: EdiFile) -> list[tuple[int, str]]:
    """(id, public id) of the patients whose data the file carries, as far as our rows tell.

    An 837 carries its batch's claims, an 835 the claims it paid, a 277CA the claims it
    answered, a 270/271 the patients of its eligibility checks; a 999 or TA1 carries
    control numbers only.
    """
    claim_ids: Select[Any] | None = None
    if edi_file.batch_id is not None:
        claim_ids = select(BatchClaim.claim_id).where(BatchClaim.batch_id == edi_file.batch_id)
    elif edi_file.kind is EdiFileKind.REMITTANCE_835:
        claim_ids = (
            select(ClaimPayment.claim_id)
            .join(Remittance, Remittance.id == ClaimPayment.remittance_id)
            .where(Remittance.edi_file_id == edi_file.id)
        )
    elif edi_file.kind is EdiFileKind.CLAIM_ACK_277CA:
        claim_ids = select(ClaimStatusEvent.claim_id).where(ClaimStatusEvent.edi_file_id == edi_file.id)
    if claim_ids is not None:
        stmt = (
            select(Patient.id, Patient.public_id)
            .join(Claim, Claim.patient_id == Patient.id)
            .where(Claim.id.in_(claim_ids))
        )
    elif edi_file.kind in (EdiFileKind.ELIGIBILITY_270, EdiFileKind.ELIGIBILITY_271):
        stmt = (
            select(Patient.id, Patient.public_id)
            .join(Coverage, Coverage.patient_id == Patient.id)
            .join(EligibilityCheck, EligibilityCheck.coverage_id == Coverage.id)
            .where(
                or_(
                    EligibilityCheck.request_file_id == edi_file.id,
                    EligibilityCheck.response_file_id == edi_file.id,
                )
            )
        )
    else:
        return []
    return sorted({(patient_id, public_id) for patient_id, public_id in session.execute(stmt.distinct())})


def read_raw_file(session: Session, public_id: str) -> RawFile:
    """The file's bytes, decrypted, with the download audited (the caller commits).

    One READ event names the file; one more per patient whose data it carries names that
    patient (HIPAA 164.312(b), and 164.528's accounting of what was disclosed about whom).
    The download name is built from the public id and kind, never from the sender's name.
    """
    row = session.scalar(select(EdiFile).where(EdiFile.public_id == public_id))
    if row is None or row.content is None:
        raise NotFound("no stored file with that id")
    patients = patients_in_file(session, row)
    details = {"kind": row.kind.value, "direction": row.direction.value, "bytes": row.size_bytes}
    audit(
        session,
        action=AuditAction.READ,
        event_type="edi_file.download",
        entity_type="edi_file",
        entity_id=row.public_id,
        details={**details, "patients": len(patients)},
    )
    audit_events_bulk(
        session,
        (
            {
                "action": AuditAction.READ,
                "event_type": "edi_file.download",
                "entity_type": "patient",
                "entity_id": patient_public_id,
                "patient_id": patient_id,
                "details": {"edi_file": row.public_id},
            }
            for patient_id, patient_public_id in patients
        ),
    )
    name = f"{row.direction.value}-{row.kind.value}-{row.public_id}.x12"
    return RawFile(row.public_id, name, bytes(row.content), len(patients))
