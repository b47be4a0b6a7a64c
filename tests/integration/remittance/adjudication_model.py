"""The reference model of docs/adjudication-history.md: what the ledger must hold after any 835s.

Pure Python, no database: per encounter ``L`` and payer ``P`` the history of adjudications
(current, held, reversed, superseded, applied), and one counter of balances derived from the
entries of the current ones. A balance key is ``(account, encounter, payer, remittance)`` with
``None`` where the dimension does not apply (A/R insurance has a payer, cash clearing and
unapplied payments a remittance, everything else only the encounter). The rules are numbered
as in the document; the tests compare the real ledger with :attr:`Model.ledger` to the cent.

Where the document is silent, the model chooses (and says so here): a denial is superseded
only when the adjudication replacing it posts; the room never goes below zero; a reversal's
mirror puts its cash leg in the reversal's remittance and leaves every other leg's dimensions
(so reversing a held duplicate leaves the target's unapplied leg on the target's remittance);
the retry makes passes over the held ones in arrival order until a pass changes nothing, and
a held one that fails again keeps the latest reason; a person's ``post`` mirrors the current
adjudication in its own remittance (its money leaves cash clearing, as a ``reject`` does).
The retry does not release a held possible duplicate that repeats an adjudication the payer
reversed (same CLP07, CLP03, CLP04, CLP05), unless the reversal came in its own remittance.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

AR_INS, AR_PT, CASH, UNAPPLIED = "ar_insurance", "ar_patient", "cash_clearing", "unapplied_payments"
CONTRACTUAL, OTHER = "contractual_adjustments", "other_adjustments"
INTEREST, OFFSET, PROVIDER = "interest_income", "payer_offset", "provider_adjustments"
CONTRA = {"CO": CONTRACTUAL, "OA": OTHER, "PI": OTHER, "CR": OTHER}
#: CARCs that price a service (posted on a line paid zero); any other non-PR reason there is a denial.
PRICING_CARCS = frozenset({"23", "42", "45", "59", "94", "131", "144", "237", "253"})
PLB_ACCOUNT = {"L6": INTEREST} | dict.fromkeys(("WO", "WU", "FB", "72", "J1", "OB"), OFFSET)

Cas = tuple[str, str, int]  # (group, CARC, cents)


@dataclass(eq=False)
class Adjudication:
    """One CLP: ``lines`` are (charge, paid, CAS) per SVC; ``cas`` the claim-level CAS."""

    encounter: str
    payer: str
    status: str
    clp07: str
    charge: int
    paid: int
    remittance: str
    lines: list[tuple[int, int, list[Cas]]] = field(default_factory=list)
    cas: list[Cas] = field(default_factory=list)
    clp05: int | None = None  # as sent; None: the Σ of its PR amounts
    state: str = "new"  # current | held | reversed | superseded | applied | rejected
    hold: str | None = None
    kind: str | None = None
    entry: Counter = field(default_factory=Counter)
    reverses: Adjudication | None = None  # a reversal: the adjudication it took back

    def key(self) -> tuple[str, str, int, int, int]:
        """(payer, CLP07, CLP03, CLP04, CLP05): two adjudications with one key are copies."""
        pr = self.clp05 if self.clp05 is not None else self.amounts()[0]
        return self.payer, self.clp07 or "", self.charge, self.paid, pr

    def amounts(self) -> tuple[int, int, list[tuple[str, int]]]:
        """(pr, held, [(contra account, cents)] in file order: line by line, then claim level)."""
        pr = held = 0
        adjustments = []
        denied_claim = self.status == "4"
        for charge, paid, cas in [*self.lines, (None, None, self.cas)]:
            denied_line = charge is not None and paid == 0 and charge != 0
            denied_line = denied_line and any(g != "PR" and r not in PRICING_CARCS for g, r, _ in cas)
            for group, reason, cents in cas:
                if denied_claim or (denied_line and group != "PR" and reason not in PRICING_CARCS):
                    held += cents
                elif group == "PR":
                    pr += cents
                elif reason != "23":  # the prior payer's adjudication restated: stored, not posted
                    adjustments.append((CONTRA[group], cents))
        return pr, held, adjustments


class Model:
    """``payers[L]`` is the encounter's coverage chain (payer keys, order 1, 2, 3)."""

    def __init__(self, payers: dict[str, list[str]]):
        self.payers = payers
        self.ledger: Counter = Counter()
        self.history: dict[str, list[Adjudication]] = {enc: [] for enc in payers}
        self.paths: Counter = Counter()  # which rules fired (for the tests' report of variety)

    def charge(self, encounter: str, cents: int) -> None:
        self.ledger[(AR_INS, encounter, self.payers[encounter][0], None)] += cents

    def plb(self, remittance: str, payer: str, reason: str, cents: int) -> None:
        """A positive PLB is money the payer kept (Dr the account / Cr cash clearing)."""
        self._apply(Counter({(PLB_ACCOUNT.get(reason, PROVIDER), None, payer, None): cents}))
        self._apply(Counter({(CASH, None, None, remittance): -cents}))

    def receive(self, a: Adjudication) -> None:
        self.history[a.encounter].append(a)
        if self._post(a):
            self._retry(a.encounter)

    def decide(self, a: Adjudication, decision: str) -> str | None:
        """A person posts or rejects a held adjudication; returns why it is refused (nothing changed).

        post: the current one of (L, P) is mirrored (in its own remittance: its money leaves cash
        clearing) and superseded, then ``a`` is released and posted; refused if that would leave
        a payer's A/R below zero. reject: ``a``'s hold entry is mirrored, ``a`` is rejected.
        """
        if a.state != "held" or a.hold != "possible_duplicate":
            return "not_held"
        if decision == "reject":
            self._apply(Counter({k: -v for k, v in a.entry.items()}))
            a.state, a.hold = "rejected", None
            self.paths["rejected"] += 1
            return None
        current = self.current(a.encounter, a.payer)
        mirror = Counter({k: -v for k, v in current.entry.items()}) if current is not None else Counter()
        if any(k[0] == AR_INS and self.ledger[k] + v < 0 for k, v in mirror.items()):
            return "would_overdraw"
        ar = (AR_INS, a.encounter, a.payer, None)
        if a.paid + a.amounts()[0] > self.ledger[ar] + mirror[ar]:
            return "would_overdraw"
        self._apply(mirror)
        if current is not None:
            current.state = "superseded"
        assert self._post(a)
        self.paths["posted by a person"] += 1
        self._retry(a.encounter)
        return None

    # -- the rules ---------------------------------------------------------------------------

    def current(self, enc: str, payer: str) -> Adjudication | None:
        return next((h for h in self.history[enc] if h.payer == payer and h.state == "current"), None)

    def _post(self, a: Adjudication, retry: bool = False) -> bool:
        """Post (or apply, for a reversal) ``a``, releasing its hold; else hold it. True if posted."""
        reason = self._reverse(a) if a.status == "22" else self._adjudicate(a, retry)
        if reason is None:
            return True
        self.paths[f"held {reason}" if a.state != "held" else "retried, still held"] += 1
        if a.state != "held":  # held: its money waits in unapplied payments (cash still = BPR02)
            a.entry = Counter(
                {(CASH, None, None, a.remittance): a.paid, (UNAPPLIED, None, None, a.remittance): -a.paid}
            )
            a.entry = Counter({k: v for k, v in a.entry.items() if v})
            self._apply(a.entry)
        a.state, a.hold = "held", reason
        return False

    def _adjudicate(self, a: Adjudication, retry: bool = False) -> str | None:
        enc, payer = a.encounter, a.payer
        current = self.current(enc, payer)  # 1. already current?
        if current is not None and not (current.status == "4" and not current.entry):
            return "possible_duplicate"
        if retry and a.state == "held" and a.hold == "possible_duplicate":
            # A copy of an adjudication the payer reversed (not sent with that reversal): a person decides.
            for h in self.history[enc]:
                if h is not a and h.status != "22" and h.state == "reversed" and h.key() == a.key():
                    by = next((r for r in self.history[enc] if r.reverses is h), None)
                    if by is None or by.remittance != a.remittance:
                        self.paths["kept held: repeats a reversed one"] += 1
                        return "possible_duplicate"
        pr, held, adjustments = a.amounts()
        open_ = self.ledger[(AR_INS, enc, payer, None)]
        if a.paid + pr > open_:  # 2. room
            return "would_overdraw"
        room = max(open_ - a.paid - pr - held, 0)
        chain = self.payers[enc]
        order = chain.index(payer)
        nxt = (AR_INS, enc, chain[order + 1], None) if order + 1 < len(chain) else (AR_PT, enc, None, None)
        ar = (AR_INS, enc, payer, None)
        entry = Counter({(CASH, None, None, a.remittance): a.paid, ar: -a.paid - pr, nxt: pr})  # 3. post
        for account, cents in adjustments:
            x = min(cents, room)  # what exceeds the room is a restatement: stored, not posted
            room -= x
            self.paths["restatement not posted"] += x != cents
            entry[(account, enc, None, None)] += x
            entry[ar] -= x
        if current is not None:
            self.paths["denial superseded"] += 1
            current.state = "superseded"
        earlier = [h for h in self.history[enc] if h.payer == payer and h.state in ("reversed", "superseded")]
        self.paths["released" if a.state == "held" else "posted"] += 1
        self._release(a)
        a.kind = "correction" if earlier else "original"
        self.paths[a.kind] += 1
        a.state, a.hold, a.entry = "current", None, Counter({k: v for k, v in entry.items() if v})
        self._apply(a.entry)
        return None

    def _reverse(self, r: Adjudication) -> str | None:
        def negates(h: Adjudication) -> bool:
            same = not (h.clp07 and r.clp07) or h.clp07 == r.clp07
            return (
                h.payer == r.payer
                and h.status != "22"
                and same
                and (h.charge, h.paid) == (-r.charge, -r.paid)
            )

        candidates = [h for h in self.history[r.encounter] if h is not r and negates(h)]
        target = next((h for h in candidates if h.state == "current"), None)
        target = target or next((h for h in candidates if h.state == "held"), None)
        if target is None:
            return "reversal_unmatched"
        # The mirror: every leg negated; its cash leg is the reversal's remittance's (cash = BPR02).
        mirror = Counter(
            {(k[0], k[1], k[2], r.remittance if k[0] == CASH else k[3]): -v for k, v in target.entry.items()}
        )
        if any(k[0] == AR_INS and self.ledger[k] + v < 0 for k, v in mirror.items()):
            return "would_overdraw"
        self.paths["reversal of a held one" if target.state == "held" else "reversal"] += 1
        self.paths["reversal released"] += r.state == "held"
        self._release(r)
        target.state, target.hold = "reversed", None
        r.kind, r.state, r.hold, r.entry, r.reverses = "reversal", "applied", None, mirror, target
        self._apply(mirror)
        return None

    def _release(self, a: Adjudication) -> None:
        """A held adjudication that now posts: its hold entry is mirrored first."""
        if a.state == "held":
            self._apply(Counter({k: -v for k, v in a.entry.items()}))

    def _retry(self, enc: str) -> None:
        """Held adjudications of ``enc`` are tried again in arrival order until none changes."""
        changed = True
        while changed:
            changed = False
            for h in [h for h in self.history[enc] if h.state == "held"]:
                if h.state == "held" and self._post(h, retry=True):
                    changed = True

    def _apply(self, entry: Counter) -> None:
        self.ledger.update(entry)

    # -- reading -----------------------------------------------------------------------------

    def total(self, account: str, **where: str | None) -> int:
        """Σ of ``account`` over the keys matching ``encounter=``, ``payer=``, ``remittance=``."""
        index = {"encounter": 1, "payer": 2, "remittance": 3}
        return sum(
            v
            for k, v in self.ledger.items()
            if k[0] == account and all(k[index[name]] == value for name, value in where.items())
        )
