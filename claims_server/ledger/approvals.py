"""Approvals: a write-off or refund above the requester's limit waits for a supervisor.

A request is one :class:`~claims_server.models.workqueue.ApprovalRequest` row (the action's
parameters in ``request``: codes and public ids, never PHI; the requester's note encrypted)
and one work item in the ``approval`` queue pointing at it. Nothing is posted until a
billing supervisor or an admin approves; then the executor registered for the request's
kind posts the action *as the approver* (the journal entry's ``created_by_user_id`` is
the approver, so it is a supervisor's posting and does not count against the requester's
limit) and answers the journal entry it posted, which the request links.

Deciding is exactly once. :func:`decide` first takes the request with a compare-and-set
``UPDATE approval_requests SET state = ... WHERE id = :id AND state = 'pending'``: on
PostgreSQL the UPDATE locks the row and a second supervisor's UPDATE waits for the first
transaction, then (READ COMMITTED re-checks the WHERE) matches nothing; on SQLite the
UPDATE takes the database write lock and the second one runs after the first commits,
matching nothing too. The loser gets a 409 naming who decided first. The executor runs in
the same transaction as the compare-and-set: when it refuses (the balance changed since
the request: it is re-checked at decision time), everything rolls back and the request
stays pending, so the supervisor reads the message and declines it (docs/write-offs.md).

Rules (each refusal is structured, names the field and the rule, and changes nothing):

- only a billing supervisor or an admin decides (403 ``approver_role``);
- nobody decides their own request (422 ``not_own_request``): four eyes;
- a declined request needs a note (422 ``required_for_decline``);
- a request that is no longer pending cannot be decided or withdrawn (409 ``pending``);
- only the requester (or a supervisor / admin) withdraws a pending request.

Executors register per kind (:func:`register_executor`); :func:`decide` imports the modules
that register them (``claims_server.ledger.write_offs``, ``claims_server.ledger.credits``)
lazily, tolerating a module that does not exist, so this module never imports them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from claims_server.api_common.audit import audit
from claims_server.errors import ApiError, Conflict, NotFound, Unprocessable
from claims_server.models import AuditAction, Claim, Patient, Payer, User, WorkItem
from claims_server.models.common import new_public_id, utcnow
from claims_server.models.workqueue import ApprovalKind, ApprovalRequest, ApprovalState, WorkQueue

#: Roles that decide approval requests.
APPROVER_ROLES = frozenset({"billing_supervisor", "admin"})
MAX_NOTE = 2000

#: kind -> fn(session, approval, approver) -> journal entry id posted (or None)
Executor = Callable[[Session, ApprovalRequest, User], "int | None"]
_EXECUTORS: dict[ApprovalKind, Executor] = {}
#: Modules whose import registers an executor (the second may not exist yet).
_EXECUTOR_MODULES = ("claims_server.ledger.write_offs", "claims_server.ledger.credits")


class Forbidden(ApiError):
    status, slug, title = 403, "forbidden", "Forbidden"


def _error(cls: type[ApiError], field: str, rule: str, message: str, **extra: Any) -> ApiError:
    return cls(f"{field}: {message}", errors=[{"field": field, "rule": rule, "message": message}], **extra)


def register_executor(kind: ApprovalKind, fn: Executor) -> None:
    """Say what approving a request of ``kind`` does (called at import by the owning module)."""
    _EXECUTORS[ApprovalKind(kind)] = fn


def _load_executors() -> None:
    for name in _EXECUTOR_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but something it imports is missing
                raise


def _clean_note(note: str | None, field: str = "note") -> str | None:
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise _error(Unprocessable, field, "length", f"at most {MAX_NOTE} characters")
    return text or None


# -- requesting --------------------------------------------------------------------------------------


def request_approval(
    session: Session,
    kind: ApprovalKind,
    *,
    amount_cents: int,
    request: dict[str, Any],
    requested_by: User | None,
    claim: Claim | None = None,
    patient: Patient | None = None,
    payer: Payer | None = None,
    note: str | None = None,
) -> ApprovalRequest:
    """Record a pending request and open its ``approval`` work item (flushes; the caller commits).

    ``request`` is what the executor needs to post the action later (codes and public ids
    only: it is stored in clear). The caller has validated the action against today's
    balances; the executor validates it again when it is approved.
    """
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise _error(Unprocessable, "amount", "positive", "must be a positive amount in cents")
    which = ApprovalKind(kind)
    text = _clean_note(note)
    if patient is None and claim is not None:
        patient = claim.patient
    approval = ApprovalRequest(
        public_id=new_public_id(),
        kind=which,
        state=ApprovalState.PENDING,
        claim_id=claim.id if claim is not None else None,
        patient_id=patient.id if patient is not None else None,
        payer_id=payer.id if payer is not None else None,
        amount_cents=amount_cents,
        request=dict(request),
        note=text,
        requested_by_user_id=requested_by.id if requested_by is not None else None,
    )
    session.add(approval)
    session.flush()
    _open_item(session, approval, claim)
    audit(
        session,
        action=AuditAction.CREATE,
        event_type="approval.request",
        entity_type="approval_request",
        entity_id=approval.public_id,
        patient_id=approval.patient_id,
        details={
            "kind": which.value,
            "amount_cents": amount_cents,
            "claim": claim.public_id if claim is not None else None,
            "note_characters": len(text or ""),
        },
    )
    session.flush()
    return approval


def _open_item(session: Session, approval: ApprovalRequest, claim: Claim | None) -> WorkItem:
    from claims_server.api_common.fields import cents_to_money
    from claims_server.workqueue.recommend import RecommendedAction
    from claims_server.workqueue.services import open_work_item

    what = "write-off" if approval.kind is ApprovalKind.WRITE_OFF else "refund"
    item = open_work_item(
        session,
        queue=WorkQueue.APPROVAL,
        claim=claim,
        reason_codes=[],
        recommended_action=RecommendedAction.REVIEW,
        explanation=(
            f"A {what} of ${cents_to_money(approval.amount_cents)} is above the requester's limit: "
            "a billing supervisor approves it (it posts as theirs) or declines it with a note."
        ),
        dedupe_key=f"approval:{approval.public_id}",
        priority=1,
    )
    item.approval_request_id = approval.id
    item.patient_id = approval.patient_id
    item.payer_id = approval.payer_id
    return item


# -- deciding ----------------------------------------------------------------------------------------


def _user_label(session: Session, user_id: int | None) -> str:
    user = session.get(User, user_id) if user_id is not None else None
    return user.display_name or user.username if user is not None else "someone"


def _not_pending(session: Session, approval: ApprovalRequest) -> Conflict:
    session.refresh(approval)
    state = approval.state
    if state is ApprovalState.WITHDRAWN:
        message = "the requester withdrew this request"
    else:
        message = f"already {state.value} by {_user_label(session, approval.decided_by_user_id)}"
    return Conflict(
        f"approval request {approval.public_id} is {state.value}: {message}",
        errors=[{"field": "decision", "rule": "pending", "message": message}],
        current_state=state.value,
    )


def _claim_state(
    session: Session, approval: ApprovalRequest, target: ApprovalState, by: User, note: str | None
) -> None:
    """The compare-and-set: pending -> ``target`` for this transaction, or a 409."""
    if session.get_bind().dialect.name == "postgresql":
        # Row lock first, so the loser waits here and reads the winner's decision after it.
        session.execute(select(ApprovalRequest.id).where(ApprovalRequest.id == approval.id).with_for_update())
    result = session.execute(
        update(ApprovalRequest)
        .where(ApprovalRequest.id == approval.id, ApprovalRequest.state == ApprovalState.PENDING)
        .values(state=target, decided_by_user_id=by.id, decided_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise _not_pending(session, approval)
    session.refresh(approval)
    approval.decision_note = note


def decide(
    session: Session, approval: ApprovalRequest, *, approve: bool, by: User, note: str | None = None
) -> ApprovalRequest:
    """Approve (post the action as ``by``) or decline (post nothing) a pending request.

    Flushes; the caller commits. See the module docstring for the rules and the race.
    """
    if by.role not in APPROVER_ROLES:
        raise _error(
            Forbidden, "decision", "approver_role", "only a billing supervisor or an admin decides approvals"
        )
    if approval.requested_by_user_id is not None and approval.requested_by_user_id == by.id:
        raise _error(
            Unprocessable,
            "decision",
            "not_own_request",
            "you cannot decide your own request; ask another supervisor",
        )
    text = _clean_note(note)
    if not approve and not text:
        raise _error(Unprocessable, "note", "required_for_decline", "say why the request is declined")
    if approval.state is not ApprovalState.PENDING:
        raise _not_pending(session, approval)
    target = ApprovalState.APPROVED if approve else ApprovalState.DECLINED
    _claim_state(session, approval, target, by, text)
    entry_id = None
    if approve:
        _load_executors()
        executor = _EXECUTORS.get(approval.kind)
        if executor is None:
            raise _error(
                Conflict,
                "kind",
                "executor",
                f"approving a {approval.kind.value} is not available on this server",
            )
        from claims_server.security.principal import Principal, PrincipalKind, acting_as

        approver = Principal(PrincipalKind.USER, role=str(by.role), user_id=by.id, name=by.username)
        with acting_as(approver):
            entry_id = executor(session, approval, by)
        approval.journal_entry_id = entry_id
    _close_item(session, approval, f"{target.value} by a supervisor")
    audit(
        session,
        action=AuditAction.UPDATE,
        event_type=f"approval.{'approve' if approve else 'decline'}",
        entity_type="approval_request",
        entity_id=approval.public_id,
        patient_id=approval.patient_id,
        details={
            "kind": approval.kind.value,
            "amount_cents": approval.amount_cents,
            "journal_entry_id": entry_id,
            "note_characters": len(text or ""),
        },
    )
    session.flush()
    return approval


def withdraw(session: Session, approval: ApprovalRequest, *, by: User) -> ApprovalRequest:
    """The requester (or a supervisor / admin) takes back a pending request; nothing is posted."""
    if approval.requested_by_user_id != by.id and by.role not in APPROVER_ROLES:
        raise _error(Forbidden, "withdraw", "own_request", "only the requester may withdraw this request")
    if approval.state is not ApprovalState.PENDING:
        raise _not_pending(session, approval)
    _claim_state(session, approval, ApprovalState.WITHDRAWN, by, None)
    _close_item(session, approval, "withdrawn by the requester")
    audit(
        session,
        action=AuditAction.UPDATE,
        event_type="approval.withdraw",
        entity_type="approval_request",
        entity_id=approval.public_id,
        patient_id=approval.patient_id,
        details={"kind": approval.kind.value, "amount_cents": approval.amount_cents},
    )
    session.flush()
    return approval


def _close_item(session: Session, approval: ApprovalRequest, why: str) -> None:
    from claims_server.workqueue.services import resolve_by_system

    for item in session.scalars(
        select(WorkItem).where(WorkItem.approval_request_id == approval.id).order_by(WorkItem.id)
    ):
        resolve_by_system(session, item, f"approval request {approval.public_id} {why}")


# -- reading -----------------------------------------------------------------------------------------


def get_approval(session: Session, public_id: str) -> ApprovalRequest:
    found = session.scalar(select(ApprovalRequest).where(ApprovalRequest.public_id == public_id))
    if found is None:
        raise NotFound("no approval request has this id")
    return found


def list_approvals(
    session: Session,
    *,
    state: ApprovalState | str | None = ApprovalState.PENDING,
    kind: ApprovalKind | str | None = None,
    requested_by: User | None = None,
    claim: Claim | None = None,
    limit: int = 200,
) -> list[ApprovalRequest]:
    """Requests, oldest first when pending (the longest wait on top), newest first otherwise."""
    stmt = select(ApprovalRequest)
    if state is not None:
        stmt = stmt.where(ApprovalRequest.state == ApprovalState(state))
    if kind is not None:
        stmt = stmt.where(ApprovalRequest.kind == ApprovalKind(kind))
    if requested_by is not None:
        stmt = stmt.where(ApprovalRequest.requested_by_user_id == requested_by.id)
    if claim is not None:
        stmt = stmt.where(ApprovalRequest.claim_id == claim.id)
    order = ApprovalRequest.id.asc() if state == ApprovalState.PENDING else ApprovalRequest.id.desc()
    return list(session.scalars(stmt.order_by(order).limit(limit)))


def pending_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(ApprovalRequest)
            .where(ApprovalRequest.state == ApprovalState.PENDING)
        )
        or 0
    )


@dataclass(frozen=True)
class ApprovalView:
    """What a reader sees of a request (public ids, names, money as decimal strings)."""

    approval: ApprovalRequest
    claim_public_id: str | None
    patient_public_id: str | None
    patient_name: str | None
    payer_public_id: str | None
    payer_name: str | None
    requested_by: str | None
    requested_by_name: str | None
    decided_by: str | None
    decided_by_name: str | None
    journal_entry_public_id: str | None

    def age_days(self, today: date | None = None) -> int:
        created: datetime = self.approval.created_at
        return max(0, ((today or utcnow().date()) - created.date()).days)

    def to_json_dict(self) -> dict[str, Any]:
        from claims_server.api_common.fields import cents_to_money

        a = self.approval
        return {
            "id": a.public_id,
            "kind": a.kind.value,
            "state": a.state.value,
            "amount": cents_to_money(a.amount_cents),
            "claim_id": self.claim_public_id,
            "patient_id": self.patient_public_id,
            "payer_id": self.payer_public_id,
            "request": dict(a.request or {}),
            "note": a.note,
            "requested_by": self.requested_by,
            "requested_at": a.created_at.isoformat() if a.created_at else None,
            "decided_by": self.decided_by,
            "decided_at": a.decided_at.isoformat() if a.decided_at else None,
            "decision_note": a.decision_note,
            "journal_entry_id": self.journal_entry_public_id,
        }


def view_of(session: Session, approval: ApprovalRequest) -> ApprovalView:
    from claims_server.models import JournalEntry

    claim = session.get(Claim, approval.claim_id) if approval.claim_id else None
    patient = session.get(Patient, approval.patient_id) if approval.patient_id else None
    payer = session.get(Payer, approval.payer_id) if approval.payer_id else None
    requester = session.get(User, approval.requested_by_user_id) if approval.requested_by_user_id else None
    decider = session.get(User, approval.decided_by_user_id) if approval.decided_by_user_id else None
    entry = session.get(JournalEntry, approval.journal_entry_id) if approval.journal_entry_id else None
    return ApprovalView(
        approval=approval,
        claim_public_id=claim.public_id if claim is not None else None,
        patient_public_id=patient.public_id if patient is not None else None,
        patient_name=_patient_name(patient),
        payer_public_id=payer.public_id if payer is not None else None,
        payer_name=payer.name if payer is not None else None,
        requested_by=requester.public_id if requester is not None else None,
        requested_by_name=(requester.display_name or requester.username) if requester is not None else None,
        decided_by=decider.public_id if decider is not None else None,
        decided_by_name=(decider.display_name or decider.username) if decider is not None else None,
        journal_entry_public_id=entry.public_id if entry is not None else None,
    )


def _patient_name(patient: Patient | None) -> str | None:
    if patient is None:
        return None
    parts = [getattr(patient, "last_name", None), getattr(patient, "first_name", None)]
    return ", ".join(p for p in parts if p) or None
