"""A/R aging and the revenue-cycle KPIs, computed from the ledger and the 835s.

Everything is in integer cents; rates are ``Decimal`` percentages rounded half-up to one
decimal (or ``None`` when the denominator is zero: "no claims" is not "0 %").

A/R aging (as of any past date)
    The receivable as the ledger stood at the end of ``as_of``: Σ postings to A/R
    insurance (by payer) or A/R patient (by patient) whose journal entry's accounting
    date (``effective_date``) is on or before ``as_of``. Each claim's balance is aged
    from its date of service (its lines' first ``service_date_from``; the earliest entry
    on the claim when that is earlier, or when the claim has no dated line), in the
    buckets 0-30, 31-60, 61-90, 91-120 and over 120 days (HFMA ages A/R from the date of
    service / discharge). The charge itself is dated the day the claim was sent
    (``ledger.services.charge_date``). Balances not tied to a claim age from their own
    earliest entry.

KPIs (HFMA MAP Keys, paraphrased; see docs/kpis.md for the full definitions and where
our data forces a choice). The period is ``[start, end]``, both inclusive.

- Clean claim rate = claims first submitted in the period that were accepted on that
  first submission with no manual rework (never rejected by a 999/277CA, never reopened
  for correction) / claims first submitted in the period.
- Initial denial rate, by count = claims whose first 835 in the period denied them
  (CLP02 = 4, or a line paid zero with a denial CARC: not PR, not a pricing CARC such as CO-45)
  / claims with a first 835 in the period (the 835's production date, DTM*405). By dollars = the charges denied (the whole
  CLP03 for CLP02 = 4, else the denied lines' charges) / the charges remitted (CLP03).
- First-pass resolution rate = claims with a first 835 in the period that were paid on
  that first pass (CLP02 1, 2 or 3, no denied line) and were never rejected or replaced
  / claims with a first 835 in the period.
- Net days in A/R = net A/R at the end of the period / average daily net patient
  service revenue over the 90 days ending on ``end`` (net revenue = gross charges -
  contractual adjustments - other adjustments, by accounting date). Undefined (None,
  "n/a") when the window has no net revenue; when A/R at the end is a credit (more
  collected than charged) it is None too and the KPI's ``note`` says so, rather than
  a negative number of days.
- Net collection rate = cash collected in the period (Σ cash clearing: insurance
  payments net of provider-level adjustments, plus patient payments) / (gross charges -
  contractual adjustments - non-controllable write-offs) of the period. Write-offs the
  office could have avoided (small balance, timely filing, bad debt, administrative,
  other) stay in the denominator and lower the rate; charity/hardship, non-covered by
  contract and duplicate charges are not collectible revenue and are deducted
  (``ledger.write_offs.NON_CONTROLLABLE_REASONS``; docs/write-offs.md).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from claims_server.api_common.fields import cents_to_money
from claims_server.errors import Unprocessable
from claims_server.models import (
    Account,
    AccountCode,
    Adjustment,
    AuditEvent,
    Claim,
    ClaimFrequency,
    ClaimPayment,
    JournalEntry,
    LinePayment,
    Patient,
    Payer,
    Posting,
    Remittance,
    ServiceLine,
)
from claims_server.models.remittance import AdjustmentGroup
from claims_server.remittance.posting import PRICING_CARCS

#: (label, first day, last day or None for open-ended) of each aging bucket.
BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-30", 0, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-120", 91, 120),
    ("120+", 121, None),
)
BUCKET_LABELS = tuple(label for label, _, _ in BUCKETS)
REVENUE_WINDOW_DAYS = 90


def bucket_of(age_days: int) -> str:
    """The bucket label of a balance ``age_days`` old (negative ages count as 0: future-dated)."""
    age = max(0, age_days)
    for label, first, last in BUCKETS:
        if age >= first and (last is None or age <= last):
            return label
    raise AssertionError("the buckets cover every age")


@dataclass
class AgingRow:
    """One payer's or patient's receivable, by bucket (cents)."""

    key: str  # payer or patient public id ("" for balances with neither)
    label: str  # payer name or patient account number
    buckets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKET_LABELS, 0))

    @property
    def total_cents(self) -> int:
        return sum(self.buckets.values())


@dataclass
class AgingReport:
    as_of: date
    by: str  # "payer" or "patient"
    rows: list[AgingRow]

    @property
    def totals(self) -> dict[str, int]:
        return {label: sum(r.buckets[label] for r in self.rows) for label in BUCKET_LABELS}

    @property
    def total_cents(self) -> int:
        return sum(self.totals.values())


def _aging_balances(
    session: Session, account: AccountCode, dimension: str, as_of: date
) -> list[tuple[int | None, int | None, int, date]]:
    """(dimension value, claim id, balance, earliest entry date) per claim on ``account`` as of ``as_of``."""
    column = getattr(Posting, dimension)
    stmt = (
        select(
            column, Posting.claim_id, func.sum(Posting.amount_cents), func.min(JournalEntry.effective_date)
        )
        .join(Account, Account.id == Posting.account_id)
        .join(JournalEntry, JournalEntry.id == Posting.journal_entry_id)
        .where(Account.code == account.value, JournalEntry.effective_date <= as_of)
        .group_by(column, Posting.claim_id)
    )
    return [(k, c, int(total), first) for k, c, total, first in session.execute(stmt) if total]


def _claim_ages(session: Session, claim_ids: set[int], as_of: date) -> dict[int, date]:
    """claim id → the day its A/R ages from: its first date of service, or its earliest
    receivable entry when that is earlier (a charge never postdates the service it bills)."""
    if not claim_ids:
        return {}
    served = dict(
        session.execute(
            select(ServiceLine.claim_id, func.min(ServiceLine.service_date_from))
            .where(ServiceLine.claim_id.in_(claim_ids), ServiceLine.service_date_from.is_not(None))
            .group_by(ServiceLine.claim_id)
        ).all()
    )
    stmt = (
        select(Posting.claim_id, func.min(JournalEntry.effective_date))
        .join(Account, Account.id == Posting.account_id)
        .join(JournalEntry, JournalEntry.id == Posting.journal_entry_id)
        .where(
            Account.code.in_([AccountCode.AR_INSURANCE.value, AccountCode.AR_PATIENT.value]),
            JournalEntry.effective_date <= as_of,
            Posting.claim_id.in_(claim_ids),
        )
        .group_by(Posting.claim_id)
    )
    return {int(c): min(d, served.get(c) or d) for c, d in session.execute(stmt)}


def ar_aging(session: Session, *, as_of: date, by: str = "payer") -> AgingReport:
    """A/R aging as of the end of ``as_of``, by payer (A/R insurance) or by patient (A/R patient)."""
    if by == "payer":
        account, dimension, model = AccountCode.AR_INSURANCE, "payer_id", Payer
    elif by == "patient":
        account, dimension, model = AccountCode.AR_PATIENT, "patient_id", Patient
    else:
        raise Unprocessable(
            "by must be payer or patient",
            errors=[{"field": "by", "rule": "one_of", "message": "payer or patient"}],
        )
    balances = _aging_balances(session, account, dimension, as_of)
    starts = _claim_ages(session, {c for _, c, _, _ in balances if c is not None}, as_of)
    rows: dict[int | None, AgingRow] = {}
    for key, claim_id, amount, first in balances:
        row = rows.get(key)
        if row is None:
            entity = session.get(model, key) if key is not None else None
            label = ""
            if isinstance(entity, Payer):
                label = entity.name
            elif isinstance(entity, Patient):
                label = entity.account_number
            row = rows[key] = AgingRow(key=entity.public_id if entity is not None else "", label=label)
        start = starts.get(claim_id, first) if claim_id is not None else first
        row.buckets[bucket_of((as_of - start).days)] += amount
    ordered = sorted(rows.values(), key=lambda r: (r.label, r.key))
    return AgingReport(as_of=as_of, by=by, rows=[r for r in ordered if any(r.buckets.values())])


# -- KPIs -------------------------------------------------------------------------------------------


def percent(numerator: int, denominator: int) -> Decimal | None:
    """``numerator / denominator`` as a percentage rounded half-up to 0.1; None when undefined."""
    if denominator == 0:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass
class Kpi:
    """One indicator with the figures it is computed from, so a reader can check it."""

    name: str
    value: Decimal | None
    unit: str  # "percent" or "days"
    numerator: int
    denominator: int
    definition: str
    note: str = ""  # why the value is missing when the figures exist (e.g. a credit A/R)


def _claims_with_events(session: Session, event_types: Sequence[str]) -> set[str]:
    """Public ids of claims with any audit event of ``event_types`` (the claim's history)."""
    return set(
        session.scalars(
            select(AuditEvent.entity_id).where(
                AuditEvent.entity_type == "claim", AuditEvent.event_type.in_(list(event_types))
            )
        )
    )


def _in_period(moment_date: date | None, start: date, end: date) -> bool:
    return moment_date is not None and start <= moment_date <= end


@dataclass(frozen=True, slots=True)
class AdjustmentFact:
    """A stored CAS triple, as the KPIs read it."""

    group_code: AdjustmentGroup
    reason_code: str
    amount_cents: int


@dataclass(slots=True)
class LineFact:
    """A stored SVC loop: what it charged, what was paid, and its CAS."""

    charge_cents: int
    paid_cents: int
    adjustments: list[AdjustmentFact] = field(default_factory=list)


@dataclass(slots=True)
class FirstPayment:
    """A claim's first 835 decision (its first ``ClaimPayment``), dated by DTM*405.

    Read with column queries rather than ORM entities: the KPIs are aggregates, and
    loading every claim as an entity would also record each one as a PHI read.
    """

    claim_id: int
    claim_public_id: str
    status_code: str
    charge_cents: int
    day: date
    adjustments: list[AdjustmentFact] = field(default_factory=list)  # claim level (2100 CAS)
    line_payments: list[LineFact] = field(default_factory=list)


def _first_payments(session: Session) -> list[FirstPayment]:
    """Each claim's first 835 claim payment with its lines and adjustments, in three queries."""
    first_ids = (
        select(func.min(ClaimPayment.id))
        .where(ClaimPayment.claim_id.is_not(None))
        .group_by(ClaimPayment.claim_id)
        .scalar_subquery()
    )
    by_id: dict[int, FirstPayment] = {}
    for cp_id, claim_id, public_id, status, charge, produced, paid_on, created in session.execute(
        select(
            ClaimPayment.id,
            ClaimPayment.claim_id,
            Claim.public_id,
            ClaimPayment.status_code,
            ClaimPayment.charge_cents,
            Remittance.production_date,
            Remittance.payment_date,
            ClaimPayment.created_at,
        )
        .join(Remittance, Remittance.id == ClaimPayment.remittance_id)
        .join(Claim, Claim.id == ClaimPayment.claim_id)
        .where(ClaimPayment.id.in_(first_ids))
    ):
        # DTM*405 (production) is when the payer decided; BPR16 is when the money settles.
        day = produced or paid_on or created.date()
        by_id[cp_id] = FirstPayment(claim_id, public_id, status, int(charge), day)
    lines: dict[int, LineFact] = {}
    for line_id, cp_id, charge, paid in session.execute(
        select(LinePayment.id, LinePayment.claim_payment_id, LinePayment.charge_cents, LinePayment.paid_cents)
        .where(LinePayment.claim_payment_id.in_(first_ids))
        .order_by(LinePayment.claim_payment_id, LinePayment.position)
    ):
        lines[line_id] = LineFact(int(charge), int(paid))
        by_id[cp_id].line_payments.append(lines[line_id])
    for cp_id, line_id, group, reason, amount in session.execute(
        select(
            Adjustment.claim_payment_id,
            Adjustment.line_payment_id,
            Adjustment.group_code,
            Adjustment.reason_code,
            Adjustment.amount_cents,
        )
        .outerjoin(LinePayment, LinePayment.id == Adjustment.line_payment_id)
        .where(or_(Adjustment.claim_payment_id.in_(first_ids), LinePayment.claim_payment_id.in_(first_ids)))
        .order_by(Adjustment.id)
    ):
        fact = AdjustmentFact(AdjustmentGroup(group), reason, int(amount))
        if line_id is not None:
            lines[line_id].adjustments.append(fact)
        else:
            by_id[cp_id].adjustments.append(fact)
    return list(by_id.values())


def _denial_adjustment(adjustment: AdjustmentFact) -> bool:
    return adjustment.group_code.value != "PR" and adjustment.reason_code not in PRICING_CARCS


def denied_line(line: LineFact) -> bool:
    """A line paid nothing with a denial reason: a non-PR CARC that does not merely price it.

    The posting engine's definition (``PRICING_CARCS``): CO-45 plus PR-1 on a zero-paid line
    is a deductible, not a denial; CO-97 or CO-16 is.
    """
    return (
        line.paid_cents == 0
        and line.charge_cents != 0
        and any(_denial_adjustment(a) for a in line.adjustments)
    )


def denied_cents(payment: FirstPayment) -> int:
    """The charges a first 835 denied: the whole claim for CLP02 = 4, else its denied lines."""
    if payment.status_code == "4":
        return payment.charge_cents
    return sum(line.charge_cents for line in payment.line_payments if denied_line(line))


def is_denial(payment: FirstPayment) -> bool:
    return payment.status_code == "4" or any(denied_line(line) for line in payment.line_payments)


def _ledger_sum(session: Session, accounts: Iterable[AccountCode], start: date, end: date) -> int:
    stmt = (
        select(func.coalesce(func.sum(Posting.amount_cents), 0))
        .join(Account, Account.id == Posting.account_id)
        .join(JournalEntry, JournalEntry.id == Posting.journal_entry_id)
        .where(
            Account.code.in_([a.value for a in accounts]),
            JournalEntry.effective_date >= start,
            JournalEntry.effective_date <= end,
        )
    )
    return int(session.scalar(stmt) or 0)


def _non_controllable_write_offs(session: Session, start: date, end: date) -> int:
    """Σ write-offs (net of reversals) in the period whose reason is not the office's to control."""
    from claims_server.ledger.write_offs import NON_CONTROLLABLE_REASONS

    stmt = (
        select(func.coalesce(func.sum(Posting.amount_cents), 0))
        .join(Account, Account.id == Posting.account_id)
        .join(JournalEntry, JournalEntry.id == Posting.journal_entry_id)
        .where(
            Account.code == AccountCode.WRITE_OFFS.value,
            JournalEntry.reason_code.in_(sorted(r.value for r in NON_CONTROLLABLE_REASONS)),
            JournalEntry.effective_date >= start,
            JournalEntry.effective_date <= end,
        )
    )
    return int(session.scalar(stmt) or 0)


def _receivable_as_of(session: Session, as_of: date) -> int:
    return _ledger_sum(session, (AccountCode.AR_INSURANCE, AccountCode.AR_PATIENT), date.min, as_of)


@dataclass
class KpiFacts:
    """What the claim-based KPIs count, read once so that many periods cost one read."""

    submitted: list[tuple[str, date]]  # (public id, first submission day) of original claims
    rejected_or_reworked: set[str]  # public ids
    replaced: set[int]  # ids of claims a replacement or void points to
    first_payments: list[FirstPayment]

    @classmethod
    def load(cls, session: Session) -> KpiFacts:
        submitted = [
            (public_id, moment.date())
            for public_id, moment in session.execute(
                select(Claim.public_id, Claim.submitted_at).where(
                    Claim.submitted_at.is_not(None), Claim.frequency_code == ClaimFrequency.ORIGINAL
                )
            )
        ]
        replaced = set(
            session.scalars(
                select(Claim.original_claim_id).where(
                    Claim.frequency_code.in_((ClaimFrequency.REPLACEMENT, ClaimFrequency.VOID))
                )
            )
        )
        return cls(
            submitted=submitted,
            rejected_or_reworked=_claims_with_events(
                session, ("claim.rejected", "claim.correct_rejection", "claim.reopen_for_correction")
            ),
            replaced=replaced,
            first_payments=_first_payments(session),
        )

    def first_in(self, start: date, end: date) -> list[FirstPayment]:
        return [p for p in self.first_payments if _in_period(p.day, start, end)]


def _check_period(start: date, end: date) -> None:
    if start > end:
        raise Unprocessable(
            "start must not be after end",
            errors=[{"field": "start", "rule": "order", "message": "after end"}],
        )


def kpis(session: Session, *, start: date, end: date) -> list[Kpi]:
    """The five indicators for the period ``[start, end]`` (see the module docstring)."""
    _check_period(start, end)
    return _kpis_for(session, KpiFacts.load(session), start, end)


def _kpis_for(session: Session, facts: KpiFacts, start: date, end: date) -> list[Kpi]:
    submitted = [public_id for public_id, day in facts.submitted if _in_period(day, start, end)]
    clean = [c for c in submitted if c not in facts.rejected_or_reworked]

    first = facts.first_in(start, end)
    denied = [p for p in first if is_denial(p)]
    resolved = [
        p
        for p in first
        if p.status_code in ("1", "2", "3")
        and not is_denial(p)
        and p.claim_id not in facts.replaced
        and p.claim_public_id not in facts.rejected_or_reworked
    ]
    remitted_cents = sum(p.charge_cents for p in first)
    denied_dollars = sum(denied_cents(p) for p in denied)

    gross = -_ledger_sum(session, (AccountCode.GROSS_CHARGES,), start, end)
    contractual = _ledger_sum(session, (AccountCode.CONTRACTUAL_ADJUSTMENTS,), start, end)
    cash = _ledger_sum(session, (AccountCode.CASH_CLEARING,), start, end)
    collectible = gross - contractual - _non_controllable_write_offs(session, start, end)

    window_start = end - timedelta(days=REVENUE_WINDOW_DAYS - 1)
    window_net = -_ledger_sum(
        session,
        (AccountCode.GROSS_CHARGES, AccountCode.CONTRACTUAL_ADJUSTMENTS, AccountCode.OTHER_ADJUSTMENTS),
        window_start,
        end,
    )
    net_ar = _receivable_as_of(session, end)
    days_in_ar, days_note = _days_in_ar(net_ar, window_net)
    return [
        Kpi("clean_claim_rate", percent(len(clean), len(submitted)), "percent", len(clean), len(submitted),
            "claims accepted on first submission without rework / claims first submitted"),
        Kpi("first_pass_resolution_rate", percent(len(resolved), len(first)), "percent", len(resolved), len(first),
            "claims paid on the first 835 with no denied line, never rejected or replaced / claims first remitted"),
        Kpi("denial_rate_count", percent(len(denied), len(first)), "percent", len(denied), len(first),
            "claims denied (wholly or a line) on their first 835 / claims first remitted"),
        Kpi("denial_rate_dollars", percent(denied_dollars, remitted_cents), "percent", denied_dollars, remitted_cents,
            "charges denied on first 835s / charges first remitted (cents)"),
        Kpi("days_in_ar", days_in_ar, "days", net_ar, window_net,
            f"net A/R at the end / (net revenue of the {REVENUE_WINDOW_DAYS} days ending then / {REVENUE_WINDOW_DAYS})",
            days_note),
        Kpi("net_collection_rate", percent(cash, collectible) if collectible > 0 else None, "percent", cash,
            collectible, "cash collected / (gross charges - contractual adjustments - non-controllable write-offs)"
            " in the period (cents)",
            "" if collectible > 0 or not (cash or collectible) else "no collectible charges in the period"),
    ]  # fmt: skip


def _days_in_ar(net_ar: int, window_net: int) -> tuple[Decimal | None, str]:
    """(days in A/R, note): None with a reason when the figure would mean nothing.

    No net revenue in the window: no activity to measure against ("n/a", no note when A/R
    is zero too). A credit A/R (the payers and patients paid more than was charged, or a
    payment is dated before its charge): not a number of days, said in words.
    """
    if net_ar < 0:
        return None, f"A/R is a credit balance of ${cents_to_money(-net_ar)} at the end of the period"
    if window_net <= 0:
        note = "" if net_ar == 0 else f"no net revenue in the {REVENUE_WINDOW_DAYS} days ending then"
        return None, note
    days = (Decimal(net_ar) * REVENUE_WINDOW_DAYS / Decimal(window_net)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    return days, ""


# -- trends and denial reasons ------------------------------------------------------------------


@dataclass(frozen=True)
class KpiPeriod:
    """The KPIs of one period of a trend."""

    start: date
    end: date
    kpis: list[Kpi]

    def value(self, name: str) -> Decimal | None:
        return next((k.value for k in self.kpis if k.name == name), None)


def month_periods(end: date, months: int) -> list[tuple[date, date]]:
    """The ``months`` calendar months ending with ``end``'s month, oldest first; the last ends on ``end``."""
    if months < 1:
        raise Unprocessable(
            "months must be at least 1", errors=[{"field": "months", "rule": "minimum", "message": ">= 1"}]
        )
    periods = []
    first, last = end.replace(day=1), end
    for _ in range(months):
        periods.append((first, last))
        last = first - timedelta(days=1)
        first = last.replace(day=1)
    return periods[::-1]


def kpi_trend(session: Session, periods: Sequence[tuple[date, date]]) -> list[KpiPeriod]:
    """The KPIs of each ``(start, end)`` period, reading the claims and 835s once."""
    for start, end in periods:
        _check_period(start, end)
    facts = KpiFacts.load(session)
    return [KpiPeriod(start, end, _kpis_for(session, facts, start, end)) for start, end in periods]


@dataclass(frozen=True)
class DenialReason:
    """One CARC (with its group) behind the initial denials of a period."""

    group_code: str  # CAS01; "" when the payer denied the claim without a CAS
    reason_code: str  # CAS02
    claims: int  # denied claims citing it
    amount_cents: int  # Σ its CAS03 on the denied claims and lines

    @property
    def code(self) -> str:
        return f"{self.group_code}-{self.reason_code}" if self.group_code else "none given"


def _denial_adjustments(payment: FirstPayment) -> list[AdjustmentFact]:
    """The CAS a denial rests on: every non-PR, non-pricing CAS of a CLP02 = 4 claim, else of its denied lines."""
    if payment.status_code == "4":
        found = [*payment.adjustments, *(a for line in payment.line_payments for a in line.adjustments)]
    else:
        found = [a for line in payment.line_payments if denied_line(line) for a in line.adjustments]
    return [a for a in found if _denial_adjustment(a)]


def top_denial_reasons(session: Session, *, start: date, end: date, limit: int = 10) -> list[DenialReason]:
    """The reasons of the initial denials counted by the denial rate, most claims first.

    Same population as ``denial_rate_count``: claims whose first 835 in ``[start, end]``
    denied them. A claim citing a CARC on several lines counts once for it.
    """
    _check_period(start, end)
    claims: dict[tuple[str, str], set[int]] = {}
    amounts: dict[tuple[str, str], int] = {}
    for payment in KpiFacts.load(session).first_in(start, end):
        if not is_denial(payment):
            continue
        reasons = _denial_adjustments(payment)
        keys = [(a.group_code.value, a.reason_code) for a in reasons] or [("", "")]
        for key in keys:
            claims.setdefault(key, set()).add(payment.claim_id)
            amounts.setdefault(key, 0)
        for a in reasons:
            amounts[(a.group_code.value, a.reason_code)] += a.amount_cents
    ranked = sorted(claims, key=lambda k: (-len(claims[k]), -amounts[k], k))
    return [DenialReason(g, r, len(claims[(g, r)]), amounts[(g, r)]) for g, r in ranked[:limit]]


# -- output ---------------------------------------------------------------------------------------

#: A cell starting with one of these is a formula (or DDE) to a spreadsheet (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(cell: Any) -> str:
    """The cell as CSV text, with a leading apostrophe when a spreadsheet would run it."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV with every cell neutralized against formula injection.

    Money cells are decimal strings; a negative amount therefore gets the apostrophe too
    (``'-12.50``): spreadsheets still show it as text, which is the safe failure.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralize(h) for h in header])
    for row in rows:
        writer.writerow([neutralize(c) for c in row])
    return out.getvalue()


def aging_to_json(report: AgingReport) -> dict[str, Any]:
    return {
        "as_of": report.as_of.isoformat(),
        "by": report.by,
        "buckets": list(BUCKET_LABELS),
        "rows": [
            {
                "id": r.key,
                "name": r.label,
                "buckets": {k: cents_to_money(v) for k, v in r.buckets.items()},
                "total": cents_to_money(r.total_cents),
            }
            for r in report.rows
        ],
        "totals": {k: cents_to_money(v) for k, v in report.totals.items()},
        "total": cents_to_money(report.total_cents),
    }


def aging_to_csv(report: AgingReport) -> str:
    header = [report.by, "id", *BUCKET_LABELS, "total"]
    rows: list[list[Any]] = [
        [
            r.label,
            r.key,
            *(cents_to_money(r.buckets[b]) for b in BUCKET_LABELS),
            cents_to_money(r.total_cents),
        ]
        for r in report.rows
    ]
    rows.append(
        [
            "TOTAL",
            "",
            *(cents_to_money(report.totals[b]) for b in BUCKET_LABELS),
            cents_to_money(report.total_cents),
        ]
    )
    return to_csv(header, rows)


def _kpi_value(k: Kpi) -> str | None:
    return None if k.value is None else str(k.value)


def kpis_to_json(start: date, end: date, items: list[Kpi]) -> dict[str, Any]:
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "kpis": [
            {
                "name": k.name,
                "value": _kpi_value(k),
                "unit": k.unit,
                "numerator": k.numerator,
                "denominator": k.denominator,
                "definition": k.definition,
                "note": k.note or None,
            }
            for k in items
        ],
    }


def kpis_to_csv(items: list[Kpi]) -> str:
    return to_csv(
        ["name", "value", "unit", "numerator", "denominator", "definition"],
        [[k.name, _kpi_value(k) or "", k.unit, k.numerator, k.denominator, k.definition] for k in items],
    )
