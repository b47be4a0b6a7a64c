"""A mixed set of 240 synthetic claims with known planted defects.

Half are clean variations (random diagnoses, services, patients and dates); the other
half each carry exactly one planted defect. The scrubber must find every planted defect
and report nothing else: no false alarm on a clean claim, no collateral finding on a
defective one.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import date, timedelta

import pytest

from coding.scrubber import PayerRules, Scrubber
from edi.claims import Address, Claim, Diagnosis, Provider
from edi.findings import Severity
from tests.unit.coding.factory import TODAY, clean_claim, code_sets, line

# Diagnoses with no Excludes1 conflict among them, no sex or age restriction, all billable.
DX_POOL = ["E119", "I10", "Z794", "E785", "J069", "R519", "K219", "F419", "N390", "J45909", "M25561",
           "R079", "G4700", "H6590", "L03115", "M79601", "R109", "E039", "R0600", "B349", "Z7984"]  # fmt: skip
# (procedure, modifiers, charge in cents, units) building blocks; E/M first.
EM_LINES = [("99213", ("25",), 11000, "1"), ("99214", ("25",), 15000, "1")]
OTHER_LINES = [
    ("93000", (), 4500, "1"),
    ("36415", (), 1200, "1"),
    ("81002", (), 900, "1"),
    ("J3301", (), 2000, "4"),
    ("96372", ("XU",), 3000, "1"),
    ("20610", ("RT",), 9000, "1"),
]


def make_clean(rng: random.Random, number: int) -> Claim:
    dos = date(2026, 1, 1) + timedelta(days=rng.randrange(0, 160))
    dx = rng.sample(DX_POOL, rng.randint(1, 4))
    picks = [rng.choice(EM_LINES)] if rng.random() < 0.8 else []
    picks += rng.sample(OTHER_LINES, rng.randint(1 if picks else 2, 3))
    lines = []
    for code, mods, charge, units in picks:
        pointers = tuple(sorted(rng.sample(range(1, len(dx) + 1), rng.randint(1, min(len(dx), 4)))))
        lines.append(line(code, charge, units=units, modifiers=mods, pointers=pointers, service_date=dos))
    if picks and picks[0][0] in ("99213", "99214") and rng.random() < 0.3:
        lines.append(line("G2211", 1600, service_date=dos))  # add-on with its primary present
    base = clean_claim()
    subscriber = dataclasses.replace(
        base.subscriber,
        sex=rng.choice("FM"),
        birth_date=date(rng.randint(1940, 2010), rng.randint(1, 12), rng.randint(1, 28)),
    )
    return clean_claim(
        patient_control_number=f"SYN{number:06d}{rng.randrange(10**6):06d}",
        diagnoses=[Diagnosis(c) for c in dx],
        lines=lines,
        total_charge_cents=sum(item.charge_cents for item in lines),
        subscriber=subscriber,
        place_of_service=rng.choice(["11", "11", "22", "02", "10"]),
    )


def _retotal(claim: Claim, lines: list) -> Claim:
    return dataclasses.replace(
        claim, lines=lines, total_charge_cents=sum(item.charge_cents for item in lines)
    )


def _append(claim: Claim, *new_lines: object) -> Claim:
    dos = claim.lines[0].service_date
    extra = [dataclasses.replace(item, service_date=dos) for item in new_lines]  # type: ignore[type-var]
    return _retotal(claim, [*claim.lines, *extra])


def _all_lines(claim: Claim, **changes: object) -> Claim:
    return _retotal(claim, [dataclasses.replace(item, **changes) for item in claim.lines])  # type: ignore[arg-type]


def _broken_npi(npi: str) -> str:
    return npi[:9] + str((int(npi[9]) + 1) % 10)


def _first_non_em(claim: Claim) -> int | None:
    for i, item in enumerate(claim.lines):
        if item.procedure not in ("99213", "99214", "G2211"):
            return i
    return None


def _replace_line(claim: Claim, index: int, **changes: object) -> Claim:
    lines = list(claim.lines)
    lines[index] = dataclasses.replace(lines[index], **changes)  # type: ignore[arg-type]
    return _retotal(claim, lines)


def _bad_procedure(claim: Claim) -> Claim:
    index = _first_non_em(claim)
    if index is None:
        return _append(claim, line("Z9999", 1000))
    return _replace_line(claim, index, procedure="Z9999", modifiers=())


def _mue(claim: Claim) -> Claim:
    for i, item in enumerate(claim.lines):
        if item.procedure == "36415":
            return _replace_line(claim, i, units=3)
    return _append(claim, line("36415", 1200, units="3"))


def _ptp(claim: Claim) -> Claim:
    codes = [item.procedure for item in claim.lines]
    extra = [line("93005", 2000)] if "93000" in codes else [line("93000", 4500), line("93005", 2000)]
    return _append(claim, *extra)


def _excludes1(claim: Claim) -> Claim:
    dx = [Diagnosis("E119"), *[d for d in claim.diagnoses if d.code != "E119"][:2], Diagnosis("E109")]
    return _keep_pointers(claim, dx)


def _keep_pointers(claim: Claim, dx: list[Diagnosis]) -> Claim:
    lines = [dataclasses.replace(item, diagnosis_pointers=(1,)) for item in claim.lines]
    return dataclasses.replace(claim, diagnoses=dx, lines=lines)


def _sex(claim: Claim) -> Claim:
    wrong = "N400" if claim.subscriber.sex == "F" else "N760"
    return dataclasses.replace(claim, diagnoses=[*claim.diagnoses, Diagnosis(wrong)])


def _thirteen_dx(claim: Claim) -> Claim:
    return _keep_pointers(claim, [Diagnosis(c) for c in DX_POOL[:13]])


# name -> (mutation, expected rule id, payer rules for the claim)
Defect = tuple[Callable[[Claim], Claim], str, PayerRules | None]
DEFECTS: dict[str, Defect] = {
    "pcn_too_long": (lambda c: dataclasses.replace(c, patient_control_number="P" * 25), "CLAIM_PCN", None),
    "total_mismatch": (lambda c: dataclasses.replace(c, total_charge_cents=c.total_charge_cents + 100),
                       "CLAIM_TOTAL", None),
    "replacement_without_original": (lambda c: dataclasses.replace(c, frequency_code="7"), "CLAIM_FREQUENCY", None),
    "bad_pos": (lambda c: dataclasses.replace(c, place_of_service="30"), "CLAIM_POS", None),
    "billing_npi": (lambda c: dataclasses.replace(c, billing_provider=dataclasses.replace(
        c.billing_provider, npi=_broken_npi(c.billing_provider.npi))), "NPI_CHECK_DIGIT", None),
    "rendering_npi": (lambda c: dataclasses.replace(c, rendering=Provider(npi=_broken_npi(c.rendering.npi),
                                                                          last_name="Doe")), "NPI_CHECK_DIGIT", None),
    "taxonomy": (lambda c: dataclasses.replace(c, billing_provider=dataclasses.replace(
        c.billing_provider, taxonomy="207Q0000")), "TAXONOMY_FORMAT", None),
    "billing_zip5": (lambda c: dataclasses.replace(c, billing_provider=dataclasses.replace(
        c.billing_provider, address=Address("100 Main St", "Austin", "TX", "78701"))), "BILLING_ADDRESS", None),
    "patient_zip": (lambda c: dataclasses.replace(c, subscriber=dataclasses.replace(
        c.subscriber, address=Address("1 Elm St", "Austin", "TX", "7870"))), "PATIENT_ADDRESS", None),
    "future_dos": (lambda c: _all_lines(c, service_date=TODAY + timedelta(days=5)), "DATE_OF_SERVICE", None),
    "dos_before_birth": (lambda c: dataclasses.replace(c, subscriber=dataclasses.replace(
        c.subscriber, birth_date=c.lines[0].service_date + timedelta(days=1))), "DATE_OF_SERVICE", None),
    "timely_filing": (lambda c: c, "TIMELY_FILING", PayerRules(timely_filing_days=15)),
    "thirteen_dx": (_thirteen_dx, "DX_COUNT", None),
    "duplicate_dx": (lambda c: dataclasses.replace(c, diagnoses=[*c.diagnoses, c.diagnoses[0]]), "DX_COUNT", None),
    "invalid_dx": (lambda c: dataclasses.replace(c, diagnoses=[*c.diagnoses, Diagnosis("E1199")]), "DX_VALID", None),
    "header_dx": (lambda c: dataclasses.replace(c, diagnoses=[*c.diagnoses, Diagnosis("M545")]), "DX_VALID", None),
    "external_cause_first": (lambda c: _keep_pointers(c, [Diagnosis("W010XXA"), *c.diagnoses]),
                             "DX_EXTERNAL_CAUSE_PRINCIPAL", None),
    "excludes1": (_excludes1, "DX_EXCLUDES1", None),
    "sex": (_sex, "DX_SEX", None),
    "perinatal_adult": (lambda c: dataclasses.replace(c, diagnoses=[*c.diagnoses, Diagnosis("P599")]), "DX_AGE",
                        None),
    "pointer_out_of_range": (lambda c: _replace_line(c, 0, diagnosis_pointers=(len(c.diagnoses) + 1,)),
                             "LINE_DX_POINTER", None),
    "zero_units": (lambda c: _replace_line(c, len(c.lines) - 1, units=0), "LINE_UNITS_CHARGE", None),
    "bad_procedure": (_bad_procedure, "LINE_PROCEDURE", None),
    "bad_modifier": (lambda c: _replace_line(c, 0, modifiers=(*c.lines[0].modifiers, "ZZ")), "LINE_MODIFIER", None),
    "noc_without_description": (lambda c: _append(c, line("J3490", 500)), "LINE_NOC_DESCRIPTION", None),
    "ptp_indicator_0": (_ptp, "NCCI_PTP", None),
    "mue": (_mue, "NCCI_MUE", None),
    "add_on_without_primary": (lambda c: _append(c, line("99292", 20000)), "ADDON_PRIMARY", None),
    "referring_required": (lambda c: c, "PAYER_REFERRING", PayerRules(require_referring_provider=True)),
    "prior_auth_required": (lambda c: c, "PAYER_PRIOR_AUTH", PayerRules(require_prior_authorization=True)),
    "auto_accident_without_state": (lambda c: dataclasses.replace(c, related_causes=("AA",),
                                                                  accident_date=c.lines[0].service_date),
                                    "CLAIM_RELATED_CAUSES", None),
}  # fmt: skip

Case = tuple[str, Claim, str | None, PayerRules | None]


def build_corpus(size: int = 240, seed: int = 20260701) -> list[Case]:
    rng = random.Random(seed)
    names = sorted(DEFECTS)
    cases: list[Case] = []
    for number in range(size):
        claim = make_clean(rng, number)
        if number % 2 == 0:
            cases.append((f"clean-{number}", claim, None, None))
        else:
            name = names[(number // 2) % len(names)]
            mutate, expected, rules = DEFECTS[name]
            cases.append((f"{name}-{number}", mutate(claim), expected, rules))
    return cases


CORPUS = build_corpus()


def test_corpus_shape() -> None:
    assert len(CORPUS) >= 200
    planted = {expected for _, _, expected, _ in CORPUS if expected}
    assert len(planted) >= 25
    assert sum(1 for case in CORPUS if case[2] is None) >= 100


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(code_sets())


def test_every_planted_defect_found_and_no_false_alarm(scrubber: Scrubber) -> None:
    missed: list[str] = []
    false_alarms: list[str] = []
    for name, claim, expected, rules in CORPUS:
        found = scrubber.scrub(claim, today=TODAY, rules=rules)
        ids = {f.rule_id for f in found if f.severity is not Severity.INFO}
        if expected is not None and expected not in ids:
            missed.append(f"{name}: expected {expected}, got {sorted(ids)}")
        extra = ids - {expected}
        if extra:
            false_alarms.append(
                f"{name}: {sorted(extra)} " + "; ".join(f.message for f in found if f.rule_id in extra)
            )
    assert not missed, "\n".join(missed)
    assert not false_alarms, "\n".join(false_alarms)
