"""The journal service: balanced entries in, balances out.

Every change of money is one :class:`~claims_server.models.JournalEntry` whose postings
sum to zero (debit positive, credit negative). ``post_entry`` writes one entry through
the ORM; ``post_entries`` writes many with two bulk INSERTs (the 835 poster uses it: a
25,000-claim remittance is 25,000 entries). Both refuse, before writing anything, an
entry that does not balance, that has fewer than two postings, or that has a zero
posting, and both are idempotent by ``idempotency_key``: an entry whose key is already in
the journal is not written again. Each entry written appends one audit event
(``ledger.<event_type>``) in the same transaction.

Postings are append-only (database triggers): a correction is a NEW entry with the
mirrored postings (``mirror_legs``), never an UPDATE. A replacement, void or resent
claim restates its charge with a ``charge_correction`` entry (``post_charge_corrections``,
docs/ledger-corrections.md).

Balances are sums over postings (``balance``, ``balances_by``), optionally as of an
accounting date (``JournalEntry.effective_date``), so A/R aging can be computed for any
past day.

The chart (``STANDARD_CHART``) has no home for insurance money that matched no claim, so
this module adds one account, ``unapplied_payments`` (a liability: money received and not
yet applied). Without it a remittance with one unknown claim could not both put the whole
BPR02 into cash clearing and keep every entry balanced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claims_server.db import bulk_insert
from claims_server.errors import Conflict, Unprocessable
from claims_server.models import (
    RECEIVABLE_ACCOUNTS,
    Account,
    AccountCode,
    AuditAction,
    Claim,
    ClaimFrequency,
    JournalEntry,
    JournalEventType,
    Posting,
    ensure_standard_accounts,
)
from claims_server.models.common import new_public_id, utcnow
from claims_server.models.ledger import DIMENSIONS, AccountType

#: Insurance money received for a claim we could not identify (a liability until applied).
UNAPPLIED_PAYMENTS = "unapplied_payments"
EXTRA_ACCOUNTS: tuple[tuple[str, str, AccountType], ...] = (
    (UNAPPLIED_PAYMENTS, "Unapplied insurance payments", AccountType.LIABILITY),
)
_IN_CHUNK = 900  # bound parameters per IN (...) list: below SQLite's historical limit of 999


class LedgerError(Unprocessable):
    """An entry the ledger refuses (unbalanced, a zero posting, an unknown account)."""


@dataclass(frozen=True, slots=True)
class Leg:
    """One signed amount to one account with its dimensions (a posting before it is written)."""

    account: str
    amount_cents: int
    claim_id: int | None = None
    service_line_id: int | None = None
    payer_id: int | None = None
    patient_id: int | None = None
    remittance_id: int | None = None

    def key(self) -> tuple[Any, ...]:
        return (
            str(self.account),
            self.claim_id,
            self.service_line_id,
            self.payer_id,
            self.patient_id,
            self.remittance_id,
        )


@dataclass(slots=True)
class EntrySpec:
    """One journal entry to write: the event, its idempotency key and its legs."""

    event_type: JournalEventType
    idempotency_key: str
    legs: list[Leg]
    effective_date: date | None = None
    claim_id: int | None = None
    remittance_id: int | None = None
    claim_payment_id: int | None = None
    patient_payment_id: int | None = None
    reverses_entry_id: int | None = None
    reason_code: str | None = None
    memo: str | None = None
    audit_entity: str | None = None  # public id named in the audit record (claim, remittance)
    audit_details: dict[str, Any] = field(default_factory=dict)
    # Entries with the same group (e.g. a claim's charge and its payment, posted together)
    # share one audit event that lists each of them; None: one audit event per entry.
    audit_group: str | None = None

    def validate(self) -> None:
        """Raise :class:`LedgerError` unless the entry balances with at least two non-zero legs."""
        problems: list[dict[str, Any]] = []
        if not self.idempotency_key or len(self.idempotency_key) > 200:
            problems.append({"field": "idempotency_key", "rule": "length", "message": "1 to 200 characters"})
        if len(self.legs) < 2:
            problems.append(
                {"field": "postings", "rule": "min_two", "message": "an entry needs two postings"}
            )
        for i, leg in enumerate(self.legs):
            if not isinstance(leg.amount_cents, int) or isinstance(leg.amount_cents, bool):
                problems.append(
                    {"field": f"postings[{i}].amount_cents", "rule": "integer_cents", "message": "not cents"}
                )
            elif leg.amount_cents == 0:
                problems.append(
                    {"field": f"postings[{i}].amount_cents", "rule": "nonzero", "message": "zero"}
                )
        if not problems:
            total = sum(leg.amount_cents for leg in self.legs)
            if total != 0:
                problems.append(
                    {
                        "field": "postings",
                        "rule": "balanced",
                        "message": f"postings sum to {total} cents, not 0",
                    }
                )
        if problems:
            raise LedgerError(
                f"journal entry {self.idempotency_key!r} refused: {problems[0]['message']}",
                errors=problems,
                idempotency_key=self.idempotency_key,
            )

    @property
    def patient_id(self) -> int | None:
        """The patient when every leg that names one names the same one (for the audit record)."""
        patients = {leg.patient_id for leg in self.legs if leg.patient_id is not None}
        return patients.pop() if len(patients) == 1 else None


def consolidate(legs: Iterable[Leg]) -> list[Leg]:
    """Merge legs with the same account and dimensions; drop the ones that net to zero.

    Keeps the first-seen order so the postings of an entry read like the 835 they came from.
    """
    totals: dict[tuple[Any, ...], int] = {}
    first: dict[tuple[Any, ...], Leg] = {}
    for leg in legs:
        key = leg.key()
        if key not in totals:
            totals[key] = 0
            first[key] = leg
        totals[key] += leg.amount_cents
    out: list[Leg] = []
    for key, amount in totals.items():
        if amount:
            leg = first[key]
            out.append(
                Leg(
                    leg.account,
                    amount,
                    leg.claim_id,
                    leg.service_line_id,
                    leg.payer_id,
                    leg.patient_id,
                    leg.remittance_id,
                )
            )
    return out


# -- accounts -----------------------------------------------------------------------------------


def ensure_ledger_accounts(session: Session) -> dict[str, Account]:
    """The standard chart plus this module's extra accounts, created when missing."""
    accounts = ensure_standard_accounts(session)
    added = False
    for code, name, account_type in EXTRA_ACCOUNTS:
        if code not in accounts:
            account = Account(code=code, name=name, account_type=account_type)
            session.add(account)
            accounts[code] = account
            added = True
    if added:
        session.flush()
    return accounts


def account_ids(session: Session) -> dict[str, int]:
    """Account code -> id for the whole chart (created when missing)."""
    return {code: account.id for code, account in ensure_ledger_accounts(session).items()}


# -- writing ------------------------------------------------------------------------------------


def _chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def existing_entry_ids(session: Session, keys: Sequence[str]) -> dict[str, int]:
    """idempotency_key -> entry id for the keys already in the journal."""
    found: dict[str, int] = {}
    for chunk in _chunks(list(keys)):
        for key, entry_id in session.execute(
            select(JournalEntry.idempotency_key, JournalEntry.id).where(
                JournalEntry.idempotency_key.in_(chunk)
            )
        ):
            found[key] = entry_id
    return found


def post_entries(
    session: Session,
    specs: Sequence[EntrySpec],
    *,
    accounts: Mapping[str, int] | None = None,
    audit: bool = True,
) -> dict[str, int]:
    """Write the entries whose keys are new (two bulk INSERTs); return key -> id of the NEW ones.

    Every spec is validated first, so one bad entry writes nothing. A key repeated within
    ``specs`` is refused (it would be one business event posted twice).
    """
    for spec in specs:
        spec.validate()
    keys = [s.idempotency_key for s in specs]
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise LedgerError(f"idempotency key {key!r} appears twice in one posting", idempotency_key=key)
        seen.add(key)
    ids = dict(accounts) if accounts is not None else account_ids(session)
    for spec in specs:
        for leg in spec.legs:
            if str(leg.account) not in ids:
                raise LedgerError(
                    f"unknown account {leg.account!r}",
                    errors=[{"field": "account", "rule": "chart", "message": "not in the chart of accounts"}],
                )
    existing = existing_entry_ids(session, keys)
    new = [s for s in specs if s.idempotency_key not in existing]
    if not new:
        return {}
    from claims_server.security.principal import current_principal

    user_id = current_principal().user_id
    now = utcnow()
    today = now.date()
    public_ids = [new_public_id() for _ in new]
    rows = [
        {
            "public_id": public_id,
            "created_at": now,
            "occurred_at": now,
            "event_type": s.event_type,
            "idempotency_key": s.idempotency_key,
            "effective_date": s.effective_date or today,
            "claim_id": s.claim_id,
            "remittance_id": s.remittance_id,
            "claim_payment_id": s.claim_payment_id,
            "patient_payment_id": s.patient_payment_id,
            "reverses_entry_id": s.reverses_entry_id,
            "reason_code": s.reason_code,
            "memo": s.memo,
            "created_by_user_id": user_id,
        }
        for s, public_id in zip(new, public_ids, strict=True)
    ]
    entry_ids = bulk_insert(session, JournalEntry.__table__, rows, returning_ids=True)
    postings = [
        {
            "journal_entry_id": entry_id,
            "account_id": ids[str(leg.account)],
            "amount_cents": leg.amount_cents,
            "claim_id": leg.claim_id,
            "service_line_id": leg.service_line_id,
            "payer_id": leg.payer_id,
            "patient_id": leg.patient_id,
            "remittance_id": leg.remittance_id,
        }
        for spec, entry_id in zip(new, entry_ids, strict=True)
        for leg in spec.legs
    ]
    bulk_insert(session, Posting.__table__, postings)
    if audit:
        _audit_entries(session, new, public_ids)
    return dict(zip((s.idempotency_key for s in new), entry_ids, strict=True))


def _audit_entries(session: Session, specs: Sequence[EntrySpec], public_ids: Sequence[str]) -> None:
    """One audit event per entry, or per ``audit_group`` listing its entries (same transaction).

    Written with ``audit_events_bulk``, the one bulk path to the audit chain: a large
    remittance posts tens of thousands of entries in one call.
    """
    from claims_server.security.audit import audit_events_bulk

    groups: dict[str, list[tuple[EntrySpec, str]]] = {}
    for spec, public_id in zip(specs, public_ids, strict=True):
        key = spec.audit_group if spec.audit_group is not None else f"entry:{public_id}"
        groups.setdefault(key, []).append((spec, public_id))
    events: list[dict[str, Any]] = []
    for members in groups.values():
        first, first_id = members[0]
        entries = [
            {
                "entry": public_id,
                "event_type": JournalEventType(spec.event_type).value,
                "idempotency_key": spec.idempotency_key,
                "postings": len(spec.legs),
                "debit_cents": sum(leg.amount_cents for leg in spec.legs if leg.amount_cents > 0),
            }
            for spec, public_id in members
        ]
        details: dict[str, Any] = {"entity": first.audit_entity}
        if len(members) == 1:
            details.update({k: v for k, v in entries[0].items() if k not in ("entry", "event_type")})
        else:
            details["entries"] = entries
        for spec, _ in members:
            details.update(spec.audit_details)
        patients = {spec.patient_id for spec, _ in members} - {None}
        events.append(
            {
                "action": AuditAction.CREATE,
                "event_type": f"ledger.{entries[0]['event_type'] if len(members) == 1 else 'entries'}",
                "entity_type": "journal_entry",
                "entity_id": first_id,
                "patient_id": patients.pop() if len(patients) == 1 else None,
                "details": details,
            }
        )
    audit_events_bulk(session, events)


def _legs_of(session: Session, entry_id: int) -> list[Leg]:
    rows = session.execute(
        select(
            Account.code,
            Posting.amount_cents,
            Posting.claim_id,
            Posting.service_line_id,
            Posting.payer_id,
            Posting.patient_id,
            Posting.remittance_id,
        )
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.journal_entry_id == entry_id)
        .order_by(Posting.id)
    )
    return [Leg(*row) for row in rows]


def post_entry(
    session: Session,
    *,
    event_type: JournalEventType,
    idempotency_key: str,
    postings: Sequence[Leg],
    effective_date: date | None = None,
    claim_id: int | None = None,
    remittance_id: int | None = None,
    claim_payment_id: int | None = None,
    patient_payment_id: int | None = None,
    reverses_entry_id: int | None = None,
    reason_code: str | None = None,
    memo: str | None = None,
    audit_entity: str | None = None,
) -> JournalEntry:
    """Post one balanced entry and return it; with a known key, return the entry already posted.

    Refused with :class:`LedgerError` (nothing written): fewer than two postings, a zero
    posting, postings that do not sum to zero, an unknown account. The same key with
    different postings is a :class:`~claims_server.errors.Conflict`: a key names one
    business event, and one event cannot have two sets of postings.
    """
    spec = EntrySpec(
        event_type=JournalEventType(event_type),
        idempotency_key=idempotency_key,
        legs=list(postings),
        effective_date=effective_date,
        claim_id=claim_id,
        remittance_id=remittance_id,
        claim_payment_id=claim_payment_id,
        patient_payment_id=patient_payment_id,
        reverses_entry_id=reverses_entry_id,
        reason_code=reason_code,
        memo=memo,
        audit_entity=audit_entity,
    )
    spec.validate()
    existing = existing_entry_ids(session, [idempotency_key]).get(idempotency_key)
    if existing is not None:
        posted = sorted((*leg.key(), leg.amount_cents) for leg in _legs_of(session, existing))
        wanted = sorted((*leg.key(), leg.amount_cents) for leg in spec.legs)
        if posted != wanted:
            raise Conflict(
                f"journal entry {idempotency_key!r} was already posted with other postings",
                idempotency_key=idempotency_key,
            )
        entry = session.get(JournalEntry, existing)
        assert entry is not None
        return entry
    new_id = post_entries(session, [spec])[idempotency_key]
    entry = session.get(JournalEntry, new_id)
    assert entry is not None
    return entry


def mirror_legs(session: Session, entry_id: int, *, remittance_id: int | None = None) -> list[Leg]:
    """The postings of entry ``entry_id`` with their signs flipped (a reversal's legs).

    ``remittance_id`` re-points the legs that named a remittance (cash clearing) at the
    remittance that takes the money back: a CLP02 = 22 reversal is netted in the payment
    that carries it, so its cash belongs to that payment's trace number.
    """
    out: list[Leg] = []
    for leg in _legs_of(session, entry_id):
        out.append(
            Leg(
                leg.account,
                -leg.amount_cents,
                leg.claim_id,
                leg.service_line_id,
                leg.payer_id,
                leg.patient_id,
                remittance_id
                if (remittance_id is not None and leg.remittance_id is not None)
                else leg.remittance_id,
            )
        )
    return out


# -- charges: the receivable a remittance pays down ---------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimCharge:
    """What the charge entry of a claim needs (read without loading the ORM claim)."""

    claim_id: int
    public_id: str
    patient_id: int
    payer_id: int
    effective_date: date
    lines: tuple[tuple[int, int], ...]  # (service line id, charge cents)


def charge_key(public_id: str) -> str:
    return f"charge:claim:{public_id}"


def charge_specs(charges: Sequence[ClaimCharge]) -> list[EntrySpec]:
    """The charge entries (Dr A/R insurance / Cr gross charges) of ``charges``.

    ``post_entries`` skips those already in the journal (same key), so building them for
    claims charged before costs nothing but the key lookup it does anyway.

    The charge is the receivable a payment pays down: ARCHITECTURE.md's ledger starts
    with "charge on a claim line". It is posted once per claim (key ``charge:claim:<public
    id>``) when its batch reaches the clearinghouse, at the latest with the claim's first
    remittance, and dated that day (``charge_date``), not backdated to the date of service:
    charges, payments (BPR16) and adjustments then share one accounting calendar, so a
    period's charges and the money against them fall in the same reports, and a report
    for a past day does not change when a late claim is sent. A/R aging still ages a
    balance from the date of service (``reports.services``). docs/kpis.md.
    """
    specs: list[EntrySpec] = []
    for charge in charges:
        key = charge_key(charge.public_id)
        legs: list[Leg] = []
        # Receivable per line (payments and statements work line by line); revenue per claim.
        for line_id, cents in charge.lines:
            if cents <= 0:
                continue
            legs.append(
                Leg(
                    AccountCode.AR_INSURANCE,
                    cents,
                    charge.claim_id,
                    line_id,
                    charge.payer_id,
                    charge.patient_id,
                )
            )
            legs.append(Leg(AccountCode.GROSS_CHARGES, -cents, charge.claim_id, None, charge.payer_id, None))
        if legs:
            specs.append(
                EntrySpec(
                    event_type=JournalEventType.CHARGE,
                    idempotency_key=key,
                    legs=consolidate(legs),
                    effective_date=charge.effective_date,
                    claim_id=charge.claim_id,
                    audit_entity=charge.public_id,
                    audit_group=charge.public_id,
                )
            )
    return specs


def ensure_claims_receivable(
    session: Session, charges: Sequence[ClaimCharge], *, accounts: Mapping[str, int] | None = None
) -> int:
    """Post the charge entry of each claim that has none yet (see ``charge_specs``); return how many."""
    return len(post_entries(session, charge_specs(charges), accounts=accounts))


def charge_date(submitted_at: datetime | None, latest: date) -> date:
    """The accounting date of a claim's charge: the day it reached the clearinghouse.

    ``latest`` is the day the charge is posted (the send, or the remittance that finds the
    claim uncharged): a claim never sent through us is charged then, and a charge is never
    dated after the payment that pays it down (that would leave a credit A/R in between).
    """
    return min(submitted_at.date(), latest) if submitted_at is not None else latest


def claim_charge(claim: Claim, *, latest: date | None = None) -> ClaimCharge:
    """The :class:`ClaimCharge` of an ORM claim (its coverage's payer, its lines), see ``charge_date``."""
    return ClaimCharge(
        claim_id=claim.id,
        public_id=claim.public_id,
        patient_id=claim.patient_id,
        payer_id=claim.coverage.payer_id,
        effective_date=charge_date(claim.submitted_at, latest or utcnow().date()),
        lines=tuple((line.id, line.charge_cents) for line in claim.service_lines),
    )


# -- charge corrections: a replacement (frequency 7) or void (8) claim reaching the payer ------

#: Entries that put a claim's charge on the books (what a correction restates).
CHARGE_EVENTS = (JournalEventType.CHARGE, JournalEventType.CHARGE_CORRECTION)
_CORRECTING = frozenset({ClaimFrequency.REPLACEMENT, ClaimFrequency.VOID})


def receivable_claim_id(session: Session, claim: Claim) -> int:
    """The claim whose A/R a payment reduces: the original of a replacement or next-payer claim.

    A replacement (frequency 7) or a claim to the next payer carries ``original_claim_id``;
    the money of one encounter stays on the claim that was charged.
    """
    current = claim
    seen = {claim.id}
    while current.original_claim_id is not None and current.original_claim_id not in seen:
        parent = session.get(Claim, current.original_claim_id)
        if parent is None:
            break
        seen.add(parent.id)
        current = parent
    return current.id


def _charged_claim(session: Session, claim: Claim) -> Claim | None:
    """The charged original a correction restates, up through corrections only.

    None when the chain passes a next-payer claim: that claim carries no charge of its
    own (its A/R is the primary's patient share moved to it), so correcting it restates
    an adjudication, not the charge.
    """
    current = claim
    seen = {claim.id}
    while ClaimFrequency(current.frequency_code) in _CORRECTING and current.original_claim_id not in seen:
        parent = session.get(Claim, current.original_claim_id) if current.original_claim_id else None
        if parent is None:
            return None
        seen.add(parent.id)
        current = parent
    return current if current.original_claim_id is None else None


def charge_on_books(session: Session, claim_id: int) -> dict[tuple[int | None, int | None, int | None], int]:
    """(service line, payer, patient) -> A/R insurance the charge entries of ``claim_id`` put there."""
    rows = session.execute(
        select(Posting.service_line_id, Posting.payer_id, Posting.patient_id, func.sum(Posting.amount_cents))
        .join(JournalEntry, JournalEntry.id == Posting.journal_entry_id)
        .join(Account, Account.id == Posting.account_id)
        .where(
            JournalEntry.claim_id == claim_id,
            JournalEntry.event_type.in_(CHARGE_EVENTS),
            Posting.claim_id == claim_id,
            Account.code == AccountCode.AR_INSURANCE.value,
        )
        .group_by(Posting.service_line_id, Posting.payer_id, Posting.patient_id)
    )
    return {(line, payer, patient): int(total) for line, payer, patient, total in rows if total}


_Booked = dict[tuple[int | None, int | None, int | None], int]


def charge_correction_key(public_id: str, books: _Booked, billed: _Booked) -> str:
    """``charge_correction:claim:<public id>:<digest of the books before and the claim billed>``.

    The digest makes the key name one restatement: marking the same batch sent twice
    finds the same key (and the books already equal to the claim, so nothing to post);
    a claim corrected again later (a rejected replacement fixed in place) gets a new one.
    """
    text = repr((sorted(books.items(), key=repr), sorted(billed.items(), key=repr)))
    return f"charge_correction:claim:{public_id}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def post_charge_corrections(
    session: Session, claims: Sequence[Claim], *, effective_date: date | None = None
) -> int:
    """Make the charge on the books what each of ``claims`` now bills the payer; return the entries posted.

    Called when a batch reaches the clearinghouse, before the charges of first-time
    claims post (``ensure_claims_receivable``). Three cases restate a charge:

    - a replacement (CLM05-3 = 7) replaces the whole adjudicated claim (TR3 2300 CLM05-3,
      REF*F8): the charge becomes the replacement's lines;
    - a void (8) cancels it: the charge on the books is reversed;
    - an original already charged and now sent again (rejected by a 999/277CA, corrected
      in place): the charge becomes its corrected lines.

    One ``charge_correction`` entry per claim takes the A/R insurance the charge entries
    (``charge`` and earlier corrections) put on each line off it and charges the lines
    billed now (A/R per line, so the payer's answer pays down lines that exist); gross
    charges moves by the difference of the totals. A claim whose books already match
    posts nothing. The entries stay on the charged original's claim dimension (one
    encounter's A/R, see ``receivable_claim_id``), are dated the day the claim is sent,
    keyed by ``charge_correction_key`` (exactly once) and audited. A next-payer claim and
    its corrections carry no charge of their own and post nothing.
    """
    posted = 0
    day = effective_date or utcnow().date()
    first_sent = [c for c in claims if c.original_claim_id is None]
    charged_before = existing_entry_ids(session, [charge_key(c.public_id) for c in first_sent])
    for claim in claims:
        frequency = ClaimFrequency(claim.frequency_code)
        if frequency in _CORRECTING:
            charged = _charged_claim(session, claim)
            if charged is None:
                continue
            # The original's charge is on the books at the latest now (posting charges it
            # with its first remittance; an older claim may never have been charged at sending).
            ensure_claims_receivable(session, [claim_charge(charged, latest=day)])
        elif claim.original_claim_id is None and charge_key(claim.public_id) in charged_before:
            charged = claim
        else:
            continue
        books = charge_on_books(session, charged.id)
        payer_id = claim.coverage.payer_id
        billed: _Booked = {}
        if frequency is not ClaimFrequency.VOID:
            for line in claim.service_lines:
                if line.charge_cents > 0:
                    billed[(line.id, payer_id, claim.patient_id)] = line.charge_cents
        if billed == books:
            continue
        booked, new_total = sum(books.values()), sum(billed.values())
        legs = [
            Leg(AccountCode.AR_INSURANCE, -cents, charged.id, line_id, payer, patient)
            for (line_id, payer, patient), cents in books.items()
        ]
        legs += [
            Leg(AccountCode.AR_INSURANCE, cents, charged.id, line_id, payer, patient)
            for (line_id, payer, patient), cents in billed.items()
        ]
        if booked != new_total:
            legs.append(Leg(AccountCode.GROSS_CHARGES, booked - new_total, charged.id, None, payer_id, None))
        legs = consolidate(legs)
        if len(legs) < 2:
            continue
        spec = EntrySpec(
            event_type=JournalEventType.CHARGE_CORRECTION,
            idempotency_key=charge_correction_key(claim.public_id, books, billed),
            legs=legs,
            effective_date=day,
            claim_id=charged.id,
            reason_code=f"CLM05-3:{frequency.value}",
            audit_entity=claim.public_id,
            audit_details={
                "original_claim": charged.public_id,
                "frequency": frequency.value,
                "booked_cents": booked,
                "new_total_cents": new_total,
                "difference_cents": new_total - booked,
            },
        )
        posted += len(post_entries(session, [spec]))
    return posted


# -- reading ------------------------------------------------------------------------------------


def _filtered(
    stmt: Any, accounts: Iterable[str] | None, as_of: date | None, dimensions: Mapping[str, Any]
) -> Any:
    unknown = set(dimensions) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"not a posting dimension: {', '.join(sorted(unknown))}")
    if accounts is not None:
        stmt = stmt.where(Account.code.in_([str(a) for a in accounts]))
    if as_of is not None:
        stmt = stmt.join(JournalEntry, JournalEntry.id == Posting.journal_entry_id).where(
            JournalEntry.effective_date <= as_of
        )
    for name, value in dimensions.items():
        stmt = stmt.where(getattr(Posting, name) == value)
    return stmt


def balance(
    session: Session,
    accounts: Iterable[str] = RECEIVABLE_ACCOUNTS,
    *,
    as_of: date | None = None,
    **dimensions: int,
) -> int:
    """Σ postings (cents) to ``accounts`` filtered by dimensions, optionally as of a date.

    ``balance(s, claim_id=7)`` is claim 7's open A/R; ``balance(s, [CASH_CLEARING],
    remittance_id=3)`` is what remittance 3 put into cash clearing (its BPR02).
    """
    stmt = select(func.coalesce(func.sum(Posting.amount_cents), 0)).join(
        Account, Account.id == Posting.account_id
    )
    return int(session.scalar(_filtered(stmt, accounts, as_of, dimensions)) or 0)


def balances_by(
    session: Session,
    dimension: str,
    accounts: Iterable[str] = RECEIVABLE_ACCOUNTS,
    *,
    as_of: date | None = None,
    **filters: int,
) -> dict[int | None, int]:
    """Σ postings to ``accounts`` grouped by one dimension (``payer_id``, ``patient_id``, ...).

    A/R by payer is ``balances_by(s, "payer_id", [AR_INSURANCE])``; zero balances are left out.
    """
    if dimension not in DIMENSIONS:
        raise ValueError(f"not a posting dimension: {dimension}")
    column = getattr(Posting, dimension)
    stmt = (
        select(column, func.sum(Posting.amount_cents))
        .join(Account, Account.id == Posting.account_id)
        .group_by(column)
    )
    stmt = _filtered(stmt, accounts, as_of, filters)
    return {key: int(total) for key, total in session.execute(stmt) if total}


def account_totals(session: Session, *, as_of: date | None = None, **dimensions: int) -> dict[str, int]:
    """Σ postings by account code (a trial balance; its values sum to zero)."""
    stmt = (
        select(Account.code, func.sum(Posting.amount_cents))
        .join(Account, Account.id == Posting.account_id)
        .group_by(Account.code)
    )
    stmt = _filtered(stmt, None, as_of, dimensions)
    return {code: int(total) for code, total in session.execute(stmt) if total}


def unbalanced_entries(session: Session, *, remittance_id: int | None = None) -> list[int]:
    """Ids of journal entries whose postings do not sum to zero (or that have fewer than two)."""
    stmt = (
        select(Posting.journal_entry_id)
        .group_by(Posting.journal_entry_id)
        .having((func.sum(Posting.amount_cents) != 0) | (func.count() < 2))
    )
    if remittance_id is not None:
        stmt = stmt.join(JournalEntry, JournalEntry.id == Posting.journal_entry_id).where(
            JournalEntry.remittance_id == remittance_id
        )
    return list(session.scalars(stmt))
