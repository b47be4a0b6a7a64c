"""Statement inputs from the ledger, and the statement run.

``build_statement_inputs`` reads, for a set of patients, everything a statement needs in
a handful of queries (A/R-patient postings per service line, the claims' open insurance
balances, the remittance lines and their CAS reasons, the last statement); the pure
library (``statements``) decides, builds and renders. ``run_statements`` does a whole
run in the caller's process; ``start_statement_run`` + ``process_run_chunk`` are the same
work split into patient-id ranges for Celery workers (``claims_server.statements.tasks``),
each chunk one transaction that also advances the run's progress (done / total).

Each statement issued is audited (``statement.issue``) together with the read of the
patient's demographics it printed (``statement.build``), and its PDF and HTML are kept
encrypted on the row. A collections hold is a ``StatementHold`` plus a work item in the
patient-balance queue, because a person decides what happens next.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

import statements as lib
from claims_server.db import bulk_insert
from claims_server.errors import NotFound
from claims_server.models import (
    Account,
    AccountCode,
    Adjustment,
    AuditAction,
    Claim,
    ClaimPayment,
    DeliveryChannel,
    JournalEntry,
    JournalEventType,
    LinePayment,
    Patient,
    Payer,
    Posting,
    Practice,
    Provider,
    ServiceLine,
    Statement,
    StatementLine,
    StatementState,
    WorkItem,
    WorkQueue,
)
from claims_server.models.common import utcnow
from claims_server.models.encrypted import encrypted_attributes
from claims_server.models.remittance import AdjudicationState
from claims_server.models.statements import HoldReason, StatementHold, StatementRun, StatementRunState
from claims_server.security.audit import audit_events_bulk
from claims_server.security.fields import cipher_for

_IN = 900  # bound parameters per IN list (SQLite's historical limit is 999)
#: Patients per Celery chunk: small enough for steady progress, large enough to batch queries.
CHUNK_SIZE = 250
#: The encrypted document columns of ``statements``, sealed in bulk by ``_issue``.
_DOCUMENT_ATTRS = {attr.key: attr for attr in encrypted_attributes(Statement.__mapper__)}
#: Journal events whose A/R-patient postings are the patient's own money on a line.
_PATIENT_MONEY_EVENTS = frozenset({JournalEventType.PATIENT_PAYMENT.value, JournalEventType.REFUND.value})
_CHARGE_EVENTS = frozenset({JournalEventType.CHARGE.value, JournalEventType.CHARGE_CORRECTION.value})
#: First key of the (run, chunk) advisory locks ("stmt" in ASCII), away from other locks' keys.
_CHUNK_LOCK_BASE = 0x73746D74
#: First key of the per-patient issuing locks (below the chunk locks' keys).
_ISSUE_LOCK_KEY = _CHUNK_LOCK_BASE - 1


def _chunks(values: Sequence[int], size: int = _IN) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def rules_from_settings(settings: Any) -> lib.CycleRules:
    """The practice's cycle rules from ``Settings`` (``STATEMENT_*``; library defaults otherwise)."""
    defaults = lib.CycleRules()
    return lib.CycleRules(
        min_days_between=getattr(settings, "STATEMENT_MIN_DAYS_BETWEEN", defaults.min_days_between),
        min_balance_cents=getattr(settings, "STATEMENT_MIN_BALANCE_CENTS", defaults.min_balance_cents),
        max_statements=getattr(settings, "STATEMENT_MAX_STATEMENTS", defaults.max_statements),
        reminders=getattr(settings, "STATEMENT_REMINDERS", defaults.reminders),
        due_days=getattr(settings, "STATEMENT_DUE_DAYS", defaults.due_days),
        balance_billing_payers=frozenset(
            p.strip()
            for p in str(getattr(settings, "STATEMENT_BALANCE_BILLING_PAYERS", "")).split(",")
            if p.strip()
        ),
    )


# -- reading the ledger ------------------------------------------------------------------------


def _address(line1: str | None, line2: str | None, city: str | None, state: str | None, zip_code: str | None):
    if not (line1 and city and state and zip_code):
        return None
    return lib.Address(line1, line2, city, state, zip_code)


def _practice(practice: Practice, pay_url: str | None = None) -> lib.Practice:
    address = _address(
        practice.address_line1, practice.address_line2, practice.city, practice.state, practice.zip_code
    )
    assert address is not None  # every column is NOT NULL
    remit = _address(
        practice.pay_to_address_line1,
        practice.pay_to_address_line2,
        practice.pay_to_city,
        practice.pay_to_state,
        practice.pay_to_zip_code,
    )
    return lib.Practice(practice.name, address, practice.phone, remit, pay_url)


def _person(first: str | None, middle: str | None, last: str | None, suffix: str | None = None) -> str:
    return " ".join(part for part in (first, middle, last, suffix) if part)


def _provider_name(provider: Provider | None) -> str:
    if provider is None:
        return "your provider"
    name = _person(provider.first_name, None, provider.last_name)
    return f"{name}, {provider.credential}" if provider.credential else name


@dataclass(slots=True)
class _Row:
    """One statement row being read: a service line of an encounter (ledger claim, line number).

    A secondary or replacement claim's lines are copies of the charged claim's lines with
    the same numbers, and their money is posted on the charged claim (``receivable_claim_id``)
    with the copy's line id: keying by line number puts each payer's part of one service on
    one row. Claim-level postings (line NULL) go on the claim's first line.
    """

    claim_id: int
    line_number: int | None
    balance: int = 0  # A/R patient
    since: date | None = None
    paid: int = 0  # the patient's money on the row (payments, credit applied, less refunds)
    adjusted: int = 0  # write-offs of the patient's part
    insurance_open: int = 0  # A/R insurance, any payer
    charged: int = 0  # charge entries
    insurance_paid: int = 0  # current adjudications' SVC03 (+ the CLP04 rest on the first line)
    parts: list[lib.ResponsibilityPart] = field(default_factory=list)
    parts_from: int = 0  # the claim payment the parts come from (the latest current one)
    parts_payer: int | None = None
    line_id: int | None = None  # a service line of the row (date, code, description)


#: Adjudications the ledger reflects (NULL: rows written before the history existed).
_IN_FORCE = (AdjudicationState.CURRENT,)


def balance_billing_payer_ids(session: Session, payer_identifiers: Iterable[str]) -> set[int]:
    """payers.id of the payers (by ``payer_id``, the 837 payer id) that allow balance billing."""
    wanted = sorted({p.strip() for p in payer_identifiers if p and p.strip()})
    if not wanted:
        return set()
    return set(session.scalars(select(Payer.id).where(Payer.payer_id.in_(wanted))))


def build_statement_inputs(
    session: Session,
    patient_ids: Sequence[int],
    as_of: date,
    *,
    pay_url: str | None = None,
    balance_billing_payers: Iterable[str] = (),
) -> dict[int, lib.StatementInput]:
    """The statement input of each patient (by id) as of ``as_of``, read in batched queries.

    Each row's amounts come from the ledger so that they add up (``lib.LedgerLine``):
    charge entries, A/R insurance still open, A/R patient split into the patient's money
    (payment entries, refunds, credit transfers), write-offs and the rest (responsibility
    moved to the patient); insurance paid is the current adjudications' line payments, so
    a reversed adjudication counts once, not twice. The reasons are the PR parts of the
    latest current adjudication of the row (the last payer's word on the patient's share).

    ``pay_url``: the patient pages' address printed on the statement (no token; see
    ``claims_server.portal.urls``). ``balance_billing_payers``: payer ids (837 NM109) whose
    plans let the practice bill above the allowed amount (PR-45); default none.
    """
    ids = sorted(set(patient_ids))
    if not ids:
        return {}
    patients = {
        p.id: p
        for chunk in _chunks(ids)
        for p in session.scalars(select(Patient).where(Patient.id.in_(chunk)))
    }
    practices = {p.id: _practice(p, pay_url) for p in session.scalars(select(Practice))}
    billing_payers = balance_billing_payer_ids(session, balance_billing_payers)
    codes = {code: account_id for account_id, code in session.execute(select(Account.id, Account.code))}
    ar_patient = codes.get(AccountCode.AR_PATIENT.value)
    ar_insurance = codes.get(AccountCode.AR_INSURANCE.value)
    credit_account = codes.get(AccountCode.PATIENT_CREDIT.value)

    raw: list[tuple[int, int, int | None, int | None, int, str, date, int, bool]] = []
    account_level: dict[int, int] = defaultdict(int)
    postings_by_patient: dict[int, list[tuple[date, str, int]]] = defaultdict(list)
    credit_entries: set[int] = set()  # entries with a patient-credit leg (credit applied or refunded)
    insurance_entries: set[int] = (
        set()
    )  # entries moving A/R insurance (payers' work, not the patient's money)
    for chunk in _chunks(ids):
        rows = session.execute(
            select(
                Posting.patient_id,
                Posting.account_id,
                Posting.claim_id,
                Posting.service_line_id,
                Posting.amount_cents,
                JournalEntry.event_type,
                JournalEntry.effective_date,
                JournalEntry.id,
                JournalEntry.patient_payment_id.is_not(None),
            )
            .join(JournalEntry, JournalEntry.id == Posting.journal_entry_id)
            .where(
                Posting.patient_id.in_(chunk),
                Posting.account_id.in_(
                    [a for a in (ar_patient, ar_insurance, credit_account) if a is not None]
                ),
                JournalEntry.effective_date <= as_of,
            )
            .order_by(JournalEntry.effective_date, Posting.id)
        )
        for patient_id, account_id, claim_id, line_id, cents, event, effective, entry_id, by_patient in rows:
            if account_id != ar_insurance:
                postings_by_patient[patient_id].append((effective, str(event), cents))
            else:
                insurance_entries.add(entry_id)
            if account_id == credit_account:
                credit_entries.add(entry_id)
                account_level[patient_id] += cents
                continue
            if claim_id is None:
                if account_id == ar_patient:
                    account_level[patient_id] += cents
                continue
            raw.append(
                (
                    patient_id,
                    account_id,
                    claim_id,
                    line_id,
                    cents,
                    str(event),
                    effective,
                    entry_id,
                    by_patient,
                )
            )

    # Line numbers of every line posted on, and each claim's first line.
    line_ids = sorted({r[3] for r in raw if r[3] is not None})
    claim_ids = sorted({r[2] for r in raw})
    service_lines: dict[int, ServiceLine] = {}
    first_line: dict[int, tuple[int, int]] = {}  # claim -> (line number, line id)
    for chunk in _chunks(line_ids):
        for sl in session.scalars(select(ServiceLine).where(ServiceLine.id.in_(chunk))):
            service_lines[sl.id] = sl
    for chunk in _chunks(claim_ids):
        for sl in session.scalars(select(ServiceLine).where(ServiceLine.claim_id.in_(chunk))):
            service_lines.setdefault(sl.id, sl)
            best = first_line.get(sl.claim_id)
            if best is None or sl.line_number < best[0]:
                first_line[sl.claim_id] = (sl.line_number, sl.id)

    rows_by_patient: dict[int, dict[tuple[int, int | None], _Row]] = defaultdict(dict)
    row_of_claim: dict[int, int] = {}  # claim -> patient

    def row_for(patient_id: int, claim_id: int, line_id: int | None) -> _Row:
        sl = service_lines.get(line_id) if line_id is not None else None
        if sl is None:
            number, line_id = first_line.get(claim_id, (None, None))
        else:
            number = sl.line_number
        key = (claim_id, number)
        row = rows_by_patient[patient_id].get(key)
        if row is None:
            row = rows_by_patient[patient_id][key] = _Row(claim_id, number, line_id=line_id)
            row_of_claim[claim_id] = patient_id
        elif row.line_id is None or (sl is not None and sl.claim_id == claim_id):
            row.line_id = line_id  # prefer the charged claim's own line for date and code
        return row

    for patient_id, account_id, claim_id, line_id, cents, event, effective, entry_id, by_patient in raw:
        row = row_for(patient_id, claim_id, line_id)
        if event in _CHARGE_EVENTS:
            row.charged += cents
        if account_id == ar_insurance:
            row.insurance_open += cents
            continue
        row.balance += cents
        if cents > 0 and row.since is None:
            row.since = effective
        if (
            by_patient
            or event in _PATIENT_MONEY_EVENTS
            or entry_id in credit_entries
            # a credit on one claim moved to another's balance: the patient's money either way
            or (event == JournalEventType.BALANCE_TRANSFER and entry_id not in insurance_entries)
        ):
            row.paid -= cents
        elif event == JournalEventType.WRITE_OFF:
            row.adjusted -= cents

    # What the payers did, from the adjudications in force (current) only.
    payments: dict[int, tuple[int, int | None, int]] = {}  # claim payment -> (ledger claim, payer, CLP04)
    for chunk in _chunks(claim_ids):
        for cp_id, ledger_claim, claim_id, payer_id, paid_cents in session.execute(
            select(
                ClaimPayment.id,
                ClaimPayment.ledger_claim_id,
                ClaimPayment.claim_id,
                ClaimPayment.payer_id,
                ClaimPayment.paid_cents,
            ).where(
                or_(ClaimPayment.ledger_claim_id.in_(chunk), ClaimPayment.claim_id.in_(chunk)),
                or_(
                    ClaimPayment.adjudication_state.in_(_IN_FORCE),
                    ClaimPayment.adjudication_state.is_(None),
                ),
            )
        ):
            encounter = ledger_claim or claim_id
            if encounter in row_of_claim:
                payments[cp_id] = (encounter, payer_id, int(paid_cents or 0))
    cp_ids = sorted(payments)
    line_paid_total: dict[int, int] = defaultdict(int)
    line_payment_rows: list[tuple[int, int, int | None, int]] = []  # (lp id, cp id, service line, paid)
    for chunk in _chunks(cp_ids):
        for lp_id, cp_id, line_id, cents in session.execute(
            select(
                LinePayment.id,
                LinePayment.claim_payment_id,
                LinePayment.service_line_id,
                LinePayment.paid_cents,
            ).where(LinePayment.claim_payment_id.in_(chunk))
        ):
            line_payment_rows.append((lp_id, cp_id, line_id, int(cents or 0)))
            line_paid_total[cp_id] += int(cents or 0)
    extra_ids = sorted({r[2] for r in line_payment_rows if r[2] is not None and r[2] not in service_lines})
    for chunk in _chunks(extra_ids):
        for sl in session.scalars(select(ServiceLine).where(ServiceLine.id.in_(chunk))):
            service_lines[sl.id] = sl
    row_of_line_payment: dict[int, _Row] = {}
    for lp_id, cp_id, line_id, cents in line_payment_rows:
        encounter, _payer, _paid = payments[cp_id]
        row = row_for(row_of_claim[encounter], encounter, line_id)
        row.insurance_paid += cents
        row_of_line_payment[lp_id] = row
    for cp_id, (encounter, _payer, paid_cents) in payments.items():
        rest = paid_cents - line_paid_total.get(cp_id, 0)
        if rest:
            row_for(row_of_claim[encounter], encounter, None).insurance_paid += rest

    # The patient's share as the latest current adjudication of each row states it.
    parts_rows: list[tuple[int, _Row, str, str, int]] = []
    for chunk in _chunks(sorted(row_of_line_payment)):
        for lp_id, cp_id, group, reason, cents in session.execute(
            select(
                Adjustment.line_payment_id,
                LinePayment.claim_payment_id,
                Adjustment.group_code,
                Adjustment.reason_code,
                Adjustment.amount_cents,
            )
            .join(LinePayment, LinePayment.id == Adjustment.line_payment_id)
            .where(Adjustment.line_payment_id.in_(chunk))
            .order_by(Adjustment.id)
        ):
            parts_rows.append((cp_id, row_of_line_payment[lp_id], str(group), reason, int(cents)))
    for chunk in _chunks(cp_ids):
        for cp_id, group, reason, cents in session.execute(
            select(
                Adjustment.claim_payment_id,
                Adjustment.group_code,
                Adjustment.reason_code,
                Adjustment.amount_cents,
            )
            .where(Adjustment.claim_payment_id.in_(chunk))
            .order_by(Adjustment.id)
        ):
            encounter = payments[cp_id][0]
            parts_rows.append(
                (cp_id, row_for(row_of_claim[encounter], encounter, None), str(group), reason, int(cents))
            )
    for cp_id, row, group, reason, cents in sorted(parts_rows, key=lambda r: r[0]):
        if group != "PR":
            continue
        if cp_id > row.parts_from:
            row.parts, row.parts_from, row.parts_payer = [], cp_id, payments[cp_id][1]
        row.parts.append(lib.ResponsibilityPart("PR", reason, cents))

    claims: dict[int, Claim] = {}
    for chunk in _chunks(claim_ids):
        for claim in session.scalars(select(Claim).where(Claim.id.in_(chunk))):
            claims[claim.id] = claim
    provider_ids = {c.rendering_provider_id for c in claims.values() if c.rendering_provider_id}
    providers = {p.id: p for p in session.scalars(select(Provider).where(Provider.id.in_(provider_ids)))}
    pending_by_claim: dict[int, int] = defaultdict(int)
    for per_patient in rows_by_patient.values():
        for row in per_patient.values():
            pending_by_claim[row.claim_id] += row.insurance_open
    previous = _previous_statements(session, ids, as_of)

    out: dict[int, lib.StatementInput] = {}
    for patient_id in ids:
        patient = patients.get(patient_id)
        if patient is None:
            continue
        ledger_lines: list[lib.LedgerLine] = []
        for row in rows_by_patient[patient_id].values():
            if row.balance == 0 and row.since is None:
                continue  # never the patient's (insurance only)
            claim = claims.get(row.claim_id)
            sl = service_lines.get(row.line_id) if row.line_id is not None else None
            since = row.since or as_of
            claim_ref = claim.public_id if claim else "account"
            dos = (sl.service_date_from if sl is not None else None) or since
            ledger_lines.append(
                lib.LedgerLine(
                    claim_ref=claim_ref,
                    line_ref=f"{claim_ref}:{row.line_number if row.line_number is not None else 'claim'}",
                    service_date=dos,
                    provider_name=_provider_name(
                        providers.get(claim.rendering_provider_id) if claim else None
                    ),
                    procedure_code=sl.procedure_code if sl is not None else "",
                    modifiers=tuple(m for m in (sl.modifier1, sl.modifier2) if m) if sl is not None else (),
                    description=(sl.description if sl is not None else None)
                    or (None if sl else "Visit total"),
                    billed_cents=row.charged,
                    insurance_paid_cents=row.insurance_paid,
                    # What the ledger took off the row besides cash and the patient's share:
                    # the insurers' CO/OA/PI adjustments (double entry makes this exact).
                    adjustments_cents=row.charged
                    - row.insurance_paid
                    - row.insurance_open
                    - row.balance
                    - row.paid
                    - row.adjusted,
                    balance_cents=row.balance,
                    responsible_since=since,
                    responsibility=tuple(row.parts),
                    patient_paid_cents=row.paid,
                    patient_adjusted_cents=row.adjusted,
                    insurance_pending_cents=pending_by_claim.get(row.claim_id, 0),
                    insurance_open_cents=row.insurance_open,
                    balance_billing=row.parts_payer is not None and row.parts_payer in billing_payers,
                )
            )
        prev = previous.get(patient_id)
        cutoff = prev.statement_date if prev is not None else None
        prev_balance = payments = adjustments = 0
        for effective, event, cents in postings_by_patient[patient_id]:
            if cutoff is not None and effective <= cutoff:
                prev_balance += cents
            elif event == JournalEventType.PATIENT_PAYMENT:
                payments -= cents
            elif event == JournalEventType.WRITE_OFF:
                adjustments -= cents
        name = _person(patient.first_name, patient.middle_name, patient.last_name, patient.name_suffix)
        address = _address(
            patient.address_line1, patient.address_line2, patient.city, patient.state, patient.zip_code
        )
        out[patient_id] = lib.StatementInput(
            statement_date=as_of,
            account_number=patient.account_number,
            practice=practices[patient.practice_id],
            guarantor=lib.Guarantor(name, address, patient.email),
            patient_name=name,
            lines=tuple(ledger_lines),
            account_credit_cents=min(0, account_level[patient_id]),
            previous=prev,
            previous_balance_cents=prev_balance,
            payments_since_previous_cents=max(0, payments),
            adjustments_since_previous_cents=max(0, adjustments),
        )
    return out


def build_statement_input(session: Session, patient_id: int, as_of: date) -> lib.StatementInput:
    """One patient's statement input as of ``as_of`` (see :func:`build_statement_inputs`)."""
    found = build_statement_inputs(session, [patient_id], as_of).get(patient_id)
    if found is None:
        raise NotFound(f"no patient with id {patient_id}")
    return found


def _previous_statements(
    session: Session, ids: Sequence[int], as_of: date
) -> dict[int, lib.PreviousStatement]:
    """Each patient's latest statement before ``as_of`` that was not voided."""
    out: dict[int, lib.PreviousStatement] = {}
    for chunk in _chunks(list(ids)):
        rows = session.execute(
            select(
                Statement.patient_id,
                Statement.statement_date,
                Statement.balance_cents,
                Statement.dunning_step,
            )
            .where(
                Statement.patient_id.in_(chunk),
                Statement.statement_date < as_of,
                Statement.state != StatementState.VOID,
            )
            .order_by(Statement.patient_id, Statement.statement_date, Statement.id)
        )
        for patient_id, statement_date, balance, step in rows:
            out[patient_id] = lib.PreviousStatement(statement_date, balance, step)
    return out


# -- the run ----------------------------------------------------------------------------------


@dataclass(slots=True)
class ChunkOutcome:
    """What one chunk did (counts and codes only: these go to logs and the API)."""

    considered: int = 0
    issued: int = 0
    skipped: int = 0
    held: int = 0
    failed: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)  # lines kept off (rule, line ref)
    statement_ids: list[int] = field(default_factory=list)


def candidate_patient_ids(
    session: Session, as_of: date, first_patient_id: int | None = None, last_patient_id: int | None = None
) -> list[int]:
    """Patients with a non-zero A/R-patient balance as of ``as_of`` (sorted ids), optionally in an id range."""
    stmt = (
        select(Posting.patient_id)
        .join(Account, Account.id == Posting.account_id)
        .join(JournalEntry, JournalEntry.id == Posting.journal_entry_id)
        .where(Account.code == AccountCode.AR_PATIENT.value, JournalEntry.effective_date <= as_of)
        .where(Posting.patient_id.is_not(None))
    )
    if first_patient_id is not None:
        stmt = stmt.where(Posting.patient_id >= first_patient_id)
    if last_patient_id is not None:
        stmt = stmt.where(Posting.patient_id <= last_patient_id)
    stmt = (
        stmt.group_by(Posting.patient_id)
        .having(func.sum(Posting.amount_cents) != 0)
        .order_by(Posting.patient_id)
    )
    return [int(pid) for pid in session.scalars(stmt)]


def _open_holds(session: Session, ids: Sequence[int]) -> set[int]:
    held: set[int] = set()
    for chunk in _chunks(list(ids)):
        held.update(
            session.scalars(
                select(StatementHold.patient_id).where(
                    StatementHold.patient_id.in_(chunk), StatementHold.released_at.is_(None)
                )
            )
        )
    return held


def _plans_in_good_standing(session: Session, ids: Sequence[int], as_of: date) -> set[int]:
    from claims_server.payments.plans import patients_in_good_standing

    return patients_in_good_standing(session, as_of, patient_ids=list(ids))


def _lock_patients(session: Session, ids: Sequence[int]) -> None:
    """Serialize statement issuing per patient until this transaction ends.

    Two runs at once (the scheduler's and a biller's, or two CLI runs) must not both see
    "no statement this cycle" and both issue one. PostgreSQL: a transaction-scoped advisory
    lock per patient, taken in id order (so two chunks never wait on each other in a
    cycle); the second run then reads the first one's statements. SQLite: a write that
    matches nothing takes the database's write lock before anything is read.
    """
    if not ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        for chunk in _chunks(list(ids)):
            session.execute(
                text(
                    "SELECT pg_advisory_xact_lock(CAST(:key AS integer), CAST(x AS integer)) "
                    "FROM (SELECT unnest(CAST(:ids AS bigint[])) AS x ORDER BY 1) AS patients"
                ),
                {"key": _ISSUE_LOCK_KEY, "ids": sorted(chunk)},
            )
    else:
        session.execute(text("DELETE FROM statements WHERE 1 = 0"))


def _statements_this_cycle(session: Session, ids: Sequence[int], as_of: date, cycle_days: int) -> set[int]:
    """Patients with a statement (not void) dated within ``cycle_days`` of ``as_of``, before or after."""
    low, high = as_of - timedelta(days=cycle_days - 1), as_of + timedelta(days=cycle_days - 1)
    found: set[int] = set()
    for chunk in _chunks(list(ids)):
        found.update(
            session.scalars(
                select(Statement.patient_id).where(
                    Statement.patient_id.in_(chunk),
                    Statement.statement_date.between(low, high),
                    Statement.state != StatementState.VOID,
                )
            )
        )
    return found


def _flag_held_amounts(
    session: Session, inputs: dict[int, lib.StatementInput], outcome: ChunkOutcome
) -> None:
    """A work item per service line whose PR-45 is kept off the statement (not billable).

    PR-45 put on a patient the plan does not let us balance-bill is the payer's error or
    ours (the contract's discount is CO-45): a biller asks the payer to reprocess it or
    writes it off; until then statements leave it out. One item per line (dedupe key),
    opened once; the run counts the lines (``warnings``, no amounts or names).
    """
    held: list[tuple[int, str, str, int]] = []  # patient, claim public id, line ref, cents
    for patient_id, data in inputs.items():
        for line in data.lines:
            cents = lib.held_cents(line)
            if cents > 0:
                held.append((patient_id, line.claim_ref, line.line_ref, cents))
    if not held:
        return
    keys = {f"statement_pr45:{line_ref}": item for item in held for line_ref in (item[2],)}
    existing = set(session.scalars(select(WorkItem.dedupe_key).where(WorkItem.dedupe_key.in_(sorted(keys)))))
    refs = sorted({h[1] for h in held})
    claim_ids = {
        public_id: claim_id
        for public_id, claim_id in session.execute(
            select(Claim.public_id, Claim.id).where(Claim.public_id.in_(refs))
        )
    }
    for key, (patient_id, claim_ref, line_ref, _cents) in keys.items():
        outcome.warnings.append({"rule": "pr45_not_billable", "line": line_ref})
        if key in existing:
            continue
        session.add(
            WorkItem(
                queue=WorkQueue.PATIENT_BALANCE,
                dedupe_key=key,
                claim_id=claim_ids.get(claim_ref),
                patient_id=patient_id,
                reason_codes=["PR-45"],
                recommended_action=(
                    "The payer put PR-45 (charge above the allowed amount) on the patient, but the plan "
                    "does not allow balance billing: ask the payer to reprocess it as CO-45, or write it "
                    "off as contractual. Statements leave this amount out until then."
                ),
            )
        )
    session.flush()


def process_patients(
    session: Session,
    patient_ids: Sequence[int],
    as_of: date,
    rules: lib.CycleRules,
    *,
    run: StatementRun | None = None,
    pay_url: str | None = None,
) -> ChunkOutcome:
    """Decide, build, render and store the statements of ``patient_ids`` (caller commits)."""
    outcome = ChunkOutcome()
    ids = sorted(set(patient_ids))
    if run is not None:
        done_already = set(
            session.scalars(
                select(Statement.patient_id).where(Statement.run_id == run.id, Statement.patient_id.in_(ids))
            )
        )
        ids = [pid for pid in ids if pid not in done_already]
    _lock_patients(session, ids)
    this_cycle = _statements_this_cycle(session, ids, as_of, rules.min_days_between)
    inputs = build_statement_inputs(
        session, ids, as_of, pay_url=pay_url, balance_billing_payers=rules.balance_billing_payers
    )
    _flag_held_amounts(session, inputs, outcome)
    holds = _open_holds(session, ids)
    plans = _plans_in_good_standing(session, ids, as_of)
    public_ids = _patient_public_ids(session, ids)
    audits: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    line_rows: list[list[dict[str, Any]]] = []
    cipher = cipher_for(session)
    now = utcnow()
    for patient_id in ids:
        data = inputs.get(patient_id)
        outcome.considered += 1
        if data is None:
            continue
        amounts = lib.account_amounts(data)
        has_address = data.guarantor.address is not None and data.guarantor.address.is_complete
        decision = lib.decide(
            rules,
            lib.AccountSnapshot(
                amount_due_cents=amounts.amount_due_cents,
                pending_insurance_cents=amounts.pending_insurance_cents,
                previous=data.previous,
                payments_since_previous_cents=data.payments_since_previous_cents,
                on_hold=patient_id in holds,
                payment_plan_in_good_standing=patient_id in plans,
                has_address=has_address or bool(data.guarantor.email),
                already_this_cycle=patient_id in this_cycle,
            ),
            as_of,
        )
        if decision.action is lib.CycleAction.SKIP:
            outcome.skipped += 1
            key = decision.reason.value if decision.reason else "skipped"
            outcome.skip_reasons[key] = outcome.skip_reasons.get(key, 0) + 1
            continue
        patient_public_id = public_ids[patient_id]
        if decision.action is lib.CycleAction.HOLD:
            _place_collections_hold(
                session, patient_id, patient_public_id, amounts.amount_due_cents, decision.step, run
            )
            outcome.held += 1
            continue
        try:
            row, lines = _issue(patient_id, data, decision, rules, run, cipher, now)
        except lib.StatementInputError as exc:
            outcome.failed += 1
            outcome.errors.append({"patient": patient_public_id, **exc.to_dict()})
            continue
        outcome.issued += 1
        rows.append(row)
        line_rows.append(lines)
        audits.append(
            {
                "action": AuditAction.READ,
                "event_type": "statement.build",
                "entity_type": "patient",
                "entity_id": patient_public_id,
                "patient_id": patient_id,
                "details": {"fields": ["name", "address", "email"], "lines": len(data.lines)},
            }
        )
        audits.append(
            {
                "action": AuditAction.CREATE,
                "event_type": "statement.issue",
                "entity_type": "statement",
                "entity_id": row["public_id"],
                "patient_id": patient_id,
                "details": {
                    "fields": ["html_content", "pdf_content"],
                    "dunning_stage": decision.stage.name.lower() if decision.stage else None,
                    "dunning_step": decision.step,
                    "lines": len(lines),
                    "run": run.public_id if run is not None else None,
                },
            }
        )
    # The whole chunk's statements and lines in two bulk INSERTs (COPY on PostgreSQL).
    session.flush()
    outcome.statement_ids = bulk_insert(session, Statement.__table__, rows, returning_ids=True)
    bulk_insert(
        session,
        StatementLine.__table__,
        [
            {"statement_id": statement_id, **line}
            for statement_id, lines in zip(outcome.statement_ids, line_rows, strict=True)
            for line in lines
        ],
    )
    audit_events_bulk(session, audits)
    return outcome


def _patient_public_ids(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """patients.id -> public_id in one query per IN chunk (no autoflush between statements)."""
    out: dict[int, str] = {}
    for chunk in _chunks(list(ids)):
        rows = session.execute(select(Patient.id, Patient.public_id).where(Patient.id.in_(chunk)))
        out.update((int(patient_id), public_id) for patient_id, public_id in rows)
    return out


def _issue(
    patient_id: int,
    data: lib.StatementInput,
    decision: lib.CycleDecision,
    rules: lib.CycleRules,
    run: StatementRun | None,
    cipher: Any,
    now: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Build and render one statement: its ``statements`` row (documents sealed) and its line rows.

    Rows, not ORM objects: a chunk's statements go to the database in one bulk INSERT (COPY
    on PostgreSQL) with their PDF and HTML encrypted here, as the ORM flush would do, bound
    to the row's public id. The ``statement.issue`` audit event names the PHI fields stored.
    """
    assert decision.stage is not None
    public_id = _new_public_id()
    data = _with_ref(data, public_id)
    statement = lib.build_statement(
        data, stage=decision.stage, step=decision.step, due_date=rules.due_date(data.statement_date)
    )
    pdf = lib.render_pdf(statement)
    html = lib.render_html(statement).encode("utf-8")
    aging = statement.aging
    row = {
        "public_id": public_id,
        "created_at": now,
        "updated_at": now,
        "patient_id": patient_id,
        "statement_date": data.statement_date,
        "due_date": statement.due_date,
        "balance_cents": statement.amount_due_cents,
        "current_cents": aging.current_cents,
        "days_31_60_cents": aging.days_31_60_cents,
        "days_61_90_cents": aging.days_61_90_cents,
        "days_91_120_cents": aging.days_91_120_cents,
        "over_120_cents": aging.over_120_cents,
        "dunning_stage": int(decision.stage),
        "delivery_channel": DeliveryChannel.MAIL,
        "state": StatementState.ISSUED,
        "run_id": run.id if run is not None else None,
        "dunning_step": decision.step,
        "pending_insurance_cents": statement.pending_insurance_cents,
        "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
        "pdf_content": cipher.seal(_DOCUMENT_ATTRS["pdf_content"], public_id, pdf),
        "html_content": cipher.seal(_DOCUMENT_ATTRS["html_content"], public_id, html),
    }
    lines = [
        {
            "line_number": n,
            "service_date": line.service_date,
            "description": lib.service_text(line.procedure_code, line.description)[:512],
            "charge_cents": line.billed_cents,
            "insurance_paid_cents": line.insurance_paid_cents,
            "adjustments_cents": line.adjustments_cents,
            "patient_paid_cents": line.patient_paid_cents,
            "balance_cents": line.balance_cents,
            "reason_text": line.reason_text() or None,
        }
        for n, line in enumerate(statement.lines(), 1)
    ]
    return row, lines


def _new_public_id() -> str:
    from claims_server.models.common import new_public_id

    return new_public_id()


def _with_ref(data: lib.StatementInput, public_id: str) -> lib.StatementInput:
    from dataclasses import replace

    return replace(data, statement_ref=public_id[:10].upper())


def _place_collections_hold(
    session: Session,
    patient_id: int,
    patient_public_id: str,
    amount_due_cents: int,
    step: int,
    run: StatementRun | None,
) -> StatementHold:
    """Stop statements and queue the account for a person (the final notice went unanswered)."""
    hold = StatementHold(
        patient_id=patient_id,
        reason=HoldReason.COLLECTIONS,
        balance_cents=amount_due_cents,
        dunning_step=step,
        run_id=run.id if run else None,
    )
    hold.public_id = _new_public_id()
    item = WorkItem(
        queue=WorkQueue.PATIENT_BALANCE,
        dedupe_key=f"statement_hold:{hold.public_id}",
        reason_codes=["COLLECTIONS_HOLD"],
        recommended_action=(
            "Final notice sent and the balance is still open: call the patient, offer a payment plan, "
            "consider a hardship write-off, or release the hold to resume statements."
        ),
    )
    session.add(item)
    session.flush()
    hold.work_item_id = item.id
    session.add(hold)
    session.flush()
    from claims_server.security.audit import audit_event

    audit_event(
        session,
        action=AuditAction.CREATE,
        event_type="statement.hold",
        entity_type="statement_hold",
        entity_id=hold.public_id,
        patient_id=patient_id,
        details={"reason": HoldReason.COLLECTIONS.value, "dunning_step": step, "patient": patient_public_id},
    )
    return hold


def release_hold(session: Session, hold_public_id: str, *, user_id: int | None = None) -> StatementHold:
    """Release a hold: the patient's statements resume with the next run."""
    hold = session.scalar(select(StatementHold).where(StatementHold.public_id == hold_public_id))
    if hold is None:
        raise NotFound(f"no statement hold {hold_public_id}")
    if hold.released_at is None:
        hold.released_at = utcnow()
        hold.released_by_user_id = user_id
        from claims_server.security.audit import audit_event

        audit_event(
            session,
            action=AuditAction.UPDATE,
            event_type="statement.hold_release",
            entity_type="statement_hold",
            entity_id=hold.public_id,
            patient_id=hold.patient_id,
            details={"reason": hold.reason.value},
        )
    return hold


def list_holds(session: Session, state: str = "open") -> list[tuple[StatementHold, str]]:
    """Holds (``open``, ``released`` or ``all``), oldest first, each with its patient's public id."""
    stmt = select(StatementHold, Patient.public_id).join(Patient, Patient.id == StatementHold.patient_id)
    if state == "open":
        stmt = stmt.where(StatementHold.released_at.is_(None))
    elif state == "released":
        stmt = stmt.where(StatementHold.released_at.is_not(None))
    return [(hold, public_id) for hold, public_id in session.execute(stmt.order_by(StatementHold.id))]


def hold_summary(hold: StatementHold, patient_public_id: str | None) -> dict[str, Any]:
    """A hold as the API and the CLI show it (public ids, amounts and dates; no patient data)."""
    from claims_server.api_common.fields import cents_to_money

    return {
        "id": hold.public_id,
        "patient_id": patient_public_id,
        "reason": hold.reason.value,
        "balance": cents_to_money(hold.balance_cents) if hold.balance_cents is not None else None,
        "dunning_step": hold.dunning_step,
        "placed_at": hold.created_at.isoformat(),
        "released_at": hold.released_at.isoformat() if hold.released_at else None,
    }


def _chunk_ranges(ids: Sequence[int], chunk_size: int) -> list[tuple[int, int]]:
    return [(chunk[0], chunk[-1]) for chunk in _chunks(ids, chunk_size)]


def start_statement_run(
    session: Session, as_of: date, *, user_id: int | None = None, chunk_size: int = CHUNK_SIZE
) -> tuple[StatementRun, list[tuple[int, int]]]:
    """Create the run row (total = candidate patients) and its chunks as (first id, last id) ranges."""
    ids = candidate_patient_ids(session, as_of)
    run = StatementRun(
        as_of=as_of, total=len(ids), state=StatementRunState.QUEUED, created_by_user_id=user_id
    )
    session.add(run)
    session.flush()
    chunks = _chunk_ranges(ids, chunk_size)
    run.chunk_plan = [[first, last] for first, last in chunks]
    if not ids:
        run.state = StatementRunState.DONE
        run.started_at = run.finished_at = utcnow()
    return run, chunks


def mark_run_started(session: Session, run_id: int) -> None:
    """The run is running from its first chunk on (a short transaction of its own; caller commits)."""
    run = session.get(StatementRun, run_id, with_for_update={"key_share": True})
    if run is not None and run.state is StatementRunState.QUEUED:
        run.state = StatementRunState.RUNNING
        run.started_at = utcnow()
        session.flush()


def _chunk_lock_keys(run_id: int, first_patient_id: int) -> dict[str, int]:
    return {"run": _CHUNK_LOCK_BASE + run_id % 1_000_000, "chunk": first_patient_id % 2**31}


def _lock_chunk(session: Session, run_id: int, first_patient_id: int) -> None:
    """Serialize two deliveries of the same chunk (acks_late redelivery) until this transaction ends.

    PostgreSQL: an advisory lock on (run, chunk), so the second delivery waits and then sees
    the chunk done. SQLite: its database-wide write lock does the same. The lock is also the
    chunk's lease: it lives exactly as long as the worker's transaction, so a killed worker's
    lock is gone with its connection (see :func:`reap_stalled_run`).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:run AS integer), CAST(:chunk AS integer))"),
            _chunk_lock_keys(run_id, first_patient_id),
        )


def _chunk_in_progress(session: Session, run_id: int, first_patient_id: int) -> bool:
    """Is a worker inside this chunk right now? (PostgreSQL: its advisory lock is held.)

    Taking the lock here holds it until the caller's transaction ends (a worker starting the
    chunk meanwhile waits that long); SQLite has no such lock, so there it is never known.
    """
    if session.get_bind().dialect.name != "postgresql":
        return False
    free = session.execute(
        text("SELECT pg_try_advisory_xact_lock(CAST(:run AS integer), CAST(:chunk AS integer))"),
        _chunk_lock_keys(run_id, first_patient_id),
    ).scalar()
    return not free


def reap_stalled_run(
    session: Session,
    run: StatementRun,
    *,
    lease_seconds: int,
    now: datetime,
    chunk_size: int = CHUNK_SIZE,
) -> list[tuple[int, int]]:
    """The chunks of a stalled run to queue again (caller commits, then queues them).

    A run is stalled when it is not finished and its row has not changed for ``lease_seconds``
    (every finished chunk updates it): a worker that was killed holds its chunk's message
    unacknowledged until the broker's visibility timeout (an hour), and nothing else moves.
    The chunks are the run's plan recomputed as :func:`start_statement_run` made it (same
    candidates, same ``chunk_size``) minus those done and, on PostgreSQL, minus those a live
    worker is inside. Queuing a chunk twice is harmless: the second delivery waits for the
    chunk lock, then finds it done (and a patient with a statement in this run is never
    considered again). The row's ``updated_at`` is set to ``now``, so a run that stays stalled
    is looked at again one lease later, not on every call; ``lease_seconds=0`` (an operator's
    resume) does not wait.
    """
    if run.state not in (StatementRunState.QUEUED, StatementRunState.RUNNING):
        return []
    if (
        lease_seconds > 0
        and run.updated_at is not None
        and (now - run.updated_at).total_seconds() < lease_seconds
    ):
        return []
    done = set(run.chunks_done or [])
    if run.chunk_plan is not None:
        plan = [(first, last) for first, last in run.chunk_plan]
    else:  # a run started before 0010 kept no plan: recompute it as it was made
        plan = _chunk_ranges(candidate_patient_ids(session, run.as_of), chunk_size)
    pending = [
        (first, last)
        for first, last in plan
        if first not in done and not _chunk_in_progress(session, run.id, first)
    ]
    if pending:
        run.updated_at = now
        session.flush()
    return pending


def stalled_runs(session: Session, *, lease_seconds: int, now: datetime) -> list[StatementRun]:
    """Unfinished runs whose row has not changed for ``lease_seconds`` (see :func:`reap_stalled_run`)."""
    cutoff = now - timedelta(seconds=lease_seconds)
    return list(
        session.scalars(
            select(StatementRun)
            .where(
                StatementRun.state.in_([StatementRunState.QUEUED, StatementRunState.RUNNING]),
                StatementRun.updated_at <= cutoff,
            )
            .order_by(StatementRun.id)
        )
    )


def _all_chunks_done(run: StatementRun) -> bool:
    """Every planned chunk counted (a run without a plan: every candidate considered)."""
    if run.chunk_plan is not None:
        return {first for first, _last in run.chunk_plan} <= set(run.chunks_done or [])
    return run.done >= run.total


def process_run_chunk(
    session: Session,
    run_id: int,
    first_patient_id: int,
    last_patient_id: int,
    rules: lib.CycleRules,
    *,
    pay_url: str | None = None,
) -> ChunkOutcome:
    """One chunk of a run: the candidates with ids in the range; advances progress (caller commits).

    The run's row is locked only at the end, to add this chunk's counts: holding it while
    statements are rendered would make every other worker wait (one chunk at a time).
    A chunk whose ids are already done (a redelivered task) does nothing.
    """
    _lock_chunk(session, run_id, first_patient_id)
    run = session.get(StatementRun, run_id, populate_existing=True)
    if run is None:
        raise NotFound(f"no statement run with id {run_id}")
    if first_patient_id in (run.chunks_done or []):
        return ChunkOutcome()
    ids = candidate_patient_ids(session, run.as_of, first_patient_id, last_patient_id)
    outcome = process_patients(session, ids, run.as_of, rules, run=run, pay_url=pay_url)
    # FOR NO KEY UPDATE: the statements other chunks are inserting hold a KEY SHARE lock on
    # this row (their run_id foreign key); FOR UPDATE would wait for them while they wait for
    # the audit chain lock this transaction holds, a deadlock.
    run = session.get(StatementRun, run_id, with_for_update={"key_share": True}, populate_existing=True)
    assert run is not None
    if run.state is StatementRunState.QUEUED:
        run.state = StatementRunState.RUNNING
        run.started_at = utcnow()
    run.done = min(run.total, run.done + outcome.considered)
    run.issued += outcome.issued
    run.skipped += outcome.skipped
    run.held += outcome.held
    run.failed += outcome.failed
    reasons = dict(run.skip_reasons or {})
    for key, count in outcome.skip_reasons.items():
        reasons[key] = reasons.get(key, 0) + count
    run.skip_reasons = reasons
    if outcome.errors or outcome.warnings:
        warnings = [{"level": "warning", **w} for w in outcome.warnings]
        run.errors = [*(run.errors or []), *outcome.errors, *warnings]
    run.chunks_done = [*(run.chunks_done or []), first_patient_id]
    if _all_chunks_done(run):
        run.state = StatementRunState.DONE
        run.finished_at = utcnow()
    session.flush()
    return outcome


def run_statements(
    session: Session,
    as_of: date,
    *,
    rules: lib.CycleRules | None = None,
    user_id: int | None = None,
    pay_url: str | None = None,
) -> StatementRun:
    """A whole statement run in this process and transaction (caller commits)."""
    rules = rules or lib.CycleRules()
    run, chunks = start_statement_run(session, as_of, user_id=user_id)
    for first, last in chunks:
        process_run_chunk(session, run.id, first, last, rules, pay_url=pay_url)
    return run


def run_notices(run: StatementRun) -> list[str]:
    """What a person should read about the run, in words (counts only, no patient data)."""
    out: list[str] = []
    already = (run.skip_reasons or {}).get(lib.SkipReason.ALREADY_THIS_CYCLE.value, 0)
    if already:
        noun = "patient already has" if already == 1 else "patients already have"
        out.append(f"{already} {noun} a statement this cycle; nothing new was issued to them.")
    held = sum(1 for e in run.errors or [] if e.get("rule") == "pr45_not_billable")
    if held:
        out.append(
            f"{held} service line(s) carry PR-45 (above the allowed amount) that the plan does not let "
            "us bill: left off the statements and queued in the patient-balance queue."
        )
    return out


def run_progress(run: StatementRun) -> dict[str, Any]:
    """The run as the API and the CLI show it: counts and state, no patient data."""
    return {
        "id": run.public_id,
        "as_of": run.as_of.isoformat(),
        "state": run.state.value,
        "done": run.done,
        "total": run.total,
        "issued": run.issued,
        "skipped": run.skipped,
        "held": run.held,
        "failed": run.failed,
        "skip_reasons": dict(run.skip_reasons or {}),
        "errors": [e for e in run.errors or [] if e.get("level") != "warning"],
        "warnings": [e for e in run.errors or [] if e.get("level") == "warning"],
        "notices": run_notices(run),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


# -- what delivery reads ------------------------------------------------------------------------


def statement_pdf(statement: Statement) -> bytes:
    """The stored PDF (decrypted by the ORM); refuses a statement that has none."""
    if not statement.pdf_content:
        raise NotFound(f"statement {statement.public_id} has no rendered PDF")
    return bytes(statement.pdf_content)


def statement_html(statement: Statement, pay_url: str | None = None) -> str:
    """The stored HTML, with the patient's pay link put in its slot when given."""
    if not statement.html_content:
        raise NotFound(f"statement {statement.public_id} has no rendered HTML")
    return lib.with_pay_link(bytes(statement.html_content).decode("utf-8"), pay_url)
