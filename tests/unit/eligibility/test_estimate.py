"""The patient's estimate, to the cent, for the worked examples (hand computed in the comments)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from eligibility.estimate import CostSharing, EstimateError, PlannedService, estimate_visit
from eligibility.summary import Accumulator, BenefitsSummary, Coinsurance, Copay, ServiceBenefits

FEES = {"99214": 20_000, "80053": 3_547, "99213": 12_000, "93000": 2_500, "36415": 1_000}


def test_deductible_partly_met() -> None:
    # $500 deductible, $350.00 met -> $150.00 remaining; 20 % coinsurance.
    # 99214 allowed $200.00: deductible $150.00, coinsurance 20 % x $50.00 = $10.00 -> patient $160.00.
    # 80053 allowed $35.47: deductible already used up, coinsurance 20 % x $35.47 = $7.094 -> $7.09.
    terms = CostSharing(deductible_remaining_cents=15_000, coinsurance=Decimal("0.2"))
    result = estimate_visit([PlannedService("99214"), PlannedService("80053")], FEES, terms)
    first, second = result.lines
    assert (first.allowed_cents, first.deductible_cents, first.coinsurance_cents) == (20_000, 15_000, 1_000)
    assert (first.patient_cents, first.payer_cents) == (16_000, 4_000)
    assert (second.deductible_cents, second.coinsurance_cents, second.payer_cents) == (0, 709, 2_838)
    assert (result.patient_cents, result.payer_cents, result.allowed_cents) == (16_709, 6_838, 23_547)
    assert result.deductible_remaining_after_cents == 0
    assert result.to_json_dict()["patient"] == "167.09"


def test_coinsurance_after_deductible_rounds_half_up() -> None:
    # Deductible met. 93000 x 3 units: allowed $75.00, 30 % = $22.50.
    # 36415 allowed $10.00 x 1, 30 % = $3.00; 80053 $35.47 x 30 % = $10.641 -> $10.64.
    # A half cent rounds up: allowed $1.15 at 30 % = 34.5 cents -> 35 cents.
    terms = CostSharing(deductible_remaining_cents=0, coinsurance=Decimal("0.3"))
    fees = {**FEES, "99999": 115}
    result = estimate_visit(
        [
            PlannedService("93000", 3),
            PlannedService("36415"),
            PlannedService("80053"),
            PlannedService("99999"),
        ],
        fees,
        terms,
    )
    assert [line.coinsurance_cents for line in result.lines] == [2_250, 300, 1_064, 35]
    assert result.patient_cents == 3_649 and result.payer_cents == 7_500 + 1_000 + 3_547 + 115 - 3_649


def test_copay_only() -> None:
    # Office visit on a copay plan: $30.00 copay, no deductible or coinsurance on it, even with
    # $250.00 of deductible left; payer pays $120.00 - $30.00 = $90.00.
    terms = CostSharing(deductible_remaining_cents=25_000, coinsurance=Decimal("0.2"), copays={"98": 3_000})
    result = estimate_visit([PlannedService("99213", service_type="98")], FEES, terms)
    (line,) = result.lines
    assert (line.copay_cents, line.deductible_cents, line.coinsurance_cents) == (3_000, 0, 0)
    assert (result.patient_cents, result.payer_cents) == (3_000, 9_000)
    assert result.deductible_remaining_after_cents == 25_000
    # A copay is never more than the allowed amount.
    cheap = estimate_visit([PlannedService("36415", service_type="98")], FEES, terms)
    assert cheap.patient_cents == 1_000 and cheap.payer_cents == 0


def test_out_of_pocket_maximum_caps_the_patient() -> None:
    # $100.00 of out-of-pocket left: deductible $150.00 on a $200.00 visit is cut to $100.00,
    # coinsurance ($10.00) first, then the deductible ($150.00 -> $100.00).
    terms = CostSharing(15_000, Decimal("0.2"), out_of_pocket_remaining_cents=10_000)
    result = estimate_visit([PlannedService("99214")], FEES, terms)
    (line,) = result.lines
    assert (line.deductible_cents, line.coinsurance_cents, line.patient_cents) == (10_000, 0, 10_000)


def test_terms_from_a_summary_prefer_in_network_individual() -> None:
    general = ServiceBenefits("30")
    general.coinsurance = [
        Coinsurance(Decimal("0.4"), "individual", "out"),
        Coinsurance(Decimal("0.2"), "individual", "in"),
    ]
    general.deductibles = [
        Accumulator("family", "in", 100_000, 40_000, 60_000),
        Accumulator("individual", "in", 50_000, 35_000, 15_000),
    ]
    general.out_of_pocket = [Accumulator("individual", "both", 300_000, 15_000, 285_000)]
    office = ServiceBenefits("98", copays=[Copay(2_500, "individual", "in", "visit")])
    summary = BenefitsSummary("active", services=[general, office])
    terms = CostSharing.from_summary(summary)
    assert terms == CostSharing(15_000, Decimal("0.2"), {"98": 2_500}, 285_000)
    assert CostSharing.from_summary(summary, network="out").coinsurance == Decimal("0.4")


def test_unpriced_or_bad_services_are_clear_errors() -> None:
    terms = CostSharing()
    with pytest.raises(EstimateError, match="99499 is not on the fee schedule"):
        estimate_visit([PlannedService("99499")], FEES, terms)
    with pytest.raises(EstimateError, match="units"):
        estimate_visit([PlannedService("99213", 0)], FEES, terms)
    with pytest.raises(EstimateError, match="fraction"):
        estimate_visit([PlannedService("99213")], FEES, CostSharing(coinsurance=Decimal("20")))
