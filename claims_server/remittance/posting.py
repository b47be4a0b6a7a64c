"""Posting an 835 to the ledger: exactly once, to the cent, in one transaction per file.

``post_remittance(session, edi_file_id)`` reads a stored 835 (``EdiFile``, raw bytes with
their SHA-256) with the streaming parser and, for each transaction set (one payment,
``Remittance``):

* refuses a payment already posted: the same file (its remittances are ``posted``) or the
  same payer + trace number (TRN03 + TRN02, the TR3's reassociation key) posts nothing
  and the report says ``duplicate``; refuses a negative BPR02 (the TR3 never sends one: a
  net debit is carried by a PLB FB forward balance), and refuses the whole file when it is
  not all there (rule ``incomplete_file``: ``x835.STRUCTURE_CODES``) or holds an amount the
  ledger cannot hold (``amount_out_of_range``);
* matches each CLP to a claim by CLP01 (our CLM01) and the payer (the remitting payer
  must be one of the patient's coverages: a crossover payer sends the primary claim's
  number back with CLP02 = 2), each SVC to a line by REF*6R, else procedure + modifiers
  + date of service;
* stores what the payer said (``ClaimPayment``, ``LinePayment``, ``Adjustment``,
  ``ProviderAdjustment``) and decides each matched CLP as one step of its payer's
  adjudication history of the encounter (docs/adjudication-history.md, the pure rules in
  ``claims_server.remittance.adjudication``): an original or correction posts one
  balanced journal entry, a reversal mirrors the entry it negates, and what may not post
  (a possible duplicate, an amount that would leave a payer's A/R below zero, a reversal
  that matches nothing) is **held**: its money goes to unapplied payments (Dr cash
  clearing / Cr unapplied, remittance dimension) with a work item, and it is tried again
  whenever its encounter's A/R changes. Per ARCHITECTURE.md's ledger table:

  =====================  ===============================================  ====================
  what                   debit                                            credit
  =====================  ===============================================  ====================
  payment (CLP04/SVC03)  cash clearing (this remittance)                  A/R insurance
  CAS CO                 contractual adjustments                          A/R insurance
  CAS PR (1, 2, 3, ...)  A/R insurance of the next coverage, else A/R pt  A/R insurance
  CAS OA / PI / CR       other adjustments                                A/R insurance
  PLB                    see ``claims_server.remittance.plb``             cash clearing
  CLP02 = 22             the reversed entry's postings, mirrored          (new entry)
  unmatched or held CLP  cash clearing                                    unapplied payments
  =====================  ===============================================  ====================

  A negative CAS amount simply flips the two sides (debit becomes credit). Receivables
  carry the line dimension; contra accounts are kept per claim and payer. CARC 23 (prior
  payers' adjudication, on a next payer's 835) is stored, not posted, and a later payer's
  CO/OA/PI/CR beyond what is open on it (a secondary restating the primary's CO-45) is a
  restatement: stored, not posted, and the claim's outcome says how much. A replacement
  or next-payer claim posts against the receivable of the original claim it points to.

* never writes a denial off: a CLP02 = 4 claim posts no adjustment at all, and on a line
  paid zero the CO/OA/PI/CR amounts with a denial CARC (anything but pricing reasons such
  as CO-45) are left in A/R; each such claim opens a work item (queue ``denied``) with the
  codes explained and the recommended action. Unmatched claims and lines open items in
  ``unmatched``; a possible duplicate opens one in ``possible_duplicate`` (one for the
  whole remittance, which is then ``held``, when every claim of it is one); other holds
  and a claim its payer reversed without a corrected adjudication open one in ``other``.
  Items close themselves when what they asked for has happened (a later adjudication of
  the claim posts money; a held adjudication is released).
* moves each claim through ``claims.state`` (paid, partially paid, denied; back to
  acknowledged when a reversal leaves it with no current adjudication by its payer); a
  crossover (CLP02 19/20/21 or NM1*TT) is stored as forwarded (``crossover_payer_*``) so
  the next payer is not billed again, and its patient share moves to the next payer's A/R.
* checks, before the caller commits, that claims parsed = posted + held + queued
  (+ informational), each with an entry or a work item, that the cash of the claims =
  BPR02 + ΣPLB (so cash clearing of the remittance = BPR02), that the held claims are
  held in the database and that every entry of the remittance sums to zero, reading the
  rows back from the database; any failure raises :class:`RemittancePostingError` and the
  caller rolls the whole file back.

Journal idempotency keys: what a CLP posts when it arrives is
``835:<TRN03>:<TRN02>:<CLP position>:<payment|hold|reversal|unapplied>``, so a rerun after
a crash can never post an event twice; what happens to a stored adjudication later (its
hold released, its post after release, a supersede or a rejection decided by a person) is
``cp:<claim payment id>:<release|post|reversal|supersede|reject>`` (each happens at most
once to one claim payment).

Dry run (``dry_run=True``): the same computation, then the session is rolled back, so
nothing changes (not even the claim states or work items); the report says what would
have been posted. The dry run itself is audited by ``run_posting`` as one EXECUTE event
in its own transaction (who looked at which file), because an audit record inside the
rolled-back transaction would vanish with it.

The engine works in chunks of ``CHUNK`` claims: the encounters of a chunk (open A/R per
payer, their adjudications) are read in a few queries, each CLP is decided in memory in
file order, then the rows, journal entries, claim states and work items are written in
bulk, so a 25,000-claim remittance is posted in seconds and memory holds one chunk.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, inspect, or_, select, update
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
    existing_entry_ids,
    mirror_legs,
    post_entries,
    receivable_claim_id,
    unbalanced_entries,
)
from claims_server.models import (
    AccountCode,
    Adjustment,
    AuditAction,
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
    Remittance,
    ServiceLine,
    WorkItem,
    WorkItemComment,
)
from claims_server.models.common import new_public_id, utcnow
from claims_server.models.remittance import (
    AdjudicationHold,
    AdjudicationKind,
    AdjudicationState,
    AdjustmentGroup,
    RemittanceState,
)
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.remittance.adjudication import (
    CROSSOVER_STATUSES,
    DENIED_STATUS,
    INFORMATIONAL_STATUSES,
    PRICING_CARCS,
    PRIOR_PAYER_CARC,
    PROCESSED_STATUSES,
    REVERSAL_STATUS,
    Adjudication,
    Engine,
    Entry,
    Event,
    amounts_of,
)
from claims_server.remittance.plb import post_provider_adjustments
from claims_server.security.audit import audit_events_bulk
from edi import x835
from edi.charset import character_findings
from edi.findings import Finding
from edi.reader import X12SyntaxError

__all__ = [
    "CHUNK",
    "CROSSOVER_STATUSES",
    "DENIED_STATUS",
    "INFORMATIONAL_STATUSES",
    "PRICING_CARCS",
    "PRIOR_PAYER_CARC",
    "PROCESSED_STATUSES",
    "REVERSAL_STATUS",
    "Checkpoint",
    "ClaimOutcome",
    "PostingReport",
    "RemittancePostingError",
    "RemittanceResult",
    "post_remittance",
]

CHUNK = 500
#: The kinds of work item posting opens (the first part of their dedupe keys).
WORK_ITEM_KINDS = (
    "unmatched",
    "denied",
    "reversal",
    "unmatched_lines",
    "possible_duplicate",
    "would_overdraw",
    "reversal_unmatched",
)
#: The dedupe-key heads of the items a held adjudication opens (one per hold reason).
HOLD_ITEM_KINDS = ("possible_duplicate", "would_overdraw", "reversal_unmatched")
#: Adjudications an encounter's history needs (a rejected one, an unmatched or informational
#: CLP never decides anything again).
HISTORY_STATES = (
    AdjudicationState.CURRENT,
    AdjudicationState.HELD,
    AdjudicationState.REVERSED,
    AdjudicationState.SUPERSEDED,
    AdjudicationState.APPLIED,
)
_NEW_ARRIVAL = 1 << 60  # arrival order of a CLP of this run: after every stored row

_GROUPS = frozenset(g.value for g in AdjustmentGroup)
_AR_INSURANCE = AccountCode.AR_INSURANCE.value

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
    """Raise when the parser found the file unpostable (``x835.UNPOSTABLE_CODES``).

    Rule ``incomplete_file`` when the file is not all there (``x835.STRUCTURE_CODES``: a
    missing SE/GE/IEA, counts that disagree with what was read, a truncated last segment),
    else ``amount_out_of_range`` (an amount the ledger cannot hold, edi.numbers limits).
    The whole file is refused (the caller rolls back and marks it failed with these
    findings): posting what was read of a truncated file, or the rest with that amount
    counted as zero, would misstate the money.
    """
    findings = [event] if isinstance(event, Finding) else getattr(event, "findings", ())
    bad = [f for f in findings if f.code in x835.UNPOSTABLE_CODES]
    if bad:
        structural = [f for f in bad if f.code in x835.STRUCTURE_CODES]
        first = (structural or bad)[0]
        if structural:  # the reader's message names the trailer or count (the segment is in errors)
            message = f"the file is incomplete and was not posted: {first.message}"
        else:
            where = first.element or first.segment
            message = f"{where}: {first.message}" if where else first.message
        raise RemittancePostingError(
            message,
            rule="incomplete_file" if structural else "amount_out_of_range",
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
    """What happened to one CLP.

    ``outcome``: posted, reversed (a reversal applied), held (money in unapplied payments
    until released or decided), queued (unmatched, or a denial with nothing to post) or
    informational (nothing to post, nothing to do).
    """

    position: int
    patient_control_number: str
    status_code: str
    outcome: str
    claim: str | None  # our claim's public id
    paid_cents: int
    entry_keys: list[str] = field(default_factory=list)
    held_cents: int = 0  # denied amounts left in A/R for a person to work
    queues: list[str] = field(default_factory=list)
    state: str | None = None
    notes: list[str] = field(default_factory=list)
    adjudication: str | None = None  # original | correction | reversal | unmatched | informational
    hold_reason: str | None = None
    restated_cents: int = 0  # adjustments beyond what was open on the payer: stored, not posted

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "patient_control_number": self.patient_control_number,
            "status_code": self.status_code,
            "outcome": self.outcome,
            "claim": self.claim,
            "paid": x835.format_cents(self.paid_cents),
            "held_in_ar": x835.format_cents(self.held_cents),
            "adjudication": self.adjudication,
            "hold_reason": self.hold_reason,
            "restated": x835.format_cents(self.restated_cents),
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
    held: bool = False  # every claim a possible duplicate: the remittance waits for a person
    provider_adjustment_cents: int = 0
    claims_parsed: int = 0
    claims_posted: int = 0
    claims_held: int = 0
    claims_queued: int = 0
    claims_informational: int = 0
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
            "held": self.held,
            "claims_parsed": self.claims_parsed,
            "claims_posted": self.claims_posted,
            "claims_held": self.claims_held,
            "claims_queued": self.claims_queued,
            "claims_informational": self.claims_informational,
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
            "held_remittances": sum(1 for r in live if r.held),
            "claims_parsed": sum(r.claims_parsed for r in live),
            "claims_posted": sum(r.claims_posted for r in live),
            "claims_held": sum(r.claims_held for r in live),
            "claims_queued": sum(r.claims_queued for r in live),
            "claims_informational": sum(r.claims_informational for r in live),
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


def _next_payer(coverages: Sequence[_CoverageRow], payer_id: int | None, day: date | None) -> int | None:
    """The payer of the coverage one order after ``payer_id``'s, active on ``day`` (None: the patient)."""
    mine = [c for c in coverages if c.payer_id == payer_id and c.active_on(day)]
    if not mine:
        return None
    order = mine[0].order
    return next((c.payer_id for c in coverages if c.order == order + 1 and c.active_on(day)), None)


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


def _money(cents: int) -> str:
    return x835.format_cents(cents)


@dataclass(slots=True)
class _Label:
    """What names one adjudication in keys, audit records and work item texts (no PHI)."""

    key_prefix: str  # 835:<TRN03>:<TRN02>:<CLP position>
    claim_public_id: str | None
    remittance_public_id: str
    trace: str
    position: int
    plan: _ClaimPlan | None = None  # set for the CLPs of the batch being posted
    outcome: ClaimOutcome | None = None


@dataclass(slots=True)
class _StoredLine:
    """A stored SVC as :func:`adjudication.amounts_of` reads it."""

    charge_cents: int
    paid_cents: int
    adjustments: list[x835.Adjustment]
    remarks: list[x835.Remark]


def _label(a: Adjudication) -> _Label:
    label = a.ref
    assert isinstance(label, _Label)
    return label


# -- reading an encounter's history -------------------------------------------------------------


def load_history(
    session: Session,
    engine: Engine,
    *,
    accounts: dict[str, int],
    encounters: set[int],
    claim_encounter: dict[int, int],
    coverages: dict[int, list[_CoverageRow]],
    service_day: dict[int, date | None],
    pending: Sequence[EntrySpec] = (),
) -> list[Adjudication]:
    """Put the encounters' open A/R insurance per payer and their adjudications into ``engine``.

    ``claim_encounter`` maps our claims (CLP01 matches) to their encounter: a row written
    before the history existed may carry the claim itself as its ledger claim, and is read
    into its encounter (and corrected when written back). ``pending``: the charge entries
    of the batch (``post_entries`` writes those not in the journal yet): the charge of a
    claim with no A/R posting yet counts already. Held adjudications get their amounts
    (lines and CAS) for the retry. Returns the stored adjudications read.
    """
    ar_id = accounts[_AR_INSURANCE]
    for claim_id in encounters:
        engine.encounter(claim_id)
    ids = sorted(encounters)
    on_books: set[int] = set()
    for chunk in _chunks(ids, 5000):
        for claim_id, payer_id, total in session.execute(
            select(Posting.claim_id, Posting.payer_id, func.sum(Posting.amount_cents))
            .where(Posting.account_id == ar_id, state.id_in(session, Posting.claim_id, chunk))
            .group_by(Posting.claim_id, Posting.payer_id)
        ):
            engine.encounters[claim_id].ar[payer_id] = int(total or 0)
            on_books.add(claim_id)
    for spec in pending:
        enc = engine.encounters.get(spec.claim_id) if spec.claim_id is not None else None
        if enc is None or enc.claim_id in on_books:  # charged before (its first A/R posting)
            continue
        for leg in spec.legs:
            if str(leg.account) == _AR_INSURANCE:
                enc.ar[leg.payer_id] = enc.ar.get(leg.payer_id, 0) + leg.amount_cents
    keys = sorted(encounters | set(claim_encounter))
    rows: dict[int, Any] = {}
    for chunk in _chunks(keys, 5000):
        for row in session.execute(
            select(
                ClaimPayment.id,
                ClaimPayment.claim_id,
                ClaimPayment.ledger_claim_id,
                ClaimPayment.payer_id,
                ClaimPayment.remittance_id,
                ClaimPayment.position,
                ClaimPayment.status_code,
                ClaimPayment.charge_cents,
                ClaimPayment.paid_cents,
                ClaimPayment.patient_responsibility_cents,
                ClaimPayment.payer_claim_control_number,
                ClaimPayment.adjudication_kind,
                ClaimPayment.adjudication_state,
                ClaimPayment.hold_reason,
                ClaimPayment.reverses_claim_payment_id,
                Remittance.public_id.label("remittance_public_id"),
                Remittance.trace_number,
                Remittance.payer_identifier,
                Claim.public_id.label("claim_public_id"),
                Claim.patient_id,
            )
            .join(Remittance, Remittance.id == ClaimPayment.remittance_id)
            .join(Claim, Claim.id == ClaimPayment.claim_id)
            .where(
                or_(
                    state.id_in(session, ClaimPayment.ledger_claim_id, chunk),
                    state.id_in(session, ClaimPayment.claim_id, chunk),
                ),
                ClaimPayment.adjudication_state.in_(HISTORY_STATES),
            )
        ):
            rows[row.id] = row
    stored: list[Adjudication] = []
    by_id: dict[int, Adjudication] = {}
    for row_id in sorted(rows):
        row = rows[row_id]
        encounter = row.ledger_claim_id if row.ledger_claim_id in encounters else None
        if encounter is None:
            encounter = claim_encounter.get(row.claim_id)
        if encounter is None or row.payer_id is None:
            continue
        day = service_day.get(encounter)
        adj = Adjudication(
            arrival=row.id,
            encounter=encounter,
            payer_id=row.payer_id,
            claim_id=row.claim_id,
            patient_id=row.patient_id,
            remittance_id=row.remittance_id,
            status=row.status_code,
            charge=row.charge_cents,
            paid=row.paid_cents,
            payer_claim_number=row.payer_claim_control_number,
            clp05=row.patient_responsibility_cents,
            next_payer_id=_next_payer(coverages.get(row.patient_id, []), row.payer_id, day),
            kind=AdjudicationKind(row.adjudication_kind) if row.adjudication_kind else None,
            state=AdjudicationState(row.adjudication_state),
            hold_reason=AdjudicationHold(row.hold_reason) if row.hold_reason else None,
            id=row.id,
            stored=True,
            changed=row.ledger_claim_id != encounter,
            ref=_Label(
                key_prefix=f"835:{row.payer_identifier}:{row.trace_number}:{row.position}",
                claim_public_id=row.claim_public_id,
                remittance_public_id=row.remittance_public_id,
                trace=row.trace_number,
                position=row.position,
            ),
        )
        engine.encounters[encounter].history.append(adj)
        stored.append(adj)
        by_id[adj.id] = adj  # type: ignore[index]
    for adj in stored:
        reverses = rows[adj.id].reverses_claim_payment_id  # type: ignore[index]
        if reverses is not None:
            adj.reverses = by_id.get(reverses)
    held = [a for a in stored if a.state is AdjudicationState.HELD]
    if held:
        _load_amounts(session, held)
    return stored


def _load_amounts(session: Session, adjudications: Sequence[Adjudication]) -> None:
    """The amounts of stored adjudications, rebuilt from their LinePayment and Adjustment rows."""
    ids = [a.id for a in adjudications]
    lines: dict[int, list[tuple[int, int | None, _StoredLine]]] = {i: [] for i in ids}  # type: ignore[misc]
    line_owner: dict[int, _StoredLine] = {}
    for row in session.execute(
        select(
            LinePayment.id,
            LinePayment.claim_payment_id,
            LinePayment.service_line_id,
            LinePayment.charge_cents,
            LinePayment.paid_cents,
            LinePayment.remark_codes,
        )
        .where(LinePayment.claim_payment_id.in_(ids))
        .order_by(LinePayment.claim_payment_id, LinePayment.position)
    ):
        line = _StoredLine(
            row.charge_cents,
            row.paid_cents,
            [],
            [x835.Remark("HE", code) for code in (row.remark_codes or [])],
        )
        lines[row.claim_payment_id].append((row.id, row.service_line_id, line))
        line_owner[row.id] = line
    claim_level: dict[int, list[x835.Adjustment]] = {i: [] for i in ids}  # type: ignore[misc]
    conditions = [Adjustment.claim_payment_id.in_(ids)]
    if line_owner:
        conditions.append(Adjustment.line_payment_id.in_(list(line_owner)))
    for row in session.execute(
        select(
            Adjustment.claim_payment_id,
            Adjustment.line_payment_id,
            Adjustment.group_code,
            Adjustment.reason_code,
            Adjustment.amount_cents,
        )
        .where(or_(*conditions))
        .order_by(Adjustment.id)
    ):
        adj = x835.Adjustment(AdjustmentGroup(row.group_code).value, row.reason_code, row.amount_cents)
        if row.line_payment_id is not None:
            line_owner[row.line_payment_id].adjustments.append(adj)
        else:
            claim_level[row.claim_payment_id].append(adj)
    for a in adjudications:
        owned = lines[a.id]  # type: ignore[index]
        a.amounts = amounts_of(
            a.status,
            a.paid,
            [line for _, _, line in owned],
            [line_id for _, line_id, _ in owned],
            claim_level[a.id],  # type: ignore[index]
        )


def entry_loader(session: Session) -> Callable[[Adjudication], None]:
    """The engine's loader of a stored adjudication's entries (what posted it, what held it)."""

    def load(adj: Adjudication) -> None:
        if adj.id is None:
            return
        post = hold = None
        for entry_id, key, event in session.execute(
            select(JournalEntry.id, JournalEntry.idempotency_key, JournalEntry.event_type)
            .where(JournalEntry.claim_payment_id == adj.id)
            .order_by(JournalEntry.id)
        ):
            if event == JournalEventType.INSURANCE_PAYMENT:
                # ``:unapplied`` is an unmatched CLP's money: once a person applies it to a claim
                # (``remittance.unmatched``) it is that adjudication's hold, released when it posts.
                if key.endswith((":hold", ":unapplied")):
                    hold = (entry_id, key)
                elif not key.endswith(":unapplied"):
                    post = (entry_id, key)
            elif event == JournalEventType.REVERSAL and adj.is_reversal and key.endswith(":reversal"):
                post = (entry_id, key)
        for found, attr, name, kind in (
            (post, "post_entry", "payment", "insurance_payment"),
            (hold, "hold_entry", "hold", "insurance_payment"),
        ):
            if found is None:
                continue
            entry_id, key = found
            legs = [
                Leg(
                    leg.account,
                    -leg.amount_cents,
                    leg.claim_id,
                    leg.service_line_id,
                    leg.payer_id,
                    leg.patient_id,
                    leg.remittance_id,
                )
                for leg in mirror_legs(session, entry_id)
            ]
            setattr(adj, attr, Entry(adj, name, kind, legs, id=entry_id, key=key))

    return load


def engine_for(
    session: Session, payments: Sequence[ClaimPayment], *, accounts: dict[str, int]
) -> tuple[Engine, list[Adjudication]]:
    """An engine holding the encounters of ``payments`` (stored claim payments), and their adjudications.

    For a person's decision on held adjudications: the encounters are read as the poster
    reads them (open A/R per payer, every adjudication, the amounts of the held ones).
    """
    claim_ids = {p.claim_id for p in payments if p.claim_id is not None}
    claims = {c.id: c for c in session.scalars(select(Claim).where(Claim.id.in_(sorted(claim_ids))))}
    claim_encounter = {
        p.claim_id: p.ledger_claim_id or receivable_claim_id(session, claims[p.claim_id])
        for p in payments
        if p.claim_id is not None
    }
    encounters = set(claim_encounter.values())
    patients = {c.patient_id for c in claims.values()}
    coverages: dict[int, list[_CoverageRow]] = {}
    for row in session.execute(
        select(
            Coverage.patient_id,
            Coverage.payer_id,
            Coverage.coverage_order,
            Coverage.effective_start,
            Coverage.effective_end,
        )
        .where(Coverage.patient_id.in_(sorted(patients)))
        .order_by(Coverage.patient_id, Coverage.coverage_order, Coverage.effective_start)
    ):
        coverages.setdefault(row.patient_id, []).append(
            _CoverageRow(row.payer_id, row.coverage_order, row.effective_start, row.effective_end)
        )
    service_day: dict[int, date | None] = {}
    for claim_id, day in session.execute(
        select(ServiceLine.claim_id, func.min(ServiceLine.service_date_from))
        .where(ServiceLine.claim_id.in_(sorted(claim_ids | encounters)))
        .group_by(ServiceLine.claim_id)
    ):
        service_day.setdefault(claim_encounter.get(claim_id, claim_id), day)
    engine = Engine(entry_loader(session))
    stored = load_history(
        session,
        engine,
        accounts=accounts,
        encounters=encounters,
        claim_encounter=claim_encounter,
        coverages=coverages,
        service_day=service_day,
    )
    by_id = {a.id: a for a in stored}
    wanted = []
    for payment in payments:
        found = by_id.get(payment.id)
        if found is None:
            raise Unprocessable(
                f"claim payment {payment.id} is not part of an adjudication history",
                errors=[{"field": "claim_payment", "rule": "history", "message": "no claim or payer"}],
            )
        wanted.append(found)
    return engine, wanted


# -- writing what an engine decided -------------------------------------------------------------


def _entry_key(entry: Entry) -> str:
    if entry.key is None:
        owner = entry.owner
        if entry.at_arrival:
            entry.key = f"{_label(owner).key_prefix}:{entry.name}"
        else:
            assert owner.id is not None
            entry.key = f"cp:{owner.id}:{entry.name}"
    return entry.key


def _entry_spec(entry: Entry, effective_date: date) -> EntrySpec:
    owner = entry.owner
    label = _label(owner)
    return EntrySpec(
        event_type=JournalEventType(entry.event),
        idempotency_key=_entry_key(entry),
        legs=entry.legs,
        effective_date=effective_date,
        claim_id=owner.encounter,
        remittance_id=owner.remittance_id,
        claim_payment_id=owner.id,
        reverses_entry_id=entry.reverses.id if entry.reverses is not None else None,
        reason_code=f"CLP02:{owner.status}",
        audit_entity=label.claim_public_id or label.remittance_public_id,
        audit_details={
            "remittance": label.remittance_public_id,
            "clp_position": label.position,
            "adjudication": entry.name,
        },
        audit_group=label.claim_public_id,
    )


def write_entries(
    session: Session,
    entries: Sequence[Entry],
    *,
    accounts: dict[str, int],
    effective_date: date,
    first: Sequence[EntrySpec] = (),
) -> int:
    """Write the engine's entries (``first`` before them, in the same bulk call); return how many.

    Two calls of ``post_entries``: the entries that mirror nothing, then the mirrors, whose
    ``reverses_entry_id`` is the id the first call gave the entry they mirror.
    """
    plain = [e for e in entries if e.reverses is None]
    mirrors = [e for e in entries if e.reverses is not None]
    specs = [*first, *(_entry_spec(e, effective_date) for e in plain)]
    written = post_entries(session, specs, accounts=accounts) if specs else {}
    missing = [e for e in plain if written.get(_entry_key(e)) is None]
    known = existing_entry_ids(session, [_entry_key(e) for e in missing]) if missing else {}
    for e in plain:
        e.id = written.get(_entry_key(e)) or known.get(_entry_key(e))
    count = len(written)
    if mirrors:
        specs = [_entry_spec(e, effective_date) for e in mirrors]
        again = post_entries(session, specs, accounts=accounts)
        count += len(again)
        known = existing_entry_ids(session, [_entry_key(e) for e in mirrors if _entry_key(e) not in again])
        for e in mirrors:
            e.id = again.get(_entry_key(e)) or known.get(_entry_key(e))
    return count


def write_history(session: Session, adjudications: Iterable[Adjudication]) -> None:
    """Write the history columns of stored rows that changed (one executemany UPDATE)."""
    rows = [
        {
            "b_id": a.id,
            "b_ledger": a.encounter,
            "b_kind": a.kind,
            "b_state": a.state,
            "b_hold": a.hold_reason,
            "b_reverses": a.reverses.id if a.reverses is not None else None,
        }
        for a in adjudications
        if a.id is not None
    ]
    if not rows:
        return
    table = ClaimPayment.__table__
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            ledger_claim_id=bindparam("b_ledger"),
            adjudication_kind=bindparam("b_kind", type_=table.c.adjudication_kind.type),
            adjudication_state=bindparam("b_state", type_=table.c.adjudication_state.type),
            hold_reason=bindparam("b_hold", type_=table.c.hold_reason.type),
            reverses_claim_payment_id=bindparam("b_reverses"),
        )
    )
    session.connection().execute(stmt, rows)
    # ORM copies of these rows in the session are stale now: read them again when next used.
    written = {row["b_id"] for row in rows}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, ClaimPayment) and obj.id in written:
            session.expire(obj, _HISTORY_COLUMNS)


_HISTORY_COLUMNS = [
    "ledger_claim_id",
    "adjudication_kind",
    "adjudication_state",
    "hold_reason",
    "reverses_claim_payment_id",
]


def open_item(
    session: Session,
    audit_events: list[dict[str, Any]],
    *,
    queue: WorkQueue,
    dedupe_key: str,
    claim_id: int | None,
    patient_id: int | None,
    claim_public_id: str | None,
    claim_payment_id: int | None,
    remittance_id: int | None = None,
    codes: list[str],
    action: str,
    explanation: str,
    priority: int = 1,
    known_new: bool = False,
) -> WorkItem | None:
    """Open a work item by ids (no ORM loads); None when one is already open under ``dedupe_key``.

    The same item and audit record as ``workqueue.services.open_work_item`` (the system's
    explanation as its first comment, ``work_item.open`` with the patient), appended to
    ``audit_events`` for one bulk write.
    """
    if not known_new and session.scalar(select(WorkItem.id).where(WorkItem.dedupe_key == dedupe_key)):
        return None
    now = utcnow()
    item = WorkItem(
        public_id=new_public_id(),
        queue=queue,
        status=WorkItemStatus.OPEN,
        dedupe_key=dedupe_key,
        claim_id=claim_id,
        claim_payment_id=claim_payment_id,
        remittance_id=remittance_id,
        reason_codes=list(codes),
        recommended_action=action,
        priority=priority,
        opened_at=now,
    )
    if explanation.strip():
        item.comments.append(WorkItemComment(author_user_id=None, body=explanation, created_at=now))
    session.add(item)
    audit_events.append(
        {
            "action": AuditAction.CREATE,
            "event_type": "work_item.open",
            "entity_type": "work_item",
            "entity_id": item.public_id,
            "patient_id": patient_id,
            "details": {
                "queue": queue.value,
                "reason_codes": list(codes),
                "recommended_action": action,
                "claim": claim_public_id,
            },
        }
    )
    return item


def _claim_event(a: Adjudication) -> str | None:
    """The claim transition an adjudication that posts asks for (as before the history)."""
    held = a.amounts.held if a.amounts is not None else 0
    if a.status == DENIED_STATUS:
        return "denied"
    if a.status in PROCESSED_STATUSES:
        if held:
            return "partially_paid" if a.paid > 0 else "denied"
        return "paid"
    return None


def _adjudication_text(a: Adjudication) -> str:
    label = _label(a)
    return (
        f"This 835 adjudication (trace {label.trace}, claim {label.position}, CLP02 {a.status}, "
        f"payer claim number {a.payer_claim_number or 'none'}, paid {_money(a.paid)}"
        + (f", patient responsibility {_money(a.pr)}" if a.pr else "")
        + ")"
    )


def hold_text(a: Adjudication) -> tuple[list[str], str]:
    """(reason codes, explanation) of a held adjudication's work item (codes and amounts, no PHI)."""
    what = _adjudication_text(a)
    if a.hold_reason is AdjudicationHold.POSSIBLE_DUPLICATE:
        current = a.duplicate_of
        if current is not None and current.state is AdjudicationState.REVERSED:
            return ["POSSIBLE_DUPLICATE"], f"{what} {repeats_reversed_text(current)}"
        if current is not None:
            c = _label(current)
            other = (
                f"the adjudication already current for this claim and payer (trace {c.trace}, claim "
                f"{c.position}, CLP02 {current.status}, payer claim number "
                f"{current.payer_claim_number or 'none'}, paid {_money(current.paid)})"
            )
        else:
            other = "the adjudication already current for this claim and payer"
        return ["POSSIBLE_DUPLICATE"], (
            f"{what} repeats {other} with no reversal between: a re-issued 835 under a new trace "
            f"number, or the same claim adjudicated twice. Its money ({_money(a.paid)}) waits in "
            "unapplied payments. Post it (it replaces the current adjudication) or reject it (its "
            "money leaves cash clearing and unapplied payments)."
        )
    if a.hold_reason is AdjudicationHold.REVERSAL_UNMATCHED:
        return ["REVERSAL_UNMATCHED"], (
            f"{what} is a reversal that matches no current or held adjudication of this claim by "
            "this payer (same CLP07, CLP03 and CLP04 negated). Its money waits in unapplied "
            "payments; it is applied by itself when the adjudication it reverses arrives, else "
            "check the claim's payments with the payer."
        )
    return ["WOULD_OVERDRAW"], (
        f"Posting {what[5:]} would leave this payer's A/R insurance of the claim below zero: the "
        "payer pays or bills the patient more than is open on it (a secondary's 835 before the "
        "primary's, an overpayment, or a reversal of what a later payer already adjudicated). "
        "Its money waits in unapplied payments; it is tried again whenever the claim's A/R "
        "changes. Review it with the payer if it stays held."
    )


def repeats_reversed_text(twin: Adjudication) -> str:
    """What a held possible duplicate's item says once the adjudication it repeats was reversed."""
    t = _label(twin)
    return (
        f"repeats an adjudication the payer has reversed (trace {t.trace}, claim {t.position}, CLP02 "
        f"{twin.status}, payer claim number {twin.payer_claim_number or 'none'}, paid {_money(twin.paid)}): "
        "the same CLP07, CLP03, CLP04 and CLP05, most likely a re-issued copy of what the payer took "
        "back. It stays held and is not posted by itself. Rejecting it is the likely decision (its "
        "money leaves cash clearing and unapplied payments); post it only if the payer confirms it "
        "as its corrected adjudication."
    )


class Followup:
    """Claim states and work items that follow what an engine decided (posting and decisions).

    ``defer_hold(adjudication)``: True when the caller opens the hold's work item itself
    later (the poster, at the end of the remittance, so a remittance whose every claim is
    a possible duplicate gets one item); ``claims``: ORM claims already loaded, by id.
    """

    def __init__(
        self,
        session: Session,
        audit_events: list[dict[str, Any]],
        *,
        claims: dict[int, Claim] | None = None,
        defer_hold: Callable[[Adjudication], bool] | None = None,
        on_item: Callable[[Adjudication, WorkQueue], None] | None = None,
        known_keys: set[str] | None = None,
        resolution: Callable[[Adjudication, str], str] | None = None,
        remittance_public_id: str | None = None,
        remittance_note: str = "no claim of the remittance is held any more",
    ):
        self.session = session
        self.audit_events = audit_events
        self.claims = claims if claims is not None else {}
        self.defer_hold = defer_hold or (lambda a: False)
        self.on_item = on_item or (lambda a, q: None)
        self.known_keys = known_keys
        self.resolution = resolution or (lambda a, note: note)
        self.remittance_public_id = remittance_public_id
        self.remittance_note = remittance_note
        self.money_posted: list[Adjudication] = []
        self.unheld: list[tuple[Adjudication, str]] = []
        self.repeats: list[tuple[Adjudication, Adjudication]] = []  # (held, the reversed one it repeats)
        # Keys of the items this follow-up opened or reopened: a hold whose reason goes back and
        # forth inside one batch (possible duplicate, would overdraw, possible duplicate again)
        # opens its item once (the session does not flush between the events).
        self.opened: set[str] = set()
        self.remittances: set[int] = set()
        self.notes: dict[int, list[str]] = {}

    def claim(self, claim_id: int) -> Claim:
        found = self.claims.get(claim_id)
        if found is None:
            found = self.session.get(Claim, claim_id)
            assert found is not None
            self.claims[claim_id] = found
        return found

    def handle(self, events: Iterable[Event]) -> None:
        for event in events:
            a = event.adjudication
            if event.what == "posted":
                self.posted(a)
            elif event.what in ("held", "hold_changed"):
                if event.what == "hold_changed":
                    self.unheld.append((a, "hold reason changed"))
                if not self.defer_hold(a):
                    self.open_hold_item(a)
            elif event.what == "released":
                self.unheld.append((a, "released: the adjudication posted"))
                self.remittances.add(a.remittance_id)
            elif event.what == "reversed_held":  # the target was held: the reversal undid its hold
                self.unheld.append((a, "reversed by the payer"))
                self.remittances.add(a.remittance_id)
            elif event.what == "rejected":
                self.unheld.append((a, "rejected"))
                self.remittances.add(a.remittance_id)
            elif event.what == "lost_current" and event.other is not None:
                self.lost_current(a, event.other)
            elif event.what == "repeats_reversed" and event.other is not None:
                self.repeats.append((a, event.other))

    def posted(self, a: Adjudication) -> None:
        claim = self.claim(a.claim_id)
        event = _claim_event(a)
        if (
            a.kind is AdjudicationKind.CORRECTION
            and event is not None
            and claim.state != state.EVENTS[event][1]
            and claim.state not in state.EVENTS[event][0]
            and claim.state in state.EVENTS["reversed"][0]
            and claim.coverage is not None
            and claim.coverage.payer_id == a.payer_id
        ):
            # The payer re-adjudicated its claim (a correction listed before its reversal, or
            # released by the retry after it, or a person's post): the claim's state follows its
            # current adjudication, through "awaiting payment" as the in-order sequence goes.
            self.move(a, claim, "reversed", reason="835 correction")
        self.move(a, claim, event, reason="835")
        amounts = a.amounts
        if a.post_entry is not None and a.status != DENIED_STATUS and a.follows_another:
            self.money_posted.append(a)
        if amounts is not None and (a.status == DENIED_STATUS or amounts.held):
            from claims_server.workqueue.recommend import reason_code_labels, recommend_for_codes

            recommendation = recommend_for_codes(
                amounts.denial_codes, amounts.remarks, has_other_coverage=a.next_payer_id is not None
            )
            self.open(
                a,
                queue=WorkQueue.DENIED,
                key=f"denied:{_label(a).key_prefix}",
                codes=reason_code_labels(amounts.denial_codes, amounts.remarks),
                action=recommendation.action.value,
                explanation=recommendation.explanation
                + f" Left in A/R (not written off): {_money(amounts.held)}.",
                priority=2,
                lookup="known" if _label(a).plan is not None else "query",
            )

    def move(self, a: Adjudication, claim: Claim, event: str | None, *, reason: str) -> None:
        if event is None:
            return
        details = {
            "remittance": _label(a).remittance_public_id,
            "clp02": a.status,
            "paid_cents": a.paid,
        }
        if claim.state == ClaimState.SUBMITTED and event != "reversed":
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
                    self.session, claim, event, reason=reason, details=details, audit_events=self.audit_events
                )
            else:
                self.notes.setdefault(a.arrival, []).append(
                    f"claim state {claim.state.value} left as is ({event} not allowed)"
                )

    def lost_current(self, reversal: Adjudication, target: Adjudication) -> None:
        """The payer reversed and nothing of it is current: awaiting payment again, with an item."""
        claim = self.claim(target.claim_id)
        if claim.coverage is not None and claim.coverage.payer_id == target.payer_id:
            self.move(reversal, claim, "reversed", reason="835 reversal")
        label = _label(reversal)
        self.open(
            reversal,
            queue=WorkQueue.OTHER,
            key=f"reversal:cp:{reversal.id}",
            claim_id=target.claim_id,
            codes=["REVERSED"],
            action="review",
            explanation=(
                f"Reversed by the payer; awaiting its corrected adjudication. The 835 with trace "
                f"{label.trace} (claim {label.position}, payer claim number "
                f"{reversal.payer_claim_number or 'none'}) took back the adjudication that paid "
                f"{_money(target.paid)}, and no adjudication of this claim by this payer is current "
                "now: the claim is awaiting payment again (the unpaid sweep follows it up). This "
                "item closes itself when the payer's corrected adjudication posts."
            ),
            lookup="new",
        )

    def open_hold_item(self, a: Adjudication) -> None:
        codes, text = hold_text(a)
        reason = a.hold_reason.value if a.hold_reason is not None else "held"
        queue = (
            WorkQueue.POSSIBLE_DUPLICATE
            if a.hold_reason is AdjudicationHold.POSSIBLE_DUPLICATE
            else WorkQueue.OTHER
        )
        key = f"{reason}:cp:{a.id}"
        if key in self.opened:
            return
        existing = self.session.scalar(select(WorkItem).where(WorkItem.dedupe_key == key))
        if existing is not None:
            # Held for this reason before, then for another (its item closed by the system),
            # and for this one again: the same item is open again, saying why.
            self.opened.add(key)
            if existing.status == WorkItemStatus.RESOLVED:
                self.reopen(existing, a, text)
            self.on_item(a, queue)
            return
        self.open(a, queue=queue, key=key, codes=codes, action="review", explanation=text, lookup="new")

    def reopen(self, item: WorkItem, a: Adjudication, text: str) -> None:
        now = utcnow()
        item.status = WorkItemStatus.OPEN
        item.snoozed_until = None
        item.resolved_at = None
        item.resolution = None
        item.comments.append(
            WorkItemComment(author_user_id=None, body=f"Held for this reason again. {text}", created_at=now)
        )
        self.audit_events.append(
            {
                "action": AuditAction.UPDATE,
                "event_type": "work_item.reopen",
                "entity_type": "work_item",
                "entity_id": item.public_id,
                "patient_id": a.patient_id,
                "details": {"queue": item.queue.value, "reason_codes": list(item.reason_codes or [])},
            }
        )

    def open(
        self,
        a: Adjudication,
        *,
        queue: WorkQueue,
        key: str,
        codes: list[str],
        action: str,
        explanation: str,
        priority: int = 1,
        claim_id: int | None = None,
        lookup: str = "query",
    ) -> WorkItem | None:
        """``lookup``: ``known`` (the caller looked the key up: ``known_keys`` holds it if it
        exists), ``query`` (look it up now) or ``new`` (it names a claim payment's event that
        happens once)."""
        if key in self.opened:
            return None
        self.opened.add(key)
        if lookup == "known" and self.known_keys is not None:
            if key in self.known_keys:
                self.on_item(a, queue)
                return None
            known_new = True
        else:
            known_new = lookup == "new"
        claim_id = claim_id if claim_id is not None else a.claim_id
        item = open_item(
            self.session,
            self.audit_events,
            queue=queue,
            dedupe_key=key,
            claim_id=claim_id,
            patient_id=a.patient_id,
            claim_public_id=self.claim(claim_id).public_id,
            claim_payment_id=a.id,
            remittance_id=a.remittance_id if queue is WorkQueue.POSSIBLE_DUPLICATE else None,
            codes=codes,
            action=action,
            explanation=explanation,
            priority=priority,
            known_new=known_new,
        )
        self.on_item(a, queue)
        return item

    def finish(self) -> None:
        """Close what closes itself (docs/adjudication-history.md, "Follow-up closes itself")."""

        session = self.session
        session.flush()
        # No autoflush while items are resolved: ``resolve_by_system`` changes an item, then
        # audits; an autoflush between the two (reading the chain head) would append the
        # item's PHI-change event behind the head it read and fork the chain.
        with session.no_autoflush:
            self._close_items()

    def _close_items(self) -> None:
        from claims_server.workqueue.services import resolve_by_system

        session = self.session
        if self.unheld:
            ids = {a.id: (a, note) for a, note in self.unheld if a.id is not None}
            for item in session.scalars(
                select(WorkItem).where(
                    WorkItem.claim_payment_id.in_(list(ids)), WorkItem.status != WorkItemStatus.RESOLVED
                )
            ):
                head = (item.dedupe_key or "").split(":", 1)[0]
                if head not in HOLD_ITEM_KINDS:
                    continue
                a, note = ids[int(item.claim_payment_id)]  # type: ignore[arg-type]
                if a.state is AdjudicationState.HELD and head == (
                    a.hold_reason.value if a.hold_reason else None
                ):
                    continue  # the item of the reason it is held for now stays open
                resolve_by_system(session, item, self.resolution(a, note))
        if self.money_posted:
            pairs = {(a.encounter, a.payer_id): a for a in self.money_posted}
            latest: dict[tuple[int, int | None], int] = {}
            for a in self.money_posted:
                key = (a.encounter, a.payer_id)
                latest[key] = max(latest.get(key, 0), a.id or 0)
            encounters = sorted({enc for enc, _ in pairs})
            for chunk in _chunks(encounters):
                for item, payer_id, ledger_claim_id in session.execute(
                    select(WorkItem, ClaimPayment.payer_id, ClaimPayment.ledger_claim_id)
                    .join(ClaimPayment, ClaimPayment.id == WorkItem.claim_payment_id)
                    .where(
                        ClaimPayment.ledger_claim_id.in_(chunk),
                        WorkItem.queue.in_([WorkQueue.DENIED, WorkQueue.OTHER]),
                        WorkItem.status != WorkItemStatus.RESOLVED,
                    )
                ):
                    head = (item.dedupe_key or "").split(":", 1)[0]
                    if head not in ("denied", "reversal"):
                        continue
                    paying = pairs.get((ledger_claim_id, payer_id))
                    if paying is None or not item.claim_payment_id < latest[(ledger_claim_id, payer_id)]:
                        continue
                    what = "denied claim" if head == "denied" else "reversed claim"
                    resolve_by_system(
                        session,
                        item,
                        f"a later adjudication of the {what} posted money (remittance "
                        f"{_label(paying).remittance_public_id}, claim {_label(paying).position})",
                    )
        if self.remittances:
            self.release_remittances()
        if self.repeats:
            self.note_repeats()

    def note_repeats(self) -> None:
        """A held possible duplicate kept held because the payer reversed the adjudication it
        repeats: its open item (and its remittance's, when held as a whole) says so, once."""
        from claims_server.workqueue.services import add_comment

        session = self.session
        for a, twin in self.repeats:
            if a.id is None or a.state is not AdjudicationState.HELD:
                continue
            body = f"{_adjudication_text(a)} {repeats_reversed_text(twin)}"
            found = session.scalars(
                select(WorkItem).where(
                    WorkItem.queue == WorkQueue.POSSIBLE_DUPLICATE,
                    WorkItem.status != WorkItemStatus.RESOLVED,
                    or_(
                        WorkItem.claim_payment_id == a.id,
                        (WorkItem.remittance_id == a.remittance_id) & WorkItem.claim_payment_id.is_(None),
                    ),
                )
            )
            for item in found:
                if not any(c.body == body for c in item.comments):
                    add_comment(session, item, body, author=None)

    def release_remittances(self) -> None:
        """A held remittance with no held claim left is posted; its item closes."""
        from claims_server.workqueue.services import resolve_by_system

        session = self.session
        for remittance in session.scalars(
            select(Remittance).where(
                Remittance.id.in_(sorted(self.remittances)), Remittance.state == RemittanceState.HELD
            )
        ):
            still = session.scalar(
                select(func.count())
                .select_from(ClaimPayment)
                .where(
                    ClaimPayment.remittance_id == remittance.id,
                    ClaimPayment.adjudication_state == AdjudicationState.HELD,
                )
            )
            if still:
                continue
            remittance.state = RemittanceState.POSTED
            remittance.posted_at = remittance.posted_at or utcnow()
            for item in session.scalars(
                select(WorkItem).where(
                    WorkItem.remittance_id == remittance.id,
                    WorkItem.claim_payment_id.is_(None),
                    WorkItem.queue == WorkQueue.POSSIBLE_DUPLICATE,
                    WorkItem.status != WorkItemStatus.RESOLVED,
                )
            ):
                resolve_by_system(session, item, self.remittance_note)


# -- the engine ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Context:
    """The remittance being posted."""

    result: RemittanceResult
    remittance: Remittance
    key_prefix: str
    effective_date: date
    claims_seen: int = 0
    # Claim payments of this remittance held when their batch was written: their outcome and
    # what their work item (opened at the end of the remittance) says.
    held: dict[int, _HeldNote] = field(default_factory=dict)


@dataclass(slots=True)
class _HeldNote:
    outcome: ClaimOutcome
    claim_id: int
    patient_id: int | None
    claim_public_id: str | None
    codes: list[str]
    text: str
    repeats: str  # for a possible duplicate: the current adjudication it repeats

    @classmethod
    def of(cls, a: Adjudication, outcome: ClaimOutcome) -> _HeldNote:
        codes, text = hold_text(a)
        repeats = ""
        if a.duplicate_of is not None:
            c = _label(a.duplicate_of)
            repeats = f"first: trace {c.trace}, claim {c.position}"
        return cls(outcome, a.claim_id, a.patient_id, _label(a).claim_public_id, codes, text, repeats)


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
        self.arrivals = 0
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
        if payment.amount_cents < 0:
            # TR3 005010X221A1 BPR02 is never negative: a payer whose claims net below zero
            # sends BPR02 = 0 and carries the difference as a PLB FB forward balance.
            raise RemittancePostingError(
                f"BPR02 (total payment) is negative ({_money(payment.amount_cents)}) in the transaction "
                f"set with trace {payment.trace_number}; a net debit is carried by a PLB FB forward "
                "balance with BPR02 = 0",
                rule="negative_payment",
                errors=[
                    {
                        "field": "BPR02",
                        "segment": "BPR",
                        "transaction_set": header.control_number,
                        "rule": "negative_payment",
                        "message": "BPR02 must not be negative",
                    }
                ],
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
        self.open_hold_items(ctx, end)
        self.count(ctx)
        self.session.flush()
        self.check(ctx, end)
        ctx.remittance.state = RemittanceState.HELD if ctx.result.held else RemittanceState.POSTED
        ctx.remittance.posted_at = utcnow()
        self.session.flush()
        self.ctx = None

    def open_hold_items(self, ctx: _Context, end: x835.RemittanceEnd) -> None:
        """The work items of this remittance's held claims: one for the remittance when every claim
        is a possible duplicate (it is then held as a whole), else one per held claim."""
        rem = ctx.remittance
        held = {
            row.id: AdjudicationHold(row.hold_reason)
            for row in self.session.execute(
                select(ClaimPayment.id, ClaimPayment.hold_reason).where(
                    ClaimPayment.remittance_id == rem.id,
                    ClaimPayment.adjudication_state == AdjudicationState.HELD,
                )
            )
        }
        events: list[dict[str, Any]] = []
        all_duplicates = (
            end.claim_count > 0
            and len(held) == end.claim_count
            and all(h is AdjudicationHold.POSSIBLE_DUPLICATE for h in held.values())
        )
        ctx.result.held = all_duplicates
        if all_duplicates:
            first = next(iter(ctx.held.values()), None)
            example = first.repeats if first is not None else ""
            open_item(
                self.session,
                events,
                queue=WorkQueue.POSSIBLE_DUPLICATE,
                dedupe_key=f"possible_duplicate:remittance:{rem.id}",
                claim_id=None,
                patient_id=None,
                claim_public_id=None,
                claim_payment_id=None,
                remittance_id=rem.id,
                codes=["POSSIBLE_DUPLICATE"],
                action="review",
                explanation=(
                    f"Every claim of this 835 ({end.claim_count} claim(s), trace {rem.trace_number}, "
                    f"payment {_money(rem.payment_amount_cents)}) repeats an adjudication already current "
                    f"for the same claim and payer ({example or 'see the claims'}): a re-issued 835 under "
                    "a new trace number. Its money waits in unapplied payments. Post it (each held claim "
                    "replaces the current adjudication) or reject it (its money leaves cash clearing and "
                    "unapplied payments)."
                ),
                priority=2,
                known_new=True,
            )
            ctx.result.work_items_opened += 1
            for note in (ctx.held[i] for i in held if i in ctx.held):
                note.outcome.queues.append(WorkQueue.POSSIBLE_DUPLICATE.value)
        else:
            for cp_id, reason in held.items():
                noted = ctx.held.get(cp_id)
                if noted is None:
                    continue
                queue = (
                    WorkQueue.POSSIBLE_DUPLICATE
                    if reason is AdjudicationHold.POSSIBLE_DUPLICATE
                    else WorkQueue.OTHER
                )
                open_item(
                    self.session,
                    events,
                    queue=queue,
                    dedupe_key=f"{reason.value}:cp:{cp_id}",
                    claim_id=noted.claim_id,
                    patient_id=noted.patient_id,
                    claim_public_id=noted.claim_public_id,
                    claim_payment_id=cp_id,
                    remittance_id=rem.id if queue is WorkQueue.POSSIBLE_DUPLICATE else None,
                    codes=noted.codes,
                    action="review",
                    explanation=noted.text,
                    known_new=True,
                )
                noted.outcome.queues.append(queue.value)
                ctx.result.work_items_opened += 1
        if events:
            audit_events_bulk(self.session, events)

    def count(self, ctx: _Context) -> None:
        result = ctx.result
        result.claims_posted = result.claims_held = result.claims_queued = result.claims_informational = 0
        result.paid_posted_cents = 0
        for outcome in result.claims:
            if outcome.outcome == "held":
                result.claims_held += 1
                continue
            if outcome.outcome == "queued":
                result.claims_queued += 1
            elif outcome.outcome == "informational":
                result.claims_informational += 1
            else:
                result.claims_posted += 1
            result.paid_posted_cents += outcome.paid_cents

    # ---- claims

    def flush_claims(self) -> None:
        """Post the buffered claims (one batch: the engine decides them in file order)."""
        claims, self.pending = self.pending, []
        if not claims:
            return
        self.post_batch(claims)
        if self.checkpoint is not None:
            self.checkpoint("chunk", {"claims_posted": self.claims_done})

    def validate(self, claims: list[x835.ClaimPayment]) -> None:
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

    def post_batch(self, claims: list[x835.ClaimPayment]) -> None:
        ctx = self.ctx
        assert ctx is not None
        session = self.session
        remittance = ctx.remittance
        self.validate(claims)

        # Our claims, their lines and the patients' coverages, in a few queries per batch.
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

        # 1. match, then decide each CLP in file order (in memory)
        plans: list[_ClaimPlan] = []
        for claim in claims:
            ctx.claims_seen += 1
            plan = _ClaimPlan(claim=claim, position=ctx.claims_seen)
            ours_claim = ours.get(claim.patient_control_number)
            if ours_claim is not None:
                self.match(plan, ours_claim, coverage_payer, coverages, lines.get(ours_claim.id, []))
            plans.append(plan)
        adjudicable = [
            p
            for p in plans
            if p.claim_row is not None
            and not (p.claim.status in INFORMATIONAL_STATUSES and p.claim.paid_cents == 0)
        ]
        engine = Engine(entry_loader(session))
        stored = load_history(
            session,
            engine,
            accounts=self.accounts,
            encounters={p.dimension_claim_id for p in adjudicable},  # type: ignore[misc]
            claim_encounter={p.claim_row.id: p.dimension_claim_id for p in adjudicable},  # type: ignore[union-attr,misc]
            coverages=coverages,
            service_day={p.dimension_claim_id: p.dos for p in adjudicable},  # type: ignore[misc]
            pending=charge_entries,
        )
        for plan in adjudicable:
            claim = plan.claim
            claim_row = plan.claim_row
            assert claim_row is not None and plan.dimension_claim_id is not None
            remarks: list[str] = []
            if claim.status == DENIED_STATUS:
                for adjudication in (claim.outpatient, claim.inpatient):
                    if adjudication is not None:
                        remarks += adjudication.remarks
            self.arrivals += 1
            adj = Adjudication(
                arrival=_NEW_ARRIVAL + self.arrivals,
                encounter=plan.dimension_claim_id,
                payer_id=plan.payer_id,
                claim_id=claim_row.id,
                patient_id=claim_row.patient_id,
                remittance_id=remittance.id,
                status=claim.status,
                charge=claim.charge_cents,
                paid=claim.paid_cents,
                payer_claim_number=claim.payer_claim_control_number or None,
                clp05=claim.patient_responsibility_cents,
                next_payer_id=plan.next_payer_id,
                amounts=amounts_of(
                    claim.status, claim.paid_cents, claim.lines, plan.line_ids, claim.adjustments, remarks
                ),
                ref=_Label(
                    key_prefix=f"{ctx.key_prefix}:{plan.position}",
                    claim_public_id=claim_row.public_id,
                    remittance_public_id=remittance.public_id,
                    trace=ctx.result.trace_number,
                    position=plan.position,
                    plan=plan,
                    outcome=plan.outcome,
                ),
            )
            plan.adjudication = adj
            engine.arrive(adj)

        # 2. the claim payments as the payer reported them, with where each stands now
        cp_rows = [plan.claim_payment_row(remittance.id, ctx.result.payer_id) for plan in plans]
        cp_ids = bulk_insert(session, ClaimPayment.__table__, cp_rows, returning_ids=True)
        line_rows: list[dict[str, Any]] = []
        line_owner: list[tuple[_ClaimPlan, int]] = []
        adjustment_rows: list[dict[str, Any]] = []
        fix_reverses: list[Adjudication] = []
        for plan, cp_id in zip(plans, cp_ids, strict=True):
            plan.claim_payment_id = cp_id
            if plan.adjudication is not None:
                plan.adjudication.id = cp_id
            for index in range(len(plan.claim.lines)):
                line_rows.append(plan.line_row(cp_id, index))
                line_owner.append((plan, index))
            for adj in plan.claim.adjustments:
                adjustment_rows.append(_adjustment_row(adj, claim_payment_id=cp_id))
        fix_reverses += [
            p.adjudication
            for p in adjudicable
            if p.adjudication is not None
            and p.adjudication.reverses is not None
            and not p.adjudication.reverses.stored
        ]
        if line_rows:
            lp_ids = bulk_insert(session, LinePayment.__table__, line_rows, returning_ids=True)
            for (plan, index), lp_id in zip(line_owner, lp_ids, strict=True):
                for adj in plan.claim.lines[index].adjustments:
                    adjustment_rows.append(_adjustment_row(adj, line_payment_id=lp_id))
        if adjustment_rows:
            bulk_insert(session, Adjustment.__table__, adjustment_rows)

        # 3. the journal entries: charges, unmatched money, then what the engine decided
        unmatched = [self.unapplied_spec(p) for p in plans if p.claim_row is None and p.claim.paid_cents]
        ctx.result.entries_posted += write_entries(
            session,
            engine.entries,
            accounts=self.accounts,
            effective_date=ctx.effective_date,
            first=[*charge_entries, *unmatched],
        )
        write_history(session, [*(a for a in stored if a.changed), *fix_reverses])
        for entry in engine.entries:
            owner_plan = _label(entry.owner).plan
            if owner_plan is not None:
                owner_plan.entries.append(entry)

        # 4. outcomes, claim states and work items (no flush per item: one flush for the batch)
        keys = []
        for p in plans:
            a = p.adjudication
            if p.claim_row is None:
                keys.append(self.item_key(p, "unmatched"))
            elif None in p.line_ids:
                keys.append(self.item_key(p, "unmatched_lines"))
            if a is not None and a.amounts is not None and (a.status == DENIED_STATUS or a.amounts.held):
                keys.append(self.item_key(p, "denied"))
        self.open_item_keys = {
            key
            for chunk in _chunks(keys)
            for key in session.scalars(select(WorkItem.dedupe_key).where(WorkItem.dedupe_key.in_(chunk)))
        }
        claims_by_id = {c.id: c for c in ours.values()}

        def defer_hold(a: Adjudication) -> bool:
            return a.remittance_id == remittance.id

        def on_item(a: Adjudication, queue: WorkQueue) -> None:
            outcome = _label(a).outcome or (ctx.held[a.id].outcome if a.id in ctx.held else None)
            if outcome is not None and a.remittance_id == remittance.id:
                outcome.queues.append(queue.value)
                ctx.result.work_items_opened += 1

        followup = Followup(
            session,
            self.audit_events,
            claims=claims_by_id,
            defer_hold=defer_hold,
            on_item=on_item,
            known_keys=self.open_item_keys,
            remittance_public_id=remittance.public_id,
        )
        with session.no_autoflush:
            followup.handle(engine.events)
            for plan in plans:
                self.after_posting(plan, followup)
        for a in stored:
            if a.id not in ctx.held:
                continue
            if a.state is AdjudicationState.HELD:  # still held, perhaps for another reason now
                ctx.held[a.id] = _HeldNote.of(a, ctx.held[a.id].outcome)  # type: ignore[index]
                ctx.held[a.id].outcome.hold_reason = a.hold_reason.value if a.hold_reason else None  # type: ignore[index]
                continue
            outcome = ctx.held.pop(a.id).outcome  # type: ignore[arg-type]
            outcome.outcome = "reversed" if a.state is AdjudicationState.APPLIED else "posted"
            outcome.hold_reason = None
            outcome.adjudication = a.kind.value if a.kind else None
            outcome.restated_cents = a.restated
            outcome.entry_keys += [_entry_key(e) for e in engine.entries if e.owner is a]
        self.claims_done += len(plans)
        for plan in plans:
            ctx.result.claims.append(plan.outcome)
        _store_claim_states(session, [c for c in followup.claims.values()])
        audit_events_bulk(session, self.audit_events)
        self.audit_events = []
        followup.finish()
        session.flush()
        # Keep memory flat: nothing of this batch is needed by the next one.
        for obj in followup.claims.values():
            if obj in session:
                session.expunge(obj)
        for plan in plans:
            plan.adjudication = None
            plan.entries = []
        engine.dispose()
        gc.collect(1)

    def unapplied_spec(self, plan: _ClaimPlan) -> EntrySpec:
        """Unmatched: the money is real, keep it (unapplied) and queue the claim."""
        ctx = self.ctx
        assert ctx is not None
        rem = ctx.remittance
        paid = plan.claim.paid_cents
        key = f"{ctx.key_prefix}:{plan.position}:unapplied"
        plan.outcome.entry_keys.append(key)
        return EntrySpec(
            event_type=JournalEventType.INSURANCE_PAYMENT,
            idempotency_key=key,
            legs=[
                Leg(AccountCode.CASH_CLEARING, paid, None, None, ctx.result.payer_id, None, rem.id),
                Leg(UNAPPLIED_PAYMENTS, -paid, None, None, ctx.result.payer_id, None, rem.id),
            ],
            effective_date=ctx.effective_date,
            remittance_id=rem.id,
            claim_payment_id=plan.claim_payment_id,
            reason_code=f"CLP02:{plan.claim.status}",
            audit_entity=rem.public_id,
            audit_details={"remittance": rem.public_id, "clp_position": plan.position},
        )

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
        plan.dos = dos
        plan.dimension_claim_id = receivable_claim_id(self.session, claim)
        plan.next_payer_id = next(
            (c.payer_id for c in patient_coverages if c.order == order + 1 and c.active_on(dos)), None
        )
        plan.line_ids = _match_lines(plan.claim, our_lines)
        plan.outcome.claim = claim.public_id

    def after_posting(self, plan: _ClaimPlan, followup: Followup) -> None:
        """The plan's outcome, then the work items of unmatched claims and lines."""
        ctx = self.ctx
        assert ctx is not None
        outcome = plan.outcome
        claim = plan.claim_row
        a = plan.adjudication
        if claim is None:
            outcome.outcome = "queued"
            outcome.adjudication = AdjudicationKind.UNMATCHED.value
            self.open_plan_item(
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
        if a is None:  # CLP02 23 / 25 without money: nothing moves
            outcome.outcome = "informational"
            outcome.adjudication = AdjudicationKind.INFORMATIONAL.value
            outcome.state = claim.state.value
        else:
            amounts = a.amounts
            assert amounts is not None
            outcome.held_cents = amounts.held
            outcome.adjudication = a.kind.value if a.kind else None
            outcome.restated_cents = a.restated
            outcome.entry_keys += [_entry_key(e) for e in plan.entries]
            outcome.notes += followup.notes.get(a.arrival, [])
            if a.restated:
                outcome.notes.append(
                    f"{_money(a.restated)} of adjustments exceeded what was open on this payer "
                    "(a restatement of an earlier payer's adjudication): stored, not posted"
                )
            if a.state is AdjudicationState.HELD:
                outcome.outcome = "held"
                outcome.hold_reason = a.hold_reason.value if a.hold_reason else None
                ctx.held[a.id] = _HeldNote.of(a, outcome)  # type: ignore[index]
            elif a.state is AdjudicationState.APPLIED or (
                a.is_reversal and a.state is AdjudicationState.REVERSED
            ):
                outcome.outcome = "reversed"
            elif a.post_entry is not None:
                outcome.outcome = "posted"
            elif a.status == DENIED_STATUS or amounts.held:
                outcome.outcome = "queued"
            else:
                outcome.outcome = "informational"
            outcome.state = claim.state.value
        unmatched_lines = [i for i, line_id in enumerate(plan.line_ids) if line_id is None]
        if unmatched_lines:
            self.open_plan_item(
                plan,
                WorkQueue.UNMATCHED,
                "unmatched_lines",
                ["LINE_NOT_FOUND"],
                "review",
                f"{len(unmatched_lines)} service line(s) of the payer's answer matched none of the claim's lines "
                "(REF*6R, then procedure + modifiers + date); their amounts were posted to the claim.",
            )

    def open_plan_item(
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
        ctx = self.ctx
        assert ctx is not None
        key = self.item_key(plan, kind)
        claim = plan.claim_row
        if key not in self.open_item_keys:
            open_item(
                self.session,
                self.audit_events,
                queue=queue,
                dedupe_key=key,
                claim_id=claim.id if claim is not None else None,
                patient_id=claim.patient_id if claim is not None else None,
                claim_public_id=claim.public_id if claim is not None else None,
                claim_payment_id=plan.claim_payment_id,
                codes=codes,
                action=action,
                explanation=explanation,
                priority=priority,
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
        """Store, link, post and queue the PLB adjustments (``claims_server.remittance.plb``)."""
        for adj in adjustments:
            _fit(adj.provider_identifier, 50, "PLB01")
            _fit(adj.reason, 2, "PLB03-1")
            _fit(adj.reference or None, 50, "PLB03-2")
        done = post_provider_adjustments(
            self.session,
            ctx.remittance,
            adjustments,
            key_prefix=ctx.key_prefix,
            effective_date=ctx.effective_date,
            accounts=self.accounts,
        )
        ctx.result.entries_posted += done.entries_posted
        ctx.result.work_items_opened += done.work_items_opened

    def check(self, ctx: _Context, end: x835.RemittanceEnd) -> None:
        """The completeness checks, read back from the database (see the module docstring)."""
        session = self.session
        rem_id = ctx.remittance.id
        result = ctx.result
        cash_id = self.accounts[AccountCode.CASH_CLEARING]
        rows_stored = session.scalar(
            select(func.count()).select_from(ClaimPayment).where(ClaimPayment.remittance_id == rem_id)
        )
        held_stored = session.scalar(
            select(func.count())
            .select_from(ClaimPayment)
            .where(
                ClaimPayment.remittance_id == rem_id,
                ClaimPayment.adjudication_state == AdjudicationState.HELD,
            )
        )
        with_entry = select(JournalEntry.claim_payment_id).where(
            JournalEntry.remittance_id == rem_id,
            JournalEntry.claim_payment_id.is_not(None),
            JournalEntry.event_type.in_([JournalEventType.INSURANCE_PAYMENT, JournalEventType.REVERSAL]),
        )
        with_item = select(WorkItem.claim_payment_id).where(
            WorkItem.claim_payment_id.is_not(None), WorkItem.queue != WorkQueue.RECONCILIATION
        )
        covered = ClaimPayment.id.in_(with_entry) | ClaimPayment.id.in_(with_item)
        if result.held:
            # A remittance held as a whole: its one item covers every held claim.
            covered = covered | (ClaimPayment.adjudication_state == AdjudicationState.HELD)
        accounted = session.scalar(
            select(func.count())
            .select_from(ClaimPayment)
            .where(ClaimPayment.remittance_id == rem_id, covered)
        )
        no_trace = sum(1 for c in result.claims if not c.entry_keys and not c.queues)
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
        reported = (
            result.claims_posted + result.claims_held + result.claims_queued + result.claims_informational
        )
        checks = [
            CheckResult(
                "claims_posted_or_queued",
                end.claim_count == reported == rows_stored and accounted + no_trace == end.claim_count,
                end.claim_count,
                int(accounted) + no_trace,
                "claims parsed = claims posted + held + queued (+ informational), each with an entry "
                "or a work item",
            ),
            CheckResult(
                "claims_held",
                int(held_stored or 0) == result.claims_held,
                result.claims_held,
                int(held_stored or 0),
                "the claims reported held are held in the database (money in unapplied payments)",
            ),
            CheckResult(
                "paid_posted_equals_bpr02_plus_plb",
                int(claim_cash) == bpr02 + plb,
                bpr02 + plb,
                int(claim_cash),
                "Σ claim payments in cash clearing (held ones too) = BPR02 + ΣPLB",
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
    dos: date | None = None
    line_ids: list[int | None] = field(default_factory=list)
    claim_payment_id: int | None = None
    adjudication: Adjudication | None = None
    entries: list[Entry] = field(default_factory=list)
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

    def claim_payment_row(self, remittance_id: int, remitting_payer_id: int | None) -> dict[str, Any]:
        c = self.claim
        crossover = c.crossover_carrier
        a = self.adjudication
        if self.claim_row is None:
            kind, adj_state, hold, payer, ledger = (
                AdjudicationKind.UNMATCHED,
                AdjudicationState.UNMATCHED,
                None,
                remitting_payer_id,
                None,
            )
        elif a is None:
            kind, adj_state, hold, payer, ledger = (
                AdjudicationKind.INFORMATIONAL,
                AdjudicationState.NONE,
                None,
                self.payer_id,
                self.dimension_claim_id,
            )
        else:
            kind, adj_state, hold, payer, ledger = a.kind, a.state, a.hold_reason, a.payer_id, a.encounter
        reverses = a.reverses.id if a is not None and a.reverses is not None else None
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
            "payer_id": payer,
            "ledger_claim_id": ledger,
            "adjudication_kind": kind,
            "adjudication_state": adj_state,
            "hold_reason": hold,
            "reverses_claim_payment_id": reverses,
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
