"""Remittance services: store an 835, post it in its own transaction, read what was posted.

``run_posting(factory, edi_file_id)`` is the one way the API, the CLI, the Celery task
and the clearinghouse inbox post a stored file: one transaction for the whole file;
when posting fails (unreadable, a completeness check) the transaction is rolled back and
a second, short one marks the file ``failed`` with the reason and audits the failure.
``store_835`` keeps the raw bytes (encrypted) with their SHA-256 first, so nothing is
lost even if posting never succeeds; the same bytes stored twice are one row.

``decide_held`` and ``decide_held_remittance`` are a person's decision on a held
adjudication (docs/adjudication-history.md, "A person decides a held adjudication"):
``post`` replaces the current adjudication with the held one, ``reject`` undoes the hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from claims_server.api_common.pagination import Page
from claims_server.db import unit_of_work
from claims_server.errors import Conflict, NotFound, Unprocessable
from claims_server.models import (
    Account,
    AuditAction,
    Claim,
    ClaimPayment,
    EdiFile,
    EdiFileKind,
    EdiFileStatus,
    JournalEntry,
    LinePayment,
    Posting,
    Remittance,
    WorkItem,
)
from claims_server.models.common import utcnow
from claims_server.models.remittance import AdjudicationState, RemittanceState
from claims_server.models.security import AuditOutcome
from claims_server.remittance.adjudication import Refused
from claims_server.remittance.plb import ReferenceKind, guide_for
from claims_server.remittance.posting import (
    Checkpoint,
    Followup,
    PostingReport,
    RemittancePostingError,
    engine_for,
    post_remittance,
    write_entries,
    write_history,
)
from claims_server.security.ownership import find_owned, scope_query
from claims_server.security.principal import current_principal
from edi.x835 import format_cents


def store_835(
    session: Session, content: bytes, *, stored_name: str | None = None, route_id: int | None = None
) -> tuple[EdiFile, bool]:
    """Store an inbound 835 by SHA-256 (encrypted); (row, True) when these bytes were stored before.

    Refuses (422) a file whose first transaction set is not an 835.
    """
    from claims_server.clearinghouse.services import store_inbound

    row, existed = store_inbound(session, content, route_id=route_id, stored_name=stored_name)
    if row.kind is not EdiFileKind.REMITTANCE_835:
        raise Unprocessable(
            f"the file is a {row.kind.value} file, not an 835 remittance",
            errors=[{"field": "body", "rule": "transaction_set", "message": "ST01 must be 835"}],
        )
    return row, existed


def _audit_run(
    session: Session, edi_file: EdiFile, event: str, outcome: AuditOutcome, details: dict[str, Any]
) -> None:
    from claims_server.security.audit import audit_event

    audit_event(
        session,
        action=AuditAction.EXECUTE,
        event_type=f"remittance.{event}",
        entity_type="edi_file",
        entity_id=edi_file.public_id,
        outcome=outcome,
        details=details,
    )


def run_posting(
    factory: sessionmaker[Session],
    edi_file_id: int,
    *,
    dry_run: bool = False,
    checkpoint: Checkpoint | None = None,
) -> PostingReport:
    """Post a stored 835 in one transaction; on failure mark the file failed (see module doc).

    ``checkpoint`` also hears ``"before_commit"`` (everything written, not committed) and
    ``"after_commit"``. A unique-key race with another worker posting the same payment is
    retried once: the retry finds the other worker's posting and reports a duplicate.
    """
    for attempt in (1, 2):
        try:
            with unit_of_work(factory) as session:
                report = post_remittance(session, edi_file_id, dry_run=dry_run, checkpoint=checkpoint)
                if checkpoint is not None and not dry_run:
                    checkpoint("before_commit", report.summary())
            break
        except RemittancePostingError as exc:
            return _record_failure(factory, edi_file_id, exc, dry_run=dry_run)
        except IntegrityError:
            if attempt == 2:
                raise
        except (DataError, OverflowError, OperationalError) as exc:
            # A value the database cannot hold (numeric out of range; SQLite's "integer
            # overflow" in a SUM). The parser's limits (edi.numbers) should have refused it
            # first; if one slips through, the outcome is the same every time, so the file
            # ends failed with the reason instead of staying "received" behind a 500. The
            # driver's message is not kept: it can quote the statement's parameters.
            if isinstance(exc, OperationalError) and "integer overflow" not in str(exc.orig):
                raise
            failure = RemittancePostingError(
                f"the database refused a value of this file ({type(exc).__name__}); nothing was posted",
                rule="value_out_of_range",
            )
            return _record_failure(factory, edi_file_id, failure, dry_run=dry_run)
    if checkpoint is not None and not dry_run:
        checkpoint("after_commit", report.summary())
    if dry_run:
        with unit_of_work(factory) as session:
            edi_file = session.get(EdiFile, edi_file_id)
            assert edi_file is not None
            _audit_run(session, edi_file, "dry_run", AuditOutcome.SUCCESS, report.summary())
    return report


def _record_failure(
    factory: sessionmaker[Session], edi_file_id: int, exc: RemittancePostingError, *, dry_run: bool
) -> PostingReport:
    error = {"rule": exc.rule, "message": exc.detail[:500], "errors": exc.errors[:20]}
    if "checks" in exc.extra:
        error["checks"] = exc.extra["checks"]
    with unit_of_work(factory) as session:
        edi_file = session.get(EdiFile, edi_file_id)
        if edi_file is None:
            raise NotFound(f"no EDI file with id {edi_file_id}")
        if not dry_run:
            edi_file.status = EdiFileStatus.FAILED
            edi_file.processed_at = utcnow()
            edi_file.error_summary = error
        _audit_run(
            session,
            edi_file,
            "dry_run" if dry_run else "post",
            AuditOutcome.SERIOUS_FAILURE,
            {"rule": exc.rule},
        )
        return PostingReport(
            edi_file_id=edi_file.id,
            edi_file_public_id=edi_file.public_id,
            dry_run=dry_run,
            status="failed",
            error=error,
        )


def receive_and_post(
    factory: sessionmaker[Session],
    content: bytes,
    *,
    stored_name: str | None = None,
    dry_run: bool = False,
    checkpoint: Checkpoint | None = None,
) -> PostingReport:
    """Store the bytes (committed first), then post them in their own transaction."""
    with unit_of_work(factory) as session:
        row, _ = store_835(session, content, stored_name=stored_name)
        file_id = row.id
    return run_posting(factory, file_id, dry_run=dry_run, checkpoint=checkpoint)


# -- reading ------------------------------------------------------------------------------------


def list_remittances(
    session: Session,
    *,
    limit: int = 50,
    cursor: str | None = None,
    state: str | None = None,
    newest_first: bool = False,
) -> Page[Remittance]:
    """Remittances in insertion order (or newest first), one keyset page (``state``: received, posted,
    failed, held)."""
    from claims_server.api_common.pagination import paginate

    query = scope_query(select(Remittance), current_principal(), Remittance)
    if state is not None:
        query = query.where(Remittance.state == state)
    return paginate(
        session,
        query,
        Remittance.id,
        limit=limit,
        cursor=cursor,
        filters={"state": state, "newest_first": newest_first or None},
        descending=newest_first,
    )


def get_remittance(session: Session, public_id: str) -> Remittance:
    remittance = find_owned(session, Remittance, public_id)
    if remittance is None:
        raise NotFound(f"no remittance {public_id}")
    return remittance


def remittance_summary_json(session: Session, remittance: Remittance) -> dict[str, Any]:
    """The list view of a remittance: the payment and its counts."""
    claims = session.scalar(
        select(func.count()).select_from(ClaimPayment).where(ClaimPayment.remittance_id == remittance.id)
    )
    unmatched = session.scalar(
        select(func.count())
        .select_from(ClaimPayment)
        .where(ClaimPayment.remittance_id == remittance.id, ClaimPayment.claim_id.is_(None))
    )
    held = session.scalar(
        select(func.count())
        .select_from(ClaimPayment)
        .where(
            ClaimPayment.remittance_id == remittance.id,
            ClaimPayment.adjudication_state == AdjudicationState.HELD,
        )
    )
    return {
        "id": remittance.public_id,
        "state": remittance.state.value,
        "edi_file": remittance.edi_file.public_id,
        "trace_number": remittance.trace_number,
        "payer_identifier": remittance.payer_identifier,
        "payer": remittance.payer.public_id if remittance.payer is not None else None,
        "payer_name": remittance.payer_name,
        "payment": format_cents(remittance.payment_amount_cents),
        "payment_method": remittance.payment_method,
        "payment_date": remittance.payment_date.isoformat() if remittance.payment_date else None,
        "posted_at": remittance.posted_at.isoformat() if remittance.posted_at else None,
        "claims": int(claims or 0),
        "unmatched_claims": int(unmatched or 0),
        "held_claims": int(held or 0),
    }


def _explain(group: str, reason: str) -> dict[str, Any]:
    from coding.adjustment_codes import lookup

    carc = lookup("carc", reason)
    grp = lookup("group", group)
    return {
        "group": group,
        "reason": reason,
        "group_meaning": grp.meaning if grp is not None else None,
        "meaning": carc.meaning if carc is not None else None,
        "patient_explanation": carc.patient_explanation if carc is not None else None,
        "biller_action": carc.biller_action if carc is not None else None,
    }


def _adjustments_json(adjustments: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            **_explain(a.group_code.value, a.reason_code),
            "amount": format_cents(a.amount_cents),
            "quantity": a.quantity,
        }
        for a in adjustments
    ]


def remittance_detail_json(session: Session, remittance: Remittance) -> dict[str, Any]:
    """Claims, lines and adjustments (explained), what was posted, and the open work items."""
    from coding.adjustment_codes import lookup

    payments = list(
        session.scalars(
            select(ClaimPayment)
            .where(ClaimPayment.remittance_id == remittance.id)
            .order_by(ClaimPayment.position)
            .options(
                selectinload(ClaimPayment.adjustments),
                selectinload(ClaimPayment.claim),
                selectinload(ClaimPayment.line_payments).selectinload(LinePayment.adjustments),
                selectinload(ClaimPayment.line_payments).selectinload(LinePayment.service_line),
            )
        )
    )
    entries: dict[int | None, list[dict[str, Any]]] = {}
    rows = session.execute(
        select(
            JournalEntry.claim_payment_id,
            JournalEntry.public_id,
            JournalEntry.event_type,
            JournalEntry.idempotency_key,
            Account.code,
            Posting.amount_cents,
            Posting.service_line_id,
        )
        .join(Posting, Posting.journal_entry_id == JournalEntry.id)
        .join(Account, Account.id == Posting.account_id)
        .where(JournalEntry.remittance_id == remittance.id)
        .order_by(JournalEntry.id, Posting.id)
    )
    by_entry: dict[str, dict[str, Any]] = {}
    for cp_id, entry_id, event, key, account, cents, line_id in rows:
        entry = by_entry.get(entry_id)
        if entry is None:
            entry = {"entry": entry_id, "event_type": event.value, "idempotency_key": key, "postings": []}
            by_entry[entry_id] = entry
            entries.setdefault(cp_id, []).append(entry)
        entry["postings"].append(
            {"account": account, "amount": format_cents(cents), "service_line_id": line_id}
        )
    items: dict[int, list[dict[str, Any]]] = {}
    for item in session.scalars(
        select(WorkItem).where(WorkItem.claim_payment_id.in_([p.id for p in payments] or [0]))
    ):
        items.setdefault(item.claim_payment_id or 0, []).append(
            {
                "id": item.public_id,
                "queue": item.queue.value,
                "status": item.status.value,
                "reason_codes": list(item.reason_codes or []),
                "recommended_action": item.recommended_action,
            }
        )
    reversed_ids = [p.reverses_claim_payment_id for p in payments if p.reverses_claim_payment_id]
    reversed_positions: dict[int, str] = {
        cp_id: f"{trace}:{position}"
        for cp_id, trace, position in session.execute(
            select(ClaimPayment.id, Remittance.trace_number, ClaimPayment.position)
            .join(Remittance, Remittance.id == ClaimPayment.remittance_id)
            .where(ClaimPayment.id.in_(reversed_ids or [0]))
        )
    }
    claims = []
    for p in payments:
        claims.append(
            {
                "position": p.position,
                "patient_control_number": p.patient_control_number,
                "claim": p.claim.public_id if p.claim is not None else None,
                "matched": p.claim is not None,
                "status_code": p.status_code,
                "charge": format_cents(p.charge_cents),
                "paid": format_cents(p.paid_cents),
                "patient_responsibility": (
                    format_cents(p.patient_responsibility_cents)
                    if p.patient_responsibility_cents is not None
                    else None
                ),
                "payer_claim_control_number": p.payer_claim_control_number,
                # Where this adjudication stands in its payer's history of the claim.
                "adjudication_kind": p.adjudication_kind.value if p.adjudication_kind else None,
                "adjudication_state": p.adjudication_state.value if p.adjudication_state else None,
                "hold_reason": p.hold_reason.value if p.hold_reason else None,
                "reverses_position": reversed_positions.get(p.reverses_claim_payment_id)
                if p.reverses_claim_payment_id
                else None,
                "decided_at": p.decided_at.isoformat() if p.decided_at else None,
                "decided_by": p.decided_by,
                "crossover_payer_name": p.crossover_payer_name,
                "forwarded_to_next_payer": p.crossover_payer_name is not None
                or p.status_code in ("19", "20", "21"),
                "adjustments": _adjustments_json(p.adjustments),
                "lines": [
                    {
                        "position": lp.position,
                        "procedure": lp.procedure_code,
                        "modifiers": [
                            m for m in (lp.modifier1, lp.modifier2, lp.modifier3, lp.modifier4) if m
                        ],
                        "line_control_number": lp.line_control_number,
                        "matched": lp.service_line_id is not None,
                        "service_line_number": lp.service_line.line_number if lp.service_line else None,
                        "charge": format_cents(lp.charge_cents),
                        "paid": format_cents(lp.paid_cents),
                        "allowed": format_cents(lp.allowed_cents) if lp.allowed_cents is not None else None,
                        "adjustments": _adjustments_json(lp.adjustments),
                        "remarks": [
                            {
                                "code": code,
                                "meaning": (entry.meaning if (entry := lookup("rarc", code)) else None),
                            }
                            for code in (lp.remark_codes or [])
                        ],
                    }
                    for lp in p.line_payments
                ],
                "posted": entries.get(p.id, []),
                "work_items": items.get(p.id, []),
            }
        )
    data = remittance_summary_json(session, remittance)
    data["claim_payments"] = claims
    data["provider_adjustments"] = provider_adjustments_json(session, remittance)
    data["remittance_postings"] = entries.get(None, [])
    data["unmatched"] = [c for c in claims if not c["matched"] or not all(ln["matched"] for ln in c["lines"])]
    return data


def provider_adjustments_json(session: Session, remittance: Remittance) -> list[dict[str, Any]]:
    """Each PLB adjustment of ``remittance``: its reason (code and words), its amount, what its
    reference names and the reconciliation item it opened (the postings are in
    ``remittance_postings``).

    The reference PLB03-2 itself is left out: it may carry a member id (Medicare's "original
    ICN and Medicare ID", CMS CR 7499's HIC number in positions 20-39; ``remittance.plb``), so
    only what it was matched to is shown: ``reference_kind`` (claim, payer_claim, other, none),
    the claim's public id and the identifier of ours it named (the claim's patient control
    number, or the payer's claim control number of the matched payment).
    """
    adjustments = sorted(remittance.provider_adjustments, key=lambda a: a.id)
    if not adjustments:
        return []
    ids = [a.id for a in adjustments]
    claim_ids = sorted({a.claim_id for a in adjustments if a.claim_id is not None})
    claims: dict[int, tuple[str, str]] = {
        row.id: (row.public_id, row.patient_control_number)
        for row in session.execute(
            select(Claim.id, Claim.public_id, Claim.patient_control_number).where(
                Claim.id.in_(claim_ids or [0])
            )
        )
    }
    payment_ids = sorted({a.claim_payment_id for a in adjustments if a.claim_payment_id is not None})
    payer_claim_numbers: dict[int, str | None] = {
        cp_id: number
        for cp_id, number in session.execute(
            select(ClaimPayment.id, ClaimPayment.payer_claim_control_number).where(
                ClaimPayment.id.in_(payment_ids or [0])
            )
        )
    }
    items: dict[int, WorkItem] = {
        item.provider_adjustment_id: item
        for item in session.scalars(
            select(WorkItem).where(WorkItem.provider_adjustment_id.in_(ids)).order_by(WorkItem.id)
        )
        if item.provider_adjustment_id is not None
    }
    shown = []
    for a in adjustments:
        claim = claims.get(a.claim_id) if a.claim_id is not None else None
        if a.reference_kind == ReferenceKind.CLAIM.value:
            matched = claim[1] if claim is not None else None
        elif a.reference_kind == ReferenceKind.PAYER_CLAIM.value and a.claim_payment_id is not None:
            matched = payer_claim_numbers.get(a.claim_payment_id)
        else:
            matched = None
        item = items.get(a.id)
        shown.append(
            {
                "provider_identifier": a.provider_identifier,
                "fiscal_period_date": a.fiscal_period_date.isoformat() if a.fiscal_period_date else None,
                "reason": a.reason_code,
                "reason_label": guide_for(a.reason_code).label,
                "amount": format_cents(a.amount_cents),
                "reference_kind": a.reference_kind,
                "claim": claim[0] if claim is not None else None,
                "matched_identifier": matched,
                "work_item": (
                    {"id": item.public_id, "status": item.status.value} if item is not None else None
                ),
            }
        )
    return shown


# -- a person's decision on a held adjudication ---------------------------------------------------

Decision = Literal["post", "reject"]


def decide_held(session: Session, claim_payment_id: int, decision: Decision, *, actor: str) -> dict[str, Any]:
    """Post or reject the held adjudication ``claim_payment_id`` (a supervisor's decision).

    ``post``: it replaces the current adjudication of its claim and payer (the current one's
    entry is mirrored and it becomes ``superseded``; the held one's hold is mirrored and it
    posts), then the claim's other held adjudications are tried again. Refused with
    :class:`Conflict`, nothing changed, when it would leave a payer's A/R below zero, when
    it is a reversal that matches nothing, or when it is not held (decided already).
    ``reject``: its hold entry is mirrored (its money leaves cash clearing and unapplied
    payments) and it becomes ``rejected``. Either way ``decided_at``/``decided_by`` are set,
    its possible-duplicate item is resolved and the decision is audited. Does not commit.
    """
    payment = session.get(ClaimPayment, claim_payment_id)
    if payment is None:
        raise NotFound(f"no claim payment {claim_payment_id}")
    outcomes = _decide(session, [payment], decision, actor=actor)
    return outcomes[0]


def decide_held_remittance(
    session: Session, remittance_id: int, decision: Decision, *, actor: str
) -> dict[str, Any]:
    """Decide a remittance held as a whole (every claim a possible duplicate): each held claim of it.

    All or nothing: a ``post`` one of whose claims would overdraw is refused with
    :class:`Conflict` and nothing changes. The remittance is ``posted`` afterwards and its
    work item resolved.
    """
    remittance = session.get(Remittance, remittance_id)
    if remittance is None:
        raise NotFound(f"no remittance {remittance_id}")
    if remittance.state is not RemittanceState.HELD:
        raise Conflict(
            f"remittance {remittance.public_id} is {remittance.state.value}, not held",
            errors=[{"field": "remittance", "rule": "held", "message": "only a held remittance is decided"}],
            current_state=remittance.state.value,
        )
    payments = list(
        session.scalars(
            select(ClaimPayment)
            .where(
                ClaimPayment.remittance_id == remittance.id,
                ClaimPayment.adjudication_state == AdjudicationState.HELD,
            )
            .order_by(ClaimPayment.id)
        )
    )
    outcomes = _decide(
        session,
        payments,
        decision,
        actor=actor,
        remittance_note=f"{decision} decided for the whole remittance by {actor}",
    )
    if remittance.state is RemittanceState.HELD:  # nothing was held any more: decided all the same
        remittance.state = RemittanceState.POSTED
    return {
        "remittance": remittance.public_id,
        "decision": decision,
        "state": remittance.state.value,
        "decided_by": actor,
        "claims": outcomes,
    }


def _decide(
    session: Session,
    payments: Sequence[ClaimPayment],
    decision: str,
    *,
    actor: str,
    remittance_note: str | None = None,
) -> list[dict[str, Any]]:
    from claims_server.ledger.services import account_ids
    from claims_server.security.audit import audit_events_bulk

    if decision not in ("post", "reject"):
        raise Unprocessable(
            "decision must be post or reject",
            errors=[{"field": "decision", "rule": "one_of", "message": "must be post or reject"}],
        )
    actor = (actor or "").strip()[:100]
    if not actor:
        raise Unprocessable(
            "a decision names who made it",
            errors=[{"field": "actor", "rule": "required", "message": "must not be empty"}],
        )
    for payment in payments:
        if payment.adjudication_state is not AdjudicationState.HELD:
            what = payment.adjudication_state.value if payment.adjudication_state else "not an adjudication"
            raise Conflict(
                f"claim payment {payment.id} is {what}, not held"
                + (f" (decided by {payment.decided_by})" if payment.decided_by else ""),
                errors=[
                    {
                        "field": "claim_payment",
                        "rule": "held",
                        "message": "only a held adjudication is decided",
                    }
                ],
                current_state=what,
            )
    accounts = account_ids(session)
    engine, adjudications = engine_for(session, payments, accounts=accounts)
    current_before = {
        a.id: (engine.encounters[a.encounter].current(a.payer_id) or None) for a in adjudications
    }
    try:
        for adjudication in adjudications:
            engine.decide(adjudication, decision)
    except Refused as exc:
        raise Conflict(
            f"{decision} refused, nothing changed: {exc.message}",
            errors=[{"field": "decision", "rule": exc.rule, "message": exc.message}],
            rule=exc.rule,
        ) from None
    today = utcnow().date()
    events: list[dict[str, Any]] = []
    decided = {a.id for a in adjudications}
    note = f"{decision} decided by {actor}"
    followup = Followup(
        session,
        events,
        resolution=lambda a, default: note if a.id in decided else default,
        **({"remittance_note": remittance_note} if remittance_note else {}),
    )
    write_entries(session, engine.entries, accounts=accounts, effective_date=today)
    stored = [a for enc in engine.encounters.values() for a in enc.history if a.changed]
    write_history(session, stored)
    with session.no_autoflush:
        followup.handle(engine.events)
    now = utcnow()
    outcomes = []
    for payment, adjudication in zip(payments, adjudications, strict=True):
        payment.decided_at = now
        payment.decided_by = actor
        superseded = current_before.get(adjudication.id)
        claim = session.get(Claim, payment.claim_id) if payment.claim_id is not None else None
        outcome = {
            "claim_payment_id": payment.id,
            "decision": decision,
            "state": adjudication.state.value if adjudication.state else None,
            "kind": adjudication.kind.value if adjudication.kind else None,
            "claim": claim.public_id if claim is not None else None,
            "claim_state": claim.state.value if claim is not None else None,
            "remittance": payment.remittance.public_id,
            "superseded_claim_payment_id": superseded.id
            if decision == "post"
            and superseded is not None
            and superseded.state is AdjudicationState.SUPERSEDED
            else None,
            "entries": [e.key for e in engine.entries if e.owner is adjudication],
            "decided_by": actor,
            "decided_at": now.isoformat(),
        }
        outcomes.append(outcome)
        events.append(
            {
                "action": AuditAction.UPDATE,
                "event_type": f"remittance.held_{decision}",
                "entity_type": "remittance",
                "entity_id": payment.remittance.public_id,
                "patient_id": claim.patient_id if claim is not None else None,
                "details": {
                    "claim_payment_id": payment.id,
                    "clp_position": payment.position,
                    "claim": outcome["claim"],
                    "decision": decision,
                    "decided_by": actor,
                    "hold_reason": payment.hold_reason.value if payment.hold_reason else None,
                    "state": outcome["state"],
                    "superseded_claim_payment_id": outcome["superseded_claim_payment_id"],
                },
            }
        )
    audit_events_bulk(session, events)
    followup.finish()
    session.flush()
    return outcomes
