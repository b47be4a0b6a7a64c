"""The simulated payer's rules: front-end edits (277CA) and adjudication (835).

Pure functions over ``edi.claims.Claim``: the same claim always gets the same answer.
Every rule is documented in docs/simulator.md; amounts are integer cents.

Front end (277CA), checked in this order, first hit rejects the claim:

- an NPI (billing, rendering, referring, supervising, facility, line rendering) with a
  bad check digit → ``A7:562`` with the entity code (85, 82, DN, DQ, 77);
- a subscriber member id shorter than 5 characters → ``A7:164:IL``;
- a procedure on :data:`PRIOR_AUTH_PROCEDURES` without REF*G1 → ``A7:21`` + ``A7:460``.

Adjudication (835), per line, then per claim:

- timely filing: a line whose service date is more than :data:`FILING_LIMIT_DAYS` (per
  claim filing indicator) before the 837's creation date is denied ``CO-29``;
- a drug code (HCPCS J-code) without an NDC (LIN) is denied ``CO-16`` + RARC ``M119``;
- a column-two code billed on the same day as its column-one code
  (:data:`BUNDLED_PAIRS`) without modifier 59/XE/XS/XP/XU is denied ``CO-97`` + ``M15``;
- otherwise allowed = :data:`FEE_SCHEDULE` x units (at most the charge), or 80% of the
  charge for procedures not on it; ``CO-45`` = charge - allowed;
- the plan (:func:`plan_for`) then takes its copay (``PR-3``, office E/M codes on copay
  plans), the deductible (``PR-1``) until the member's annual deductible is met, and
  coinsurance (``PR-2``) on the rest; the payer pays what remains.

Deductible met so far is tracked per (payer, member, year) across the claims of one
837, in file order; each 837 starts from zero (answers depend on the file alone; what the
payer remembers between files, for replacements and forward balances, is in
``claims_server.simulator.book``).

Coordination of benefits (:func:`coordinate`): a claim billed to a later payer (SBR01 not
P) with the prior payers' adjudication (2320 AMT*D and CAS, 2430 SVD/CAS/DTP*573) is
adjudicated from that data, as a supplemental plan does, line by line:

- the same line edits (NDC, bundling; timely filing counted from the prior payer's
  adjudication date): a line that fails one is denied for what the prior payer left to
  the patient;
- otherwise the payer pays what the last prior payer left to the patient (its PR), up to
  its own allowed amount less what the prior payers paid: ``min(PR, max(0, allowed -
  prior paid))``, and leaves the rest of that PR (never more) as PR with its CARCs;
- the prior payers' adjudication is restated: their contractual (CO-45) as CO-45, their
  payments and other adjustments as OA-23 (the impact of prior payers' adjudication), so
  ``SVC02 - CAS = SVC03`` and the payer moves only what the prior payer left open on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from edi.claims import CasAdjustment, Claim, ServiceLine
from edi.identifiers import is_valid_npi

#: Allowed amount per unit, in cents (a fictitious fee schedule, roughly Medicare-like).
FEE_SCHEDULE: dict[str, int] = {
    "99202": 7_200,
    "99203": 11_200,
    "99204": 16_800,
    "99205": 22_100,
    "99211": 2_300,
    "99212": 5_600,
    "99213": 9_100,
    "99214": 12_900,
    "99215": 18_100,
    "36415": 300,
    "80048": 1_000,
    "80053": 1_300,
    "83036": 1_300,
    "85025": 1_000,
    "93000": 1_700,
    "93010": 800,
    "71045": 2_600,
    "71046": 3_200,
    "97110": 2_900,
    "90471": 1_800,
    "G0439": 13_200,
}

#: Office and outpatient E/M codes: the copay applies to these on copay plans.
OFFICE_VISITS = frozenset({"99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215"})

#: (column one, column two): the second is a component of the first when billed the same day.
BUNDLED_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("93000", "93010"), ("80053", "80048"), ("71046", "71045")}
)
#: Modifiers that mark a column-two service as distinct (NCCI-associated modifiers).
DISTINCT_MODIFIERS = frozenset({"59", "XE", "XS", "XP", "XU"})

#: Procedures this payer authorizes in advance (advanced imaging).
PRIOR_AUTH_PROCEDURES = frozenset({"70551", "70553", "72148", "73721", "74177"})

#: Days after the date of service within which a claim must arrive, by SBR09 (strictest of
#: the payer contracts the simulator plays; a practice's own figure may be looser).
FILING_LIMIT_DAYS: dict[str, int] = {"MB": 365, "MA": 365, "MC": 90}
DEFAULT_FILING_LIMIT_DAYS = 180


@dataclass(frozen=True, slots=True)
class Plan:
    """Patient cost sharing: annual deductible, coinsurance (percent), E/M copay, all in cents."""

    name: str
    deductible_cents: int
    coinsurance_percent: int
    office_copay_cents: int = 0


PLANS: dict[str, Plan] = {
    "medicare_b": Plan("Medicare Part B", 25_700, 20),
    "medicaid": Plan("Medicaid", 0, 0),
    "commercial": Plan("Commercial, deductible and coinsurance", 50_000, 20),
    "copay": Plan("Commercial, office copay", 25_000, 20, office_copay_cents=3_000),
}
#: Payer ids whose members are on the copay plan; everyone else follows the filing indicator.
COPAY_PAYERS = frozenset({"DEMOSUMMIT"})


def plan_for(payer_id: str, filing_indicator: str) -> Plan:
    """The plan a claim is adjudicated under."""
    if payer_id in COPAY_PAYERS or filing_indicator in ("HM", "12"):
        return PLANS["copay"]
    if filing_indicator in ("MB", "MA"):
        return PLANS["medicare_b"]
    if filing_indicator == "MC":
        return PLANS["medicaid"]
    return PLANS["commercial"]


# -- front end (277CA) ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrontEndVerdict:
    """Accepted, or rejected with STC composites (category, status, entity)."""

    accepted: bool
    statuses: tuple[tuple[str, str, str], ...]
    message: str = ""


def _npis(claim: Claim) -> list[tuple[str, str | None]]:
    parties = [("85", claim.billing_provider.npi)]
    for entity, provider in (
        ("82", claim.rendering),
        ("DN", claim.referring),
        ("DQ", claim.supervising),
        ("77", claim.service_facility),
    ):
        if provider is not None and provider.npi:
            parties.append((entity, provider.npi))
    parties += [("82", line.rendering.npi) for line in claim.lines if line.rendering and line.rendering.npi]
    return parties


def front_end(claim: Claim) -> FrontEndVerdict:
    """The payer front end's 277CA verdict on one claim."""
    for entity, npi in _npis(claim):
        if not npi or not is_valid_npi(npi):
            return FrontEndVerdict(False, (("A7", "562", entity),), "NPI MISSING OR INVALID")
    if len(claim.subscriber.member_id.strip()) < 5:
        return FrontEndVerdict(False, (("A7", "164", "IL"),), "SUBSCRIBER ID INVALID")
    if not (claim.prior_authorization or "").strip() and any(
        line.procedure in PRIOR_AUTH_PROCEDURES for line in claim.lines
    ):
        return FrontEndVerdict(False, (("A7", "21", ""), ("A7", "460", "")), "PRIOR AUTHORIZATION MISSING")
    return FrontEndVerdict(True, (("A2", "20", "PR"),))


# -- adjudication (835) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Adjustment:
    group: str  # CO, PR, OA
    reason: str  # CARC
    amount_cents: int


@dataclass(frozen=True, slots=True)
class LineResult:
    line: ServiceLine
    allowed_cents: int
    paid_cents: int
    adjustments: tuple[Adjustment, ...]
    remarks: tuple[str, ...] = ()

    @property
    def patient_cents(self) -> int:
        return sum(a.amount_cents for a in self.adjustments if a.group == "PR")


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """One adjudication as the 835 reports it (CLP loop).

    ``claim_adjustments``: claim-level CAS (a later payer restating the prior payer's
    claim-level patient responsibility). ``reversal``: this is the payer taking the
    adjudication back (CLP02 = 22): every amount of the 835 is written negated
    (TR3 005010X221A1 1.10.2.8); the properties below stay those of the adjudication.
    """

    claim: Claim
    lines: tuple[LineResult, ...]
    payer_claim_number: str
    claim_adjustments: tuple[Adjustment, ...] = ()
    reversal: bool = False

    @property
    def sign(self) -> int:
        """-1 for a reversal (its 835 amounts), else 1."""
        return -1 if self.reversal else 1

    @property
    def charge_cents(self) -> int:
        return sum(r.line.charge_cents for r in self.lines)

    @property
    def paid_cents(self) -> int:
        return sum(r.paid_cents for r in self.lines) - sum(a.amount_cents for a in self.claim_adjustments)

    @property
    def patient_cents(self) -> int:
        return sum(r.patient_cents for r in self.lines) + sum(
            a.amount_cents for a in self.claim_adjustments if a.group == "PR"
        )

    @property
    def adjudicated_status(self) -> str:
        """CLP02 of the adjudication: 4 denied (nothing allowed), else 1/2/3 processed as
        primary/secondary/tertiary."""
        if all(r.allowed_cents == 0 for r in self.lines):
            return "4"
        return {"S": "2", "T": "3"}.get(self.claim.subscriber.responsibility, "1")

    @property
    def status_code(self) -> str:
        """CLP02 as written: 22 for a reversal, else :attr:`adjudicated_status`."""
        return "22" if self.reversal else self.adjudicated_status


@dataclass
class DeductibleTracker:
    """Deductible met per (payer id, member id, year) within one 837."""

    met: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def take(self, key: tuple[str, str, int], plan: Plan, amount: int) -> int:
        """How much of ``amount`` goes to the deductible; records it as met."""
        remaining = max(0, plan.deductible_cents - self.met.get(key, 0))
        applied = min(remaining, amount)
        self.met[key] = self.met.get(key, 0) + applied
        return applied


def _percent(amount: int, percent: int) -> int:
    """``percent`` of ``amount`` cents, rounded half up to the cent (integers only)."""
    return (amount * percent + 50) // 100


def _denied(line: ServiceLine, reason: str, remarks: tuple[str, ...] = ()) -> LineResult:
    return LineResult(line, 0, 0, (Adjustment("CO", reason, line.charge_cents),), remarks)


def _allowed(line: ServiceLine) -> int:
    fee = FEE_SCHEDULE.get(line.procedure or "")
    if fee is None:
        allowed = _percent(line.charge_cents, 80)
    else:
        units = line.units if line.units > 0 else 1
        allowed = int(fee * units)
    return min(allowed, line.charge_cents)


def _line_edit(
    line: ServiceLine, by_date: dict[date | None, set[str]], *, received: date, since: date, limit: int
) -> tuple[str, tuple[str, ...]] | None:
    """The CARC (and RARCs) of the first line edit ``line`` fails, else None.

    ``since``: when the filing clock starts (the date of service; for a later payer, the
    prior payer's adjudication when that is later).
    """
    code = line.procedure or ""
    if (received - since).days > limit:
        return "29", ()
    if code.startswith("J") and not line.ndc:
        return "16", ("M119",)
    same_day = by_date.get(line.service_date, set())
    if any((first, code) in BUNDLED_PAIRS for first in same_day) and not (
        DISTINCT_MODIFIERS & set(line.modifiers)
    ):
        return "97", ("M15",)
    return None


def _by_date(claim: Claim) -> dict[date | None, set[str]]:
    by_date: dict[date | None, set[str]] = {}
    for line in claim.lines:
        by_date.setdefault(line.service_date, set()).add(line.procedure or "")
    return by_date


def _filing_limit(claim: Claim) -> int:
    return FILING_LIMIT_DAYS.get(claim.subscriber.claim_filing_indicator, DEFAULT_FILING_LIMIT_DAYS)


def adjudicate(
    claim: Claim, *, received: date, payer_claim_number: str, deductibles: DeductibleTracker
) -> ClaimResult:
    """The payer's decision on every line of an accepted claim (see the module docstring)."""
    if coordinates_benefits(claim):
        return coordinate(claim, received=received, payer_claim_number=payer_claim_number)
    limit = _filing_limit(claim)
    plan = plan_for(claim.payer.payer_id, claim.subscriber.claim_filing_indicator)
    by_date = _by_date(claim)
    results: list[LineResult] = []
    for line in claim.lines:
        code = line.procedure or ""
        service_date = line.service_date or received
        year_key = (claim.payer.payer_id, claim.subscriber.member_id, service_date.year)
        edit = _line_edit(line, by_date, received=received, since=service_date, limit=limit)
        if edit is not None:
            results.append(_denied(line, *edit))
            continue
        allowed = _allowed(line)
        adjustments: list[Adjustment] = []
        if line.charge_cents > allowed:
            adjustments.append(Adjustment("CO", "45", line.charge_cents - allowed))
        left = allowed
        copay = min(plan.office_copay_cents, left) if code in OFFICE_VISITS else 0
        left -= copay
        deductible = 0 if copay else deductibles.take(year_key, plan, left)
        left -= deductible
        coinsurance = 0 if copay else _percent(left, plan.coinsurance_percent)
        left -= coinsurance
        for reason, amount in (("1", deductible), ("2", coinsurance), ("3", copay)):
            if amount:
                adjustments.append(Adjustment("PR", reason, amount))
        results.append(LineResult(line, allowed, left, tuple(adjustments)))
    return ClaimResult(claim, tuple(results), payer_claim_number)


# -- coordination of benefits (a later payer) -----------------------------------------------------

#: SBR01 payer responsibility codes in order (primary, secondary, tertiary, then four to eleven).
RESPONSIBILITY_ORDER = {code: n for n, code in enumerate("PSTABCDEFGH")}
#: The prior payers' payments and adjustments, restated by a later payer (CARC 23).
PRIOR_PAYER_REASON = "23"
#: The contractual adjustment a later payer restates as it is.
CONTRACTUAL_REASON = "45"


def coordinates_benefits(claim: Claim) -> bool:
    """A claim billed to a later payer with a prior payer's adjudication (2320 AMT*D or 2430)."""
    return claim.subscriber.responsibility != "P" and any(
        o.paid_cents is not None or o.line_adjudications for o in claim.other_payers
    )


@dataclass(frozen=True, slots=True)
class PriorLine:
    """What the prior payers did with one line: paid in all (SVD02), the PR the last of them
    left (its CAS PR), its contractual (CO-45) and when it adjudicated (DTP*573)."""

    paid_cents: int
    patient: tuple[Adjustment, ...]
    contractual_cents: int
    adjudicated: date | None = None

    @property
    def patient_cents(self) -> int:
        return sum(a.amount_cents for a in self.patient)


def _as_adjustments(cas: Iterable[CasAdjustment]) -> tuple[Adjustment, ...]:
    return tuple(Adjustment(a.group, a.reason, a.amount_cents) for a in cas if a.amount_cents)


def prior_lines(claim: Claim) -> tuple[list[PriorLine], tuple[Adjustment, ...]]:
    """Per line of ``claim``, the prior payers' adjudication; and the claim-level PR the last
    prior payer left (2320 CAS PR) when its lines are reported in 2430.

    Without any 2430, the last prior payer's claim-level AMT*D and PR (CAS PR, else AMT*EAF
    as coinsurance) are spread over the lines in order, the rest of each charge restated as
    contractual.
    """
    others = sorted(claim.other_payers, key=lambda o: RESPONSIBILITY_ORDER.get(o.responsibility, 99))
    last = others[-1]
    if any(o.line_adjudications for o in others):
        out: list[PriorLine] = []
        for number, _line in enumerate(claim.lines, start=1):
            paid = 0
            patient: tuple[Adjustment, ...] = ()
            contractual = 0
            adjudicated: date | None = None
            for other in others:
                mine = [la for la in other.line_adjudications if la.line_number == number]
                paid += sum(la.paid_cents for la in mine)
                if other is last:
                    cas = [a for la in mine for a in la.adjustments]
                    patient = _as_adjustments(a for a in cas if a.group == "PR")
                    contractual = sum(
                        a.amount_cents for a in cas if a.group == "CO" and a.reason == CONTRACTUAL_REASON
                    )
                    dates = [la.adjudication_date for la in mine if la.adjudication_date != date.min]
                    adjudicated = max(dates, default=other.adjudication_date)
            out.append(PriorLine(paid, patient, contractual, adjudicated))
        claim_pr = _as_adjustments(a for a in last.adjustments if a.group == "PR")
        return out, claim_pr
    paid_left = sum(o.paid_cents or 0 for o in others)
    patient_left = list(_as_adjustments(a for a in last.adjustments if a.group == "PR"))
    if not patient_left and last.remaining_patient_liability_cents:
        patient_left = [Adjustment("PR", "2", last.remaining_patient_liability_cents)]
    out = []
    for line in claim.lines:
        paid = min(paid_left, max(line.charge_cents, 0))
        paid_left -= paid
        room = max(line.charge_cents - paid, 0)
        patient = []
        while patient_left and room:
            first = patient_left[0]
            take = min(first.amount_cents, room)
            patient.append(Adjustment("PR", first.reason, take))
            room -= take
            if take == first.amount_cents:
                patient_left.pop(0)
            else:
                patient_left[0] = Adjustment("PR", first.reason, first.amount_cents - take)
        out.append(PriorLine(paid, tuple(patient), room, last.adjudication_date))
    return out, ()


def _after_payment(patient: Sequence[Adjustment], paid: int) -> list[Adjustment]:
    """The PR left once the payer pays ``paid`` of it (taken from the first CARCs first)."""
    left: list[Adjustment] = []
    for a in patient:
        take = min(a.amount_cents, paid)
        paid -= take
        if a.amount_cents - take:
            left.append(Adjustment("PR", a.reason, a.amount_cents - take))
    return left


def coordinate(claim: Claim, *, received: date, payer_claim_number: str) -> ClaimResult:
    """A later payer's decision from the prior payers' adjudication (module docstring)."""
    limit = _filing_limit(claim)
    by_date = _by_date(claim)
    priors, claim_pr = prior_lines(claim)
    results: list[LineResult] = []
    for line, prior in zip(claim.lines, priors, strict=True):
        left = prior.patient_cents
        service_date = line.service_date or received
        since = max(service_date, prior.adjudicated or service_date)
        # A line the prior payer left nothing on asks this payer for nothing: no edit to fail.
        edit = _line_edit(line, by_date, received=received, since=since, limit=limit) if left else None
        allowed = 0 if edit is not None else _allowed(line)
        paid = 0 if edit is not None else min(left, max(0, allowed - prior.paid_cents))
        adjustments: list[Adjustment] = []
        if prior.contractual_cents:
            adjustments.append(Adjustment("CO", CONTRACTUAL_REASON, prior.contractual_cents))
        if edit is not None:
            adjustments.append(Adjustment("CO", edit[0], left))
        restated = line.charge_cents - left - prior.contractual_cents
        if restated:
            adjustments.append(Adjustment("OA", PRIOR_PAYER_REASON, restated))
        if edit is None:
            adjustments += _after_payment(prior.patient, paid)
        results.append(LineResult(line, allowed, paid, tuple(adjustments), edit[1] if edit else ()))
    claim_adjustments: tuple[Adjustment, ...] = ()
    if claim_pr:
        # The prior payer's claim-level PR is inside the lines' OA-23 (their SVD02 are before
        # it): restated as PR, with an OA-23 taking as much back so the claim balances.
        restated = sum(a.amount_cents for a in claim_pr)
        claim_adjustments = (*claim_pr, Adjustment("OA", PRIOR_PAYER_REASON, -restated))
    return ClaimResult(claim, tuple(results), payer_claim_number, claim_adjustments)
