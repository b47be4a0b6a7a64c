"""Provider-level adjustments (PLB) of an 835: what each one names, where its money goes, who
reconciles it (docs/adjudication-history.md, section PLB).

A PLB segment carries up to six adjustments, each a reason (PLB03-1: WO, FB, 72, L6, J1,
CS, ...), an optional reference (PLB03-2) and a signed amount (PLB04). A positive amount
is money the payer kept from this payment, a negative one money it added, so
BPR02 = Σ CLP04 - Σ PLB04.

**What the reference names.** :func:`reference_candidates` reads the shapes payers use
for PLB03-2 into the identifiers it may hold, best first:

* the whole reference: our claim number (CLP01) or the payer's claim number (CLP07), as
  the TR3 and X12 RFI 484 recommend;
* several identifiers in one reference, separated by spaces or punctuation (X12 RFI 2370:
  CLP01, CLP07 and TRN02 together; Medicare's "original ICN and Medicare ID"), each one
  also without a label it is glued to (``CLAIM#123``, ``CLM123``, ``ICN:123``);
* CMS's fixed positions for 5010 recoupments (CR 7499), for a reference of one run of
  characters: A/B contractors send the demand letter's control number in positions 1-19
  and the patient control number (else the HIC number) in positions 20-39; DME
  contractors the financial control number in 1-14 and the adjustment claim control
  number in 15-29.

:func:`resolve_references` matches them against our claims: first a claim whose patient
control number is one of them (``reference_kind`` "claim"), else a claim payment of this
payer with that payer claim control number, and its claim ("payer_claim"); a reference
that matches nothing is "other", a missing one "none". Derived identifiers shorter than
four characters are not tried (they would match by accident).

**Accounts** (:func:`account_for`): L6 (interest owed) is interest income; WO, WU, FB,
72, J1 and OB (recoupments, forward balances, authorized returns) go to the payer offset
account, per payer, with the claim and the patient when the reference names one, until
the payer's adjustment of the opposite sign (or a journal entry after the refund is
reconciled) brings it back to zero; every other code to provider adjustments, per payer.
A positive amount debits the account and credits cash clearing; a negative one the
reverse, so cash clearing of the remittance stays BPR02. The claim dimension goes on
both legs of a payer-offset entry, so a claim's postings still sum to zero. Journal keys
are ``<remittance key>:plb:<n>`` (n counts the adjustments of the transaction set).

**Reconciliation.** Each adjustment opens one work item in the ``reconciliation`` queue
(dedupe key ``plb:<provider_adjustment_id>``) with the reason code (``PLB-WO``), the
claim when the reference names one, the remittance, and what to do for that code. The
reference itself (it may hold a member id) is only in the item's encrypted explanation.

**Offsets we agreed to.** A positive WO or 72 of the payer of a payer-offset refund awaiting
its offset, of the same amount, takes that refund (``ledger.credits.link_offset_plbs``: the
refund becomes ``offset``, the adjustment's reconciliation item closes naming it; the
payer offset account of the payer is back to zero, docs/credit-balances.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.db import bulk_insert
from claims_server.ledger.credits import link_offset_plbs
from claims_server.ledger.services import EntrySpec, Leg, post_entries, receivable_claim_id
from claims_server.models import (
    AccountCode,
    Claim,
    ClaimPayment,
    JournalEventType,
    ProviderAdjustment,
    Remittance,
)
from claims_server.models.workqueue import WorkQueue
from claims_server.security.audit import audit_events_bulk
from claims_server.workqueue.services import open_work_item
from edi import x835

__all__ = [
    "INTEREST_REASONS",
    "PAYER_OFFSET_REASONS",
    "PlbPosting",
    "ReferenceKind",
    "ReferenceLink",
    "account_for",
    "guide_for",
    "post_provider_adjustments",
    "reference_candidates",
    "resolve_references",
]


class ReferenceKind(StrEnum):
    """What PLB03-2 names (``ProviderAdjustment.reference_kind``)."""

    CLAIM = "claim"  # one of our claims, by its patient control number (CLP01)
    PAYER_CLAIM = "payer_claim"  # a claim payment of this payer, by its CLP07
    OTHER = "other"  # a reference that matches none of ours (a letter's number, a member id)
    NONE = "none"  # no reference


#: L6: interest the payer adds for paying late (prompt-pay laws): income, not a contra-revenue.
INTEREST_REASONS = frozenset({"L6"})
#: Recoupments and balances carried between remittances: an offset against the payer until
#: recovered (WO overpayment recovery, WU unspecified recovery, FB forwarding balance, 72
#: authorized return, J1 nonreimbursable, OB offset for affiliated providers).
PAYER_OFFSET_REASONS = frozenset({"WO", "WU", "FB", "72", "J1", "OB"})


def account_for(reason: str) -> AccountCode:
    """The account a PLB reason code posts to (the other leg is cash clearing)."""
    code = reason.strip().upper()
    if code in INTEREST_REASONS:
        return AccountCode.INTEREST_INCOME
    if code in PAYER_OFFSET_REASONS:
        return AccountCode.PAYER_OFFSET
    return AccountCode.PROVIDER_ADJUSTMENTS


@dataclass(frozen=True, slots=True)
class ReasonGuide:
    """A PLB reason code in words and what a biller does about it (no PHI: stored as plain text)."""

    label: str
    action: str


_OFFSET_CLEARS = (
    "the payer offset clears when the payer's adjustment of the opposite sign arrives, or by a "
    "journal entry once the refund is reconciled."
)
_GUIDES: dict[str, ReasonGuide] = {
    "WO": ReasonGuide(
        "overpayment recovery",
        "The payer recouped an overpayment (a negative amount: it delayed the recoupment). Find the "
        "reversal or corrected claim it names (CLP02 = 22 on this or an earlier remittance) and "
        "confirm the amount; " + _OFFSET_CLEARS,
    ),
    "WU": ReasonGuide(
        "unspecified recovery",
        "The payer recovered money without naming the claim. Ask the payer (or read its letter) which "
        "claims it recovered, confirm each; " + _OFFSET_CLEARS,
    ),
    "FB": ReasonGuide(
        "forwarding balance",
        "Forward balance: the payer carries this amount to a later remittance and will take it (or "
        "return it) there with an FB of the opposite sign. Check the next remittances; the payer "
        "offset returns to zero when it does.",
    ),
    "72": ReasonGuide(
        "authorized return",
        "Authorized return: the payer acknowledges a refund sent to it (or returns one). Match it to "
        "the refund and to the claim's reversal; " + _OFFSET_CLEARS,
    ),
    "J1": ReasonGuide(
        "nonreimbursable",
        "The payer withheld an amount it says is not reimbursable. Find its notice, confirm or dispute "
        "it; " + _OFFSET_CLEARS,
    ),
    "OB": ReasonGuide(
        "offset for affiliated providers",
        "The payer recovered a debt of an affiliated provider (same tax id) from this payment. Find "
        "which provider and claim it belongs to and record it there; " + _OFFSET_CLEARS,
    ),
    "L6": ReasonGuide(
        "interest owed",
        "Interest added: no action beyond reconciling the deposit (posted to interest income).",
    ),
    "CS": ReasonGuide(
        "adjustment",
        "A payer adjustment: read the payer's notice or the reference, decide where it belongs and "
        "reconcile the deposit (posted to provider adjustments).",
    ),
    "90": ReasonGuide(
        "early payment allowance",
        "The payer took a discount for paying early: confirm the contract allows it and reconcile the "
        "deposit (posted to provider adjustments).",
    ),
    "IR": ReasonGuide(
        "IRS withholding",
        "Backup withholding for the IRS: check the tax id the payer has on file and reconcile the "
        "deposit (posted to provider adjustments).",
    ),
    "E3": ReasonGuide(
        "withholding",
        "The payer withheld part of the payment: find its notice and reconcile the deposit (posted to "
        "provider adjustments).",
    ),
    "LE": ReasonGuide(
        "levy",
        "A levy was taken from the payment: match it to the levy notice and reconcile the deposit "
        "(posted to provider adjustments).",
    ),
    "CT": ReasonGuide(
        "capitation payment",
        "A capitation payment: reconcile it with the capitation roster (posted to provider adjustments).",
    ),
    "CV": ReasonGuide(
        "capital passthru",
        "A cost-report pass-through payment: reconcile it with the cost report (posted to provider "
        "adjustments).",
    ),
}


def guide_for(reason: str) -> ReasonGuide:
    """The label and recommended action of a PLB reason code (a generic one for the rest)."""
    code = reason.strip().upper()
    guide = _GUIDES.get(code)
    if guide is not None:
        return guide
    return ReasonGuide(
        "provider-level adjustment",
        f"Provider-level adjustment {code or '(no code)'}: confirm it with the payer's notice and "
        "reconcile the deposit (posted to provider adjustments).",
    )


# -- what a reference names ------------------------------------------------------------------------

#: Between identifiers in one reference: white space and punctuation no claim number of ours uses.
_SEPARATORS = re.compile(r"[\s,;/|#*=:>^]+")
#: A label glued to the identifier it introduces (CLM12345, ICN-123, CLAIMNO.ABC12): the label is
#: followed by a digit or by one of ". : _ - #".
_LABEL = re.compile(
    r"^(?:CLAIM|CLM|PCN|PATCTL|ACCT|ACCOUNT|ICN|DCN|CCN|FCN|TCN|REF|INV|INVOICE)(?:NO|NUM|NBR)?"
    r"(?:[.:_\-#]+|(?=[0-9]))",
    re.IGNORECASE,
)
MIN_DERIVED = 4  # identifiers cut out of a longer reference are tried from this length


def reference_candidates(reference: str | None) -> tuple[str, ...]:
    """The identifiers PLB03-2 may hold, best first (see the module docstring); () when empty."""
    whole = (reference or "").strip()
    if not whole:
        return ()
    out: list[str] = [whole]

    def add(value: str) -> None:
        value = value.strip()
        if len(value) >= MIN_DERIVED and value not in out:
            out.append(value)

    parts = [p for p in _SEPARATORS.split(whole) if p]
    for part in parts:
        add(part)
    for part in parts:
        label = _LABEL.match(part)
        if label is not None:
            add(part[label.end() :])
    if len(parts) == 1:
        # Fixed positions, one run of characters (a shorter number padded with spaces is
        # already split above).
        if 19 < len(whole) <= 39:  # CMS A/B (CR 7499): control number 1-19, our claim number 20-39
            add(whole[:19])
            add(whole[19:])
        if 14 < len(whole) <= 29:  # CMS DME (CR 7499): financial control number 1-14, adjustment ICN 15-29
            add(whole[:14])
            add(whole[14:])
    return tuple(out)


@dataclass(slots=True)
class ReferenceLink:
    """What one PLB03-2 names among our claims."""

    kind: ReferenceKind
    claim_id: int | None = None  # the claim it names (ProviderAdjustment.claim_id)
    claim_payment_id: int | None = None  # the claim payment it names by CLP07
    ledger_claim_id: int | None = None  # the claim whose A/R holds the encounter's money
    patient_id: int | None = None
    claim_public_id: str | None = None
    matched: str | None = None  # the identifier that matched
    also: list[str] = field(default_factory=list)  # public ids of other claims it names too


def _chunks(values: Sequence[Any], size: int = 900) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def resolve_references(
    session: Session, remittance: Remittance, references: Sequence[str | None]
) -> list[ReferenceLink]:
    """Link each reference to the claim it names (our CLP01 first, then this payer's CLP07)."""
    candidates = [reference_candidates(r) for r in references]
    every = sorted({c for cs in candidates for c in cs})
    pcn_limit = Claim.__table__.c.patient_control_number.type.length or 20
    by_pcn: dict[str, int] = {}  # our claim number -> claim id
    claim_rows: dict[int, tuple[int, str]] = {}  # claim id -> (patient id, public id)
    for chunk in _chunks([c for c in every if len(c) <= pcn_limit]):
        for row in session.execute(
            select(Claim.id, Claim.patient_control_number, Claim.patient_id, Claim.public_id).where(
                Claim.patient_control_number.in_(chunk)
            )
        ):
            by_pcn[row.patient_control_number] = row.id
            claim_rows[row.id] = (row.patient_id, row.public_id)
    # This payer's claim payments by CLP07: the latest one matched to a claim, else the latest.
    if remittance.payer_id is not None:
        same_payer = Remittance.payer_id == remittance.payer_id
    else:
        same_payer = Remittance.payer_identifier == remittance.payer_identifier
    by_ccn: dict[str, tuple[int, int | None]] = {}  # CLP07 -> (claim payment id, claim id)
    for chunk in _chunks(every):
        for row in session.execute(
            select(ClaimPayment.id, ClaimPayment.payer_claim_control_number, ClaimPayment.claim_id)
            .join(Remittance, Remittance.id == ClaimPayment.remittance_id)
            .where(same_payer, ClaimPayment.payer_claim_control_number.in_(chunk))
            .order_by(ClaimPayment.id)
        ):
            known = by_ccn.get(row.payer_claim_control_number)
            if known is None or row.claim_id is not None or known[1] is None:
                by_ccn[row.payer_claim_control_number] = (row.id, row.claim_id)
    missing = sorted({cid for _, cid in by_ccn.values() if cid is not None} - set(claim_rows))
    for chunk in _chunks(missing):
        for row in session.execute(
            select(Claim.id, Claim.patient_id, Claim.public_id).where(Claim.id.in_(chunk))
        ):
            claim_rows[row.id] = (row.patient_id, row.public_id)

    ledger_of: dict[int, int] = {}

    def ledger_claim(claim_id: int) -> int:
        if claim_id not in ledger_of:
            claim = session.get(Claim, claim_id)
            ledger_of[claim_id] = receivable_claim_id(session, claim) if claim is not None else claim_id
        return ledger_of[claim_id]

    links: list[ReferenceLink] = []
    for cs in candidates:
        if not cs:
            links.append(ReferenceLink(ReferenceKind.NONE))
            continue
        named: list[tuple[ReferenceKind, str, int | None, int | None]] = []  # kind, id, claim, payment
        for c in cs:
            if c in by_pcn:
                named.append((ReferenceKind.CLAIM, c, by_pcn[c], None))
        for c in cs:
            if c in by_ccn:
                named.append((ReferenceKind.PAYER_CLAIM, c, by_ccn[c][1], by_ccn[c][0]))
        if not named:
            links.append(ReferenceLink(ReferenceKind.OTHER))
            continue
        kind, matched, claim_id, payment_id = named[0]
        link = ReferenceLink(kind, claim_id=claim_id, claim_payment_id=payment_id, matched=matched)
        if claim_id is not None:
            link.patient_id, link.claim_public_id = claim_rows[claim_id]
            link.ledger_claim_id = ledger_claim(claim_id)
        others = {cid for _, _, cid, _ in named[1:] if cid is not None and cid != claim_id}
        link.also = sorted(claim_rows[cid][1] for cid in others)
        links.append(link)
    return links


# -- posting ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class PlbPosting:
    """What :func:`post_provider_adjustments` did for one remittance."""

    provider_adjustment_ids: list[int] = field(default_factory=list)
    links: list[ReferenceLink] = field(default_factory=list)
    entries_posted: int = 0
    work_items_opened: int = 0


def _money(cents: int) -> str:
    return x835.format_cents(cents)


def _explanation(
    remittance: Remittance, adj: x835.ProviderAdjustment, account: AccountCode, link: ReferenceLink
) -> str:
    guide = guide_for(adj.reason)
    amount = adj.amount_cents
    if amount > 0:
        money = f"the payer kept {_money(amount)} of this payment"
    elif amount < 0:
        money = f"the payer added {_money(-amount)} to this payment"
    else:
        money = "no money moved"
    if link.kind == ReferenceKind.NONE:
        named = "It carries no reference."
    elif link.kind == ReferenceKind.OTHER:
        named = f"Its reference {adj.reference!r} names none of our claims or this payer's claim numbers."
    else:
        by = "our claim number" if link.kind == ReferenceKind.CLAIM else "the payer's claim number (CLP07)"
        target = (
            f"claim {link.claim_public_id}" if link.claim_public_id else "a payment that matched no claim"
        )
        named = f"Its reference {adj.reference!r} names {target} by {by} {link.matched!r}."
        if link.also:
            named += f" It also names {', '.join(link.also)}."
    return (
        f"PLB {adj.reason} ({guide.label}) on remittance {remittance.public_id}, trace "
        f"{remittance.trace_number}: {money}, posted to {account.value.replace('_', ' ')}. {named}"
    )


def post_provider_adjustments(
    session: Session,
    remittance: Remittance,
    adjustments: Sequence[x835.ProviderAdjustment],
    *,
    key_prefix: str,
    effective_date: date,
    accounts: dict[str, int] | None = None,
) -> PlbPosting:
    """Store, link, post and queue the PLB adjustments of one remittance (module docstring).

    The caller has checked the element lengths; nothing here commits.
    """
    done = PlbPosting()
    if not adjustments:
        return done
    rem = remittance
    links = resolve_references(session, rem, [a.reference or None for a in adjustments])
    rows = [
        {
            "remittance_id": rem.id,
            "provider_identifier": adj.provider_identifier,
            "fiscal_period_date": adj.fiscal_period_date,
            "reason_code": adj.reason,
            "reference": adj.reference or None,
            "amount_cents": adj.amount_cents,
            "reference_kind": link.kind.value,
            "claim_id": link.claim_id,
            "claim_payment_id": link.claim_payment_id,
        }
        for adj, link in zip(adjustments, links, strict=True)
    ]
    ids = bulk_insert(session, ProviderAdjustment.__table__, rows, returning_ids=True)
    done.provider_adjustment_ids, done.links = list(ids), links

    specs: list[EntrySpec] = []
    for n, (adj, link) in enumerate(zip(adjustments, links, strict=True), 1):
        amount = adj.amount_cents
        if not amount:
            continue
        account = account_for(adj.reason)
        # A positive amount is money the payer kept: Dr the account / Cr cash clearing; a
        # negative one it added (the signs flip). A payer offset is kept per payer and, when
        # the reference names a claim, per claim and patient (cash carries the claim too).
        if account == AccountCode.PAYER_OFFSET:
            claim_dim, patient = link.ledger_claim_id, link.patient_id
        else:
            claim_dim, patient = None, None
        legs = [
            Leg(account, amount, claim_dim, None, rem.payer_id, patient, rem.id),
            Leg(AccountCode.CASH_CLEARING, -amount, claim_dim, None, rem.payer_id, None, rem.id),
        ]
        details: dict[str, Any] = {
            "remittance": rem.public_id,
            "plb_reason": adj.reason,
            "reference_kind": link.kind.value,
        }
        if link.claim_public_id:
            details["claim"] = link.claim_public_id
        specs.append(
            EntrySpec(
                event_type=JournalEventType.PROVIDER_ADJUSTMENT,
                idempotency_key=f"{key_prefix}:plb:{n}",
                legs=legs,
                effective_date=effective_date,
                claim_id=link.ledger_claim_id,
                remittance_id=rem.id,
                reason_code=f"PLB:{adj.reason}",
                audit_entity=rem.public_id,
                audit_details=details,
            )
        )
    done.entries_posted = len(post_entries(session, specs, accounts=accounts))

    events: list[dict[str, Any]] = []
    for pa_id, adj, link in zip(ids, adjustments, links, strict=True):
        account = account_for(adj.reason)
        claim = session.get(Claim, link.claim_id) if link.claim_id is not None else None
        item = open_work_item(
            session,
            queue=WorkQueue.RECONCILIATION,
            claim=claim,
            reason_codes=[f"PLB-{adj.reason.strip().upper() or 'NONE'}"],
            recommended_action=guide_for(adj.reason).action,
            explanation=_explanation(rem, adj, account, link),
            dedupe_key=f"plb:{pa_id}",
            priority=1 if account == AccountCode.PAYER_OFFSET and adj.amount_cents else 0,
            audit_events=events,
        )
        item.remittance_id = rem.id
        item.provider_adjustment_id = pa_id
        done.work_items_opened += 1
    session.flush()
    audit_events_bulk(session, events)
    # A WO / 72 of a payer-offset refund we agreed to (same payer and amount) takes that refund.
    link_offset_plbs(session, rem, list(ids))
    return done
