"""Posting an 835 to the ledger: exactly once, to the cent, in one transaction per file.

``post_remittance(session, edi_file_id)`` reads a stored 835 (``EdiFile``, raw bytes with
their SHA-256) with the streaming parser and, for each transaction set (one payment,
``Remittance``):

* refuses a payment already posted: the same file (its remittances are ``posted``) or the
  same payer + trace number (TRN03 + TRN02, the TR3's reassociation key) posts nothing
  and the report says ``duplicate``;
* matches each CLP to a claim by CLP01 (our CLM01) and the payer (the remitting payer
  must be one of the patient's coverages: a crossover payer sends the primary claim's
  number back with CLP02 = 2), each SVC to a line by REF*6R, else procedure + modifiers
  + date of service;
* stores what the payer said (``ClaimPayment``, ``LinePayment``, ``Adjustment``,
  ``ProviderAdjustment``) and posts one balanced journal entry per claim, per
  ARCHITECTURE.md's ledger table:

  =====================  ===============================================  ====================
  what                   debit                                            credit
  =====================  ===============================================  ====================
  payment (CLP04/SVC03)  cash clearing (this remittance)                  A/R insurance
  CAS CO                 contractual adjustments                          A/R insurance
  CAS PR (1, 2, 3, ...)  A/R insurance of the next coverage, else A/R pt  A/R insurance
  CAS OA / PI / CR       other adjustments                                A/R insurance
  PLB (positive)         provider adjustments                             cash clearing
  CLP02 = 22             the reversed entry's postings, mirrored          (new entry)
  unmatched CLP          cash clearing                                    unapplied payments
  =====================  ===============================================  ====================

  A negative CAS or PLB amount simply flips the two sides (debit becomes credit).
  Receivables carry the line dimension; contra accounts are kept per claim and payer.
  CARC 23 (prior payers' adjudication, on a next payer's 835) restates amounts the
  earlier payer's 835 posted already: it is stored, not posted again. A replacement or
  next-payer claim posts against the receivable of the original claim it points to.

* never writes a denial off: a CLP02 = 4 claim posts no adjustment at all, and on a line
  paid zero the CO/OA/PI/CR amounts with a denial CARC (anything but pricing reasons such
  as CO-45) are left in A/R; each such claim opens a work item (queue ``denied``) with the
  codes explained and the recommended action. Unmatched claims and lines open items in
  ``unmatched``; nothing is dropped.
* moves each claim through ``claims.state`` (paid, partially paid, denied); a crossover
  (CLP02 19/20/21 or NM1*TT) is stored as forwarded (``crossover_payer_*``) so the next
  payer is not billed again, and its patient share moves to the next payer's A/R.
* checks, before the caller commits, that claims parsed = posted + queued, that the
  cash of the claims = BPR02 + ΣPLB (so cash clearing of the remittance = BPR02: a
  positive PLB is money the payer kept) and that every entry of the remittance sums to
  zero, reading the rows back from the database; any failure raises
  :class:`RemittancePostingError` and the caller rolls the whole file back.

Journal idempotency keys are ``835:<TRN03>:<TRN02>:<CLP position>:<kind>`` (and
``...:plb:<n>``), so a rerun after a crash can never post an event twice.

Dry run (``dry_run=True``): the same computation, then the session is rolled back, so
nothing changes (not even the claim states or work items); the report says what would
have been posted. The dry run itself is audited by ``run_posting`` as one EXECUTE event
in its own transaction (who looked at which file), because an audit record inside the
rolled-back transaction would vanish with it.

The engine works in chunks of ``CHUNK`` claims (bulk INSERTs of the rows and journal
entries), so a 25,000-claim remittance is posted in seconds and memory holds one chunk.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from claims_server.claims import state
from claims_server.db import bulk_insert
from claims_server.errors import NotFound, Unprocessable
from claims_server.ledger.services import (
    UNAPPLIED_PAYMENTS,
    ClaimCharge,
    EntrySpec,
    Leg,
    account_ids,
    charge_date,
    charge_specs,
    consolidate,
    mirror_legs,
    post_entries,
    receivable_claim_id,
    unbalanced_entries,
)
from claims_server.models import (
    AccountCode,
    Adjustment,
    Claim,
    ClaimPayment,
    ClaimState,
    Coverage,
    EdiFile,
    EdiFileStatus,
    JournalEntry,
    JournalEventType,
    LinePayment,
    Payer,
    Posting,
    ProviderAdjustment,
    Remittance,
    ServiceLine,
    WorkItem,
)
from claims_server.models.common import utcnow
from claims_server.models.remittance import AdjustmentGroup, RemittanceState
from claims_server.models.workqueue import WorkQueue
from claims_server.security.audit import audit_events_bulk
from edi import x835
from edi.charset import character_findings
from edi.findings import Finding
from edi.reader import X12SyntaxError

CHUNK = 500
#: The kinds of work item posting opens (the first part of their dedupe keys).
WORK_ITEM_KINDS = ("unmatched", "denied", "reversal", "unmatched_lines")

#: CLP02 codes that mean "adjudicated, money may move" (1/2/3 processed as
#: primary/secondary/tertiary, 19/20/21 the same and forwarded to the next payer).
PROCESSED_STATUSES = frozenset({"1", "2", "3", "19", "20", "21"})
CROSSOVER_STATUSES = frozenset({"19", "20", "21"})
DENIED_STATUS = "4"
REVERSAL_STATUS = "22"
#: 23 (not our claim, forwarded) and 25 (predetermination pricing only): no money moves.
INFORMATIONAL_STATUSES = frozenset({"23", "25"})

#: CARCs that price a service rather than deny it: on a line paid zero, these are posted
#: like any adjustment (CO-45 above the fee schedule, CO-253 sequestration, OA-23 prior
#: payer's adjudication, CO-59 multiple-procedure reduction, ...); any other CO/OA/PI/CR
#: reason on a zero-paid line is a denial and stays in A/R for a person to work.
PRICING_CARCS = frozenset({"23", "42", "45", "59", "94", "131", "144", "237", "253"})
#: CARC 23, "impact of prior payer(s) adjudication": a next payer restates what the payer
#: before it paid and adjusted. Those amounts were posted with the earlier payer's 835, so
#: posting them again would count them twice; they are stored (Adjustment rows), not posted.
PRIOR_PAYER_CARC = "23"

_ADJUSTMENT_ACCOUNT = {
    "CO": AccountCode.CONTRACTUAL_ADJUSTMENTS,
    "OA": AccountCode.OTHER_ADJUSTMENTS,
    "PI": AccountCode.OTHER_ADJUSTMENTS,
    "CR": AccountCode.OTHER_ADJUSTMENTS,
}
_GROUPS = frozenset(g.value for g in AdjustmentGroup)

Checkpoint = Callable[[str, dict[str, Any]], None]


class RemittancePostingError(Unprocessable):
    """The file cannot be posted (unreadable, not an 835, a completeness check failed).

    ``rule`` names what failed; ``errors`` hold field/rule/message dicts (no PHI). The
    caller rolls the transaction back; ``run_posting`` then marks the file failed.
    """

    def __init__(self, detail: str, *, rule: str, errors: list[dict[str, Any]] | None = None, **extra: Any):
        super().__init__(detail, errors=errors or [{"rule": rule, "message": detail}], rule=rule, **extra)
        self.rule = rule


def _refuse_unpostable(event: x835.Event835) -> None:
    """Raise when the parser found an amount the ledger cannot hold (edi.numbers limits).

    The whole file is refused (the caller rolls back and marks it failed with these
    findings): posting the rest with that amount counted as zero would misstate the money.
    """
    findings = [event] if isinstance(event, Finding) else getattr(event, "findings", ())
    bad = [f for f in findings if f.code in x835.UNPOSTABLE_CODES]
    if bad:
        raise RemittancePostingError(
            f"{bad[0].element}: {bad[0].message}",
            rule="amount_out_of_range",
            errors=[
                {
                    "field": f.element,
                    "segment": f.segment,
                    "segment_position": f.segment_position,
                    "transaction_set": f.transaction_set,
                    "rule": f.code,
                    "message": f.message,
                }
                for f in bad[:20]
            ],
        )


# -- the report ---------------------------------------------------------------------------------


@dataclass(slots=True)
class ClaimOutcome:
    """What happened to one CLP."""

    position: int
    patient_control_number: str
    status_code: str
    outcome: str  # posted | queued | reversed | informational
    claim: str | None  # our claim's public id
    paid_cents: int
    entry_keys: list[str] = field(default_factory=list)
    held_cents: int = 0  # denied amounts left in A/R for a person to work
    queues: list[str] = field(default_factory=list)
    state: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "patient_control_number": self.patient_control_number,
            "status_code": self.status_code,
            "outcome": self.outcome,
            "claim": self.claim,
            "paid": x835.format_cents(self.paid_cents),
            "held_in_ar": x835.format_cents(self.held_cents),
            "entries": list(self.entry_keys),
            "work_queues": list(self.queues),
            "claim_state": self.state,
            "notes": list(self.notes),
        }


@dataclass(slots=True)
class CheckResult:
    """One completeness check of a remittance: what was expected, what the database holds."""

    name: str
    ok: bool
    expected: int
    actual: int
    detail: str

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "expected": self.expected,
            "actual": self.actual,
            "detail": self.detail,
        }


@dataclass(slots=True)
class RemittanceResult:
    """The outcome of one 835 transaction set (one payment)."""

    control_number: str
    trace_number: str
    payer_identifier: str
    payment_cents: int
    remittance_id: int | None = None
    remittance_public_id: str | None = None
    payer_id: int | None = None
    duplicate: bool = False
    duplicate_of: str | None = None
    provider_adjustment_cents: int = 0
    claims_parsed: int = 0
    claims_posted: int = 0
    claims_queued: int = 0
    paid_posted_cents: int = 0
    entries_posted: int = 0
    work_items_opened: int = 0
    claims: list[ClaimOutcome] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)

    def to_json_dict(self, *, include_claims: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "remittance": self.remittance_public_id,
            "transaction_control_number": self.control_number,
            "trace_number": self.trace_number,
            "payer_identifier": self.payer_identifier,
            "payment": x835.format_cents(self.payment_cents),
            "provider_adjustments": x835.format_cents(self.provider_adjustment_cents),
            "duplicate": self.duplicate,
            "duplicate_of": self.duplicate_of,
            "claims_parsed": self.claims_parsed,
            "claims_posted": self.claims_posted,
            "claims_queued": self.claims_queued,
            "paid_posted": x835.format_cents(self.paid_posted_cents),
            "entries_posted": self.entries_posted,
            "work_items_opened": self.work_items_opened,
            "checks": [c.to_json_dict() for c in self.checks],
        }
        if include_claims:
            data["claims"] = [c.to_json_dict() for c in self.claims]
        return data


@dataclass(slots=True)
class PostingReport:
    """What ``post_remittance`` did (or, in a dry run, would do) with one file."""

    edi_file_id: int
    edi_file_public_id: str
    dry_run: bool = False
    status: str = "posted"  # posted | duplicate | dry_run | failed
    remittances: list[RemittanceResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    error: dict[str, Any] | None = None

    @property
    def duplicate(self) -> bool:
        """Nothing new: every payment in the file was posted before."""
        return bool(self.remittances) and all(r.duplicate for r in self.remittances)

    def summary(self) -> dict[str, Any]:
        """Counts and totals only (no claim numbers): for logs, file status and task results."""
        live = [r for r in self.remittances if not r.duplicate]
        return {
            "status": self.status,
            "dry_run": self.dry_run,
            "remittances": len(self.remittances),
            "duplicates": sum(1 for r in self.remittances if r.duplicate),
            "claims_parsed": sum(r.claims_parsed for r in live),
            "claims_posted": sum(r.claims_posted for r in live),
            "claims_queued": sum(r.claims_queued for r in live),
            "paid_posted_cents": sum(r.paid_posted_cents for r in live),
            "entries_posted": sum(r.entries_posted for r in live),
            "work_items_opened": sum(r.work_items_opened for r in live),
        }

    def to_json_dict(self, *, include_claims: bool = True) -> dict[str, Any]:
        return {
            "edi_file": self.edi_file_public_id,
            "status": self.status,
            "dry_run": self.dry_run,
            "duplicate": self.duplicate,
            "summary": self.summary(),
            "remittances": [r.to_json_dict(include_claims=include_claims) for r in self.remittances],
            "findings": [f.to_json_dict() for f in self.findings],
            "error": self.error,
        }


# -- small helpers ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    id: int
    line_control_number: str
    procedure_code: str
    modifiers: tuple[str, ...]
    service_date: date | None
    charge_cents: int


@dataclass(slots=True)
class _CoverageRow:
    payer_id: int
    order: int
    start: date
    end: date | None

    def active_on(self, day: date | None) -> bool:
        return day is None or (self.start <= day and (self.end is None or day <= self.end))


def _fit(value: str | None, limit: int, element: str) -> str | None:
    """Refuse (structured) a value longer than our column: better than a database error."""
    if value is not None and len(value) > limit:
        raise RemittancePostingError(
            f"{element} is longer than {limit} characters",
            rule="element_length",
            errors=[{"field": element, "rule": "max_length", "message": f"at most {limit} characters"}],
        )
    return value


def _chunks(values: Sequence[Any], size: int = 900) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _held(adjustment: x835.Adjustment, line_denied: bool) -> bool:
    """A denial amount that must stay in A/R (never written off automatically)."""
    return line_denied and adjustment.group != "PR" and adjustment.reason not in PRICING_CARCS


def _line_is_denied(line: x835.LinePayment) -> bool:
    return (
        line.paid_cents == 0
        and line.charge_cents != 0
        and any(a.group != "PR" and a.reason not in PRICING_CARCS for a in line.adjustments)
    )


# -- the engine ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Context:
    """The remittance being posted."""

    result: RemittanceResult
    remittance: Remittance
    key_prefix: str
    effective_date: date
    claims_seen: int = 0
    no_money: int = 0  # informational claims: nothing to post, nothing to queue


class _Poster:
    def __init__(
        self, session: Session, edi_file: EdiFile, report: PostingReport, checkpoint: Checkpoint | None
    ):
        self.session = session
        self.edi_file = edi_file
        self.report = report
        self.checkpoint = checkpoint
        self.accounts = account_ids(session)
        self.ctx: _Context | None = None
        self.skipping = False  # inside a duplicate transaction set
        self.pending: list[x835.ClaimPayment] = []
        self.claims_done = 0
        self.traces_in_file: set[tuple[str, str]] = set()
        self.claim_payments: dict[int | None, ClaimPayment] = {}
        # The chunk's claim-state and work-item audit events, written with one bulk append.
        self.audit_events: list[dict[str, Any]] = []
        self.open_item_keys: set[str] = set()  # dedupe keys of the chunk's items already open

    # ---- events

    def run(self, content: bytes) -> None:
        # The cyclic garbage collector's automatic passes cost a fifth of the run on a large
        # file (hundreds of thousands of short-lived rows); it runs once per batch instead.
        automatic_gc = gc.isenabled()
        gc.disable()
        try:
            self.read(content)
        finally:
            if automatic_gc:
                gc.enable()

    def read(self, content: bytes) -> None:
        try:
            for event in x835.iter_835(content, file=self.edi_file.stored_name):
                _refuse_unpostable(event)
                if isinstance(event, x835.ClaimPayment):
                    if not self.skipping:
                        self.pending.append(event)
                        if len(self.pending) >= CHUNK:
                            self.flush_claims()
                elif isinstance(event, x835.RemittanceHeader):
                    self.begin(event)
                elif isinstance(event, x835.RemittanceEnd):
                    self.end(event)
                else:
                    self.report.findings.append(event)
        except X12SyntaxError as exc:
            raise RemittancePostingError(
                f"the file is not readable X12: {exc.message}",
                rule="x12_syntax",
                errors=[exc.to_dict()],
            ) from exc
        if not self.report.remittances:
            raise RemittancePostingError("the file holds no 835 transaction set", rule="no_835")

    def begin(self, header: x835.RemittanceHeader) -> None:
        payment = header.payment
        trace = (payment.payer_identifier, payment.trace_number)
        result = RemittanceResult(
            control_number=header.control_number,
            trace_number=payment.trace_number,
            payer_identifier=payment.payer_identifier,
            payment_cents=payment.amount_cents,
        )
        self.report.remittances.append(result)
        if not payment.trace_number or not payment.payer_identifier:
            raise RemittancePostingError(
                "TRN02 (trace number) and TRN03 (payer identifier) are required to post a payment",
                rule="trace_required",
                errors=[{"field": "TRN", "rule": "required", "message": "TRN02 and TRN03 are required"}],
            )
        _fit(payment.trace_number, 50, "TRN02")
        _fit(payment.payer_identifier, 10, "TRN03")
        existing = self.session.scalar(
            select(Remittance).where(
                Remittance.payer_identifier == payment.payer_identifier,
                Remittance.trace_number == payment.trace_number,
            )
        )
        if existing is not None or trace in self.traces_in_file:
            result.duplicate = True
            result.duplicate_of = existing.public_id if existing is not None else None
            self.skipping = True
            return
        self.traces_in_file.add(trace)
        payer_id = self.resolve_payer(header)
        remittance = Remittance(
            edi_file_id=self.edi_file.id,
            payer_id=payer_id,
            transaction_control_number=_fit(header.control_number, 9, "ST02"),
            handling_code=(payment.handling_code or "I")[:1],
            payment_amount_cents=payment.amount_cents,
            credit_debit_flag=(payment.credit_debit or "C")[:1],
            payment_method=(payment.method or "NON")[:3],
            payment_date=payment.date,
            trace_number=payment.trace_number,
            payer_identifier=payment.payer_identifier,
            payer_name=(header.payer.name[:60] or None) if header.payer is not None else None,
            payee_npi=(header.payee.npi or None) if header.payee is not None else None,
            production_date=header.production_date,
            state=RemittanceState.RECEIVED,
        )
        self.session.add(remittance)
        self.session.flush()
        result.remittance_id = remittance.id
        result.remittance_public_id = remittance.public_id
        result.payer_id = payer_id
        self.ctx = _Context(
            result=result,
            remittance=remittance,
            key_prefix=f"835:{payment.payer_identifier}:{payment.trace_number}",
            effective_date=payment.date or header.production_date or utcnow().date(),
        )
        self.skipping = False

    def resolve_payer(self, header: x835.RemittanceHeader) -> int | None:
        """Our payer: TRN03 or N1*PR N104 as the payer's remittance identifier, else its payer id."""
        identifiers = [header.payment.payer_identifier]
        if header.payer is not None and header.payer.identifier:
            identifiers.append(header.payer.identifier)
        for ident in identifiers:
            found = self.session.scalar(
                select(Payer.id).where(Payer.remittance_payer_identifier == ident).order_by(Payer.id).limit(1)
            )
            if found is not None:
                return found
        if header.payer is not None and header.payer.identifier:
            return self.session.scalar(select(Payer.id).where(Payer.payer_id == header.payer.identifier))
        return None

    def end(self, end: x835.RemittanceEnd) -> None:
        if self.skipping:
            self.skipping = False
            self.pending.clear()
            return
        self.flush_claims()
        ctx = self.ctx
        assert ctx is not None
        self.post_plb(ctx, end.provider_adjustments)
        ctx.result.provider_adjustment_cents = end.provider_adjustment_cents
        ctx.result.claims_parsed = end.claim_count
        self.check(ctx, end)
        ctx.remittance.state = RemittanceState.POSTED
        ctx.remittance.posted_at = utcnow()
        self.session.flush()
        self.ctx = None

    # ---- claims

    def flush_claims(self) -> None:
        """Post the buffered claims; a reversal starts a new batch so it sees what precedes it."""
        claims, self.pending = self.pending, []
        if not claims:
            return
        batch: list[x835.ClaimPayment] = []
        for claim in claims:
            if claim.status == REVERSAL_STATUS and batch:
                self.post_batch(batch)
                batch = []
            batch.append(claim)
        if batch:
            self.post_batch(batch)
        if self.checkpoint is not None:
            self.checkpoint("chunk", {"claims_posted": self.claims_done})

    def post_batch(self, claims: list[x835.ClaimPayment]) -> None:
        ctx = self.ctx
        assert ctx is not None
        session = self.session
        remittance = ctx.remittance
        for claim in claims:
            _fit(claim.patient_control_number, 38, "CLP01")
            _fit(claim.payer_claim_control_number or None, 50, "CLP07")
            for adj in (*claim.adjustments, *(a for line in claim.lines for a in line.adjustments)):
                if adj.group not in _GROUPS:
                    raise RemittancePostingError(
                        f"CAS01 {adj.group!r} is not a claim adjustment group code (CO, PR, OA, PI, CR)",
                        rule="cas_group",
                        errors=[{"field": "CAS01", "rule": "code_list", "message": "CO, PR, OA, PI or CR"}],
                    )
                _fit(adj.reason, 5, "CAS02")
            for line in claim.lines:
                _fit(line.procedure.code, 48, "SVC01-2")
                _fit(line.line_control_number, 50, "REF*6R")

        # Our claims, their lines and the patients' coverages, in three queries per batch.
        pcns = list(dict.fromkeys(c.patient_control_number for c in claims))
        ours: dict[str, Claim] = {}
        for chunk in _chunks(pcns):
            for row in session.scalars(select(Claim).where(Claim.patient_control_number.in_(chunk))):
                ours[row.patient_control_number] = row
        claim_ids = [c.id for c in ours.values()]
        coverage_payer: dict[int, int] = {}
        lines: dict[int, list[_Line]] = {cid: [] for cid in claim_ids}
        coverages: dict[int, list[_CoverageRow]] = {}
        patient_ids = list({c.patient_id for c in ours.values()})
        for chunk in _chunks(claim_ids):
            for row in session.execute(
                select(
                    ServiceLine.id,
                    ServiceLine.claim_id,
                    ServiceLine.line_control_number,
                    ServiceLine.procedure_code,
                    ServiceLine.modifier1,
                    ServiceLine.modifier2,
                    ServiceLine.modifier3,
                    ServiceLine.modifier4,
                    ServiceLine.service_date_from,
                    ServiceLine.charge_cents,
                )
                .where(ServiceLine.claim_id.in_(chunk))
                .order_by(ServiceLine.claim_id, ServiceLine.line_number)
            ):
                lines[row.claim_id].append(
                    _Line(
                        row.id,
                        row.line_control_number,
                        row.procedure_code,
                        tuple(m for m in (row.modifier1, row.modifier2, row.modifier3, row.modifier4) if m),
                        row.service_date_from,
                        row.charge_cents,
                    )
                )
        coverage_ids = list({c.coverage_id for c in ours.values()})
        for chunk in _chunks(coverage_ids):
            for cov_id, payer_id in session.execute(
                select(Coverage.id, Coverage.payer_id).where(Coverage.id.in_(chunk))
            ):
                coverage_payer[cov_id] = payer_id
        for chunk in _chunks(patient_ids):
            for row in session.execute(
                select(
                    Coverage.patient_id,
                    Coverage.payer_id,
                    Coverage.coverage_order,
                    Coverage.effective_start,
                    Coverage.effective_end,
                )
                .where(Coverage.patient_id.in_(chunk))
                .order_by(Coverage.patient_id, Coverage.coverage_order, Coverage.effective_start)
            ):
                coverages.setdefault(row.patient_id, []).append(
                    _CoverageRow(row.payer_id, row.coverage_order, row.effective_start, row.effective_end)
                )

        # The receivable each payment pays down: the charge entry of every original claim
        # (posted when it was sent; a claim that never went through us is charged now).
        charges = []
        for c in ours.values():
            if c.original_claim_id is None and c.id in lines:
                charges.append(
                    ClaimCharge(
                        claim_id=c.id,
                        public_id=c.public_id,
                        patient_id=c.patient_id,
                        payer_id=coverage_payer[c.coverage_id],
                        effective_date=charge_date(c.submitted_at, ctx.effective_date),
                        lines=tuple((ln.id, ln.charge_cents) for ln in lines[c.id]),
                    )
                )
        charge_entries = charge_specs(charges)

        # 1. the claim payments as the payer reported them
        plans: list[_ClaimPlan] = []
        for claim in claims:
            ctx.claims_seen += 1
            plan = _ClaimPlan(claim=claim, position=ctx.claims_seen)
            ours_claim = ours.get(claim.patient_control_number)
            if ours_claim is not None:
                self.match(plan, ours_claim, coverage_payer, coverages, lines.get(ours_claim.id, []))
            plans.append(plan)
        cp_rows = [plan.claim_payment_row(remittance.id) for plan in plans]
        cp_ids = bulk_insert(session, ClaimPayment.__table__, cp_rows, returning_ids=True)
        line_rows: list[dict[str, Any]] = []
        line_owner: list[tuple[_ClaimPlan, int]] = []
        claim_adjustment_rows: list[dict[str, Any]] = []
        for plan, cp_id in zip(plans, cp_ids, strict=True):
            plan.claim_payment_id = cp_id
            for index in range(len(plan.claim.lines)):
                line_rows.append(plan.line_row(cp_id, index))
                line_owner.append((plan, index))
            for adj in plan.claim.adjustments:
                claim_adjustment_rows.append(_adjustment_row(adj, claim_payment_id=cp_id))
        adjustment_rows = claim_adjustment_rows
        if line_rows:
            lp_ids = bulk_insert(session, LinePayment.__table__, line_rows, returning_ids=True)
            for (plan, index), lp_id in zip(line_owner, lp_ids, strict=True):
                for adj in plan.claim.lines[index].adjustments:
                    adjustment_rows.append(_adjustment_row(adj, line_payment_id=lp_id))
        if adjustment_rows:
            bulk_insert(session, Adjustment.__table__, adjustment_rows)

        # 2. the journal entries
        specs: list[EntrySpec] = list(charge_entries)
        for plan in plans:
            spec = self.entry_for(plan)
            if spec is not None:
                plan.outcome.entry_keys.append(spec.idempotency_key)
                specs.append(spec)
        posted = post_entries(session, specs, accounts=self.accounts)
        ctx.result.entries_posted += len(posted)

        # 3. claim states and work items (no flush per item: one flush for the batch)
        queued = [p for p in plans if p.claim_row is None or p.queue is not None or None in p.line_ids]
        self.claim_payments = {
            cp.id: cp
            for chunk in _chunks([p.claim_payment_id for p in queued])
            for cp in session.scalars(select(ClaimPayment).where(ClaimPayment.id.in_(chunk)))
        }
        # The work items a rerun would find already open, in a few queries instead of one per item.
        keys = [self.item_key(p, kind) for p in queued for kind in WORK_ITEM_KINDS]
        self.open_item_keys = {
            key
            for chunk in _chunks(keys)
            for key in session.scalars(select(WorkItem.dedupe_key).where(WorkItem.dedupe_key.in_(chunk)))
        }
        with session.no_autoflush:
            for plan in plans:
                self.after_posting(plan)
        for plan in plans:
            ctx.result.claims.append(plan.outcome)
            if plan.outcome.outcome == "queued":
                ctx.result.claims_queued += 1
            else:
                ctx.result.claims_posted += 1
            ctx.result.paid_posted_cents += plan.cash_cents
        self.claims_done += len(plans)
        _store_claim_states(session, [p.claim_row for p in plans if p.claim_row is not None])
        audit_events_bulk(session, self.audit_events)
        self.audit_events = []
        session.flush()
        # Keep memory flat: nothing of this batch is needed by the next one.
        for obj in [*ours.values(), *self.claim_payments.values()]:
            if obj in session:
                session.expunge(obj)
        self.claim_payments = {}
        gc.collect(1)

    def match(
        self,
        plan: _ClaimPlan,
        claim: Claim,
        coverage_payer: dict[int, int],
        coverages: dict[int, list[_CoverageRow]],
        our_lines: list[_Line],
    ) -> None:
        ctx = self.ctx
        assert ctx is not None
        remitting = ctx.result.payer_id
        claim_payer = coverage_payer[claim.coverage_id]
        patient_coverages = coverages.get(claim.patient_id, [])
        dos = min((ln.service_date for ln in our_lines if ln.service_date), default=None)
        if remitting is None or remitting == claim_payer:
            payer_id, order = claim_payer, claim.coverage_order
        else:
            # A crossover payer answers with the primary claim's CLP01 (CLP02 = 2 or 3).
            found = [c for c in patient_coverages if c.payer_id == remitting and c.active_on(dos)]
            if not found:
                plan.outcome.notes.append("the remitting payer is not one of the patient's coverages")
                plan.unmatched_reason = "PAYER_MISMATCH"
                return
            payer_id, order = remitting, found[0].order
        plan.claim_row = claim
        plan.payer_id = payer_id
        plan.dimension_claim_id = receivable_claim_id(self.session, claim)
        plan.next_payer_id = next(
            (c.payer_id for c in patient_coverages if c.order == order + 1 and c.active_on(dos)), None
        )
        plan.line_ids = _match_lines(plan.claim, our_lines)
        plan.outcome.claim = claim.public_id

    def entry_for(self, plan: _ClaimPlan) -> EntrySpec | None:
        ctx = self.ctx
        assert ctx is not None
        claim = plan.claim
        remittance_id = ctx.remittance.id
        prefix = f"{ctx.key_prefix}:{plan.position}"
        if plan.claim_row is None:
            # Unmatched: the money is real, keep it (unapplied) and queue the claim.
            plan.outcome.outcome = "queued"
            plan.queue = WorkQueue.UNMATCHED
            plan.cash_cents = claim.paid_cents
            if claim.paid_cents == 0:
                return None
            legs = [
                Leg(
                    AccountCode.CASH_CLEARING,
                    claim.paid_cents,
                    None,
                    None,
                    ctx.result.payer_id,
                    None,
                    remittance_id,
                ),
                Leg(
                    UNAPPLIED_PAYMENTS,
                    -claim.paid_cents,
                    None,
                    None,
                    ctx.result.payer_id,
                    None,
                    remittance_id,
                ),
            ]
            return self.spec(plan, f"{prefix}:unapplied", JournalEventType.INSURANCE_PAYMENT, legs, None)
        claim_id = plan.dimension_claim_id
        if claim.status == REVERSAL_STATUS:
            return self.reversal_for(plan, prefix)
        if claim.status in INFORMATIONAL_STATUSES:
            plan.outcome.outcome = "informational"
            plan.cash_cents = claim.paid_cents
            if claim.paid_cents == 0:
                ctx.no_money += 1
                return None
        legs = self.payment_legs(plan)
        plan.cash_cents = claim.paid_cents
        if claim.status == DENIED_STATUS or plan.held_cents:
            plan.queue = WorkQueue.DENIED
        if not legs:
            if plan.queue is None:
                ctx.no_money += 1
                plan.outcome.outcome = "informational"
            else:
                plan.outcome.outcome = "queued"
            return None
        plan.outcome.outcome = "posted"
        return self.spec(plan, f"{prefix}:payment", JournalEventType.INSURANCE_PAYMENT, legs, claim_id)

    def payment_legs(self, plan: _ClaimPlan) -> list[Leg]:
        """The legs of one adjudicated claim (see the module table), consolidated."""
        ctx = self.ctx
        assert ctx is not None
        claim = plan.claim
        rem = ctx.remittance.id
        claim_id, payer, patient = plan.dimension_claim_id, plan.payer_id, plan.claim_row.patient_id  # type: ignore[union-attr]
        legs: list[Leg] = []

        def ar(amount: int, line_id: int | None) -> Leg:
            return Leg(AccountCode.AR_INSURANCE, -amount, claim_id, line_id, payer, patient)

        if claim.paid_cents:
            legs.append(Leg(AccountCode.CASH_CLEARING, claim.paid_cents, claim_id, None, payer, None, rem))
        applied = 0
        denied_claim = claim.status == DENIED_STATUS
        for index, line in enumerate(claim.lines):
            line_id = plan.line_ids[index]
            if line.paid_cents:
                legs.append(ar(line.paid_cents, line_id))
                applied += line.paid_cents
            line_denied = denied_claim or _line_is_denied(line)
            for adj in line.adjustments:
                if adj.reason == PRIOR_PAYER_CARC and adj.group != "PR":
                    continue
                if denied_claim or _held(adj, line_denied):
                    plan.held_cents += adj.amount_cents
                    plan.denial_codes.append((adj.group, adj.reason))
                    continue
                legs += self.adjustment_legs(plan, adj, line_id)
            if line_denied:
                plan.remarks += [r.code for r in line.remarks if r.qualifier == "HE"]
        if claim.paid_cents - applied:
            legs.append(ar(claim.paid_cents - applied, None))
        for adj in claim.adjustments:
            if adj.reason == PRIOR_PAYER_CARC and adj.group != "PR":
                continue
            if denied_claim:
                plan.held_cents += adj.amount_cents
                plan.denial_codes.append((adj.group, adj.reason))
                continue
            legs += self.adjustment_legs(plan, adj, None)
        if denied_claim:
            for adjudication in (claim.outpatient, claim.inpatient):
                if adjudication is not None:
                    plan.remarks += adjudication.remarks
        return consolidate(legs)

    def adjustment_legs(self, plan: _ClaimPlan, adj: x835.Adjustment, line_id: int | None) -> list[Leg]:
        claim_id, payer, patient = plan.dimension_claim_id, plan.payer_id, plan.claim_row.patient_id  # type: ignore[union-attr]
        amount = adj.amount_cents
        if not amount:
            return []
        credit = Leg(AccountCode.AR_INSURANCE, -amount, claim_id, line_id, payer, patient)
        if adj.group == "PR":
            if plan.next_payer_id is not None:
                debit = Leg(AccountCode.AR_INSURANCE, amount, claim_id, line_id, plan.next_payer_id, patient)
            else:
                debit = Leg(AccountCode.AR_PATIENT, amount, claim_id, line_id, None, patient)
        else:
            # Contra accounts are kept per claim and payer; receivables per line as well.
            debit = Leg(_ADJUSTMENT_ACCOUNT[adj.group], amount, claim_id, None, payer, None)
        return [debit, credit]

    def reversal_for(self, plan: _ClaimPlan, prefix: str) -> EntrySpec | None:
        """CLP02 = 22: mirror the entry it reverses; if none matches, post it as sent and queue it."""
        ctx = self.ctx
        assert ctx is not None
        claim = plan.claim
        plan.cash_cents = claim.paid_cents
        plan.outcome.outcome = "reversed"
        reversed_ids = select(JournalEntry.reverses_entry_id).where(
            JournalEntry.reverses_entry_id.is_not(None)
        )
        original = self.session.execute(
            select(JournalEntry.id, JournalEntry.idempotency_key)
            .where(
                JournalEntry.claim_id == plan.dimension_claim_id,
                JournalEntry.event_type == JournalEventType.INSURANCE_PAYMENT,
                JournalEntry.id.not_in(reversed_ids),
            )
            .order_by(JournalEntry.id.desc())
            .limit(1)
        ).first()
        if original is not None:
            legs = mirror_legs(self.session, original.id, remittance_id=ctx.remittance.id)
            cash = sum(leg.amount_cents for leg in legs if leg.account == AccountCode.CASH_CLEARING)
            if cash == claim.paid_cents:
                spec = self.spec(
                    plan, f"{prefix}:reversal", JournalEventType.REVERSAL, legs, plan.dimension_claim_id
                )
                spec.reverses_entry_id = original.id
                spec.audit_details["reverses"] = original.idempotency_key
                return spec
            plan.outcome.notes.append("the reversal's amount differs from the payment it would reverse")
        else:
            plan.outcome.notes.append("no posted payment of this claim to reverse")
        plan.queue = WorkQueue.OTHER
        plan.unmatched_reason = "REVERSAL_UNMATCHED"
        legs = self.payment_legs(plan)
        if not legs:
            return None
        return self.spec(plan, f"{prefix}:reversal", JournalEventType.REVERSAL, legs, plan.dimension_claim_id)

    def spec(
        self, plan: _ClaimPlan, key: str, event: JournalEventType, legs: list[Leg], claim_id: int | None
    ) -> EntrySpec:
        ctx = self.ctx
        assert ctx is not None
        return EntrySpec(
            event_type=event,
            idempotency_key=key,
            legs=legs,
            effective_date=ctx.effective_date,
            claim_id=claim_id,
            remittance_id=ctx.remittance.id,
            claim_payment_id=plan.claim_payment_id,
            reason_code=f"CLP02:{plan.claim.status}",
            audit_entity=plan.outcome.claim or ctx.remittance.public_id,
            audit_details={"remittance": ctx.remittance.public_id, "clp_position": plan.position},
            audit_group=plan.outcome.claim,
        )

    def after_posting(self, plan: _ClaimPlan) -> None:
        """Claim state, then the work item a person needs (denial, unmatched claim or lines)."""
        plan.outcome.held_cents = plan.held_cents
        claim = plan.claim_row
        if claim is not None:
            self.move_claim(plan, claim)
        if plan.claim_row is None:
            self.open_item(
                plan,
                WorkQueue.UNMATCHED,
                "unmatched",
                [plan.unmatched_reason or "CLAIM_NOT_FOUND"],
                "review",
                "The payer reported a claim (CLP01) that matches none of ours"
                + (" for this payer" if plan.unmatched_reason == "PAYER_MISMATCH" else "")
                + "; its payment is held in unapplied payments until a person applies it.",
            )
            return
        if plan.queue is WorkQueue.DENIED:
            from claims_server.workqueue.recommend import reason_code_labels, recommend_for_codes

            recommendation = recommend_for_codes(
                plan.denial_codes, plan.remarks, has_other_coverage=plan.next_payer_id is not None
            )
            self.open_item(
                plan,
                WorkQueue.DENIED,
                "denied",
                reason_code_labels(plan.denial_codes, plan.remarks),
                recommendation.action.value,
                recommendation.explanation
                + f" Left in A/R (not written off): {x835.format_cents(plan.held_cents)}.",
                priority=2,
            )
        elif plan.queue is WorkQueue.OTHER:
            self.open_item(
                plan,
                WorkQueue.OTHER,
                "reversal",
                [plan.unmatched_reason or "REVIEW"],
                "review",
                "A reversal (CLP02 = 22) did not match a posted payment of this claim; it was posted as "
                "the payer sent it. Check the claim's payments.",
            )
        unmatched_lines = [i for i, line_id in enumerate(plan.line_ids) if line_id is None]
        if unmatched_lines:
            self.open_item(
                plan,
                WorkQueue.UNMATCHED,
                "unmatched_lines",
                ["LINE_NOT_FOUND"],
                "review",
                f"{len(unmatched_lines)} service line(s) of the payer's answer matched none of the claim's lines "
                "(REF*6R, then procedure + modifiers + date); their amounts were posted to the claim.",
            )

    def move_claim(self, plan: _ClaimPlan, claim: Claim) -> None:
        status = plan.claim.status
        if status == DENIED_STATUS:
            event = "denied"
        elif status in PROCESSED_STATUSES:
            if plan.held_cents:
                event = "partially_paid" if plan.claim.paid_cents > 0 else "denied"
            else:
                event = "paid"
        else:
            plan.outcome.state = claim.state.value
            return
        details = {
            "remittance": self.ctx.remittance.public_id if self.ctx else None,
            "clp02": status,
            "paid_cents": plan.claim.paid_cents,
        }
        if claim.state == ClaimState.SUBMITTED:
            # An 835 without a 999 or 277CA before it: the payer adjudicated, so it accepted.
            state.transition(
                self.session,
                claim,
                "accepted",
                reason="implied by 835",
                details=details,
                audit_events=self.audit_events,
            )
        target = state.EVENTS[event][1]
        if claim.state != target:
            if claim.state in state.EVENTS[event][0]:
                state.transition(
                    self.session, claim, event, reason="835", details=details, audit_events=self.audit_events
                )
            else:
                plan.outcome.notes.append(f"claim state {claim.state.value} left as is ({event} not allowed)")
        plan.outcome.state = claim.state.value

    def open_item(
        self,
        plan: _ClaimPlan,
        queue: WorkQueue,
        kind: str,
        codes: list[str],
        action: str,
        explanation: str,
        *,
        priority: int = 1,
    ) -> None:
        from claims_server.workqueue.services import open_work_item

        ctx = self.ctx
        assert ctx is not None
        key = self.item_key(plan, kind)
        if key not in self.open_item_keys:
            open_work_item(
                self.session,
                queue=queue,
                claim=plan.claim_row,
                claim_payment=self.claim_payments[plan.claim_payment_id],
                reason_codes=codes,
                recommended_action=action,
                explanation=explanation,
                dedupe_key=key,
                priority=priority,
                audit_events=self.audit_events,
                known_new=True,
            )
        plan.outcome.queues.append(queue.value)
        ctx.result.work_items_opened += 1

    def item_key(self, plan: _ClaimPlan, kind: str) -> str:
        """The work item's dedupe key: one item per kind per CLP of this payment."""
        assert self.ctx is not None and kind in WORK_ITEM_KINDS
        return f"{kind}:{self.ctx.key_prefix}:{plan.position}"

    # ---- PLB and checks

    def post_plb(self, ctx: _Context, adjustments: list[x835.ProviderAdjustment]) -> None:
        rem = ctx.remittance
        rows = []
        specs = []
        for n, adj in enumerate(adjustments, 1):
            _fit(adj.provider_identifier, 50, "PLB01")
            _fit(adj.reason, 2, "PLB03-1")
            _fit(adj.reference or None, 50, "PLB03-2")
            rows.append(
                {
                    "remittance_id": rem.id,
                    "provider_identifier": adj.provider_identifier,
                    "fiscal_period_date": adj.fiscal_period_date,
                    "reason_code": adj.reason,
                    "reference": adj.reference or None,
                    "amount_cents": adj.amount_cents,
                }
            )
            if adj.amount_cents:
                # Positive: the payer kept money (Dr provider adjustments / Cr cash); negative
                # (interest, L6): it added money (the signs flip).
                legs = [
                    Leg(
                        AccountCode.PROVIDER_ADJUSTMENTS,
                        adj.amount_cents,
                        None,
                        None,
                        rem.payer_id,
                        None,
                        rem.id,
                    ),
                    Leg(AccountCode.CASH_CLEARING, -adj.amount_cents, None, None, rem.payer_id, None, rem.id),
                ]
                specs.append(
                    EntrySpec(
                        event_type=JournalEventType.PROVIDER_ADJUSTMENT,
                        idempotency_key=f"{ctx.key_prefix}:plb:{n}",
                        legs=legs,
                        effective_date=ctx.effective_date,
                        remittance_id=rem.id,
                        reason_code=f"PLB:{adj.reason}",
                        audit_entity=rem.public_id,
                        audit_details={"remittance": rem.public_id, "plb_reason": adj.reason},
                    )
                )
        if rows:
            bulk_insert(self.session, ProviderAdjustment.__table__, rows)
        ctx.result.entries_posted += len(post_entries(self.session, specs, accounts=self.accounts))

    def check(self, ctx: _Context, end: x835.RemittanceEnd) -> None:
        """The completeness checks, read back from the database (see the module docstring)."""
        session = self.session
        rem_id = ctx.remittance.id
        result = ctx.result
        cash_id = self.accounts[AccountCode.CASH_CLEARING]
        rows_stored = session.scalar(
            select(func.count()).select_from(ClaimPayment).where(ClaimPayment.remittance_id == rem_id)
        )
        with_entry = select(JournalEntry.claim_payment_id).where(
            JournalEntry.remittance_id == rem_id, JournalEntry.claim_payment_id.is_not(None)
        )
        with_item = select(WorkItem.claim_payment_id).where(WorkItem.claim_payment_id.is_not(None))
        accounted = session.scalar(
            select(func.count())
            .select_from(ClaimPayment)
            .where(
                ClaimPayment.remittance_id == rem_id,
                ClaimPayment.id.in_(with_entry) | ClaimPayment.id.in_(with_item),
            )
        )
        claim_cash = session.scalar(
            select(func.coalesce(func.sum(Posting.amount_cents), 0))
            .join(JournalEntry, JournalEntry.id == Posting.journal_entry_id)
            .where(
                Posting.remittance_id == rem_id,
                Posting.account_id == cash_id,
                JournalEntry.event_type.in_([JournalEventType.INSURANCE_PAYMENT, JournalEventType.REVERSAL]),
            )
        )
        total_cash = session.scalar(
            select(func.coalesce(func.sum(Posting.amount_cents), 0)).where(
                Posting.remittance_id == rem_id, Posting.account_id == cash_id
            )
        )
        unbalanced = unbalanced_entries(session, remittance_id=rem_id)
        bpr02 = ctx.remittance.payment_amount_cents
        plb = end.provider_adjustment_cents
        checks = [
            CheckResult(
                "claims_posted_or_queued",
                end.claim_count == result.claims_posted + result.claims_queued == rows_stored
                and accounted + ctx.no_money == end.claim_count,
                end.claim_count,
                int(accounted) + ctx.no_money,
                "claims parsed = claims posted + queued, each with an entry or a work item",
            ),
            CheckResult(
                "paid_posted_equals_bpr02_plus_plb",
                int(claim_cash) == bpr02 + plb,
                bpr02 + plb,
                int(claim_cash),
                "Σ claim payments in cash clearing = BPR02 + ΣPLB",
            ),
            CheckResult(
                "cash_clearing_equals_bpr02",
                int(total_cash) == bpr02,
                bpr02,
                int(total_cash),
                "cash clearing of the remittance (payments - PLB) = BPR02",
            ),
            CheckResult(
                "entries_balanced", not unbalanced, 0, len(unbalanced), "every journal entry sums to zero"
            ),
        ]
        result.checks = checks
        failed = [c for c in checks if not c.ok]
        if failed:
            raise RemittancePostingError(
                f"completeness check failed for trace {ctx.result.trace_number}: "
                + "; ".join(f"{c.name} (expected {c.expected}, found {c.actual})" for c in failed),
                rule="completeness",
                errors=[
                    {
                        "field": c.name,
                        "rule": "completeness",
                        "message": f"expected {c.expected}, found {c.actual}",
                    }
                    for c in failed
                ],
                checks=[c.to_json_dict() for c in checks],
            )


@dataclass(slots=True)
class _ClaimPlan:
    """One CLP on its way to the ledger."""

    claim: x835.ClaimPayment
    position: int
    claim_row: Claim | None = None
    payer_id: int | None = None
    next_payer_id: int | None = None
    dimension_claim_id: int | None = None
    line_ids: list[int | None] = field(default_factory=list)
    claim_payment_id: int | None = None
    cash_cents: int = 0
    held_cents: int = 0
    denial_codes: list[tuple[str, str]] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    queue: WorkQueue | None = None
    unmatched_reason: str | None = None
    outcome: ClaimOutcome = field(init=False)

    def __post_init__(self) -> None:
        self.outcome = ClaimOutcome(
            position=self.position,
            patient_control_number=self.claim.patient_control_number,
            status_code=self.claim.status,
            outcome="queued",
            claim=None,
            paid_cents=self.claim.paid_cents,
        )
        if not self.line_ids:
            self.line_ids = [None] * len(self.claim.lines)

    def claim_payment_row(self, remittance_id: int) -> dict[str, Any]:
        c = self.claim
        crossover = c.crossover_carrier
        return {
            "remittance_id": remittance_id,
            "claim_id": self.claim_row.id if self.claim_row is not None else None,
            "position": self.position,
            "patient_control_number": c.patient_control_number,
            "status_code": c.status[:2],
            "charge_cents": c.charge_cents,
            "paid_cents": c.paid_cents,
            "patient_responsibility_cents": c.patient_responsibility_cents,
            "claim_filing_indicator": c.filing_indicator[:2] or None,
            "payer_claim_control_number": c.payer_claim_control_number or None,
            "facility_type_code": c.facility_type[:2] or None,
            "claim_frequency_code": c.frequency[:1] or None,
            "crossover_payer_name": (crossover.name[:60] or None) if crossover is not None else None,
            "crossover_payer_id": (crossover.identifier[:80] or None) if crossover is not None else None,
            "service_date_from": c.statement_from,
            "service_date_to": c.statement_to,
            "created_at": utcnow(),
        }

    def line_row(self, claim_payment_id: int, index: int) -> dict[str, Any]:
        line = self.claim.lines[index]
        mods = [*line.procedure.modifiers, None, None, None, None]
        return {
            "claim_payment_id": claim_payment_id,
            "service_line_id": self.line_ids[index],
            "position": index + 1,
            "procedure_qualifier": line.procedure.qualifier[:2] or "HC",
            "procedure_code": line.procedure.code,
            "modifier1": (mods[0] or None) and mods[0][:2],
            "modifier2": (mods[1] or None) and mods[1][:2],
            "modifier3": (mods[2] or None) and mods[2][:2],
            "modifier4": (mods[3] or None) and mods[3][:2],
            "charge_cents": line.charge_cents,
            "paid_cents": line.paid_cents,
            "revenue_code": line.revenue_code[:4] or None,
            "units": str(line.units)[:15] if line.units is not None else None,
            "original_procedure_code": line.original_procedure.code[:48] if line.original_procedure else None,
            "line_control_number": line.line_control_number,
            "service_date": line.service_date,
            "allowed_cents": line.allowed_cents,
            "remark_codes": [r.code for r in line.remarks],
        }


def _store_claim_states(session: Session, claims: list[Claim]) -> None:
    """Write the state changes ``claims.state`` made, as one executemany UPDATE.

    The ORM writes a versioned row with one UPDATE statement each (it checks the version
    per statement), 25,000 round trips for a large remittance. This does the same UPDATE
    (``... WHERE id = ? AND version = ?``, version + 1, so a concurrent change is still
    detected: the total row count must match) in one executemany, then tells the ORM the
    new values are the stored ones so its flush has nothing left to write for them.
    """
    changed: dict[int, Claim] = {}
    for claim in claims:
        if inspect(claim).attrs.state.history.has_changes():
            changed[claim.id] = claim
    if not changed:
        return
    now = utcnow()
    table = Claim.__table__
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
        .values(
            state=bindparam("b_state"),
            state_changed_at=bindparam("b_changed"),
            updated_at=bindparam("b_updated"),
            version=bindparam("b_new_version"),
        )
    )
    rows = [
        {
            "b_id": claim.id,
            "b_version": claim.version,
            "b_state": claim.state,
            "b_changed": claim.state_changed_at,
            "b_updated": now,
            "b_new_version": claim.version + 1,
        }
        for claim in changed.values()
    ]
    result = session.connection().execute(stmt, rows)
    if result.rowcount != len(rows):
        raise StaleDataError(
            f"{len(rows) - result.rowcount} claim(s) were changed by someone else while the remittance was posted"
        )
    for claim in changed.values():
        set_committed_value(claim, "state", claim.state)
        set_committed_value(claim, "state_changed_at", claim.state_changed_at)
        set_committed_value(claim, "updated_at", now)
        set_committed_value(claim, "version", claim.version + 1)


def _adjustment_row(
    adj: x835.Adjustment, *, claim_payment_id: int | None = None, line_payment_id: int | None = None
) -> dict[str, Any]:
    return {
        "claim_payment_id": claim_payment_id,
        "line_payment_id": line_payment_id,
        "group_code": adj.group,
        "reason_code": adj.reason,
        "amount_cents": adj.amount_cents,
        "quantity": str(adj.quantity)[:15] if adj.quantity is not None else None,
    }


def _match_lines(claim: x835.ClaimPayment, ours: list[_Line]) -> list[int | None]:
    """Each SVC's line id: REF*6R first, else the billed procedure + modifiers + date (each line once)."""
    by_control = {line.line_control_number: line for line in ours}
    used: set[int] = set()
    out: list[int | None] = []
    for svc in claim.lines:
        control = svc.line_control_number
        found = by_control.get(control) if control else None
        if found is None or found.id in used:
            billed = svc.original_procedure or svc.procedure
            day = svc.service_date or claim.statement_from
            found = next(
                (
                    line
                    for line in ours
                    if line.id not in used
                    and line.procedure_code == billed.code
                    and line.modifiers == tuple(m for m in billed.modifiers if m)
                    and (day is None or line.service_date == day)
                ),
                None,
            )
        if found is not None:
            used.add(found.id)
        out.append(found.id if found is not None else None)
    return out


# -- entry points -------------------------------------------------------------------------------


def post_remittance(
    session: Session, edi_file_id: int, *, dry_run: bool = False, checkpoint: Checkpoint | None = None
) -> PostingReport:
    """Post the stored 835 ``edi_file_id`` in the caller's transaction (see the module docstring).

    Does not commit. Raises :class:`RemittancePostingError` when the file cannot be posted
    or a completeness check fails: the caller must roll back (``run_posting`` does, and
    records the failure on the file). ``dry_run`` rolls the session back before returning.
    ``checkpoint(name, info)`` is called after each chunk of claims (``"chunk"``) and once
    everything is written (``"posted"``), for progress and for the crash tests.
    """
    edi_file = session.get(EdiFile, edi_file_id)
    if edi_file is None:
        raise NotFound(f"no EDI file with id {edi_file_id}")
    report = PostingReport(edi_file_id=edi_file.id, edi_file_public_id=edi_file.public_id, dry_run=dry_run)
    content = edi_file.content
    if not content:
        raise RemittancePostingError("the stored file has no content", rule="no_content")
    characters = character_findings(bytes(content), file=edi_file.stored_name)
    if characters:
        raise RemittancePostingError(
            f"{len(characters)} element(s) hold characters outside the X12 basic and extended character sets",
            rule="x12_character_set",
            errors=[
                {"field": f.element, "segment": f.segment, "rule": f.code, "message": f.message}
                for f in characters[:20]
            ],
        )
    poster = _Poster(session, edi_file, report, checkpoint)
    poster.run(bytes(content))
    if report.duplicate:
        report.status = "duplicate"
        if edi_file.status is not EdiFileStatus.PROCESSED:
            # Other bytes carrying a payment posted before (same payer + trace number).
            edi_file.status = EdiFileStatus.DUPLICATE
            edi_file.processed_at = utcnow()
            edi_file.error_summary = {
                "status": "duplicate",
                "duplicate_of": [r.duplicate_of for r in report.remittances],
            }
    else:
        edi_file.status = EdiFileStatus.PROCESSED
        edi_file.processed_at = utcnow()
        report.status = "posted"
        edi_file.error_summary = {**report.summary(), "findings": len(report.findings)}
    session.flush()
    if checkpoint is not None:
        checkpoint("posted", report.summary())
    if dry_run:
        session.rollback()
        report.status = "dry_run" if not report.duplicate else "duplicate"
    return report
