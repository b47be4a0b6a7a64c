"""The "possible duplicate remittance" queue: held adjudications beside the current ones, decided.

docs/adjudication-history.md ("A person decides a held adjudication"): a second original
adjudication of a claim by the same payer, with no reversal between, is held
``possible_duplicate`` (its money waits in unapplied payments) until a supervisor posts
it (it replaces the current one) or rejects it; a remittance all of whose claims were
held that way is ``held`` as a whole, and deciding it decides each of its held claims.
The decisions are the posting engine's (``services.decide_held``, ``decide_held_remittance``);
this module finds what to show, says what a public id names, and calls them. The API
(``held_views``), the CLI (``claims-server remittance held|decide``) and the workspace's
work-queue page are its doors.

Identifiers: a ``ClaimPayment`` has no public id, so a held adjudication is named by the
public id of its ``possible_duplicate`` work item, which is what the queue shows and what
a supervisor works (a remittance-level item names its remittance). A held remittance is
named by its own public id. Neither URL carries a patient control number or patient data.

Nothing here commits: the caller's unit of work does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from claims_server.api_common.pagination import Page, paginate
from claims_server.errors import Conflict, NotFound, Unprocessable
from claims_server.models import ClaimPayment, Remittance, RemittanceState, WorkItem
from claims_server.models.remittance import AdjudicationHold, AdjudicationState
from claims_server.models.workqueue import WorkQueue
from claims_server.remittance.services import decide_held, decide_held_remittance
from edi.x835 import format_cents

Decision = Literal["post", "reject"]
DECISIONS: tuple[str, ...] = ("post", "reject")


def held_select() -> Any:
    """``SELECT claim_payments`` held as possible duplicates and not yet decided."""
    return select(ClaimPayment).where(
        ClaimPayment.adjudication_state == AdjudicationState.HELD,
        ClaimPayment.hold_reason == AdjudicationHold.POSSIBLE_DUPLICATE,
    )


def _load_options() -> list[Any]:
    return [
        selectinload(ClaimPayment.remittance).selectinload(Remittance.edi_file),
        selectinload(ClaimPayment.remittance).selectinload(Remittance.payer),
        selectinload(ClaimPayment.claim),
    ]


def list_held(session: Session, *, limit: int = 50, cursor: str | None = None) -> Page[ClaimPayment]:
    """Held possible-duplicate adjudications, oldest first (one keyset page)."""
    return paginate(
        session,
        held_select().options(*_load_options()),
        ClaimPayment.id,
        limit=limit,
        cursor=cursor,
        filters={"held": "possible_duplicate"},
    )


def current_of(session: Session, payment: ClaimPayment) -> ClaimPayment | None:
    """The adjudication ``payment`` would duplicate: the current one of the same encounter and payer."""
    if payment.ledger_claim_id is not None and payment.payer_id is not None:
        where = [
            ClaimPayment.ledger_claim_id == payment.ledger_claim_id,
            ClaimPayment.payer_id == payment.payer_id,
        ]
    elif payment.claim_id is not None:
        where = [ClaimPayment.claim_id == payment.claim_id]
    else:
        return None
    return session.scalar(
        select(ClaimPayment)
        .where(
            *where,
            ClaimPayment.adjudication_state == AdjudicationState.CURRENT,
            ClaimPayment.id != payment.id,
        )
        .options(*_load_options())
        .order_by(ClaimPayment.id.desc())
        .limit(1)
    )


def items_of(session: Session, payments: Iterable[ClaimPayment]) -> dict[int, WorkItem]:
    """claim payment id -> its possible-duplicate work item (the newest, if several)."""
    ids = [p.id for p in payments]
    if not ids:
        return {}
    items = session.scalars(
        select(WorkItem)
        .where(WorkItem.queue == WorkQueue.POSSIBLE_DUPLICATE, WorkItem.claim_payment_id.in_(ids))
        .order_by(WorkItem.id)
    )
    return {int(item.claim_payment_id): item for item in items if item.claim_payment_id is not None}


def adjudication_json(payment: ClaimPayment) -> dict[str, Any]:
    """One adjudication as the queue compares it: CLP02/03/04/05/07 and where it came from."""
    remittance = payment.remittance
    return {
        "remittance": remittance.public_id,
        "position": payment.position,
        "state": payment.adjudication_state.value if payment.adjudication_state else None,
        "kind": payment.adjudication_kind.value if payment.adjudication_kind else None,
        "status_code": payment.status_code,
        "charge": format_cents(payment.charge_cents),
        "paid": format_cents(payment.paid_cents),
        "patient_responsibility": (
            format_cents(payment.patient_responsibility_cents)
            if payment.patient_responsibility_cents is not None
            else None
        ),
        "payer_claim_control_number": payment.payer_claim_control_number,
        "trace_number": remittance.trace_number,
        "payment_date": remittance.payment_date.isoformat() if remittance.payment_date else None,
        "received_at": remittance.edi_file.received_at.isoformat() if remittance.edi_file else None,
        "decided_at": payment.decided_at.isoformat() if payment.decided_at else None,
        "decided_by": payment.decided_by,
    }


@dataclass(frozen=True)
class HeldComparison:
    """A held adjudication, the current one it would duplicate (None if none is current now), its item."""

    held: ClaimPayment
    current: ClaimPayment | None
    item: WorkItem | None

    def to_json(self) -> dict[str, Any]:
        held = self.held
        remittance = held.remittance
        payer = remittance.payer
        return {
            "id": self.item.public_id if self.item is not None else None,
            "work_item_status": self.item.status.value if self.item is not None else None,
            "claim": held.claim.public_id if held.claim is not None else None,
            "claim_state": held.claim.state.value if held.claim is not None else None,
            "patient_control_number": held.patient_control_number,
            "payer": payer.public_id if payer is not None else None,
            "payer_name": (payer.name if payer is not None else None) or remittance.payer_name,
            "remittance_held": remittance.state == RemittanceState.HELD,
            "held": adjudication_json(held),
            "current": adjudication_json(self.current) if self.current is not None else None,
        }


def compare(session: Session, payments: Sequence[ClaimPayment]) -> list[HeldComparison]:
    """Each of ``payments`` with the current adjudication it would duplicate and its work item."""
    items = items_of(session, payments)
    return [HeldComparison(p, current_of(session, p), items.get(p.id)) for p in payments]


@dataclass(frozen=True)
class ItemComparison:
    """What one possible-duplicate work item holds: one adjudication, or a remittance held as a
    whole (``remittance`` set) with each of its held adjudications."""

    item: WorkItem
    comparisons: list[HeldComparison]
    remittance: Remittance | None = None


def comparisons_for_items(session: Session, items: Sequence[WorkItem]) -> list[ItemComparison]:
    """For the possible-duplicate items among ``items`` (the queue page), in their order: each
    held adjudication beside the current one it would duplicate."""
    out = []
    for item in items:
        if item.queue != WorkQueue.POSSIBLE_DUPLICATE:
            continue
        if item.claim_payment_id is not None:
            payment = session.scalar(
                select(ClaimPayment).where(ClaimPayment.id == item.claim_payment_id).options(*_load_options())
            )
            if payment is not None:
                out.append(
                    ItemComparison(item, [HeldComparison(payment, current_of(session, payment), item)])
                )
        elif item.remittance_id is not None:
            remittance = session.get(Remittance, item.remittance_id)
            if remittance is None:
                continue
            payments = session.scalars(
                select(ClaimPayment)
                .where(ClaimPayment.remittance_id == remittance.id, ClaimPayment.claim_id.is_not(None))
                .options(*_load_options())
                .order_by(ClaimPayment.position)
            ).all()
            rows = [HeldComparison(p, current_of(session, p), item) for p in payments]
            out.append(ItemComparison(item, rows, remittance))
    return out


def held_remittances(session: Session) -> list[Remittance]:
    """Remittances held as a whole (every claim a possible duplicate), oldest first."""
    return list(
        session.scalars(
            select(Remittance)
            .where(Remittance.state == RemittanceState.HELD)
            .options(selectinload(Remittance.payer), selectinload(Remittance.edi_file))
            .order_by(Remittance.id)
        )
    )


def held_remittance_json(session: Session, remittance: Remittance) -> dict[str, Any]:
    """A held remittance: the payment, and how many of its claims still wait for a decision."""
    held = session.scalars(held_select().where(ClaimPayment.remittance_id == remittance.id)).all()
    item = session.scalar(
        select(WorkItem)
        .where(WorkItem.queue == WorkQueue.POSSIBLE_DUPLICATE, WorkItem.remittance_id == remittance.id)
        .where(WorkItem.claim_payment_id.is_(None))
        .order_by(WorkItem.id.desc())
        .limit(1)
    )
    return {
        "id": remittance.public_id,
        "work_item": item.public_id if item is not None else None,
        "state": remittance.state.value,
        "trace_number": remittance.trace_number,
        "payer": remittance.payer.public_id if remittance.payer is not None else None,
        "payer_name": (remittance.payer.name if remittance.payer is not None else None)
        or remittance.payer_name,
        "payment": format_cents(remittance.payment_amount_cents),
        "payment_date": remittance.payment_date.isoformat() if remittance.payment_date else None,
        "received_at": remittance.edi_file.received_at.isoformat() if remittance.edi_file else None,
        "claims": len(remittance.claim_payments),
        "held_claims": len(held),
    }


# -- deciding ------------------------------------------------------------------------------------


def checked_decision(decision: str) -> Decision:
    """``decision`` when it is ``post`` or ``reject``; else a 422 naming the field."""
    if decision not in DECISIONS:
        raise Unprocessable(
            "decision must be post or reject",
            errors=[{"field": "decision", "rule": "one_of", "message": "must be post or reject"}],
        )
    return decision  # type: ignore[return-value]


def get_item(session: Session, item_public_id: str) -> WorkItem:
    """The possible-duplicate work item ``item_public_id``; 404 for any other id."""
    item = session.scalar(select(WorkItem).where(WorkItem.public_id == item_public_id))
    if item is None or item.queue != WorkQueue.POSSIBLE_DUPLICATE:
        raise NotFound("no held adjudication has this id (the id of its possible-duplicate work item)")
    return item


def decide_item(session: Session, item: WorkItem, decision: str, *, actor: str) -> dict[str, Any]:
    """Post or reject what a possible-duplicate item holds: its claim payment, else its remittance.

    The engine refuses (``Conflict``, nothing changed) an adjudication no longer held, one
    already decided, or a ``post`` that would overdraw a payer's A/R.
    """
    chosen = checked_decision(decision)
    if item.claim_payment_id is not None:
        outcome = decide_held(session, int(item.claim_payment_id), chosen, actor=actor)
    elif item.remittance_id is not None:
        outcome = decide_held_remittance(session, int(item.remittance_id), chosen, actor=actor)
    else:
        raise Conflict(
            f"work item {item.public_id} names no held adjudication or remittance",
            errors=[{"field": "item_id", "rule": "held", "message": "nothing to decide"}],
        )
    return public_outcome(session, outcome or {})


def decide_remittance(
    session: Session, remittance: Remittance, decision: str, *, actor: str
) -> dict[str, Any]:
    """Post or reject a held remittance as a whole (each of its held claims); ``Conflict`` if not held."""
    chosen = checked_decision(decision)
    return public_outcome(session, decide_held_remittance(session, remittance.id, chosen, actor=actor) or {})


def public_outcome(session: Session, value: Any) -> Any:
    """The engine's answer as the API may show it: JSON values, and no row ids.

    A claim payment named by row id (``..._claim_payment_id``) becomes its remittance's public
    id and CLP position (``..._claim_payment``); any other integer ``..._id`` is left out.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            name = str(key)
            if name.endswith("claim_payment_id") and (sub is None or isinstance(sub, int)):
                row = session.get(ClaimPayment, sub) if sub is not None else None
                out[name[: -len("_id")]] = (
                    {"remittance": row.remittance.public_id, "position": row.position}
                    if row is not None
                    else None
                )
            elif name.endswith("_id") and isinstance(sub, int) and not isinstance(sub, bool):
                continue
            else:
                out[name] = public_outcome(session, sub)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [public_outcome(session, v) for v in value]
    if isinstance(value, Enum):
        return public_outcome(session, value.value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def decide_by_id(session: Session, public_id: str, decision: str, *, actor: str) -> dict[str, Any]:
    """Decide a held remittance (its public id) or a held adjudication (its work item's id):
    the answer the API gives for either. 404 when the id names neither."""
    remittance = session.scalar(select(Remittance).where(Remittance.public_id == public_id))
    if remittance is not None:
        outcome = decide_remittance(session, remittance, decision, actor=actor)
        session.flush()
        session.refresh(remittance)
        return {
            "remittance": held_remittance_json(session, remittance),
            "decision": decision,
            "outcome": outcome,
        }
    item = get_item(session, public_id)
    outcome = decide_item(session, item, decision, actor=actor)
    return {**item_state(session, item), "decision": decision, "outcome": outcome}


def all_held(session: Session) -> list[HeldComparison]:
    """Every held possible-duplicate adjudication with what it would duplicate (the CLI's list)."""
    return compare(
        session, session.scalars(held_select().options(*_load_options()).order_by(ClaimPayment.id)).all()
    )


def item_state(session: Session, item: WorkItem) -> dict[str, Any]:
    """After a decision: the item's status and what it holds now (for the API's answer)."""
    session.flush()
    session.refresh(item)
    payment = session.get(ClaimPayment, item.claim_payment_id) if item.claim_payment_id else None
    remittance = (
        payment.remittance
        if payment is not None
        else (session.get(Remittance, item.remittance_id) if item.remittance_id else None)
    )
    return {
        "id": item.public_id,
        "work_item_status": item.status.value,
        "adjudication": adjudication_json(payment) if payment is not None else None,
        "remittance": remittance.public_id if remittance is not None else None,
        "remittance_state": remittance.state.value if remittance is not None else None,
    }
