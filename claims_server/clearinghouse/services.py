"""Sending batches to the clearinghouse and processing what comes back.

Sending (``send_batch``) runs in three short transactions around the upload, so no
database lock is held while bytes travel and a crash anywhere leaves a state that a
retry finishes correctly:

1. claim the batch: ``built | sending | failed → sending``, count the attempt;
2. upload each interchange (skipped when the final file is already there with the
   same bytes: a previous attempt uploaded it but died before step 3), confirmed by
   reading it back;
3. only then: the outbound ``EdiFile`` becomes ``processed`` (uploaded), the batch
   ``sent`` and each claim ``batched → submitted``.

A failed upload records ``failed`` with the transport's message and raises
:class:`TransportError` for the Celery task to retry with backoff; nothing is marked
sent. The upload's remote name is derived from ISA13, so a retry replaces its own
file instead of adding a second interchange with the same number.

Receiving (``receive_file``) stores the bytes with their SHA-256 first (the unique
(direction, sha256) makes a second copy a no-op), then dispatches by transaction:
999 → per-ST accept/reject of the batch's claims; TA1 → interchange status; 277CA →
per-claim acknowledged/rejected with the STC codes explained and a work item per
rejection; 835 → posted to the ledger (``claims_server.remittance.posting``).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from claims_server.api_common.audit import audit
from claims_server.claims import state
from claims_server.clearinghouse.status_codes import explain, recommended_action
from claims_server.clearinghouse.transport import Transport, TransportError, transport_for
from claims_server.cli_edi import transaction_kind
from claims_server.db import unit_of_work
from claims_server.errors import ApiError, NotFound
from claims_server.ledger.services import claim_charge, ensure_claims_receivable, post_charge_corrections
from claims_server.models import (
    Ack999Result,
    AuditAction,
    BatchClaim,
    Claim,
    ClaimState,
    ClaimStatusEvent,
    ClearinghouseRoute,
    EdiFile,
    EdiFileKind,
    EdiFileStatus,
    FileDirection,
    Interchange,
    SubmissionBatch,
    WorkItem,
)
from claims_server.models.common import utcnow
from claims_server.models.submissions import BatchState
from claims_server.models.workqueue import WorkQueue
from edi.ack import acknowledge
from edi.charset import character_findings, to_x12_text
from edi.envelope import InterchangeEnvelope, first_transaction
from edi.findings import Finding
from edi.reader import X12SyntaxError, read_segments
from edi.ta1 import parse_ta1
from edi.validate import validate
from edi.x277ca import parse_277ca
from edi.x999 import TRANSACTION_ERROR_CODES, parse_999

log = logging.getLogger(__name__)

#: Batch states from which a send may (re)start.
SENDABLE = frozenset({BatchState.BUILT, BatchState.SENDING, BatchState.FAILED})

TransportFactory = Callable[[ClearinghouseRoute], Transport]


# -- sending ------------------------------------------------------------------------------------


@dataclass
class SendResult:
    batch_id: int
    state: str
    uploaded: list[str] = field(default_factory=list)  # file names confirmed on the far side
    already_sent: bool = False


def route_transport(route: ClearinghouseRoute, base_dir: str | os.PathLike[str]) -> Transport:
    """The adapter for ``route`` (folder paths relative to ``base_dir``, the instance folder)."""
    return transport_for(
        route.transport.value, route.settings or {}, base_dir=base_dir, route_name=route.name
    )


def _claim_batch(session: Session, batch_id: int) -> SubmissionBatch:
    stmt = select(SubmissionBatch).where(SubmissionBatch.id == batch_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    batch = session.scalar(stmt)
    if batch is None:
        raise NotFound(f"no submission batch with id {batch_id}")
    return batch


def _outbound_files(session: Session, batch_id: int) -> list[EdiFile]:
    return list(
        session.scalars(
            select(EdiFile)
            .where(EdiFile.batch_id == batch_id, EdiFile.direction == FileDirection.OUTBOUND)
            .order_by(EdiFile.id)
        )
    )


def send_batch(
    factory: sessionmaker[Session], batch_id: int, *, transport_factory: TransportFactory
) -> SendResult:
    """Upload a built batch and mark it sent once every file is confirmed (see module doc)."""
    with unit_of_work(factory) as session:
        batch = _claim_batch(session, batch_id)
        if batch.state not in SENDABLE:
            return SendResult(batch_id, batch.state.value, already_sent=True)
        batch.state = BatchState.SENDING
        batch.attempt_count = (batch.attempt_count or 0) + 1
        route = batch.route
        files = [(f.stored_name, bytes(f.content or b"")) for f in _outbound_files(session, batch_id)]
        session.expunge(route)
    uploaded: list[str] = []
    try:
        transport = transport_factory(route)
        try:
            for name, content in files:
                receipt = transport.uploaded(name, content) or transport.upload(name, content)
                uploaded.append(receipt.name)
        finally:
            transport.close()
    except TransportError as exc:
        record_upload_failure(factory, batch_id, str(exc))
        raise
    with unit_of_work(factory) as session:
        batch = _claim_batch(session, batch_id)
        if batch.state in SENDABLE:
            mark_sent(session, batch, evidence="upload confirmed")
        return SendResult(batch_id, batch.state.value, uploaded)


def record_upload_failure(factory: sessionmaker[Session], batch_id: int, message: str) -> None:
    """A sendable batch becomes ``failed`` with ``message`` (no PHI: a transport's words or an
    error's class), for ``resume_unsent_batches``; audited."""
    with unit_of_work(factory) as session:
        batch = _claim_batch(session, batch_id)
        if batch.state in SENDABLE:
            batch.state = BatchState.FAILED
            batch.last_error = message[:1000]
            audit(
                session,
                action=AuditAction.UPDATE,
                event_type="submission_batch.upload_failed",
                entity_type="submission_batch",
                entity_id=batch.public_id,
                details={"attempt": batch.attempt_count},
            )


def mark_sent(session: Session, batch: SubmissionBatch, *, evidence: str) -> None:
    """The batch's files are at the clearinghouse: batch ``sent``, claims ``submitted``."""
    now = utcnow()
    for edi_file in _outbound_files(session, batch.id):
        edi_file.status = EdiFileStatus.PROCESSED
        edi_file.processed_at = now
    batch.state = BatchState.SENT
    batch.sent_at = now
    batch.last_error = None
    details = {"batch": batch.public_id}
    claims = session.scalars(
        select(Claim)
        .join(BatchClaim, BatchClaim.claim_id == Claim.id)
        .where(BatchClaim.batch_id == batch.id)
        .options(selectinload(Claim.service_lines), selectinload(Claim.coverage))
    ).all()
    for claim in claims:
        if claim.state == ClaimState.BATCHED:
            state.mark_submitted(session, claim, reason=evidence, details=details)
            claim.submitted_at = now
    # A billed claim is a receivable from the day it leaves (ARCHITECTURE.md: "charge on a
    # claim line"), so A/R aging shows it before any 835. Replacement and next-payer
    # claims carry their original's receivable; the charge key makes this exactly once.
    # A replacement, a void or a claim corrected in place and sent again restates the
    # receivable already on the books (``post_charge_corrections``, before the first-time
    # charges so that it sees only what was charged before this send).
    corrected = post_charge_corrections(session, claims, effective_date=now.date())
    originals = [c for c in claims if c.original_claim_id is None]
    charged = ensure_claims_receivable(session, [claim_charge(c, latest=now.date()) for c in originals])
    if charged or corrected:
        audit(
            session,
            action=AuditAction.CREATE,
            event_type="ledger.charges",
            entity_type="submission_batch",
            entity_id=batch.public_id,
            details={
                "charge_entries": charged,
                "charge_correction_entries": corrected,
                "claims": [c.public_id for c in originals],
            },
        )
    audit(
        session,
        action=AuditAction.UPDATE,
        event_type="submission_batch.sent",
        entity_type="submission_batch",
        entity_id=batch.public_id,
        details={"evidence": evidence, "attempts": batch.attempt_count},
    )


# -- receiving ----------------------------------------------------------------------------------


@dataclass
class InboundOutcome:
    """What became of one received file."""

    edi_file_id: int
    kind: str
    status: str
    duplicate: bool = False
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "status": self.status, "duplicate": self.duplicate, **self.summary}


_KIND_BY_TRANSACTION = {
    "999": EdiFileKind.ACK_999,
    "TA1": EdiFileKind.TA1,
    "277CA": EdiFileKind.CLAIM_ACK_277CA,
    "835": EdiFileKind.REMITTANCE_835,
}


_PROCESSING_ORDER = {
    EdiFileKind.TA1: 0,
    EdiFileKind.ACK_999: 1,
    EdiFileKind.CLAIM_ACK_277CA: 2,
    EdiFileKind.REMITTANCE_835: 3,
}


def sniff(content: bytes) -> tuple[EdiFileKind, str | None, str | None]:
    """(kind, ISA06 sender, ISA13) from the file's first ISA and first ST (or TA1)."""
    try:
        head = first_transaction(content)
    except X12SyntaxError:
        head = None
    isa = head.interchange if head is not None else None
    if isa is None or isa.ordinal != 1:  # cut short, or no ST/TA1 in the first interchange
        isa = _first_isa(content)
    # As X12 text: a NUL or an "\xff" in the ISA cannot go into a text column (PostgreSQL
    # refuses NUL); the validator reports those characters, the row keeps what is readable.
    sender, isa13 = (
        (to_x12_text(isa.sender_id)[:15], to_x12_text(isa.control_number).strip()[:9])
        if isa
        else (None, None)
    )
    if head is None:
        return EdiFileKind.OTHER, sender, isa13
    if head.st01 == "837":
        kind = EdiFileKind.CLAIM_837I if "X223" in head.gs08 else EdiFileKind.CLAIM_837P
        return kind, sender, isa13
    if head.st01 in ("270", "271"):
        return EdiFileKind(head.st01), sender, isa13
    found = transaction_kind(head.st01, head.gs08, head.has_ta1)
    return _KIND_BY_TRANSACTION.get(found or "", EdiFileKind.OTHER), sender, isa13


def _first_isa(content: bytes) -> InterchangeEnvelope | None:
    """The file's first segment, its ISA, even when what follows it is not readable."""
    try:
        first = next(read_segments(content), None)
    except X12SyntaxError:
        return None
    return InterchangeEnvelope.from_isa(first) if first is not None else None


def store_inbound(
    session: Session, content: bytes, *, route_id: int | None, stored_name: str | None = None
) -> tuple[EdiFile, bool]:
    """Store an inbound file by SHA-256; (the row, True) when these bytes were stored before."""
    digest = hashlib.sha256(content).hexdigest()
    existing = session.scalar(
        select(EdiFile).where(EdiFile.direction == FileDirection.INBOUND, EdiFile.sha256 == digest)
    )
    if existing is not None:
        return existing, True
    kind, sender, isa13 = sniff(content)
    row = EdiFile(
        direction=FileDirection.INBOUND,
        kind=kind,
        sha256=digest,
        size_bytes=len(content),
        stored_name=stored_name or f"in-{digest[:16]}.x12",
        status=EdiFileStatus.RECEIVED,
        sender_id=sender,
        interchange_control_number=isa13,
        route_id=route_id,
        content=content,
    )
    session.add(row)
    session.flush()
    return row, False


def receive_file(factory: sessionmaker[Session], content: bytes, *, route_id: int | None) -> InboundOutcome:
    """Store ``content`` (committed first: nothing is lost) and process it in its own transaction."""
    try:
        with unit_of_work(factory) as session:
            row, duplicate = store_inbound(session, content, route_id=route_id)
            file_id, kind, status = row.id, row.kind, row.status
    except IntegrityError:
        # Another poller stored the same bytes at the same moment: it processes them.
        with unit_of_work(factory) as session:
            row, duplicate = store_inbound(session, content, route_id=route_id)
            return InboundOutcome(row.id, row.kind.value, row.status.value, duplicate=True)
    if duplicate:
        return InboundOutcome(file_id, kind.value, status.value, duplicate=True)
    findings = character_findings(content)
    if findings:
        with unit_of_work(factory) as session:
            summary = reject_characters(session, session.get(EdiFile, file_id), content, findings)
        return InboundOutcome(file_id, kind.value, EdiFileStatus.FAILED.value, summary=summary)
    try:
        with unit_of_work(factory) as session:
            row = session.get(EdiFile, file_id)
            summary = process_file(session, row)
            return InboundOutcome(file_id, kind.value, row.status.value, summary=summary)
    except Exception as exc:
        # Keep the file and say why it could not be processed; never a half-applied change.
        log.warning(
            "inbound file processing failed", extra={"edi_file_id": file_id, "error": type(exc).__name__}
        )
        with unit_of_work(factory) as session:
            row = session.get(EdiFile, file_id)
            row.status = EdiFileStatus.FAILED
            row.processed_at = utcnow()
            row.error_summary = _failure_summary(exc)
        return InboundOutcome(file_id, kind.value, EdiFileStatus.FAILED.value, summary=_failure_summary(exc))


def store_ack(
    session: Session,
    inbound: EdiFile,
    ack: Any,
    *,
    stored_name: str,
    status: EdiFileStatus,
    processed_at: datetime | None = None,
) -> EdiFile:
    """Keep our 999/TA1 answer (``edi.ack.acknowledge``'s result) to ``inbound`` as an outbound file.

    Its interchange control number is derived from the inbound file's id, as the answer's ISA13 is.
    """
    body = ack.text.encode("ascii")
    row = EdiFile(
        direction=FileDirection.OUTBOUND,
        kind=EdiFileKind.ACK_999 if ack.kind == "999" else EdiFileKind.TA1,
        sha256=hashlib.sha256(body).hexdigest(),
        size_bytes=len(body),
        stored_name=stored_name,
        status=status,
        interchange_control_number=f"{inbound.id % 999_999_999 or 1:09d}",
        route_id=inbound.route_id,
        processed_at=processed_at,
        content=body,
    )
    session.add(row)
    return row


def reject_characters(
    session: Session, row: EdiFile, content: bytes, findings: list[Finding]
) -> dict[str, Any]:
    """Refuse a received file holding characters outside the X12 sets (issue 15).

    Nothing of it is processed: the file ends ``failed`` with the findings (file,
    segment, element; never the value), and our answer that rejects it (a TA1 when the
    ISA holds one, else a 999 with IK4 code 6) is stored as an outbound file
    ``ack-<file id>.x12`` beside it for the operator to return to the sender.
    """
    errors = [{k: v for k, v in f.to_json_dict().items() if k != "value"} for f in findings]
    summary: dict[str, Any] = {
        "error": "InvalidCharacters",
        "rule": "x12_character_set",
        "message": f"{len(findings)} element(s) hold characters outside the X12 basic and extended "
        "character sets; the file was not processed",
        "errors": errors[:20],
    }
    try:
        ack = acknowledge(validate(content, file=row.stored_name), control_number=row.id % 999_999_999 or 1)
    except LookupError:
        ack = None
    if ack is not None:
        # Outbound and RECEIVED: stored for the operator, not sent.
        store_ack(session, row, ack, stored_name=f"ack-{row.public_id}.x12", status=EdiFileStatus.RECEIVED)
        summary["acknowledgment"] = ack.kind
    row.status = EdiFileStatus.FAILED
    row.processed_at = utcnow()
    row.error_summary = summary
    session.flush()
    return summary


def _failure_summary(exc: Exception) -> dict[str, Any]:
    """Why a received file failed: a service's structured reason (rule, findings naming
    segment and element), or only the exception's type: a driver's message can quote
    the statement's parameters, which may be PHI."""
    if isinstance(exc, ApiError):
        summary: dict[str, Any] = {"error": type(exc).__name__, "message": exc.detail[:500]}
        if exc.extra.get("rule"):
            summary["rule"] = exc.extra["rule"]
        if exc.errors:
            summary["errors"] = exc.errors[:20]
        return summary
    return {"error": type(exc).__name__, "message": "the file could not be processed"}


def process_file(session: Session, edi_file: EdiFile) -> dict[str, Any]:
    """Dispatch a stored inbound file by its kind; sets its status. Returns a summary (no PHI)."""
    from claims_server.eligibility.services import process_271

    content = bytes(edi_file.content or b"")
    handlers = {
        EdiFileKind.ACK_999: process_999,
        EdiFileKind.TA1: process_ta1,
        EdiFileKind.CLAIM_ACK_277CA: process_277ca,
        # Batch eligibility answers: each response goes to the check whose trace it echoes.
        EdiFileKind.ELIGIBILITY_271: process_271,
    }
    handler = handlers.get(edi_file.kind)
    if handler is not None:
        summary = handler(session, edi_file, content)
        edi_file.status = EdiFileStatus.PROCESSED
    elif edi_file.kind is EdiFileKind.REMITTANCE_835:
        # remit-posting: posted to the ledger in this transaction, exactly once (a duplicate
        # payment posts nothing). A posting error (unreadable, a completeness check) raises:
        # receive_file rolls everything back and records the file as failed with the reason.
        from claims_server.remittance.posting import post_remittance

        summary = post_remittance(session, edi_file.id).summary()
    else:
        summary = {"note": f"no processing for {edi_file.kind.value} files"}
        edi_file.status = EdiFileStatus.FAILED
        edi_file.error_summary = {"error": "unsupported", "message": summary["note"]}
    edi_file.processed_at = utcnow()
    return summary


def _claims_of_transaction(
    session: Session, route_id: int | None, group_control: str, st02: str
) -> tuple[SubmissionBatch | None, list[Claim]]:
    """The batch and claims our transaction set ST02 (in group GS06) carried on ``route_id``."""
    stmt = (
        select(BatchClaim)
        .join(SubmissionBatch, SubmissionBatch.id == BatchClaim.batch_id)
        .where(BatchClaim.transaction_control_number == st02)
    )
    if route_id is not None:
        stmt = stmt.where(SubmissionBatch.route_id == route_id)
    rows = list(session.scalars(stmt))
    wanted = int(group_control) if group_control.isdigit() else None
    for batch_id in dict.fromkeys(r.batch_id for r in rows):
        interchange = session.scalar(select(Interchange).where(Interchange.batch_id == batch_id))
        if interchange is not None and wanted in (interchange.group_control_numbers or []):
            claims = [r.claim for r in rows if r.batch_id == batch_id]
            return session.get(SubmissionBatch, batch_id), claims
    return None, []


def _ensure_sent(session: Session, batch: SubmissionBatch, evidence: str) -> None:
    """An answer about a batch proves its upload, even if the sender died before recording it."""
    if batch.state in SENDABLE:
        mark_sent(session, batch, evidence=evidence)


def _open_rejection(
    session: Session, claim: Claim, *, source: str, edi_file: EdiFile, codes: list[str], action: str
) -> None:
    key = f"rejected:{source}:{claim.id}:{edi_file.id}"
    if session.scalar(select(WorkItem.id).where(WorkItem.dedupe_key == key)) is not None:
        return
    session.add(
        WorkItem(
            queue=WorkQueue.REJECTED,
            dedupe_key=key,
            claim_id=claim.id,
            reason_codes=codes,
            recommended_action=action,
            priority=2,
        )
    )


def process_999(session: Session, edi_file: EdiFile, content: bytes) -> dict[str, Any]:
    """Per acknowledged ST: IK5 A/E accept the claims it carried, R rejects them (work items)."""
    doc = parse_999(content, file=edi_file.stored_name)
    accepted = rejected = unmatched = 0
    position = 0
    for ack in doc.acks:
        batch: SubmissionBatch | None = None
        for ts in ack.transaction_sets:
            position += 1
            batch, claims = _claims_of_transaction(
                session, edi_file.route_id, ack.group_control_number, ts.control_number
            )
            errors = [
                {
                    "segment": e.segment_id,
                    "position": e.position,
                    "loop": e.loop,
                    "code": e.code,
                    "description": e.description,
                    "elements": [
                        {"ref": x.reference_number, "code": x.code, "description": x.description}
                        for x in e.element_errors
                    ],
                }
                for e in ts.segment_errors
            ]
            session.add(
                Ack999Result(
                    edi_file_id=edi_file.id,
                    batch_id=batch.id if batch else None,
                    functional_id_code=ack.functional_id[:2] or "HC",
                    group_control_number=ack.group_control_number[:9],
                    transaction_set_id=ts.st01[:3],
                    transaction_control_number=ts.control_number[:9],
                    acknowledgment_code=ts.status if ts.status in "AEMRWX" and ts.status else "R",
                    errors=errors,
                    position=position,
                )
            )
            if batch is None:
                unmatched += 1
                continue
            _ensure_sent(session, batch, "999 received")
            details = {"batch": batch.public_id, "st02": ts.control_number, "ik5": ts.status}
            reasons = [f"IK5:{ts.status}"] + [f"IK502:{c}" for c in ts.syntax_errors]
            reasons += [f"IK3:{e.segment_id}:{e.code}" for e in ts.segment_errors][:10]
            for claim in claims:
                if ts.accepted:
                    if (
                        state.can_transition(claim.state, ClaimState.ACCEPTED)
                        and claim.state == ClaimState.SUBMITTED
                    ):
                        state.mark_accepted(session, claim, details=details)
                        accepted += 1
                elif state.can_transition(claim.state, ClaimState.REJECTED):
                    state.mark_rejected(
                        session, claim, reason="999 rejected the transaction set", details=details
                    )
                    why = (
                        "; ".join(TRANSACTION_ERROR_CODES.get(c, c) for c in ts.syntax_errors)
                        or "segment errors"
                    )
                    _open_rejection(
                        session,
                        claim,
                        source="999",
                        edi_file=edi_file,
                        codes=reasons,
                        action=f"The clearinghouse rejected the 837 transaction set ({why}). Correct the "
                        "segments the 999 names, then mark the claim ready to send it again.",
                    )
                    rejected += 1
        if batch is not None:
            batch.state = {
                "A": BatchState.ACCEPTED,
                "E": BatchState.ACCEPTED,
                "P": BatchState.PARTIALLY_ACCEPTED,
                "R": BatchState.REJECTED,
            }.get(ack.group_status, batch.state)
        session.add(
            Ack999Result(
                edi_file_id=edi_file.id,
                batch_id=batch.id if batch else None,
                functional_id_code=ack.functional_id[:2] or "HC",
                group_control_number=ack.group_control_number[:9],
                acknowledgment_code=ack.group_status if ack.group_status in ("A", "E", "P", "R") else "R",
                errors=[{"code": c} for c in ack.group_syntax_errors],
                position=position + 1,
            )
        )
    if not doc.readable or not doc.acks:
        raise ValueError("the file holds no readable 999")
    return {"claims_accepted": accepted, "claims_rejected": rejected, "unmatched_transaction_sets": unmatched}


def process_ta1(session: Session, edi_file: EdiFile, content: bytes) -> dict[str, Any]:
    """TA1: the interchange's envelope verdict; a rejected interchange rejects its claims."""
    doc = parse_ta1(content, file=edi_file.stored_name)
    matched = rejected = 0
    for ack in doc.acks:
        if not ack.control_number.isdigit():
            continue
        stmt = select(Interchange).where(Interchange.isa13 == int(ack.control_number))
        if edi_file.route_id is not None:
            stmt = stmt.where(Interchange.route_id == edi_file.route_id)
        interchange = session.scalar(stmt)
        if interchange is None:
            continue
        matched += 1
        interchange.ta1_status = ack.status[:1]
        interchange.ta1_note_code = ack.note_code[:3]
        interchange.acknowledged_at = utcnow()
        batch = interchange.batch
        if batch is None:
            continue
        _ensure_sent(session, batch, "TA1 received")
        if ack.accepted:
            continue
        batch.state = BatchState.REJECTED
        claims = [bc.claim for bc in batch.claims]
        for claim in claims:
            if state.can_transition(claim.state, ClaimState.REJECTED):
                state.mark_rejected(
                    session, claim, reason="TA1 rejected the interchange", details={"ta1_note": ack.note_code}
                )
                _open_rejection(
                    session,
                    claim,
                    source="ta1",
                    edi_file=edi_file,
                    codes=[f"TA1:{ack.status}:{ack.note_code}"],
                    action=f"The clearinghouse refused the whole interchange ({ack.note}). Fix the envelope "
                    "problem (route settings or control numbers), then send the claim again.",
                )
                rejected += 1
    if not doc.acks:
        raise ValueError("the file holds no readable TA1")
    return {"interchanges_matched": matched, "claims_rejected": rejected}


def process_277ca(session: Session, edi_file: EdiFile, content: bytes) -> dict[str, Any]:
    """277CA: one ClaimStatusEvent per status; acknowledged or rejected (with a work item) per claim."""
    doc = parse_277ca(content, file=edi_file.stored_name)
    if not doc.readable or not doc.transactions:
        raise ValueError("the file holds no readable 277CA")
    acknowledged = rejected = unmatched = 0
    for tx in doc.transactions:
        for status in tx.claims:
            claim = session.scalar(
                select(Claim).where(Claim.patient_control_number == status.patient_control_number)
            )
            composites: list[tuple[str, str, str]] = []
            for stc in status.statuses:
                for code in stc.codes:
                    composites.append((code.category, code.code, code.entity))
                    session.add(
                        ClaimStatusEvent(
                            claim_id=claim.id if claim else None,
                            edi_file_id=edi_file.id,
                            patient_control_number=status.patient_control_number[:50],
                            payer_claim_control_number=status.payer_claim_control_number[:50] or None,
                            category_code=code.category[:3],
                            status_code=code.code[:5],
                            entity_code=code.entity[:3] or None,
                            free_text=explain(code.category, code.code, code.entity),
                            effective_date=stc.effective_date,
                            action_code=stc.action_code[:2] or None,
                            charge_cents=stc.charge_cents,
                        )
                    )
            if claim is None:
                unmatched += 1
                continue
            details = {
                "edi_file": edi_file.public_id,
                "stc": [":".join(filter(None, c)) for c in composites][:6],
            }
            if status.rejected:
                if state.can_transition(claim.state, ClaimState.REJECTED):
                    state.mark_rejected(session, claim, reason="277CA rejected the claim", details=details)
                    _open_rejection(
                        session,
                        claim,
                        source="277ca",
                        edi_file=edi_file,
                        codes=[":".join(filter(None, c)) for c in composites],
                        action=recommended_action(composites),
                    )
                    rejected += 1
            elif status.accepted:
                if status.payer_claim_control_number:
                    claim.payer_claim_control_number = status.payer_claim_control_number[:50]
                if state.can_transition(claim.state, ClaimState.ACKNOWLEDGED):
                    state.mark_acknowledged(session, claim, details=details)
                    acknowledged += 1
    return {"claims_acknowledged": acknowledged, "claims_rejected": rejected, "unmatched_claims": unmatched}


# -- polling --------------------------------------------------------------------------------------


@dataclass
class PollResult:
    route_id: int
    files: list[InboundOutcome] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {"route_id": self.route_id, "files": [f.to_json_dict() for f in self.files]}


def poll_inbox(
    factory: sessionmaker[Session], route_id: int, *, transport_factory: TransportFactory
) -> PollResult:
    """Fetch every complete inbox file of the route, store and process it, then remove it there.

    A file is removed only after it is stored; if removal fails it is fetched again next
    time and recognized by its SHA-256 as already received.
    """
    with unit_of_work(factory) as session:
        route = session.get(ClearinghouseRoute, route_id)
        if route is None:
            raise NotFound(f"no clearinghouse route with id {route_id}")
        session.expunge(route)
    result = PollResult(route_id)
    transport = transport_factory(route)
    try:
        fetched = [(name, transport.fetch(name)) for name in transport.list_inbox()]
        # Envelope answers first, then claim answers: a 999 (or TA1) about a batch is
        # applied before the 277CA about its claims, whatever the files are called.
        fetched.sort(key=lambda item: (_PROCESSING_ORDER.get(sniff(item[1])[0], 9), item[0]))
        for name, content in fetched:
            result.files.append(receive_file(factory, content, route_id=route_id))
            transport.remove(name)
    finally:
        transport.close()
    return result


def batches_to_resume(session: Session, *, older_than: datetime) -> list[int]:
    """Batches built or stuck sending/failed since before ``older_than`` (their task was lost)."""
    return list(
        session.scalars(
            select(SubmissionBatch.id)
            .where(SubmissionBatch.state.in_(list(SENDABLE)), SubmissionBatch.updated_at < older_than)
            .order_by(SubmissionBatch.id)
        )
    )
