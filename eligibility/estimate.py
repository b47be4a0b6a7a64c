"""The patient's estimate for a planned visit: fee schedule, deductible, coinsurance, copay.

Per planned service, in order (the common commercial design, and the one the
clearinghouse simulator adjudicates with, so estimate and 835 agree):

1. allowed = fee schedule amount x units (the payer's contracted rate, not the charge);
2. when the plan has a copay for the service type, the patient owes the copay (never
   more than the allowed amount) and the deductible and coinsurance do not apply;
3. otherwise the remaining deductible takes the allowed amount first, then coinsurance
   applies to the rest (rounded half up to the cent);
4. the patient's total never exceeds the remaining out-of-pocket maximum.

Money is integer cents throughout; the coinsurance fraction is a Decimal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from eligibility.summary import GENERAL_MEDICAL, BenefitsSummary, ServiceBenefits, _money


class EstimateError(ValueError):
    """A planned service cannot be priced (not on the fee schedule, bad units)."""


@dataclass(frozen=True, slots=True)
class PlannedService:
    procedure: str
    units: int = 1
    service_type: str = GENERAL_MEDICAL  # which benefits apply (98 office visit, 5 lab ...)


@dataclass(frozen=True, slots=True)
class CostSharing:
    """The plan terms an estimate needs (in network, individual), from a summary or by hand."""

    deductible_remaining_cents: int = 0
    coinsurance: Decimal = Decimal(0)  # fraction: 0.2 = 20 %
    copays: Mapping[str, int] = field(default_factory=dict)  # service type -> copay cents
    out_of_pocket_remaining_cents: int | None = None

    @classmethod
    def from_summary(cls, summary: BenefitsSummary, *, network: str = "in") -> CostSharing:
        """Individual, in-network terms (falling back to "both" / unspecified network)."""
        general = summary.service(GENERAL_MEDICAL) or ServiceBenefits(GENERAL_MEDICAL)
        copays: dict[str, int] = {}
        for service in summary.services:
            chosen = _pick(service.copays, network)
            if chosen is not None:
                copays[service.service_type] = chosen.cents
        coinsurance = _pick(general.coinsurance, network)
        deductible = _pick(general.deductibles, network)
        oop = _pick(general.out_of_pocket, network)
        return cls(
            deductible_remaining_cents=(deductible.remaining_cents or 0) if deductible else 0,
            coinsurance=coinsurance.fraction if coinsurance else Decimal(0),
            copays=copays,
            out_of_pocket_remaining_cents=oop.remaining_cents if oop else None,
        )


def _pick(items: Sequence[Any], network: str) -> Any:
    for wanted in (network, "both", "unknown"):
        for item in items:
            if item.level == "individual" and item.network == wanted:
                return item
    return None


@dataclass(frozen=True, slots=True)
class LineEstimate:
    procedure: str
    units: int
    allowed_cents: int
    copay_cents: int
    deductible_cents: int
    coinsurance_cents: int

    @property
    def patient_cents(self) -> int:
        return self.copay_cents + self.deductible_cents + self.coinsurance_cents

    @property
    def payer_cents(self) -> int:
        return self.allowed_cents - self.patient_cents

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "procedure": self.procedure,
            "units": self.units,
            "allowed": _money(self.allowed_cents),
            "copay": _money(self.copay_cents),
            "deductible": _money(self.deductible_cents),
            "coinsurance": _money(self.coinsurance_cents),
            "patient": _money(self.patient_cents),
            "payer": _money(self.payer_cents),
        }


@dataclass(frozen=True, slots=True)
class Estimate:
    lines: tuple[LineEstimate, ...]
    deductible_remaining_after_cents: int

    @property
    def allowed_cents(self) -> int:
        return sum(line.allowed_cents for line in self.lines)

    @property
    def patient_cents(self) -> int:
        return sum(line.patient_cents for line in self.lines)

    @property
    def payer_cents(self) -> int:
        return self.allowed_cents - self.patient_cents

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "lines": [line.to_json_dict() for line in self.lines],
            "allowed": _money(self.allowed_cents),
            "patient": _money(self.patient_cents),
            "payer": _money(self.payer_cents),
            "deductible_remaining_after": _money(self.deductible_remaining_after_cents),
        }


def _share(amount_cents: int, fraction: Decimal) -> int:
    return int((Decimal(amount_cents) * fraction).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def estimate_visit(
    services: Sequence[PlannedService], fee_schedule: Mapping[str, int], terms: CostSharing
) -> Estimate:
    """Price each planned service and split it between payer and patient (see module doc)."""
    if not Decimal(0) <= terms.coinsurance <= Decimal(1):
        raise EstimateError("coinsurance must be a fraction between 0 and 1")
    deductible_left = max(terms.deductible_remaining_cents, 0)
    oop_left = terms.out_of_pocket_remaining_cents
    lines: list[LineEstimate] = []
    for service in services:
        if service.procedure not in fee_schedule:
            raise EstimateError(f"procedure {service.procedure} is not on the fee schedule")
        if not isinstance(service.units, int) or service.units < 1:
            raise EstimateError(f"procedure {service.procedure}: units must be a whole number of at least 1")
        allowed = fee_schedule[service.procedure] * service.units
        copay = terms.copays.get(service.service_type)
        if copay is not None:
            parts = [min(copay, allowed), 0, 0]
        else:
            deductible = min(deductible_left, allowed)
            deductible_left -= deductible
            parts = [0, deductible, _share(allowed - deductible, terms.coinsurance)]
        if oop_left is not None:
            # The out-of-pocket maximum caps what the patient pays; copay, deductible and
            # coinsurance are cut in that order of last-applied first.
            for index in (2, 1, 0):
                over = sum(parts) - oop_left
                if over <= 0:
                    break
                parts[index] -= min(over, parts[index])
            oop_left -= sum(parts)
        lines.append(LineEstimate(service.procedure, service.units, allowed, parts[0], parts[1], parts[2]))
    return Estimate(tuple(lines), deductible_left)
