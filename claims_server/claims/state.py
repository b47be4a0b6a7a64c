"""The claim state machine: one table of allowed moves, one service function per move.

ARCHITECTURE.md: ``draft → ready → batched → submitted → accepted (999) → acknowledged
(277CA) → paid | partially_paid | denied → closed``; ``rejected`` (999 or 277CA) and
``denied`` lead back through correction (``correct_rejection`` or
``reopen_for_correction`` → ``draft``) to ``ready``; ``voided`` is an end.

Choices beyond the straight line, and why:

- ``ready → draft`` (``return_to_draft``): a biller edits a ready claim and it must be
  scrubbed again before it can be batched.
- ``batched → ready`` (``release_from_batch``): the batcher holds a claim back (its data
  fails the 837 checks) or drops an interchange that was never uploaded; the claim was
  not sent, so it goes back to the pool rather than being stranded.
- ``submitted → acknowledged`` and ``accepted → paid | partially_paid | denied``: some
  clearinghouses send the 277CA before (or instead of) the 999, and some payers send an
  835 without any 277CA; the later answer implies the earlier acceptance.
- ``partially_paid → paid`` and ``denied → paid | partially_paid``: a later 835 (a
  corrected remittance or a won appeal) pays what was left.
- Two ways back to ``draft``, because who may take them differs (security/policy.py):
  ``correct_rejection`` (rejected → draft) fixes a claim the payer's front end refused
  (999/277CA) and never adjudicated, routine biller work; ``reopen_for_correction``
  (rejected | denied → draft) also reopens an adjudicated denial, a supervisor's decision.
- ``void`` only where nothing is in flight with a payer (draft, ready, rejected, denied):
  voiding an adjudicated claim is a frequency-8 claim to the payer, not a local flag.
- ``closed`` and ``voided`` are ends of our own moves. The one way out of ``closed`` is the
  payer's: ``reversed`` (paid | partially_paid | denied | closed → acknowledged) when a
  CLP02 = 22 reversal leaves the claim with no current adjudication by its payer
  (docs/adjudication-history.md); the claim awaits the payer's corrected adjudication
  again, and the unpaid sweep sees it.

Each function takes ``(session, claim, *, reason=None, details=None)``, refuses a move the
table does not allow with :class:`~claims_server.errors.Conflict` (naming the current
state, the requested one and the allowed next states) before touching anything, sets
``state`` and ``state_changed_at`` only, and appends an audit event in the caller's
transaction. Nothing here commits: the caller's unit of work does, so a transition and
whatever caused it (a 999 stored, a batch written) are saved together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, any_, literal, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from claims_server.api_common.audit import audit
from claims_server.errors import Conflict
from claims_server.models import AuditAction, Claim, ClaimState
from claims_server.models.common import utcnow

S = ClaimState

#: Each transition: the states it may start from and the state it leads to. Two moves can
#: share a target (``ready`` from draft, ``release_from_batch`` from batched) yet stay
#: distinct, so a function never performs another function's move.
EVENTS: Mapping[str, tuple[frozenset[ClaimState], ClaimState]] = {
    "ready": (frozenset({S.DRAFT}), S.READY),
    "return_to_draft": (frozenset({S.READY}), S.DRAFT),
    "batched": (frozenset({S.READY}), S.BATCHED),
    "release_from_batch": (frozenset({S.BATCHED}), S.READY),
    "submitted": (frozenset({S.BATCHED}), S.SUBMITTED),
    "accepted": (frozenset({S.SUBMITTED}), S.ACCEPTED),
    "rejected": (frozenset({S.SUBMITTED, S.ACCEPTED}), S.REJECTED),
    "acknowledged": (frozenset({S.SUBMITTED, S.ACCEPTED}), S.ACKNOWLEDGED),
    "paid": (frozenset({S.ACCEPTED, S.ACKNOWLEDGED, S.PARTIALLY_PAID, S.DENIED}), S.PAID),
    "partially_paid": (frozenset({S.ACCEPTED, S.ACKNOWLEDGED, S.DENIED}), S.PARTIALLY_PAID),
    "denied": (frozenset({S.ACCEPTED, S.ACKNOWLEDGED}), S.DENIED),
    "closed": (frozenset({S.PAID, S.PARTIALLY_PAID, S.DENIED}), S.CLOSED),
    "reversed": (frozenset({S.PAID, S.PARTIALLY_PAID, S.DENIED, S.CLOSED}), S.ACKNOWLEDGED),
    "voided": (frozenset({S.DRAFT, S.READY, S.REJECTED, S.DENIED}), S.VOIDED),
    "correct_rejection": (frozenset({S.REJECTED}), S.DRAFT),
    "reopen_for_correction": (frozenset({S.REJECTED, S.DENIED}), S.DRAFT),
}

#: state -> the states a claim may move to from it (derived from ``EVENTS``).
TRANSITIONS: Mapping[ClaimState, frozenset[ClaimState]] = {
    state: frozenset(target for sources, target in EVENTS.values() if state in sources)
    for state in ClaimState
}

#: States in which the claim's data may be edited (the API's update endpoint).
EDITABLE_STATES: frozenset[ClaimState] = frozenset({S.DRAFT, S.READY, S.REJECTED})

#: Moves the payer makes happen (an 835), not a person: they do not make a state less final.
PAYER_EVENTS: frozenset[str] = frozenset({"reversed"})

#: States with no way out by our own moves (only a payer's reversal leaves ``closed``).
FINAL_STATES: frozenset[ClaimState] = frozenset(
    state
    for state in ClaimState
    if not any(state in sources for event, (sources, _) in EVENTS.items() if event not in PAYER_EVENTS)
)

# The order in which allowed next states are listed in messages: the claim's life order.
_ORDER = {state: i for i, state in enumerate(ClaimState)}


def allowed_next(state: ClaimState) -> list[ClaimState]:
    """The states a claim in ``state`` may move to, in life-cycle order."""
    return sorted(TRANSITIONS[ClaimState(state)], key=_ORDER.__getitem__)


def allowed_events(state: ClaimState) -> list[str]:
    """The transitions (``EVENTS`` keys) that may start from ``state``."""
    return [event for event, (sources, _) in EVENTS.items() if ClaimState(state) in sources]


def can_transition(current: ClaimState, target: ClaimState) -> bool:
    """Whether some transition leads from ``current`` to ``target``."""
    return ClaimState(target) in TRANSITIONS[ClaimState(current)]


def check_transition(claim: Claim, event: str) -> ClaimState:
    """The target of ``event`` for ``claim``; :class:`Conflict` if not allowed (changes nothing)."""
    sources, target = EVENTS[event]
    current = ClaimState(claim.state)
    if current in sources:
        return target
    allowed = [s.value for s in allowed_next(current)]
    allowed_text = ", ".join(allowed) if allowed else f"none ({current.value} is final)"
    raise Conflict(
        f"claim {claim.public_id} cannot move from {current.value} to {target.value} "
        f"({event.replace('_', ' ')}); allowed next states: {allowed_text}",
        errors=[
            {
                "field": "state",
                "rule": "state_transition",
                "message": f"{event} is not allowed from {current.value}",
            }
        ],
        current_state=current.value,
        requested_state=target.value,
        allowed_next_states=allowed,
    )


def transition(
    session: Session,
    claim: Claim,
    event: str,
    *,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    audit_events: list[dict[str, Any]] | None = None,
) -> Claim:
    """Perform transition ``event`` (a key of ``EVENTS``) on ``claim`` and audit it.

    The audit event is ``claim.<event>``. ``reason`` and ``details`` go into the audit
    record: callers pass codes and ids there (STC codes, batch ids), never PHI. Words a
    user typed are PHI for all we know: they become an encrypted claim note and the
    details name it (``claims.notes.reason_details``). With
    ``audit_events`` the event is appended to that list instead of written, for a caller
    that moves thousands of claims and writes their events with ``audit_events_bulk``.
    """
    target = check_transition(claim, event)
    previous = ClaimState(claim.state)
    claim.state = target
    claim.state_changed_at = now or utcnow()
    audit_details: dict[str, Any] = {"from": previous.value, "to": target.value}
    if reason is not None:
        audit_details["reason"] = reason
    if details:
        audit_details.update(details)
    record = _audit_record(claim, event, audit_details)
    if audit_events is not None:
        audit_events.append(record)
    else:
        audit(session, **record)
    return claim


def _audit_record(claim: Claim, event: str, details: dict[str, Any]) -> dict[str, Any]:
    """The transition's audit event as keyword arguments of ``audit_event`` / ``audit_events_bulk``."""
    return {
        "action": AuditAction.UPDATE,
        "event_type": f"claim.{event}",
        "entity_type": "claim",
        "entity_id": claim.public_id,
        "patient_id": claim.patient_id,
        "details": details,
    }


# -- one function per transition -----------------------------------------------------------------


#: Claims per statement in a bulk transition (bound parameters per IN list stay well below
#: SQLite's and PostgreSQL's limits).
BULK_CHUNK = 1000


def id_in(session: Session, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """``column IN ids`` for a long id list: ``= ANY(array)`` on PostgreSQL, ``IN (...)`` elsewhere.

    One array parameter instead of one bound parameter per id: the driver does not have
    to rewrite a statement with thousands of placeholders, and PostgreSQL plans it once.
    """
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(list(ids), ARRAY(BigInteger)))
    return column.in_(list(ids))


def transition_many(
    session: Session,
    claims: Sequence[Claim],
    event: str,
    *,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> list[Claim]:
    """Perform transition ``event`` on many claims with a few statements instead of one per claim.

    The same rules as :func:`transition`, all or nothing:

    1. every claim's in-memory state must allow ``event`` (:class:`Conflict` naming the
       first that does not, before anything is touched);
    2. pending ORM changes are flushed (so each object's ``version`` is its row's), the
       rows are locked (PostgreSQL ``FOR UPDATE``; SQLite's write lock) and their state and
       version compared with the objects: a row another transaction changed since it was
       loaded is the ORM's optimistic-lock failure, refused with :class:`Conflict` while
       nothing has been written;
    3. one ``UPDATE ... WHERE id IN (...)`` per :data:`BULK_CHUNK` claims sets ``state``,
       ``state_changed_at``, ``updated_at`` and ``version + 1`` (what the ORM's
       ``version_id_col`` would do), and the objects get the new values as their
       committed state (not dirty, so no second UPDATE at the next flush);
    4. one audit event per claim (``claim.<event>``, the same details as
       :func:`transition`) is appended with a single executemany INSERT.
    """
    from claims_server.security.audit import audit_events_bulk

    claims = list(claims)
    if not claims:
        return claims
    sources, target = EVENTS[event]
    for claim in claims:
        check_transition(claim, event)
    if len({claim.id for claim in claims}) != len(claims):
        raise ValueError("a claim appears twice in one bulk transition")
    session.flush()
    table = Claim.__table__
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        # A write that matches nothing takes SQLite's database write lock: no other
        # connection can change the rows between the check below and the UPDATE.
        session.execute(text("UPDATE claims SET version = version WHERE 1 = 0"))
    stale: list[Claim] = []
    chunks = [claims[i : i + BULK_CHUNK] for i in range(0, len(claims), BULK_CHUNK)]
    for chunk in chunks:
        check = select(table.c.id, table.c.state, table.c.version).where(
            id_in(session, table.c.id, [claim.id for claim in chunk])
        )
        if bind.dialect.name == "postgresql":
            check = check.with_for_update()
        rows = {row.id: (ClaimState(row.state), row.version) for row in session.execute(check)}
        stale.extend(
            claim
            for claim in chunk
            if rows.get(claim.id, (None, None))[0] not in sources or rows[claim.id][1] != claim.version
        )
    if stale:
        raise Conflict(
            f"{len(stale)} of {len(claims)} claims changed since they were loaded "
            f"(first: claim {stale[0].public_id}); nothing was moved to {target.value}",
            errors=[
                {"field": "state", "rule": "stale_claim", "message": f"claim {claim.public_id} changed"}
                for claim in stale[:20]
            ],
            requested_state=target.value,
            stale_claims=[claim.public_id for claim in stale],
        )
    now = now or utcnow()
    for chunk in chunks:
        session.execute(
            update(table)
            .where(id_in(session, table.c.id, [claim.id for claim in chunk]))
            .values(state=target, state_changed_at=now, updated_at=now, version=table.c.version + 1)
        )
    events = []
    # One details mapping per source state, shared by the events (the bulk append checks
    # each distinct mapping once).
    shared: dict[ClaimState, dict[str, Any]] = {}
    for claim in claims:
        previous = ClaimState(claim.state)
        set_committed_value(claim, "state", target)
        set_committed_value(claim, "state_changed_at", now)
        set_committed_value(claim, "updated_at", now)
        set_committed_value(claim, "version", claim.version + 1)
        audit_details = shared.get(previous)
        if audit_details is None:
            audit_details = {"from": previous.value, "to": target.value}
            if reason is not None:
                audit_details["reason"] = reason
            if details:
                audit_details.update(details)
            shared[previous] = audit_details
        events.append(_audit_record(claim, event, audit_details))
    audit_events_bulk(session, events)
    return claims


def mark_ready(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """draft → ready: the claim passed the scrubber and may be batched.

    The scrub itself is the caller's (``claims.services.make_ready`` scrubs and refuses
    claims with errors); this function only guards and records the move.
    """
    return transition(session, claim, "ready", reason=reason, details=details)


def return_to_draft(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """ready → draft: an edit made the claim need another scrub before batching."""
    return transition(session, claim, "return_to_draft", reason=reason, details=details)


def mark_batched(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """ready → batched: the claim is in an interchange that has not been uploaded yet."""
    return transition(session, claim, "batched", reason=reason, details=details)


def mark_batched_many(
    session: Session,
    claims: Sequence[Claim],
    *,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> list[Claim]:
    """ready → batched for every claim of an interchange at once (see :func:`transition_many`)."""
    return transition_many(session, claims, "batched", reason=reason, details=details, now=now)


def release_from_batch(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """batched → ready: held back from (or dropped with) an interchange that never left."""
    return transition(session, claim, "release_from_batch", reason=reason, details=details)


def mark_submitted(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """batched → submitted: the clearinghouse confirmed the upload of the claim's interchange."""
    return transition(session, claim, "submitted", reason=reason, details=details)


def mark_accepted(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """submitted → accepted: the 999 accepted the claim's transaction set (IK5 A or E)."""
    return transition(session, claim, "accepted", reason=reason, details=details)


def mark_rejected(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """submitted | accepted → rejected: a 999 (IK5 R) or a 277CA (STC A3/A6/A7/A8) refused it."""
    return transition(session, claim, "rejected", reason=reason, details=details)


def mark_acknowledged(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """submitted | accepted → acknowledged: the payer's front end accepted it (277CA STC A1/A2)."""
    return transition(session, claim, "acknowledged", reason=reason, details=details)


def mark_paid(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """→ paid: an 835 paid the claim in full (nothing left for this payer to pay)."""
    return transition(session, claim, "paid", reason=reason, details=details)


def mark_partially_paid(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """→ partially_paid: an 835 paid part of the claim and denied or reduced the rest."""
    return transition(session, claim, "partially_paid", reason=reason, details=details)


def mark_denied(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """accepted | acknowledged → denied: an 835 paid nothing (CLP02 = 4)."""
    return transition(session, claim, "denied", reason=reason, details=details)


def close(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """paid | partially_paid | denied → closed: nothing more is expected from the payer."""
    return transition(session, claim, "closed", reason=reason, details=details)


def mark_reversed(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """paid | partially_paid | denied | closed → acknowledged: the payer reversed its adjudication
    (CLP02 = 22) and none of its adjudications of the claim is current; it awaits a corrected one."""
    return transition(session, claim, "reversed", reason=reason, details=details)


def void(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """draft | ready | rejected | denied → voided: the claim will never be (re)sent."""
    return transition(session, claim, "voided", reason=reason, details=details)


def correct_rejection(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """rejected → draft: a biller corrects what the front end refused; ``mark_ready`` sends it again."""
    return transition(session, claim, "correct_rejection", reason=reason, details=details)


def reopen_for_correction(
    session: Session, claim: Claim, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Claim:
    """rejected | denied → draft: a supervisor reopens the claim; ``mark_ready`` sends it again."""
    return transition(session, claim, "reopen_for_correction", reason=reason, details=details)
