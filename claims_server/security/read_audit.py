"""Audited reads of PHI: one READ audit event per request per PHI-bearing entity it served.

HIPAA 164.312(b): every read of PHI leaves an audit record. Instead of a call in each
view, an ORM ``load`` listener notes every PHI-bearing entity (``PHI_ENTITIES``) the
database hands to the request, and an ``after_request`` hook appends one READ event per
entity, naming the entity by its public id and the patient it belongs to, when the
request is a read (GET, or a search in ``READ_POST_ENDPOINTS``) and the answer a success (a refused or failed request served nothing; a denial is audited by
the policy hook). Child rows are reported as their parent (a diagnosis or a service line
or a claim note as its claim, a comment as its work item, a journal note as its journal
entry); an entity the request already audited (an explicit ``patient.read``, a ``patients.update`` ...) is
not recorded twice. Writes
(POST, PUT, PATCH, DELETE) are audited as the change they make (``claim.ready``,
``patients.update``, the posting of an 835 ...), not as a read of every row they load.

A new model holding PHI gets a line in ``PHI_ENTITIES``; ``tests/integration/security/
test_read_audit.py`` fails if a model with an encrypted PHI column has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from sqlalchemy import event, select
from sqlalchemy.orm import QueryContext, Session

from claims_server.db import Base
from claims_server.models import (
    Appeal,
    Claim,
    ClaimDiagnosis,
    ClaimNote,
    ClaimPayment,
    Coverage,
    EdiFile,
    EligibilityCheck,
    Encounter,
    JournalEntry,
    JournalNote,
    Patient,
    PatientPayment,
    PaymentPlan,
    ServiceLine,
    Statement,
    StatementHold,
    StatementLine,
    StatementPrintBatch,
    WorkItem,
    WorkItemComment,
)
from claims_server.models.security import AuditAction, AuditEvent
from claims_server.models.workqueue import ApprovalRequest, Note, SavedFilter

#: POST endpoints that only read (searches: the criteria are PHI, so they travel in the body).
READ_POST_ENDPOINTS = frozenset({"patients.search_patients"})
_READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class ReadSpec:
    """How a loaded row is reported.

    ``entity_type``: the audited entity; ``own_id``: the row has the entity's public id
    itself, else ``via`` names the parent (``claims``, ``work_items``, ``statements``,
    ``coverages``) through the foreign key ``parent_key``; ``patient_key``: the row's
    patient column, or None when the patient comes from a claim (``claim_key``) or a
    coverage (``coverage_key``).
    """

    entity_type: str
    own_id: bool = True
    via: str | None = None
    parent_key: str | None = None
    patient_key: str | None = None
    claim_key: str | None = None
    coverage_key: str | None = None


PHI_ENTITIES: dict[type[Any], ReadSpec] = {
    Patient: ReadSpec("patient", patient_key="id"),
    Coverage: ReadSpec("coverage", patient_key="patient_id"),
    Encounter: ReadSpec("encounter", patient_key="patient_id"),
    Claim: ReadSpec("claim", patient_key="patient_id"),
    ClaimDiagnosis: ReadSpec("claim", own_id=False, via="claims", parent_key="claim_id"),
    ServiceLine: ReadSpec("claim", own_id=False, via="claims", parent_key="claim_id"),
    ClaimPayment: ReadSpec("claim", own_id=False, via="claims", parent_key="claim_id"),
    ClaimNote: ReadSpec("claim", own_id=False, via="claims", parent_key="claim_id"),
    WorkItem: ReadSpec("work_item", claim_key="claim_id"),
    WorkItemComment: ReadSpec("work_item", own_id=False, via="work_items", parent_key="work_item_id"),
    Appeal: ReadSpec("appeal", claim_key="claim_id"),
    Statement: ReadSpec("statement", patient_key="patient_id"),
    StatementLine: ReadSpec("statement", own_id=False, via="statements", parent_key="statement_id"),
    PatientPayment: ReadSpec("patient_payment", patient_key="patient_id"),
    PaymentPlan: ReadSpec("payment_plan", patient_key="patient_id"),
    StatementHold: ReadSpec("statement_hold", patient_key="patient_id"),
    EligibilityCheck: ReadSpec("eligibility_check", coverage_key="coverage_id"),
    EdiFile: ReadSpec("edi_file"),
    # A user's saved queue filter: a name they typed (no patient column; the reader is its owner).
    SavedFilter: ReadSpec("saved_filter"),
    # A follow-up note (claims_server.workqueue.notes): every note carries its patient.
    Note: ReadSpec("note", patient_key="patient_id"),
    # A mail-house batch spans many patients: reported as the batch (the download names it too).
    StatementPrintBatch: ReadSpec("statement_print_batch"),
    # An over-limit write-off or refund waiting for a supervisor: the notes can name the patient.
    ApprovalRequest: ReadSpec("approval_request", patient_key="patient_id"),
    # A write-off's note is reported as its journal entry (the write-off), patient from the claim.
    JournalNote: ReadSpec(
        "journal_entry", own_id=False, via="journal_entries", parent_key="journal_entry_id"
    ),
}


@dataclass(slots=True)
class _Read:
    entity_type: str
    public_id: str | None
    patient_id: int | None
    claim_id: int | None
    via: str | None
    parent_id: int | None
    coverage_id: int | None = None


def _reads() -> dict[tuple[Any, ...], _Read]:
    reads = g.get("_phi_reads")
    if reads is None:
        reads = g._phi_reads = {}
    return reads


@event.listens_for(Base, "load", propagate=True)
def _note_phi_load(target: Any, context: QueryContext) -> None:
    spec = PHI_ENTITIES.get(type(target))
    if spec is None or not has_request_context():
        return
    if request.method not in _READ_METHODS and request.endpoint not in READ_POST_ENDPOINTS:
        return
    values = target.__dict__
    if spec.own_id:
        public_id = values.get("public_id")
        if public_id is None:
            return
        key: tuple[Any, ...] = (spec.entity_type, public_id)
        read = _Read(
            spec.entity_type,
            public_id,
            values.get(spec.patient_key) if spec.patient_key else None,
            values.get(spec.claim_key) if spec.claim_key else None,
            None,
            None,
            values.get(spec.coverage_key) if spec.coverage_key else None,
        )
    else:
        parent_id = values.get(spec.parent_key or "")
        if parent_id is None:
            return
        key = (spec.via, parent_id)
        read = _Read(spec.entity_type, None, None, None, spec.via, parent_id)
    reads = _reads()
    if key not in reads:
        reads[key] = read


@event.listens_for(Session, "transient_to_pending")
def _note_audited(session: Session, instance: Any) -> None:
    if isinstance(instance, AuditEvent) and instance.entity_id and has_request_context():
        audited = g.get("_phi_audited")
        if audited is None:
            audited = g._phi_audited = set()
        audited.add(instance.entity_id)


#: Parents a child row is reported as: table -> (model, patient column, claim column).
_PARENTS: dict[str, tuple[type[Any], str | None, str | None]] = {
    "coverages": (Coverage, "patient_id", None),
    "statements": (Statement, "patient_id", None),
    "work_items": (WorkItem, None, "claim_id"),
    "journal_entries": (JournalEntry, None, "claim_id"),
}


def _resolve(session: Session, reads: list[_Read]) -> list[_Read]:
    """Fill in public ids and patients from parents and claims; drop what cannot be named."""
    wanted: dict[str, set[int]] = {}
    for read in reads:
        if read.via in _PARENTS and read.parent_id is not None:
            wanted.setdefault(read.via, set()).add(read.parent_id)
    parents: dict[tuple[str, int], tuple[str, int | None, int | None]] = {}
    for via, ids in wanted.items():
        model, patient_col, claim_col = _PARENTS[via]
        link = getattr(model, patient_col or claim_col or "id")
        for row_id, public_id, linked in session.execute(
            select(model.id, model.public_id, link).where(model.id.in_(ids))
        ):
            parents[(via, row_id)] = (public_id, linked, None) if patient_col else (public_id, None, linked)
    step: list[_Read] = []
    for read in reads:
        if read.via in _PARENTS:
            found = parents.get((read.via, read.parent_id or 0))
            if found is None:
                continue
            read = _Read(read.entity_type, found[0], found[1], found[2], None, None)
        elif read.via == "claims":
            read = _Read(read.entity_type, None, None, read.parent_id, None, None)
        step.append(read)
    coverage_ids = {r.coverage_id for r in step if r.coverage_id is not None and r.patient_id is None}
    if coverage_ids:
        patients = dict(
            session.execute(
                select(Coverage.id, Coverage.patient_id).where(Coverage.id.in_(coverage_ids))
            ).all()
        )
        for read in step:
            if read.coverage_id is not None and read.patient_id is None:
                read.patient_id = patients.get(read.coverage_id)
    claim_ids = {r.claim_id for r in step if r.claim_id is not None and r.patient_id is None}
    claims: dict[int, tuple[str, int]] = {}
    if claim_ids:
        for row_id, public_id, patient_id in session.execute(
            select(Claim.id, Claim.public_id, Claim.patient_id).where(Claim.id.in_(claim_ids))
        ):
            claims[row_id] = (public_id, patient_id)
    out: list[_Read] = []
    for read in step:
        claim = claims.get(read.claim_id or 0)
        if claim is not None and read.patient_id is None:
            read = _Read(read.entity_type, read.public_id or claim[0], claim[1], read.claim_id, None, None)
        if read.public_id is not None:
            out.append(read)
    return out


def _write_reads(response: Response) -> Response:
    reads = g.pop("_phi_reads", None)
    if not reads or response.status_code >= 400:
        return response
    from claims_server.app import state
    from claims_server.security.audit import audit_event

    session: Session | None = g.get("db_session")
    own = session is None
    if session is None:
        session = state().session_factory()
    try:
        # Anything the view left uncommitted would be discarded at teardown anyway.
        session.rollback()
        audited: set[str] = set(g.get("_phi_audited") or ())
        for read in _resolve(session, list(reads.values())):
            if read.public_id is None or read.public_id in audited:
                continue
            audited.add(read.public_id)
            audit_event(
                session,
                action=AuditAction.READ,
                event_type=f"{read.entity_type}.read",
                entity_type=read.entity_type,
                entity_id=read.public_id,
                patient_id=read.patient_id,
                details={"endpoint": (request.endpoint or "")[:64]},
            )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        if own:
            session.close()
    return response


def register(app: Flask) -> None:
    """Install the after_request hook that writes the request's PHI read events."""
    app.after_request(_write_reads)
