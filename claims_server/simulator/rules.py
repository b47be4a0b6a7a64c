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
837, in file order; each 837 starts from zero (the simulator keeps no memory between
files, so answers depend on the file alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from edi.claims import Claim, ServiceLine
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
    claim: Claim
    lines: tuple[LineResult, ...]
    payer_claim_number: str

    @property
    def charge_cents(self) -> int:
        return sum(r.line.charge_cents for r in self.lines)

    @property
    def paid_cents(self) -> int:
        return sum(r.paid_cents for r in self.lines)

    @property
    def patient_cents(self) -> int:
        return sum(r.patient_cents for r in self.lines)

    @property
    def status_code(self) -> str:
        """CLP02: 4 denied (nothing allowed), else 1/2/3 processed as primary/secondary/tertiary."""
        if all(r.allowed_cents == 0 for r in self.lines):
            return "4"
        return {"S": "2", "T": "3"}.get(self.claim.subscriber.responsibility, "1")


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


def adjudicate(
    claim: Claim, *, received: date, payer_claim_number: str, deductibles: DeductibleTracker
) -> ClaimResult:
    """The payer's decision on every line of an accepted claim (see the module docstring)."""
    limit = FILING_LIMIT_DAYS.get(claim.subscriber.claim_filing_indicator, DEFAULT_FILING_LIMIT_DAYS)
    plan = plan_for(claim.payer.payer_id, claim.subscriber.claim_filing_indicator)
    by_date: dict[date | None, set[str]] = {}
    for line in claim.lines:
        by_date.setdefault(line.service_date, set()).add(line.procedure or "")
    results: list[LineResult] = []
    for line in claim.lines:
        code = line.procedure or ""
        service_date = line.service_date or received
        year_key = (claim.payer.payer_id, claim.subscriber.member_id, service_date.year)
        if (received - service_date).days > limit:
            results.append(_denied(line, "29"))
            continue
        if code.startswith("J") and not line.ndc:
            results.append(_denied(line, "16", ("M119",)))
            continue
        same_day = by_date.get(line.service_date, set())
        if any((first, code) in BUNDLED_PAIRS for first in same_day) and not (
            DISTINCT_MODIFIERS & set(line.modifiers)
        ):
            results.append(_denied(line, "97", ("M15",)))
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
