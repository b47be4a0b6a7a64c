"""Remittance services: store an 835, post it in its own transaction, read what was posted.

``run_posting(factory, edi_file_id)`` is the one way the API, the CLI, the Celery task
and the clearinghouse inbox post a stored file: one transaction for the whole file;
when posting fails (unreadable, a completeness check) the transaction is rolled back and
a second, short one marks the file ``failed`` with the reason and audits the failure.
``store_835`` keeps the raw bytes (encrypted) with their SHA-256 first, so nothing is
lost even if posting never succeeds; the same bytes stored twice are one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from claims_server.api_common.pagination import Page
from claims_server.db import unit_of_work
from claims_server.errors import NotFound, Unprocessable
from claims_server.models import (
    Account,
    AuditAction,
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
from claims_server.models.security import AuditOutcome
from claims_server.remittance.posting import (
    Checkpoint,
    PostingReport,
    RemittancePostingError,
    post_remittance,
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
    """Remittances in insertion order (or newest first), one keyset page (``state``: received, posted, failed)."""
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
    data["provider_adjustments"] = [
        {
            "provider_identifier": a.provider_identifier,
            "reason": a.reason_code,
            "reference": a.reference,
            "amount": format_cents(a.amount_cents),
        }
        for a in remittance.provider_adjustments
    ]
    data["remittance_postings"] = entries.get(None, [])
    data["unmatched"] = [c for c in claims if not c["matched"] or not all(ln["matched"] for ln in c["lines"])]
    return data
