"""Work queue services: open items (idempotently), list and count them, assign, snooze,
comment and resolve them, and sweep the ledger and claims for the computed queues.

An item's explanation of its codes is its first comment, written by the system (no
author): the thread then reads as the biller sees it, the system's reading of the 835
first and the people's notes after it, without a second text column on ``work_items``.

Nothing here commits: the caller's unit of work does, so an item opened while an 835 is
posted is saved with the posting or not at all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Date, Select, String, and_, case, cast, func, inspect, or_, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased, object_session
from sqlalchemy.sql.functions import FunctionElement

from claims_server.api_common.audit import audit
from claims_server.api_common.fields import cents_to_money
from claims_server.api_common.pagination import Page, decode_cursor, encode_cursor, paginate
from claims_server.errors import Conflict, NotFound, Unprocessable
from claims_server.models import (
    RECEIVABLE_ACCOUNTS,
    Account,
    AccountCode,
    AuditAction,
    Claim,
    ClaimPayment,
    ClaimState,
    Coverage,
    Patient,
    Payer,
    Posting,
    ProviderAdjustment,
    Remittance,
    ServiceLine,
    User,
    WorkItem,
    WorkItemComment,
)
from claims_server.models.common import new_public_id, utcnow
from claims_server.models.encrypted import Sealed, encrypted_attributes
from claims_server.models.remittance import AdjudicationKind, AdjudicationState
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.security.fields import cipher_for, normalize_text
from claims_server.workqueue.recommend import (
    Recommendation,
    RecommendedAction,
    reason_code_labels,
    recommend_action,
    recommend_for_codes,
)

__all__ = [
    "Recommendation",
    "RecommendedAction",
    "WorkItemFilters",
    "add_comment",
    "assign",
    "days_in_queue",
    "explanation_of",
    "list_work_items",
    "open_work_item",
    "queue_counts",
    "reason_code_labels",
    "recommend_action",
    "recommend_for_codes",
    "resolve",
    "snooze",
]


def _audit(
    session: Session,
    item: WorkItem,
    event: str,
    details: dict[str, Any],
    audit_events: list[dict[str, Any]] | None = None,
) -> None:
    """Audit ``event`` on ``item`` now, or append it to ``audit_events`` (written in bulk by the caller)."""
    record = {
        "action": AuditAction.CREATE if event == "open" else AuditAction.UPDATE,
        "event_type": f"work_item.{event}",
        "entity_type": "work_item",
        "entity_id": item.public_id,
        "patient_id": item.claim.patient_id if item.claim is not None else None,
        "details": {"queue": item.queue.value, **details},
    }
    if audit_events is not None:
        audit_events.append(record)
    else:
        audit(session, **record)


def open_work_item(
    session: Session,
    *,
    queue: WorkQueue,
    claim: Claim | None = None,
    claim_payment: ClaimPayment | None = None,
    reason_codes: list[str],
    recommended_action: str,
    explanation: str,
    dedupe_key: str,
    priority: int = 0,
    due_date: date | None = None,
    audit_events: list[dict[str, Any]] | None = None,
    known_new: bool = False,
) -> WorkItem:
    """Open a work item, or return the one already opened under ``dedupe_key``.

    Idempotent: the process that raises items (835 posting, a sweep) may run twice and
    the second run finds the first run's item, unchanged, with no second audit record.
    Two transactions racing on the same key cannot both commit (``dedupe_key`` is
    UNIQUE): the loser's unit of work fails as a whole and its rerun finds the item.
    With ``audit_events`` the audit event is appended there for the caller to write with
    ``audit_events_bulk`` (a remittance opening thousands of items) instead of now.
    """
    if not dedupe_key.strip():
        raise Unprocessable(
            "a work item needs a dedupe key",
            errors=[{"field": "dedupe_key", "rule": "required", "message": "must not be empty"}],
        )
    # ``known_new``: the caller looked the key up with many others (835 posting, one query
    # per chunk of claims); the UNIQUE key still refuses a second item.
    existing = (
        None if known_new else session.scalar(select(WorkItem).where(WorkItem.dedupe_key == dedupe_key))
    )
    if existing is not None:
        return existing
    if claim is None and claim_payment is not None and claim_payment.claim is not None:
        claim = claim_payment.claim
    item = WorkItem(
        public_id=new_public_id(),
        queue=WorkQueue(queue),
        status=WorkItemStatus.OPEN,
        dedupe_key=dedupe_key,
        claim=claim,
        claim_payment=claim_payment,
        reason_codes=list(reason_codes),
        recommended_action=str(recommended_action),
        priority=priority,
        due_date=due_date,
        opened_at=utcnow(),
    )
    session.add(item)
    if explanation.strip():
        item.comments.append(
            WorkItemComment(author_user_id=None, body=explanation, created_at=item.opened_at)
        )
    _audit(
        session,
        item,
        "open",
        {
            "reason_codes": list(reason_codes),
            "recommended_action": str(recommended_action),
            "claim": claim.public_id if claim is not None else None,
        },
        audit_events,
    )
    return item


# -- reading ---------------------------------------------------------------------------------------


class ResolutionCode(StrEnum):
    """How a work item ended; stored first in ``WorkItem.resolution`` (``"<code>: <note>"``)."""

    CORRECTED_AND_RESUBMITTED = "corrected_and_resubmitted"
    APPEALED = "appealed"
    BILLED_SECONDARY = "billed_secondary"
    BILLED_PATIENT = "billed_patient"
    WRITTEN_OFF = "written_off"
    PAYMENT_RECEIVED = "payment_received"
    BALANCE_SETTLED = "balance_settled"
    NO_ACTION_NEEDED = "no_action_needed"


#: Statuses a caller can filter by; ``active`` is open plus snoozed items whose snooze ended.
STATUS_FILTERS = ("active", "open", "snoozed", "resolved", "all")

_REASON_RE = re.compile(r"^[A-Z0-9]{1,3}(-[A-Z0-9]{1,5})?$|^[A-Z]{1,2}[0-9]{1,4}$")


def explanation_of(item: WorkItem) -> str | None:
    """The system's explanation of the item's codes (its first, author-less comment)."""
    for comment in item.comments:
        if comment.author_user_id is None:
            return comment.body
    return None


def _as_utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def days_in_queue(item: WorkItem, today: date | None = None) -> int:
    """Whole days from opening to ``today`` (or to resolution, for a resolved item)."""
    end = item.resolved_at.date() if item.resolved_at is not None else (today or utcnow().date())
    return max(0, (end - item.opened_at.astimezone(UTC).date()).days)


def is_snoozed(item: WorkItem, now: datetime | None = None) -> bool:
    """Snoozed and the snooze has not ended (a snooze that ended counts as open again)."""
    moment = now or utcnow()
    return (
        item.status == WorkItemStatus.SNOOZED
        and item.snoozed_until is not None
        and item.snoozed_until > moment
    )


def effective_status(item: WorkItem, now: datetime | None = None) -> WorkItemStatus:
    """``open`` for an item whose snooze ended, else the stored status."""
    if item.status == WorkItemStatus.SNOOZED and not is_snoozed(item, now):
        return WorkItemStatus.OPEN
    return item.status


def _receivable_balance(
    parent: Any, accounts: Sequence[AccountCode] = RECEIVABLE_ACCOUNTS, payer_id: Any = None
) -> Any:
    """Correlated subquery: the open A/R (insurance + patient) of the item's encounter, in cents.

    ``accounts`` / ``payer_id`` narrow it to the balance an item is about (``BALANCE_QUEUES``:
    the patient's share, what the payers owe, what the denying payer owes).

    The money of one encounter stays on the claim that was charged (``receivable_claim_id``):
    a next-payer claim or a replacement carries none of its own. So the sum runs over the
    item's claim, its original and the original's original (a replacement of a secondary
    claim): an item of a secondary claim shows what is still owed on the visit, never the
    0.00 or the negative of the claim's own (empty or one-sided) postings.
    """
    stmt = (
        select(func.coalesce(func.sum(Posting.amount_cents), 0))
        .join(Account, Posting.account_id == Account.id)
        .where(
            Account.code.in_([str(a) for a in accounts]),
            Posting.claim_id.in_([WorkItem.claim_id, Claim.original_claim_id, parent.original_claim_id]),
        )
    )
    if payer_id is not None:
        stmt = stmt.where(Posting.payer_id == payer_id)
    return stmt.correlate(WorkItem, Claim, parent, ClaimPayment).scalar_subquery()


def _approval_amount() -> Any:
    """Correlated subquery: the amount an approval item's request asks for, in cents."""
    from claims_server.models.workqueue import ApprovalRequest

    return (
        select(ApprovalRequest.amount_cents)
        .where(ApprovalRequest.id == WorkItem.approval_request_id)
        .correlate(WorkItem)
        .scalar_subquery()
    )


#: Days from the first date of service to the timely-filing limit when the claim's payer has
#: none set (``Payer.timely_filing_days`` defaults to it too): a year, the common commercial limit.
DEFAULT_TIMELY_FILING_DAYS = 365


class add_days(FunctionElement[date]):
    """SQL: ``date + days`` (a DATE and an integer column) on both backends."""

    type = Date()
    inherit_cache = True


@compiles(add_days)
def _add_days_default(element: add_days, compiler: Any, **kw: Any) -> str:
    day, days = list(element.clauses)
    return f"({compiler.process(day, **kw)} + CAST({compiler.process(days, **kw)} AS INTEGER))"


@compiles(add_days, "sqlite")
def _add_days_sqlite(element: add_days, compiler: Any, **kw: Any) -> str:
    day, days = list(element.clauses)
    return f"date({compiler.process(day, **kw)}, '+' || {compiler.process(days, **kw)} || ' days')"


@dataclass(frozen=True)
class ItemColumns:
    """The SQL expressions of a work-item row besides ``work_items`` itself (see ``item_joins``)."""

    payer_id: Any
    payer_name: Any
    amount: Any
    patient_id: Any
    date_of_service: Any
    filing_deadline: Any
    claim_number: Any
    claim_state: Any


def item_joins(stmt: Select[Any]) -> tuple[Select[Any], ItemColumns]:
    """``stmt`` (selecting from ``work_items``) outer-joined to what a queue row shows, and
    those values as SQL expressions (``ItemColumns``): the filters and the sort use the
    same expressions as the page, so what is sorted is what is shown (see ``_item_parts``)."""
    joins, columns = _item_parts()
    for target, onclause in joins:
        stmt = stmt.outerjoin(target, onclause)
    return stmt, columns


@functools.cache
def _item_parts() -> tuple[tuple[tuple[Any, Any], ...], ItemColumns]:
    """The outer joins (target, ON clause) and the row's expressions of ``item_joins``, built
    once per process: building the aliases and the CASE costs more than running the query
    for a page of 50 (tens of milliseconds), and the expressions never change.

    The payer is the one whose money the item is about: the one the item names itself (a
    payer credit), the payer of its remittance (the claim payment's, else the item's own: a
    PLB reconciliation item or a held remittance names its remittance and no claim payment),
    else the claim's coverage's payer (an item raised from the claim alone: unpaid, patient
    balance). The amount is, for a PLB reconciliation item, the size of the adjustment
    (PLB04 without its sign: the item's explanation says whether the payer kept or added
    it); for a held remittance, the payment held (BPR02); for an item of a claim, the open
    A/R of its encounter (``_receivable_balance``); else the unmatched claim payment's CLP04
    (the money received, not the billed CLP03: that is what waits in unapplied payments).
    The date of service is the claim's first line's (an institutional claim without line
    dates: its statement period's start); the filing deadline is that date plus the
    timely-filing days of the payer the claim was filed with.
    """
    coverage = aliased(Coverage, name="wq_coverage")
    remittance = aliased(Remittance, name="wq_remittance")
    adjustment = aliased(ProviderAdjustment, name="wq_plb")
    parent = aliased(Claim, name="wq_parent")
    payer = aliased(Payer, name="wq_payer")
    filing_payer = aliased(Payer, name="wq_filing_payer")
    payer_id = func.coalesce(WorkItem.payer_id, remittance.payer_id, coverage.payer_id)
    joins = (
        (Claim, WorkItem.claim_id == Claim.id),
        (parent, Claim.original_claim_id == parent.id),
        (coverage, Claim.coverage_id == coverage.id),
        (filing_payer, coverage.payer_id == filing_payer.id),
        (ClaimPayment, WorkItem.claim_payment_id == ClaimPayment.id),
        (remittance, remittance.id == func.coalesce(ClaimPayment.remittance_id, WorkItem.remittance_id)),
        (adjustment, WorkItem.provider_adjustment_id == adjustment.id),
        (payer, payer.id == payer_id),
    )
    amount = case(
        (WorkItem.provider_adjustment_id.is_not(None), func.coalesce(func.abs(adjustment.amount_cents), 0)),
        # An approval item shows what the request asks for; a balance item the balance it is about.
        (WorkItem.approval_request_id.is_not(None), func.coalesce(_approval_amount(), 0)),
        (
            and_(WorkItem.claim_id.is_not(None), WorkItem.queue == WorkQueue.PATIENT_BALANCE),
            _receivable_balance(parent, (AccountCode.AR_PATIENT,)),
        ),
        (
            and_(
                WorkItem.claim_id.is_not(None),
                WorkItem.queue == WorkQueue.DENIED,
                ClaimPayment.payer_id.is_not(None),
            ),
            _receivable_balance(parent, (AccountCode.AR_INSURANCE,), ClaimPayment.payer_id),
        ),
        (
            and_(
                WorkItem.claim_id.is_not(None),
                WorkItem.queue.in_([q for q in BALANCE_QUEUES if q is not WorkQueue.PATIENT_BALANCE]),
            ),
            _receivable_balance(parent, (AccountCode.AR_INSURANCE,)),
        ),
        (WorkItem.claim_id.is_not(None), _receivable_balance(parent)),
        (
            and_(WorkItem.claim_payment_id.is_(None), WorkItem.remittance_id.is_not(None)),
            func.coalesce(remittance.payment_amount_cents, 0),
        ),
        else_=func.coalesce(ClaimPayment.paid_cents, 0),
    )
    first_line = (
        select(func.min(ServiceLine.service_date_from))
        .where(ServiceLine.claim_id == WorkItem.claim_id)
        .correlate(WorkItem)
        .scalar_subquery()
    )
    date_of_service = func.coalesce(first_line, Claim.statement_from, type_=Date)
    filing_deadline = add_days(
        date_of_service, func.coalesce(filing_payer.timely_filing_days, DEFAULT_TIMELY_FILING_DAYS)
    )
    return joins, ItemColumns(
        payer_id=payer_id,
        payer_name=payer.name,
        amount=amount,
        patient_id=func.coalesce(Claim.patient_id, WorkItem.patient_id),
        date_of_service=date_of_service,
        filing_deadline=filing_deadline,
        claim_number=Claim.patient_control_number,
        claim_state=Claim.state,
    )


def with_item_joins(stmt: Select[Any]) -> tuple[Select[Any], Any, Any]:
    """``item_joins`` as (joined statement, payer id, amount in cents)."""
    joined, columns = item_joins(stmt)
    return joined, columns.payer_id, columns.amount


@dataclass
class WorkItemFilters:
    """Filters of a work-item list; every field is optional."""

    queue: WorkQueue | None = None
    status: str = "active"
    payer_id: int | None = None
    assignee_user_id: int | None = None
    unassigned: bool = False
    reason: str | None = None
    min_age_days: int | None = None
    max_age_days: int | None = None
    min_amount_cents: int | None = None
    max_amount_cents: int | None = None
    sort: str | None = None  # one of SORT_COLUMNS; None: priority, then the longest waiting
    order: str = "asc"  # or "desc"


#: Columns a queue list can be sorted by (``sort=``), each with ``order=asc|desc``. Blanks (an
#: item without a claim has no date of service) come last either way; ties keep id order.
SORT_COLUMNS = (
    "claim",
    "patient",
    "payer",
    "date_of_service",
    "filing_deadline",
    "status",
    "amount",
    "days_in_queue",
    "due_date",
)
SORT_ORDERS = ("asc", "desc")


def check_sort(sort: str | None, order: str) -> None:
    """422 naming ``sort`` or ``order`` when either is not one the list knows."""
    if sort is not None and sort not in SORT_COLUMNS:
        raise Unprocessable(
            f"sort must be one of {', '.join(SORT_COLUMNS)}",
            errors=[{"field": "sort", "rule": "one_of", "message": "unknown sort column"}],
        )
    if order not in SORT_ORDERS:
        raise Unprocessable(
            "order must be asc or desc",
            errors=[{"field": "order", "rule": "one_of", "message": "asc or desc"}],
        )


def work_item_select(filters: WorkItemFilters, now: datetime | None = None) -> Select[tuple[WorkItem]]:
    """``SELECT work_items ...`` narrowed by ``filters`` (no order, no limit)."""
    return _filtered_select(select(WorkItem), filters, now)[0]


#: Sorts on ``work_items``' own columns: with no payer or amount filter, such a page needs no join.
_OWN_COLUMN_SORTS = frozenset({None, "days_in_queue", "due_date"})


def _needs_joins(filters: WorkItemFilters) -> bool:
    """Whether the filters or the sort read a joined value (payer, amount, claim, dates)."""
    return (
        filters.payer_id is not None
        or filters.min_amount_cents is not None
        or filters.max_amount_cents is not None
        or filters.sort not in _OWN_COLUMN_SORTS
    )


def _filtered_select(
    base: Select[Any], filters: WorkItemFilters, now: datetime | None = None, *, joins: bool = True
) -> tuple[Select[Any], ItemColumns]:
    """``base`` (selecting from ``work_items``) joined and narrowed by ``filters``, and the row's
    expressions; ``joins=False`` leaves the joins out when the filters need none (``_needs_joins``)."""
    moment = now or utcnow()
    if joins or _needs_joins(filters):
        stmt, columns = item_joins(base)
    else:
        stmt, columns = base, _item_parts()[1]
    payer_id, amount = columns.payer_id, columns.amount
    if filters.queue is not None:
        stmt = stmt.where(WorkItem.queue == WorkQueue(filters.queue))
    woken = and_(WorkItem.status == WorkItemStatus.SNOOZED, WorkItem.snoozed_until <= moment)
    sleeping = and_(WorkItem.status == WorkItemStatus.SNOOZED, WorkItem.snoozed_until > moment)
    status_clause = {
        "active": or_(WorkItem.status == WorkItemStatus.OPEN, woken),
        "open": or_(WorkItem.status == WorkItemStatus.OPEN, woken),
        "snoozed": sleeping,
        "resolved": WorkItem.status == WorkItemStatus.RESOLVED,
        "all": None,
    }
    if filters.status not in status_clause:
        raise Unprocessable(
            f"status must be one of {', '.join(STATUS_FILTERS)}",
            errors=[{"field": "status", "rule": "one_of", "message": "unknown status filter"}],
        )
    clause = status_clause[filters.status]
    if clause is not None:
        stmt = stmt.where(clause)
    if filters.payer_id is not None:
        stmt = stmt.where(payer_id == filters.payer_id)
    if filters.unassigned:
        stmt = stmt.where(WorkItem.assignee_user_id.is_(None))
    elif filters.assignee_user_id is not None:
        stmt = stmt.where(WorkItem.assignee_user_id == filters.assignee_user_id)
    if filters.reason:
        code = filters.reason.strip().upper()
        if not _REASON_RE.match(code):
            raise Unprocessable(
                "reason must be a code such as CO-16, PR-1 or N290",
                errors=[{"field": "reason", "rule": "format", "message": "not an adjustment or remark code"}],
            )
        # The JSON list's text holds each code in double quotes on both backends.
        stmt = stmt.where(cast(WorkItem.reason_codes, String).like(f'%"{code}"%'))
    today = moment.astimezone(UTC).date()
    if filters.min_age_days is not None:
        stmt = stmt.where(
            WorkItem.opened_at < _as_utc_midnight(today - timedelta(days=filters.min_age_days - 1))
        )
    if filters.max_age_days is not None:
        stmt = stmt.where(
            WorkItem.opened_at >= _as_utc_midnight(today - timedelta(days=filters.max_age_days))
        )
    if filters.min_amount_cents is not None:
        stmt = stmt.where(amount >= filters.min_amount_cents)
    if filters.max_amount_cents is not None:
        stmt = stmt.where(amount <= filters.max_amount_cents)
    return stmt, columns


def find_work_items(
    session: Session, filters: WorkItemFilters, now: datetime | None = None
) -> list[WorkItem]:
    """Every item matching ``filters``: highest priority first, then the longest waiting."""
    stmt = work_item_select(filters, now).order_by(WorkItem.priority.desc(), WorkItem.opened_at, WorkItem.id)
    return list(session.scalars(stmt))


def list_work_items(
    session: Session, filters: WorkItemFilters, *, limit: int, cursor: str | None, now: datetime | None = None
) -> Page[WorkItem]:
    """One cursor page of matching items: in id order (the oldest first), or by ``filters.sort``.

    A sorted list pages by position (the cursor, signed and bound to the filters and the
    sort like every cursor, carries how many rows were shown): sorting by an amount or a
    date that changes while someone pages can move a row across a page boundary, which an
    id cursor cannot express; the id order keeps its keyset cursor.
    """
    check_sort(filters.sort, filters.order)
    if filters.sort is None:
        _no_jit(session)
        return paginate(
            session,
            _filtered_select(select(WorkItem), filters, now, joins=False)[0],
            WorkItem.id,
            limit=limit,
            cursor=cursor,
            filters=asdict(filters),
        )
    shown = decode_cursor(cursor, asdict(filters)) or 0
    items = sorted_work_items(session, filters, offset=shown, limit=limit + 1, now=now)
    next_cursor = encode_cursor(shown + limit, asdict(filters)) if len(items) > limit else None
    return Page(items[:limit], next_cursor)


#: Sort columns that can be blank (an item without a claim: unmatched money, a PLB, a credit).
_NULLABLE_SORTS = frozenset({"claim", "payer", "date_of_service", "filing_deadline", "status", "due_date"})


def _order_by(filters: WorkItemFilters, columns: ItemColumns) -> list[Any]:
    """ORDER BY of ``filters.sort``: blanks last in both orders, then the item id (a stable tie-break)."""
    if filters.sort is None and filters.queue == WorkQueue.APPEAL:
        # The appeal queue reads by filing deadline (docs/appeals.md): the soonest first.
        return [case((WorkItem.due_date.is_(None), 1), else_=0), WorkItem.due_date, WorkItem.id]
    if filters.sort is None:
        return [WorkItem.priority.desc(), WorkItem.opened_at, WorkItem.id]
    keys = {
        "claim": [columns.claim_number],
        "payer": [columns.payer_name],
        "date_of_service": [columns.date_of_service],
        "filing_deadline": [columns.filing_deadline],
        "status": [columns.claim_state, WorkItem.status],
        "amount": [columns.amount],
        "days_in_queue": [WorkItem.opened_at],
        "due_date": [WorkItem.due_date],
    }[filters.sort]
    descending = filters.order == "desc"
    if filters.sort == "days_in_queue":  # the most days in queue = the earliest opened
        descending = not descending
    out: list[Any] = []
    for key in keys:
        ordered = key.desc() if descending else key.asc()
        # NULLS LAST (PostgreSQL, SQLite >= 3.30) rather than a CASE on the key: a computed key
        # (a correlated MIN or SUM) would be evaluated twice per item.
        out.append(ordered.nulls_last() if filters.sort in _NULLABLE_SORTS else ordered)
    out.append(WorkItem.id)
    return out


def _patient_order(session: Session, filters: WorkItemFilters, now: datetime | None) -> list[int]:
    """Ids of the matching items by patient name (last, first), blanks last, ties in id order.

    Names are encrypted, so the database cannot order them: this reads the matching items'
    patient ids, decrypts each patient's name once (a column query: nothing is served, so
    no read is audited for patients not on the page) and sorts here.
    """
    unsorted = replace(filters, sort=None)
    stmt, columns = _filtered_select(select(WorkItem.id), unsorted, now, joins=False)
    if not _needs_joins(unsorted):  # only the claim is needed (its patient)
        stmt = stmt.outerjoin(Claim, WorkItem.claim_id == Claim.id)
    rows = session.execute(stmt.add_columns(columns.patient_id).order_by(WorkItem.id)).all()
    patient_ids = sorted({patient_id for _, patient_id in rows if patient_id is not None})
    names: dict[int, tuple[str, str]] = {}
    cipher = cipher_for(session)
    attrs = {a.key: a for a in encrypted_attributes(inspect(Patient))}

    def opened(name: str, public_id: str, value: Any) -> str:
        if value is None:
            return ""
        plain = cipher.open(attrs[name], public_id, value.stored if isinstance(value, Sealed) else value)
        return normalize_text(plain or "")

    for start in range(0, len(patient_ids), 500):
        chunk = patient_ids[start : start + 500]
        for patient_id, public_id, last, first in session.execute(
            select(Patient.id, Patient.public_id, Patient.last_name, Patient.first_name).where(
                Patient.id.in_(chunk)
            )
        ):
            names[patient_id] = (opened("last_name", public_id, last), opened("first_name", public_id, first))
    named = [(item_id, names[patient_id]) for item_id, patient_id in rows if patient_id in names]
    named.sort(key=lambda row: row[1], reverse=filters.order == "desc")  # stable: ties stay in id order
    return [item_id for item_id, _ in named] + [item_id for item_id, p in rows if p not in names]


def sorted_work_items(
    session: Session, filters: WorkItemFilters, *, offset: int, limit: int, now: datetime | None = None
) -> list[WorkItem]:
    """``limit`` matching items from position ``offset`` in ``filters.sort`` order (the queue page).

    Two steps: the ids of the page (only the joins the filters and the sort need, one
    narrow column through the sort), then those items' rows by primary key.
    """
    check_sort(filters.sort, filters.order)
    _no_jit(session)
    if filters.sort == "patient":
        ids = _patient_order(session, filters, now)[offset : offset + limit]
    else:
        stmt, columns = _filtered_select(select(WorkItem.id), filters, now, joins=False)
        ids = list(session.scalars(stmt.order_by(*_order_by(filters, columns)).offset(offset).limit(limit)))
    found = {i.id: i for i in session.scalars(select(WorkItem).where(WorkItem.id.in_(ids)))} if ids else {}
    return [found[i] for i in ids if i in found]


def count_work_items(session: Session, filters: WorkItemFilters, now: datetime | None = None) -> int:
    """How many items match ``filters`` (the sort is no filter: it adds no join to the count)."""
    _no_jit(session)
    stmt, _ = _filtered_select(select(WorkItem.id), replace(filters, sort=None), now, joins=False)
    return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def _no_jit(session: Session) -> None:
    """PostgreSQL: no JIT compilation for the rest of this transaction. The planner prices the
    queue's correlated sums (an amount per item) high enough to JIT-compile the query, which
    then spends seconds compiling what runs in milliseconds; an interactive page never gains."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


@dataclass(frozen=True)
class ItemRow:
    """What a queue row shows besides the item: payer, amount, date of service, filing deadline."""

    payer_id: int | None
    payer_name: str | None
    amount_cents: int
    date_of_service: date | None
    filing_deadline: date | None


def item_rows(session: Session, items: Sequence[WorkItem]) -> dict[int, ItemRow]:
    """item id → ``ItemRow`` for ``items``, in one query (the same expressions the sort uses)."""
    if not items:
        return {}
    stmt, c = item_joins(select(WorkItem.id))
    stmt = stmt.add_columns(c.payer_id, c.payer_name, c.amount, c.date_of_service, c.filing_deadline)
    out = {}
    for item_id, payer_id, payer_name, amount, dos, deadline in session.execute(
        stmt.where(WorkItem.id.in_([i.id for i in items]))
    ):
        out[item_id] = ItemRow(payer_id, payer_name, int(amount or 0), _as_date(dos), _as_date(deadline))
    return out


def row_to_json(row: ItemRow | None) -> dict[str, Any]:
    """The list's extra fields of an item: payer name, date of service, filing deadline."""
    if row is None:
        return {"payer_name": None, "date_of_service": None, "filing_deadline": None}
    return {
        "payer_name": row.payer_name,
        "date_of_service": row.date_of_service.isoformat() if row.date_of_service else None,
        "filing_deadline": row.filing_deadline.isoformat() if row.filing_deadline else None,
    }


def _as_date(value: Any) -> date | None:
    """A computed date (SQLite answers ``date(...)`` and ``MIN`` as ISO text)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def item_facts(session: Session, items: Sequence[WorkItem]) -> dict[int, tuple[int | None, int]]:
    """item id → (payer id, amount in cents) for ``items``, in one query."""
    if not items:
        return {}
    stmt, payer_id, amount = with_item_joins(select(WorkItem.id))
    stmt = stmt.add_columns(payer_id, amount).where(WorkItem.id.in_([i.id for i in items]))
    return {row[0]: (row[1], int(row[2] or 0)) for row in session.execute(stmt)}


def get_work_item(session: Session, public_id: str) -> WorkItem:
    """The item with ``public_id``; 404 when there is none."""
    item = session.scalar(select(WorkItem).where(WorkItem.public_id == public_id))
    if item is None:
        raise NotFound("no work item has this id")
    return item


@dataclass(frozen=True)
class QueueCount:
    """One queue's figures: active (open or woken) and snoozed items, amount and oldest age."""

    queue: WorkQueue
    active: int
    snoozed: int
    amount_cents: int
    oldest_days: int


def queue_counts(session: Session, now: datetime | None = None) -> list[QueueCount]:
    """Per queue, in ``WorkQueue`` order (every queue listed, empty ones with zeros).

    Two grouped queries (active items with their amounts, snoozed items), not a load of every
    item: the queue page shows these tiles above a table of 50 out of thousands.
    """
    moment = now or utcnow()
    today = moment.astimezone(UTC).date()
    _no_jit(session)
    active_stmt, columns = _filtered_select(select(WorkItem.queue), WorkItemFilters(status="active"), moment)
    active = {
        WorkQueue(queue): (int(count), int(amount or 0), _as_datetime(oldest))
        for queue, count, amount, oldest in session.execute(
            active_stmt.add_columns(
                func.count(WorkItem.id), func.sum(columns.amount), func.min(WorkItem.opened_at)
            ).group_by(WorkItem.queue)
        )
    }
    snoozed_stmt, _ = _filtered_select(
        select(WorkItem.queue), WorkItemFilters(status="snoozed"), moment, joins=False
    )
    snoozed = {
        WorkQueue(queue): int(count)
        for queue, count in session.execute(
            snoozed_stmt.add_columns(func.count(WorkItem.id)).group_by(WorkItem.queue)
        )
    }
    figures = []
    for queue in WorkQueue:
        count, amount, oldest = active.get(queue, (0, 0, None))
        if oldest is not None and oldest.tzinfo is None:  # SQLite answers MIN() as naive text
            oldest = oldest.replace(tzinfo=UTC)
        figures.append(
            QueueCount(
                queue=queue,
                active=count,
                snoozed=snoozed.get(queue, 0),
                amount_cents=amount,
                oldest_days=max(0, (today - oldest.astimezone(UTC).date()).days) if oldest else 0,
            )
        )
    return figures


# -- working an item -------------------------------------------------------------------------------


def _require_not_resolved(item: WorkItem, what: str) -> None:
    if item.status == WorkItemStatus.RESOLVED:
        raise Conflict(
            f"work item {item.public_id} is resolved; it cannot be {what}",
            errors=[
                {"field": "status", "rule": "not_resolved", "message": f"resolved items cannot be {what}"}
            ],
            current_status=item.status.value,
        )


def assign(session: Session, item: WorkItem, user: User | None) -> WorkItem:
    """Give the item to ``user`` (None: back to the shared queue)."""
    _require_not_resolved(item, "assigned")
    if user is not None and not user.active:
        raise Unprocessable(
            "the user is inactive",
            errors=[{"field": "assignee", "rule": "active", "message": "cannot assign to an inactive user"}],
        )
    previous = item.assignee.public_id if item.assignee is not None else None
    item.assignee = user
    item.assignee_user_id = user.id if user is not None else None
    _audit(session, item, "assign", {"from": previous, "to": user.public_id if user is not None else None})
    return item


def snooze(session: Session, item: WorkItem, until: date, *, today: date | None = None) -> WorkItem:
    """Hide the item until ``until`` (00:00 UTC that day); it comes back by itself."""
    _require_not_resolved(item, "snoozed")
    current = today or utcnow().date()
    if until <= current:
        raise Unprocessable(
            "snooze until a future date",
            errors=[{"field": "until", "rule": "future", "message": "must be after today"}],
        )
    item.status = WorkItemStatus.SNOOZED
    item.snoozed_until = _as_utc_midnight(until)
    _audit(session, item, "snooze", {"until": until.isoformat()})
    return item


def wake(session: Session, item: WorkItem) -> WorkItem:
    """End a snooze now."""
    if item.status != WorkItemStatus.SNOOZED:
        raise Conflict(f"work item {item.public_id} is not snoozed", current_status=item.status.value)
    item.status = WorkItemStatus.OPEN
    item.snoozed_until = None
    _audit(session, item, "wake", {})
    return item


MAX_COMMENT = 4000


def add_comment(session: Session, item: WorkItem, body: str, *, author: User | None) -> WorkItemComment:
    """Append a note (a person's when ``author`` is given). The audit records its length only:
    a note can quote PHI."""
    text = body.strip()
    if not text or len(text) > MAX_COMMENT:
        raise Unprocessable(
            f"a comment is 1 to {MAX_COMMENT} characters",
            errors=[{"field": "body", "rule": "length", "message": f"1 to {MAX_COMMENT} characters"}],
        )
    comment = WorkItemComment(
        author_user_id=author.id if author is not None else None, body=text, created_at=utcnow()
    )
    item.comments.append(comment)
    _audit(session, item, "comment", {"characters": len(text)})
    return comment


def resolve(
    session: Session,
    item: WorkItem,
    code: ResolutionCode | str,
    note: str | None = None,
    *,
    now: datetime | None = None,
) -> WorkItem:
    """Close the item with how it ended (``code``) and an optional note."""
    _require_not_resolved(item, "resolved again")
    try:
        resolution = ResolutionCode(code)
    except ValueError:
        raise Unprocessable(
            f"resolution must be one of {', '.join(r.value for r in ResolutionCode)}",
            errors=[{"field": "resolution", "rule": "one_of", "message": "unknown resolution"}],
        ) from None
    text = (note or "").strip()
    if len(text) > MAX_COMMENT:
        raise Unprocessable(
            "the note is too long", errors=[{"field": "note", "rule": "length", "message": "at most 4000"}]
        )
    item.status = WorkItemStatus.RESOLVED
    item.snoozed_until = None
    item.resolved_at = now or utcnow()
    item.resolution = resolution.value + (f": {text}" if text else "")
    _audit(session, item, "resolve", {"resolution": resolution.value})
    return item


def move_to_queue(
    session: Session,
    item: WorkItem,
    queue: WorkQueue,
    *,
    recommended_action: str,
    due_date: date | None,
    note: str,
) -> WorkItem:
    """Move an open item to another queue (a denial under appeal goes to ``appeal`` and comes
    back with the outcome): same item, same codes and thread, a new recommendation and due
    date, and a system comment saying why. ``note`` names codes, dates and public ids only."""
    _require_not_resolved(item, "moved")
    before = item.queue
    item.queue = WorkQueue(queue)
    item.recommended_action = recommended_action
    item.due_date = due_date
    item.comments.append(WorkItemComment(author_user_id=None, body=note, created_at=utcnow()))
    _audit(session, item, "move", {"from": WorkQueue(before).value, "recommended_action": recommended_action})
    return item


#: The head of a resolution the system wrote (``"system: <what happened>"``), not a person.
SYSTEM_RESOLUTION = "system"


def resolve_by_system(session: Session, item: WorkItem, note: str, *, now: datetime | None = None) -> bool:
    """Close ``item`` because what it asked for has happened (docs/adjudication-history.md,
    "Follow-up closes itself"): resolution ``"system: <note>"``, ``resolved_at`` now, audited
    as ``work_item.resolve``. ``note`` names codes and public ids only (no PHI). An item
    already resolved is left as it was; the answer says whether this call closed it."""
    if item.status == WorkItemStatus.RESOLVED:
        return False
    item.status = WorkItemStatus.RESOLVED
    item.snoozed_until = None
    item.resolved_at = now or utcnow()
    item.resolution = f"{SYSTEM_RESOLUTION}: {note.strip()}"[:MAX_COMMENT]
    _audit(session, item, "resolve", {"resolution": SYSTEM_RESOLUTION, "note": note.strip()[:200]})
    return True


def open_items_of_claims(
    session: Session,
    claim_ids: set[int],
    *,
    queues: Sequence[WorkQueue] | None = None,
    except_queues: Sequence[WorkQueue] = (),
) -> list[WorkItem]:
    """Open (or snoozed) items of the claims ``claim_ids``, optionally of ``queues`` only, oldest first."""
    if not claim_ids:
        return []
    stmt = select(WorkItem).where(
        WorkItem.claim_id.in_(sorted(claim_ids)), WorkItem.status != WorkItemStatus.RESOLVED
    )
    if queues is not None:
        stmt = stmt.where(WorkItem.queue.in_([WorkQueue(q) for q in queues]))
    if except_queues:
        stmt = stmt.where(WorkItem.queue.not_in([WorkQueue(q) for q in except_queues]))
    return list(session.scalars(stmt.order_by(WorkItem.id)))


#: Queues whose items are about a claim's balance: an item closes when the balance it is about
#: reaches zero, and not before (docs/write-offs.md, "Work items close at zero"). A patient
#: balance item is about the patient's share (A/R patient); a denial about what the denying
#: payer still owes (A/R insurance of that payer); the others about what the payers owe.
BALANCE_QUEUES = (
    WorkQueue.DENIED,
    WorkQueue.REJECTED,
    WorkQueue.UNPAID,
    WorkQueue.NEEDS_SECONDARY,
    WorkQueue.PATIENT_BALANCE,
)


def _encounter_of(session: Session, claim_ids: set[int]) -> tuple[dict[int, int], set[int]]:
    """(claim id -> the claim carrying its A/R, every claim of those encounters)."""
    from claims_server.ledger.services import receivable_claim_id

    receivable = {cid: receivable_claim_id(session, session.get(Claim, cid)) for cid in claim_ids}
    ids, frontier = set(receivable.values()), set(receivable.values())
    while frontier:
        children = set(session.scalars(select(Claim.id).where(Claim.original_claim_id.in_(sorted(frontier)))))
        frontier = children - ids
        ids |= frontier
    return receivable, ids


def item_balance_cents(session: Session, item: WorkItem) -> int | None:
    """The balance ``item`` is about (cents), or None when its queue is not a balance queue."""
    if item.queue not in BALANCE_QUEUES or item.claim_id is None:
        return None
    from claims_server.ledger.services import receivable_claim_id

    claim_id = receivable_claim_id(session, item.claim)
    account = AccountCode.AR_PATIENT if item.queue is WorkQueue.PATIENT_BALANCE else AccountCode.AR_INSURANCE
    stmt = (
        select(func.coalesce(func.sum(Posting.amount_cents), 0))
        .join(Account, Posting.account_id == Account.id)
        .where(Account.code == account.value, Posting.claim_id == claim_id)
    )
    if item.queue is WorkQueue.DENIED and item.claim_payment is not None and item.claim_payment.payer_id:
        stmt = stmt.where(Posting.payer_id == item.claim_payment.payer_id)
    return int(session.scalar(stmt) or 0)


def settled_items(
    session: Session, claim_ids: set[int], queues: Sequence[WorkQueue] = BALANCE_QUEUES
) -> list[WorkItem]:
    """Open items of the encounters of ``claim_ids`` in ``queues`` (balance queues) whose balance
    is zero (or a credit) now: what a payment or a write-off that was just flushed settled."""
    if not claim_ids:
        return []
    _, encounter = _encounter_of(session, claim_ids)
    items = open_items_of_claims(session, encounter, queues=[q for q in queues if q in BALANCE_QUEUES])
    return [item for item in items if (item_balance_cents(session, item) or 0) <= 0]


def close_settled_items(
    session: Session,
    claim_ids: set[int],
    note: str,
    *,
    code: ResolutionCode | None = None,
    queues: Sequence[WorkQueue] = BALANCE_QUEUES,
) -> list[WorkItem]:
    """Close :func:`settled_items` (``code`` for a person's action, else a system note)."""
    closed = []
    with session.no_autoflush:
        for item in settled_items(session, claim_ids, queues):
            if code is not None:
                resolve(session, item, code, note)
            else:
                resolve_by_system(session, item, note)
            closed.append(item)
    return closed


def resolution_code(item: WorkItem) -> ResolutionCode | None:
    """The ``ResolutionCode`` part of a resolved item's resolution."""
    if not item.resolution:
        return None
    head = item.resolution.split(":", 1)[0]
    try:
        return ResolutionCode(head)
    except ValueError:
        return None


# -- the computed queues: sweeps that open (and close) items from claims and the ledger ------------

#: Claim states in which a claim is with the payer and an 835 is awaited.
AWAITING_PAYER_STATES = (ClaimState.SUBMITTED, ClaimState.ACCEPTED, ClaimState.ACKNOWLEDGED)
DEFAULT_UNPAID_DAYS = 30


#: Adjudications that are no answer from the payer any more: taken back by a reversal, replaced,
#: the reversal itself, or a held duplicate a supervisor rejected (docs/adjudication-history.md).
#: Any other (current, held for a decision, informational; NULL: written before the history)
#: is the payer's answer in force.
NOT_IN_FORCE = (
    AdjudicationState.REVERSED,
    AdjudicationState.SUPERSEDED,
    AdjudicationState.APPLIED,
    AdjudicationState.REJECTED,
)


def _no_answer_in_force() -> Any:
    """SQL: the claim has no 835 adjudication in force (none at all, or only reversed ones)."""
    return ~(
        select(ClaimPayment.id)
        .where(
            ClaimPayment.claim_id == Claim.id,
            or_(
                ClaimPayment.adjudication_state.is_(None),
                ClaimPayment.adjudication_state.not_in(NOT_IN_FORCE),
            ),
        )
        .exists()
    )


def _last_reversal() -> Any:
    """SQL: when the payer's last reversal of the claim arrived (NULL: never reversed)."""
    return (
        select(func.max(ClaimPayment.created_at))
        .where(
            ClaimPayment.claim_id == Claim.id,
            ClaimPayment.adjudication_kind == AdjudicationKind.REVERSAL,
            ClaimPayment.adjudication_state == AdjudicationState.APPLIED,
        )
        .correlate(Claim)
        .scalar_subquery()
    )


def _unpaid_select(days: int, as_of: date) -> Select[tuple[Claim, Any]]:
    """(claim, last reversal) of claims awaiting the payer for more than ``days`` days on ``as_of``.

    Awaiting: submitted, in an awaiting state, and no adjudication in force. A claim the
    payer reversed (the engine moves it back to ``acknowledged``) awaits again from the
    reversal: its days count from the later of submission and the last reversal.
    """
    if days < 0:
        raise Unprocessable(
            "days must be 0 or more", errors=[{"field": "days", "rule": "minimum", "message": ">= 0"}]
        )
    cutoff = _as_utc_midnight(as_of - timedelta(days=days))
    reversed_at = _last_reversal()
    return select(Claim, reversed_at).where(
        Claim.state.in_(AWAITING_PAYER_STATES),
        Claim.submitted_at.is_not(None),
        Claim.submitted_at < cutoff,
        or_(reversed_at.is_(None), reversed_at < cutoff),
        _no_answer_in_force(),
    )


def _awaiting_since(claim: Claim, reversed_at: datetime | None) -> date:
    """The day the claim's current wait for the payer began: submission, or the last reversal."""
    submitted = claim.submitted_at.astimezone(UTC).date()
    if reversed_at is None:
        return submitted
    if reversed_at.tzinfo is None:  # SQLite hands an aggregate back without the column's type
        reversed_at = reversed_at.replace(tzinfo=UTC)
    return max(submitted, reversed_at.astimezone(UTC).date())


def _unpaid_rows(session: Session, days: int, as_of: date) -> list[tuple[Claim, date, bool]]:
    """(claim, awaiting since, reversed?) of the unpaid claims, in claim id order."""
    rows = session.execute(_unpaid_select(days, as_of).order_by(Claim.id)).all()
    return [(claim, _awaiting_since(claim, _as_datetime(at)), at is not None) for claim, at in rows]


def _as_datetime(value: Any) -> datetime | None:
    """A ``MAX(created_at)`` as a datetime (SQLite answers an aggregate as ISO text)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


@dataclass(frozen=True)
class UnpaidByPayer:
    """Claims awaiting one payer's answer past the limit."""

    payer_public_id: str
    payer_name: str
    claims: int
    amount_cents: int
    oldest_days: int


def unpaid_by_payer(session: Session, *, days: int = DEFAULT_UNPAID_DAYS, as_of: date) -> list[UnpaidByPayer]:
    """The unpaid queue computed live: per payer, claims submitted more than ``days`` ago without an 835."""
    groups: dict[int, list[tuple[Claim, date]]] = {}
    for claim, since, _ in _unpaid_rows(session, days, as_of):
        groups.setdefault(claim.coverage.payer_id, []).append((claim, since))
    out = []
    for payer_id, members in groups.items():
        payer = session.get(Payer, payer_id)
        out.append(
            UnpaidByPayer(
                payer_public_id=payer.public_id,
                payer_name=payer.name,
                claims=len(members),
                amount_cents=sum(c.total_charge_cents for c, _ in members),
                oldest_days=max((as_of - since).days for _, since in members),
            )
        )
    return sorted(out, key=lambda row: (-row.oldest_days, row.payer_name))


def _first_service_date(claim: Claim) -> date | None:
    return min((line.service_date_from for line in claim.service_lines), default=None)


def _resolve_where(
    session: Session, queue: WorkQueue, claim_ids: set[int], code: ResolutionCode, note: str
) -> int:
    """Resolve the open items of ``queue`` whose claim is NOT in ``claim_ids`` (the condition ended)."""
    items = find_work_items(session, WorkItemFilters(queue=queue, status="all"))
    closed = 0
    for item in items:
        if (
            item.status != WorkItemStatus.RESOLVED
            and item.claim_id is not None
            and item.claim_id not in claim_ids
        ):
            resolve(session, item, code, note)
            closed += 1
    return closed


@dataclass
class SweepResult:
    """What one sweep did, per queue: items opened and items resolved because the cause ended."""

    opened: dict[str, int]
    resolved: dict[str, int]


def sweep_unpaid(session: Session, *, days: int = DEFAULT_UNPAID_DAYS, as_of: date) -> tuple[int, int]:
    """Open an ``unpaid`` item per claim past ``days`` without an 835 in force; resolve those that got one.

    A claim whose adjudication the payer reversed counts again from the reversal, under a
    key of its own (the item of its first wait may have been resolved when it was paid).
    """
    rows = _unpaid_rows(session, days, as_of)
    claims = [claim for claim, _, _ in rows]
    # A claim paid and reversed between two sweeps still has its first wait's item open: one is enough.
    waiting = {
        item.claim_id
        for item in open_items_of_claims(session, {c.id for c in claims}, queues=[WorkQueue.UNPAID])
    }
    opened = 0
    for claim, since, was_reversed in rows:
        key = f"unpaid:claim:{claim.id}:{since:%Y%m%d}"
        if claim.id in waiting:
            continue
        first_dos = _first_service_date(claim)
        payer = claim.coverage.payer
        deadline = first_dos + timedelta(days=payer.timely_filing_days) if first_dos else None
        if was_reversed:
            explanation = (
                f"{payer.name} reversed its adjudication and has sent no corrected 835 in "
                f"{(as_of - since).days} days (limit {days}). Ask the payer (276/277 or the payer "
                "portal) whether a corrected adjudication is coming, or correct and resubmit the claim."
            )
        else:
            explanation = (
                f"No 835 from {payer.name} {(as_of - since).days} days after submission (limit {days}). "
                "Check the claim status with the payer (276/277 or the payer portal); if the payer has no "
                "record of it, resubmit with the 999/277CA acceptance as proof of timely filing"
                + (f" before the timely-filing limit on {deadline.isoformat()}." if deadline else ".")
            )
        before = session.scalar(select(WorkItem.id).where(WorkItem.dedupe_key == key))
        open_work_item(
            session,
            queue=WorkQueue.UNPAID,
            claim=claim,
            reason_codes=[],
            recommended_action=RecommendedAction.REVIEW,
            explanation=explanation,
            dedupe_key=key,
            due_date=deadline,
        )
        opened += before is None
    still_unpaid = {c.id for c in claims}
    awaiting = set(
        session.scalars(select(Claim.id).where(Claim.state.in_(AWAITING_PAYER_STATES), _no_answer_in_force()))
    )
    # An item stays while the claim still awaits the payer (even if a later sweep used a longer limit).
    resolved = _resolve_where(
        session,
        WorkQueue.UNPAID,
        still_unpaid | awaiting,
        ResolutionCode.PAYMENT_RECEIVED,
        "the payer answered (835) or the claim left the payer's hands",
    )
    return opened, resolved


def patient_balances(session: Session) -> dict[int, int]:
    """claim id → open patient balance (A/R patient) in cents, for claims with a positive one."""
    total = func.sum(Posting.amount_cents)
    stmt = (
        select(Posting.claim_id, total)
        .join(Account, Posting.account_id == Account.id)
        .where(Account.code == AccountCode.AR_PATIENT.value, Posting.claim_id.is_not(None))
        .group_by(Posting.claim_id)
        .having(total > 0)
    )
    return {int(claim_id): int(amount) for claim_id, amount in session.execute(stmt)}


def sweep_patient_balance(session: Session) -> tuple[int, int]:
    """Open a ``patient_balance`` item per claim the patient owes on; resolve settled ones."""
    balances = patient_balances(session)
    opened = 0
    for claim_id, amount in sorted(balances.items()):
        key = f"patient_balance:claim:{claim_id}"
        if session.scalar(select(WorkItem.id).where(WorkItem.dedupe_key == key)) is not None:
            continue
        claim = session.get(Claim, claim_id)
        open_work_item(
            session,
            queue=WorkQueue.PATIENT_BALANCE,
            claim=claim,
            reason_codes=[],
            recommended_action=RecommendedAction.BILL_PATIENT,
            explanation=(
                f"The patient owes {cents_to_money(amount)} on this claim after insurance "
                "(deductible, coinsurance or copay). Send a statement."
            ),
            dedupe_key=key,
        )
        opened += 1
    resolved = _resolve_where(
        session,
        WorkQueue.PATIENT_BALANCE,
        set(balances),
        ResolutionCode.BALANCE_SETTLED,
        "the patient balance is settled",
    )
    return opened, resolved


def sweep_needs_secondary(session: Session) -> tuple[int, int]:
    """Open a ``needs_secondary`` item per claim whose primary paid and a next coverage exists.

    An item whose claim no longer needs one closes: billed (the next payer's claim exists, or
    the payer crossed the claim over), else with a system note saying why (its adjudication
    was reversed, or replaced by a newer one that has an item of its own).
    """
    from claims_server.secondary.services import (
        claims_needing_next_payer,
        current_claim_payment,
        is_crossover,
        next_payer_claim,
        next_payer_refusal,
    )

    candidates = claims_needing_next_payer(session)
    opened = 0
    for candidate in candidates:
        key = f"needs_secondary:claim_payment:{candidate.claim_payment.id}"
        if session.scalar(select(WorkItem.id).where(WorkItem.dedupe_key == key)) is not None:
            continue
        open_work_item(
            session,
            queue=WorkQueue.NEEDS_SECONDARY,
            claim=candidate.claim,
            claim_payment=candidate.claim_payment,
            reason_codes=[],
            recommended_action=RecommendedAction.BILL_SECONDARY,
            explanation=(
                f"{candidate.claim_payment.remittance.payer_name or 'The payer'} adjudicated the claim and "
                f"{cents_to_money(candidate.claim_payment.patient_responsibility_cents or 0)} remains; "
                f"{candidate.next_coverage.payer.name} covers the patient next (order "
                f"{candidate.next_coverage.coverage_order}). Bill it with the prior payer's adjudication (COB)."
            ),
            dedupe_key=key,
        )
        opened += 1
    current = {c.claim.id: c.claim_payment.id for c in candidates}
    resolved = 0
    open_items = session.scalars(
        select(WorkItem)
        .where(
            WorkItem.queue == WorkQueue.NEEDS_SECONDARY,
            WorkItem.status != WorkItemStatus.RESOLVED,
            WorkItem.claim_id.is_not(None),
        )
        .order_by(WorkItem.id)
    ).all()
    for item in open_items:
        claim = item.claim
        if claim.id in current and item.claim_payment_id in (None, current[claim.id]):
            continue
        payment = current_claim_payment(session, claim)
        if next_payer_claim(session, claim) is not None or (payment is not None and is_crossover(payment)):
            resolve(
                session,
                item,
                ResolutionCode.BILLED_SECONDARY,
                "the next payer's claim exists, or the claim was crossed over",
            )
        elif claim.id in current:
            resolve_by_system(
                session,
                item,
                "the adjudication it named is no longer current; the current one has an item of its own",
            )
        else:
            resolve_by_system(
                session, item, f"no next-payer claim to make now: {next_payer_refusal(session, claim)}"
            )
        resolved += 1
    return opened, resolved


def _sweep_credit_balances(session: Session) -> tuple[int, int]:
    """Patient and payer credits (``ledger.credits``: it opens work items, so it is imported here)."""
    from claims_server.ledger.credits import sweep_credit_balances

    return sweep_credit_balances(session)


def sweep(session: Session, *, as_of: date, unpaid_days: int = DEFAULT_UNPAID_DAYS) -> SweepResult:
    """Run every computed queue's sweep; idempotent (a second run opens and resolves nothing)."""
    result = SweepResult(opened={}, resolved={})
    for queue, (opened, resolved) in (
        (WorkQueue.UNPAID, sweep_unpaid(session, days=unpaid_days, as_of=as_of)),
        (WorkQueue.NEEDS_SECONDARY, sweep_needs_secondary(session)),
        (WorkQueue.PATIENT_BALANCE, sweep_patient_balance(session)),
        (WorkQueue.CREDIT_BALANCE, _sweep_credit_balances(session)),
    ):
        result.opened[queue.value] = opened
        result.resolved[queue.value] = resolved
    return result


# -- JSON -----------------------------------------------------------------------------------------


def item_to_json(
    item: WorkItem, facts: tuple[int | None, int] | None = None, *, today: date | None = None
) -> dict[str, Any]:
    """The API shape of a work item (public ids only; money as decimal strings)."""
    payer_public_id = None
    amount = None
    if facts is not None:
        payer_id, amount = facts
        if payer_id is not None:
            payer = item.claim.coverage.payer if item.claim is not None else None
            payer_public_id = payer.public_id if payer is not None and payer.id == payer_id else None
            if payer_public_id is None:
                found = object_session_get(item, Payer, payer_id)
                payer_public_id = found.public_id if found is not None else None
    return {
        "id": item.public_id,
        "queue": item.queue.value,
        "status": effective_status(item).value,
        "claim": item.claim.public_id if item.claim is not None else None,
        "claim_state": item.claim.state.value if item.claim is not None else None,
        "payer": payer_public_id,
        "amount": cents_to_money(amount) if amount is not None else None,
        "reason_codes": list(item.reason_codes or []),
        "recommended_action": item.recommended_action,
        "explanation": explanation_of(item),
        "priority": item.priority,
        "assignee": item.assignee.public_id if item.assignee is not None else None,
        "snoozed_until": item.snoozed_until.date().isoformat() if item.snoozed_until is not None else None,
        "due_date": item.due_date.isoformat() if item.due_date is not None else None,
        "opened_at": item.opened_at.isoformat(),
        "days_in_queue": days_in_queue(item, today),
        "resolved_at": item.resolved_at.isoformat() if item.resolved_at is not None else None,
        "resolution": item.resolution,
        "comments": [
            {
                "author": _user_public_id(item, c.author_user_id) if c.author_user_id is not None else None,
                "system": c.author_user_id is None,
                "body": c.body,
                "created_at": c.created_at.isoformat(),
            }
            for c in item.comments
        ],
    }


def object_session_get(item: WorkItem, model: type[Any], row_id: int) -> Any:
    """``session.get(model, row_id)`` in the item's own session."""
    session = object_session(item)
    return session.get(model, row_id) if session is not None else None


def _user_public_id(item: WorkItem, user_id: int) -> str | None:
    user = object_session_get(item, User, user_id)
    return user.public_id if user is not None else None
