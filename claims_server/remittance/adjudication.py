"""Each payer's adjudication of an encounter as a history: the rules of docs/adjudication-history.md.

Plain Python over in-memory state, no database: the poster (``posting.py``) and the
supervisor's decisions (``services.decide_held``) load what an encounter needs (its open
A/R insurance per payer, its adjudications with their state) in a few queries, let an
:class:`Engine` decide each adjudication in arrival order, then write what the engine
produced (:attr:`Engine.entries`, the changed :class:`Adjudication` rows and the
:attr:`Engine.events` that move claims and open or close work items) in bulk.

Keys: an encounter ``L`` is the claim whose A/R a payment moves (``ledger_claim_id``), a
payer ``P`` the remitting payer. The numbered rules are the document's:

* not a reversal: (1) already current? a denial that moved no money is superseded, any
  other current one makes the new one a ``possible_duplicate`` hold; (2) room: ``paid +
  pr > open(P)`` holds it ``would_overdraw``; (3) post: cash, A/R(P) down by paid, PR
  moved to the next payer (or the patient), the other adjustments capped at the room in
  file order (what exceeds it is a restatement, stored not posted).
* a reversal: its target is the adjudication of ``(L, P)`` it negates (CLP07 equal when
  both carry one, CLP03 and CLP04 negated), a current one first, else a held one; the
  target's entry is mirrored (cash re-pointed at the reversal's remittance) unless that
  would leave a payer's A/R below zero; no target: held ``reversal_unmatched``.
* retry: after anything posts or is reversed on ``L``, its held adjudications are tried
  again in arrival order until none changes; one that posts is released (its hold entry
  mirrored first). A held ``possible_duplicate`` that repeats an adjudication the payer has
  reversed (same CLP07, CLP03, CLP04 and CLP05; a re-issued copy of it) is not released: it
  stays held for a person (event ``repeats_reversed``), unless it came in the reversal's own
  remittance (the payer's correction sent with its reversal).

Two choices the document leaves open, shared with the reference model of the tests
(``tests/integration/remittance/adjudication_model.py``): a denial that moved no money is
superseded only when the new adjudication actually posts (if that one is held
``would_overdraw``, the denial stays current meanwhile); and the room never goes below
zero (``room = max(open - paid - pr - held, 0)``), so a negative adjustment amount (which
raises A/R) is always posted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from claims_server.ledger.services import UNAPPLIED_PAYMENTS, Leg, consolidate
from claims_server.models.ledger import AccountCode
from claims_server.models.remittance import AdjudicationHold, AdjudicationKind, AdjudicationState

Kind, State, Hold = AdjudicationKind, AdjudicationState, AdjudicationHold

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
#: before it paid and adjusted; stored (Adjustment rows), never posted.
PRIOR_PAYER_CARC = "23"

CASH = AccountCode.CASH_CLEARING.value
AR_INSURANCE = AccountCode.AR_INSURANCE.value
AR_PATIENT = AccountCode.AR_PATIENT.value
CONTRA_ACCOUNT = {
    "CO": AccountCode.CONTRACTUAL_ADJUSTMENTS.value,
    "OA": AccountCode.OTHER_ADJUSTMENTS.value,
    "PI": AccountCode.OTHER_ADJUSTMENTS.value,
    "CR": AccountCode.OTHER_ADJUSTMENTS.value,
}

# The role of one CAS amount in an adjudication (docs: "Amounts of one adjudication").
PR, HELD, ADJ, PRIOR = "pr", "held", "adj", "prior"

PAYMENT_EVENT = "insurance_payment"
REVERSAL_EVENT = "reversal"


class Refused(Exception):
    """A person's decision the rules do not allow (it would overdraw, nothing is held ...)."""

    def __init__(self, message: str, *, rule: str):
        super().__init__(message)
        self.message = message
        self.rule = rule


# -- the amounts of one adjudication ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cas:
    """One CAS amount with its role: ``pr``, ``held`` (a denial left in A/R), ``adj`` or ``prior`` (CARC 23)."""

    group: str
    reason: str
    amount: int
    line_id: int | None
    role: str


@dataclass(slots=True)
class Amounts:
    """``paid``, ``pr``, ``held`` and ``adj`` of one CLP, and its CAS in file order.

    ``lines`` are (our service line id or None, SVC03, the line's CAS); ``claim_cas`` the
    claim-level CAS.
    """

    status: str
    paid: int
    lines: list[tuple[int | None, int, list[Cas]]]
    claim_cas: list[Cas]
    pr: int = 0
    held: int = 0
    adj: int = 0
    denial_codes: list[tuple[str, str]] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)

    def all_cas(self) -> Iterable[Cas]:
        for _, _, cas in self.lines:
            yield from cas
        yield from self.claim_cas


def amounts_of(
    status: str,
    paid: int,
    lines: Sequence[Any],
    line_ids: Sequence[int | None],
    claim_adjustments: Sequence[Any],
    claim_remarks: Iterable[str] = (),
) -> Amounts:
    """Classify the CAS of one CLP (``lines``: objects with ``charge_cents``, ``paid_cents``,
    ``adjustments`` (``group``, ``reason``, ``amount_cents``) and ``remarks`` (``qualifier``,
    ``code``), as :mod:`edi.x835` reads them; ``claim_adjustments`` likewise).

    ``held``: on CLP02 = 4 every amount; on a line paid zero with a non-PR, non-pricing CARC,
    its non-PR non-pricing amounts. ``pr``: group PR. ``adj``: the rest except CARC 23.
    """
    denied_claim = status == DENIED_STATUS
    out = Amounts(status=status, paid=paid, lines=[], claim_cas=[])

    def classify(a: Any, line_id: int | None, held_here: bool) -> Cas:
        """One CAS amount's role; ``held_here``: a denial amount left in A/R for a person."""
        group, reason, amount = a.group, a.reason, a.amount_cents
        if held_here:
            role = HELD
            out.held += amount
            out.denial_codes.append((group, reason))
        elif group == "PR":
            role = PR
            out.pr += amount
        elif reason == PRIOR_PAYER_CARC:
            role = PRIOR
        else:
            role = ADJ
            out.adj += amount
        return Cas(group, reason, amount, line_id, role)

    for line, line_id in zip(lines, line_ids, strict=True):
        adjustments = line.adjustments
        line_denied = denied_claim or (
            line.paid_cents == 0
            and line.charge_cents != 0
            and any(a.group != "PR" and a.reason not in PRICING_CARCS for a in adjustments)
        )
        cas = [
            classify(
                a,
                line_id,
                line_denied and (denied_claim or (a.group != "PR" and a.reason not in PRICING_CARCS)),
            )
            for a in adjustments
        ]
        if line_denied:
            out.remarks += [r.code for r in line.remarks if r.qualifier == "HE"]
        out.lines.append((line_id, line.paid_cents, cas))
    out.claim_cas.extend(classify(a, None, denied_claim) for a in claim_adjustments)
    if denied_claim:
        out.remarks += list(claim_remarks)
    return out


def posting_legs(
    amounts: Amounts,
    *,
    claim_id: int,
    payer_id: int | None,
    next_payer_id: int | None,
    patient_id: int | None,
    remittance_id: int | None,
    room: int,
) -> tuple[list[Leg], int]:
    """Rule 3: the legs of one adjudication (consolidated) and the restatement not posted.

    Cash clearing +paid / A/R(P) -paid (per line, the rest at claim level); PR: A/R(P) -x /
    A/R(next payer), else A/R patient, +x; CO/OA/PI/CR (not CARC 23, not held): contra +x /
    A/R(P) -x with the positive amounts capped at ``room`` in file order.
    """
    legs: list[Leg] = []
    paid = amounts.paid
    if paid:
        legs.append(Leg(CASH, paid, claim_id, None, payer_id, None, remittance_id))
    state = [max(room, 0), 0]  # room left, restated
    applied = 0
    for line_id, line_paid, cas in amounts.lines:
        if line_paid:
            legs.append(Leg(AR_INSURANCE, -line_paid, claim_id, line_id, payer_id, patient_id))
            applied += line_paid
        if cas:
            _cas_legs(legs, cas, state, claim_id, payer_id, next_payer_id, patient_id)
    if paid - applied:
        legs.append(Leg(AR_INSURANCE, applied - paid, claim_id, None, payer_id, patient_id))
    if amounts.claim_cas:
        _cas_legs(legs, amounts.claim_cas, state, claim_id, payer_id, next_payer_id, patient_id)
    return consolidate(legs), state[1]


def _cas_legs(
    legs: list[Leg],
    cas: list[Cas],
    state: list[int],
    claim_id: int,
    payer_id: int | None,
    next_payer_id: int | None,
    patient_id: int | None,
) -> None:
    for c in cas:
        amount = c.amount
        role = c.role
        if not amount or role in (HELD, PRIOR):
            continue
        if role == PR:
            if next_payer_id is not None:
                legs.append(Leg(AR_INSURANCE, amount, claim_id, c.line_id, next_payer_id, patient_id))
            else:
                legs.append(Leg(AR_PATIENT, amount, claim_id, c.line_id, None, patient_id))
            legs.append(Leg(AR_INSURANCE, -amount, claim_id, c.line_id, payer_id, patient_id))
            continue
        take = min(amount, state[0])
        state[0] -= take
        state[1] += amount - take
        if take:
            # Contra accounts are kept per claim and payer; receivables per line as well.
            legs.append(Leg(CONTRA_ACCOUNT[c.group], take, claim_id, None, payer_id, None))
            legs.append(Leg(AR_INSURANCE, -take, claim_id, c.line_id, payer_id, patient_id))


def hold_legs(paid: int, payer_id: int | None, remittance_id: int | None) -> list[Leg]:
    """A held adjudication's money: Dr cash clearing / Cr unapplied payments (remittance dimension)."""
    if not paid:
        return []
    return [
        Leg(CASH, paid, None, None, payer_id, None, remittance_id),
        Leg(UNAPPLIED_PAYMENTS, -paid, None, None, payer_id, None, remittance_id),
    ]


def mirrored(legs: Iterable[Leg], *, cash_remittance_id: int | None = None) -> list[Leg]:
    """Every leg negated; with ``cash_remittance_id`` the cash clearing legs name that remittance."""
    out = []
    for leg in legs:
        remittance_id = leg.remittance_id
        if cash_remittance_id is not None and leg.account == CASH:
            remittance_id = cash_remittance_id
        out.append(
            Leg(
                leg.account,
                -leg.amount_cents,
                leg.claim_id,
                leg.service_line_id,
                leg.payer_id,
                leg.patient_id,
                remittance_id,
            )
        )
    return out


def ar_effect(legs: Iterable[Leg]) -> dict[int | None, int]:
    """payer -> how much ``legs`` move A/R insurance."""
    out: dict[int | None, int] = {}
    for leg in legs:
        if leg.account == AR_INSURANCE:
            out[leg.payer_id] = out.get(leg.payer_id, 0) + leg.amount_cents
    return out


# -- the history ----------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Entry:
    """A journal entry the engine decided (``id`` once written) or one already in the journal."""

    owner: Adjudication
    name: str  # payment | hold | reversal | release | post | supersede | reject
    event: str  # insurance_payment | reversal
    legs: list[Leg]
    reverses: Entry | None = None
    at_arrival: bool = False  # keyed by the 835 (trace, CLP position), else by the claim payment id
    id: int | None = None
    key: str | None = None


@dataclass(eq=False, slots=True)
class Adjudication:
    """One CLP in the history of ``(encounter, payer_id)`` (a ``ClaimPayment`` row)."""

    arrival: int  # arrival order (a stored row's id; new ones after every stored one)
    encounter: int
    payer_id: int | None
    claim_id: int  # our claim that CLP01 named
    patient_id: int | None
    remittance_id: int
    status: str
    charge: int
    paid: int
    payer_claim_number: str | None
    clp05: int | None = None  # CLP05 as the payer sent it (patient responsibility)
    next_payer_id: int | None = None
    amounts: Amounts | None = None
    kind: AdjudicationKind | None = None
    state: AdjudicationState | None = None  # None: just arrived, not decided yet
    hold_reason: AdjudicationHold | None = None
    reverses: Adjudication | None = None
    id: int | None = None
    stored: bool = False  # its row was written before this engine ran
    changed: bool = False  # a stored row whose history columns must be written again
    entries_loaded: bool = False
    post_entry: Entry | None = None  # what put it on the books (a reversal: its mirror)
    hold_entry: Entry | None = None
    restated: int = 0
    follows_another: bool = False  # an earlier adjudication of the encounter by its payer exists
    duplicate_of: Adjudication | None = None
    ref: Any = None  # the caller's handle (the poster's plan; labels for texts)

    @property
    def is_reversal(self) -> bool:
        return self.status == REVERSAL_STATUS

    @property
    def pr(self) -> int:
        return self.amounts.pr if self.amounts is not None else 0

    def repeats(self, other: Adjudication) -> bool:
        """Same payer, CLP07, CLP03, CLP04 and CLP05 as ``other``: a copy of its adjudication."""
        return (
            self.payer_id == other.payer_id
            and (self.payer_claim_number or None) == (other.payer_claim_number or None)
            and (self.charge, self.paid, self.clp05 or 0) == (other.charge, other.paid, other.clp05 or 0)
        )

    def moved_no_money(self) -> bool:
        """A denial (CLP02 = 4) that moved no money: a later adjudication supersedes it."""
        return self.status == DENIED_STATUS and self.paid == 0


@dataclass(eq=False, slots=True)
class Encounter:
    """One encounter: its open A/R insurance per payer and every adjudication of it, in arrival order."""

    claim_id: int
    ar: dict[int | None, int] = field(default_factory=dict)
    history: list[Adjudication] = field(default_factory=list)

    def current(self, payer_id: int | None, besides: Adjudication | None = None) -> Adjudication | None:
        for h in self.history:
            if h.payer_id == payer_id and h.state is State.CURRENT and h is not besides:
                return h
        return None

    def held(self) -> list[Adjudication]:
        return [h for h in self.history if h.state is State.HELD]


@dataclass(frozen=True, slots=True)
class Event:
    """What happened, in order, for the caller to act on (claim states, work items).

    ``what``: posted, held, hold_changed, released, reversed (``adjudication`` the target,
    ``other`` the reversal; ``reversed_held`` when the target was held), superseded
    (``other`` the one replacing it), lost_current (the reversal left its payer with no
    current adjudication: ``adjudication`` the reversal, ``other`` its target), rejected,
    repeats_reversed (a held possible duplicate the retry keeps held because it repeats
    ``other``, an adjudication its payer reversed).
    """

    what: str
    adjudication: Adjudication
    other: Adjudication | None = None


EntryLoader = Callable[[Adjudication], None]


class Engine:
    """Decides adjudications of loaded encounters in arrival order (see the module docstring).

    ``load_entries(adjudication)`` fills ``post_entry`` / ``hold_entry`` of a stored
    adjudication from the journal when the engine first needs them (a reversal's target
    posted by an earlier file).
    """

    def __init__(self, load_entries: EntryLoader | None = None):
        self.encounters: dict[int, Encounter] = {}
        self.entries: list[Entry] = []
        self.events: list[Event] = []
        self._load_entries = load_entries
        self._lost: list[tuple[Adjudication, Adjudication]] = []

    def encounter(self, claim_id: int) -> Encounter:
        found = self.encounters.get(claim_id)
        if found is None:
            found = self.encounters[claim_id] = Encounter(claim_id)
        return found

    def dispose(self) -> None:
        """Drop every reference the engine's objects hold to each other (they form cycles), so a
        large remittance's batches are freed as they end instead of by the cyclic collector."""
        for enc in self.encounters.values():
            for a in enc.history:
                a.post_entry = a.hold_entry = a.reverses = a.duplicate_of = a.ref = None
            enc.history.clear()
        for entry in self.entries:
            entry.reverses = None
        self.encounters.clear()
        self.entries.clear()
        self.events.clear()

    # ---- arrivals and decisions

    def arrive(self, adjudication: Adjudication) -> None:
        """A new CLP of the encounter: decide it, then retry the held ones if anything moved."""
        enc = self.encounter(adjudication.encounter)
        enc.history.append(adjudication)
        self._lost = []
        if self._try(enc, adjudication, arriving=True):
            self._retry(enc)
        self._report_lost(enc)

    def decide(self, adjudication: Adjudication, decision: str) -> None:
        """A person's decision on a held adjudication: ``post`` (it replaces the current one) or ``reject``.

        Raises :class:`Refused` when the rules do not allow it; the engine's state is then
        unusable and nothing it produced may be written.
        """
        enc = self.encounter(adjudication.encounter)
        if adjudication.state is not State.HELD:
            raise Refused("the adjudication is not held", rule="not_held")
        self._lost = []
        if decision == "reject":
            self._ensure_entries(adjudication)
            hold = adjudication.hold_entry
            if hold is not None:
                self._add(
                    Entry(adjudication, "reject", REVERSAL_EVENT, mirrored(hold.legs), reverses=hold), enc
                )
            adjudication.state = State.REJECTED
            adjudication.changed = True
            self.events.append(Event("rejected", adjudication))
            return
        if decision != "post":
            raise Refused("a decision is post or reject", rule="decision")
        if adjudication.is_reversal:
            reason = self._reverse(enc, adjudication, arriving=False)
            if reason is not None:
                raise Refused(_refusal(reason), rule=reason.value)
        else:
            current = enc.current(adjudication.payer_id, besides=adjudication)
            if current is not None and not current.moved_no_money():
                self._ensure_entries(current)
                legs = mirrored(current.post_entry.legs) if current.post_entry is not None else []
                trial = dict(enc.ar)
                for payer, cents in ar_effect(legs).items():
                    trial[payer] = trial.get(payer, 0) + cents
                    if trial[payer] < 0:
                        raise Refused(_refusal(Hold.WOULD_OVERDRAW), rule="would_overdraw")
                if adjudication.paid + adjudication.pr > trial.get(adjudication.payer_id, 0):
                    raise Refused(_refusal(Hold.WOULD_OVERDRAW), rule="would_overdraw")
                if legs:
                    self._add(
                        Entry(current, "supersede", REVERSAL_EVENT, legs, reverses=current.post_entry), enc
                    )
                current.state = State.SUPERSEDED
                current.changed = True
                self.events.append(Event("superseded", current, adjudication))
            reason = self._adjudicate(enc, adjudication, arriving=False)
            if reason is not None:
                raise Refused(_refusal(reason), rule=reason.value)
        self._retry(enc)
        self._report_lost(enc)

    # ---- the rules

    def _try(self, enc: Encounter, a: Adjudication, *, arriving: bool) -> bool:
        """Post (apply, for a reversal) ``a``, releasing its hold; else hold it. True when it posted."""
        reason = (
            self._reverse(enc, a, arriving=arriving)
            if a.is_reversal
            else self._adjudicate(enc, a, arriving=arriving, retry=not arriving)
        )
        if reason is None:
            return True
        self._hold(enc, a, reason, arriving=arriving)
        return False

    def _adjudicate(
        self, enc: Encounter, a: Adjudication, *, arriving: bool, retry: bool = False
    ) -> AdjudicationHold | None:
        current = enc.current(a.payer_id, besides=a)
        if current is not None and not current.moved_no_money():  # 1. already current
            a.duplicate_of = current
            return Hold.POSSIBLE_DUPLICATE
        if retry and a.state is State.HELD and a.hold_reason is Hold.POSSIBLE_DUPLICATE:
            twin = self._reversed_twin(enc, a)
            if twin is not None:  # a copy of what the payer took back: a person decides
                if a.duplicate_of is not twin:
                    a.duplicate_of = twin
                    self.events.append(Event("repeats_reversed", a, twin))
                return Hold.POSSIBLE_DUPLICATE
        amounts = a.amounts
        assert amounts is not None
        open_ = enc.ar.get(a.payer_id, 0)
        if amounts.paid + amounts.pr > open_:  # 2. room
            return Hold.WOULD_OVERDRAW
        room = max(open_ - amounts.paid - amounts.pr - amounts.held, 0)
        legs, restated = posting_legs(
            amounts,
            claim_id=enc.claim_id,
            payer_id=a.payer_id,
            next_payer_id=a.next_payer_id,
            patient_id=a.patient_id,
            remittance_id=a.remittance_id,
            room=room,
        )
        if current is not None:  # a denial that moved no money: replaced
            current.state = State.SUPERSEDED
            current.changed = True
            self.events.append(Event("superseded", current, a))
        earlier = False
        for h in enc.history:
            if h is not a and h.payer_id == a.payer_id:
                if h.arrival < a.arrival:
                    a.follows_another = True
                if h.state in (State.REVERSED, State.SUPERSEDED):
                    earlier = True
        released = self._release(enc, a)
        a.kind = Kind.CORRECTION if earlier else Kind.ORIGINAL
        a.state, a.hold_reason, a.restated, a.duplicate_of = State.CURRENT, None, restated, None
        a.changed = True
        if legs:  # 3. post
            name = "payment" if arriving and not released else "post"
            a.post_entry = self._add(Entry(a, name, PAYMENT_EVENT, legs, at_arrival=name == "payment"), enc)
        self.events.append(Event("posted", a))
        return None

    def _reverse(self, enc: Encounter, r: Adjudication, *, arriving: bool) -> AdjudicationHold | None:
        def negates(h: Adjudication) -> bool:
            same = not (h.payer_claim_number and r.payer_claim_number) or (
                h.payer_claim_number == r.payer_claim_number
            )
            return (
                h is not r
                and h.payer_id == r.payer_id
                and not h.is_reversal
                and same
                and h.charge == -r.charge
                and h.paid == -r.paid
            )

        candidates = [h for h in enc.history if negates(h)]
        target = next((h for h in candidates if h.state is State.CURRENT), None)
        target = target or next((h for h in candidates if h.state is State.HELD), None)
        if target is None:
            return Hold.REVERSAL_UNMATCHED
        self._ensure_entries(target)
        was_current = target.state is State.CURRENT
        source = target.post_entry if was_current else target.hold_entry
        legs = mirrored(source.legs, cash_remittance_id=r.remittance_id) if source is not None else []
        for payer, cents in ar_effect(legs).items():
            if enc.ar.get(payer, 0) + cents < 0:
                return Hold.WOULD_OVERDRAW
        released = self._release(enc, r)
        target.state, target.hold_reason, target.changed = State.REVERSED, None, True
        r.kind, r.state, r.hold_reason, r.reverses, r.changed = (
            Kind.REVERSAL,
            State.APPLIED,
            None,
            target,
            True,
        )
        if legs:
            at_arrival = arriving and not released
            r.post_entry = self._add(
                Entry(r, "reversal", REVERSAL_EVENT, legs, reverses=source, at_arrival=at_arrival), enc
            )
        self.events.append(Event("reversed" if was_current else "reversed_held", target, r))
        if was_current:
            self._lost.append((r, target))
        return None

    def _reversed_twin(self, enc: Encounter, a: Adjudication) -> Adjudication | None:
        """The adjudication its payer reversed that held ``a`` repeats (same CLP07, CLP03, CLP04,
        CLP05), unless the reversal came in ``a``'s own remittance: a payer's correction sent
        with its reversal may repeat the reversed amounts (only codes or patient data changed)."""
        for h in enc.history:
            if h is a or h.is_reversal or h.state is not State.REVERSED or not a.repeats(h):
                continue
            by = next((r for r in enc.history if r.reverses is h and r.state is State.APPLIED), None)
            if by is None or by.remittance_id != a.remittance_id:
                return h
        return None

    def _hold(self, enc: Encounter, a: Adjudication, reason: AdjudicationHold, *, arriving: bool) -> None:
        if a.state is State.HELD:
            if a.hold_reason is not reason:
                a.hold_reason, a.changed = reason, True
                self.events.append(Event("hold_changed", a))
            return
        a.state, a.hold_reason, a.changed = State.HELD, reason, True
        if a.kind is None:
            a.kind = Kind.REVERSAL if a.is_reversal else Kind.ORIGINAL
        legs = hold_legs(a.paid, a.payer_id, a.remittance_id)
        if legs:
            a.hold_entry = self._add(Entry(a, "hold", PAYMENT_EVENT, legs, at_arrival=arriving), enc)
        self.events.append(Event("held", a))

    def _release(self, enc: Encounter, a: Adjudication) -> bool:
        """A held adjudication that now posts: its hold entry is mirrored first. True if it was held."""
        if a.state is not State.HELD:
            return False
        self._ensure_entries(a)
        hold = a.hold_entry
        if hold is not None:
            self._add(Entry(a, "release", REVERSAL_EVENT, mirrored(hold.legs), reverses=hold), enc)
        self.events.append(Event("released", a))
        return True

    def _retry(self, enc: Encounter) -> None:
        """The held adjudications of ``enc``, in arrival order, tried again until none changes."""
        changed = True
        while changed:
            changed = False
            for h in enc.held():
                if h.state is State.HELD and self._try(enc, h, arriving=False):
                    changed = True

    def _report_lost(self, enc: Encounter) -> None:
        for reversal, target in self._lost:
            if enc.current(target.payer_id) is None and reversal.state is State.APPLIED:
                self.events.append(Event("lost_current", reversal, target))
        self._lost = []

    # ---- entries

    def _add(self, entry: Entry, enc: Encounter) -> Entry:
        self.entries.append(entry)
        for payer, cents in ar_effect(entry.legs).items():
            enc.ar[payer] = enc.ar.get(payer, 0) + cents
        return entry

    def _ensure_entries(self, a: Adjudication) -> None:
        if a.stored and not a.entries_loaded and self._load_entries is not None:
            self._load_entries(a)
        a.entries_loaded = True


def _refusal(reason: AdjudicationHold) -> str:
    if reason is Hold.WOULD_OVERDRAW:
        return "posting it would leave a payer's A/R insurance below zero"
    if reason is Hold.REVERSAL_UNMATCHED:
        return "the reversal matches no current or held adjudication of this claim by this payer"
    return "another adjudication of this claim by this payer is current"
