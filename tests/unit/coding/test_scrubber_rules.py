"""Each scrubber rule fires on a claim built to break it and stays quiet on a clean claim."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date

import pytest

from coding import cpt
from coding.scrubber import RULE_IDS, RULES, PayerRules, Scrubber, ScrubFinding
from edi.claims import Address, Claim, ClaimKind, Diagnosis, Patient, Provider
from edi.findings import Severity
from tests.unit.coding.factory import (
    DOS,
    FIXTURES,
    REFERRING_NPI,
    TODAY,
    clean_claim,
    code_sets,
    line,
    with_line,
)


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(code_sets())


def findings(scrubber: Scrubber, claim: Claim, rules: PayerRules | None = None) -> list[ScrubFinding]:
    return scrubber.scrub(claim, today=TODAY, rules=rules)


def problems(found: list[ScrubFinding]) -> list[ScrubFinding]:
    return [f for f in found if f.severity is not Severity.INFO]


def test_clean_claim_has_no_problem(scrubber: Scrubber) -> None:
    found = findings(scrubber, clean_claim())
    assert problems(found) == []
    # The one info finding says CPT was checked by format only (no licensed file loaded).
    assert [f.rule_id for f in found] == ["CPT_FORMAT_ONLY"]


def test_clean_claim_with_licensed_cpt_has_no_finding_at_all() -> None:
    sets = dataclasses.replace(code_sets(), cpt=cpt.read_csv(FIXTURES / "cpt_sample.csv"))
    assert Scrubber(sets).scrub(clean_claim(), today=TODAY) == []


def _dx(*codes: str) -> list[Diagnosis]:
    return [Diagnosis(c) for c in codes]


def _patient(sex: str, birth: date) -> Patient:
    return Patient("Testchild", "Sam", "19", birth, sex, Address("1 Elm St", "Austin", "TX", "78701"))


STRICT = PayerRules(require_taxonomy=True, require_referring_provider=True, require_prior_authorization=True)

# rule id, how to break the clean claim, expected path, payer rules (None = default)
CASES: list[tuple[str, Callable[[], Claim], str, PayerRules | None]] = [
    ("CLAIM_PCN", lambda: clean_claim(patient_control_number="X" * 21), "patient_control_number", None),
    ("CLAIM_PCN", lambda: clean_claim(patient_control_number=""), "patient_control_number", None),
    ("CLAIM_TOTAL", lambda: clean_claim(total_charge_cents=1), "total_charge_cents", None),
    ("CLAIM_LINES", lambda: clean_claim(lines=[], total_charge_cents=0), "lines", None),
    ("CLAIM_LINES", lambda: clean_claim(lines=[line("81002", 100)] * 51, total_charge_cents=5100), "lines", None),
    ("CLAIM_FREQUENCY", lambda: clean_claim(frequency_code="6"), "frequency_code", None),
    ("CLAIM_FREQUENCY", lambda: clean_claim(frequency_code="7"), "original_claim_number", None),
    ("CLAIM_FREQUENCY", lambda: clean_claim(frequency_code="8", original_claim_number=" "), "original_claim_number",
     None),
    ("CLAIM_POS", lambda: clean_claim(place_of_service="30"), "place_of_service", None),
    ("CLAIM_POS", lambda: with_line(clean_claim(), 1, place_of_service="00"), "lines[1].place_of_service", None),
    ("CLAIM_RELATED_CAUSES", lambda: clean_claim(related_causes=("AA",), accident_date=DOS),
     "related_causes_state", None),
    ("PAYER_PRIOR_AUTH", lambda: clean_claim(referring=Provider(npi=REFERRING_NPI, last_name="Ref")),
     "prior_authorization", STRICT),
    ("PAYER_REFERRING", lambda: clean_claim(prior_authorization="AUTH1"), "referring", STRICT),
    ("PAYER_TAXONOMY", lambda: clean_claim(
        billing_provider=dataclasses.replace(clean_claim().billing_provider, taxonomy=None),
        prior_authorization="AUTH1", referring=Provider(npi=REFERRING_NPI, last_name="Ref")),
     "billing_provider.taxonomy", STRICT),
    ("NPI_CHECK_DIGIT", lambda: clean_claim(
        billing_provider=dataclasses.replace(clean_claim().billing_provider, npi="1234567890")),
     "billing_provider.npi", None),
    ("NPI_CHECK_DIGIT", lambda: clean_claim(rendering=Provider(npi="1999999999", last_name="Doe")),
     "rendering.npi", None),
    ("NPI_CHECK_DIGIT", lambda: with_line(clean_claim(), 2, rendering=Provider(npi="123")),
     "lines[2].rendering.npi", None),
    ("TAXONOMY_FORMAT", lambda: clean_claim(
        billing_provider=dataclasses.replace(clean_claim().billing_provider, taxonomy="207Q0000")),
     "billing_provider.taxonomy", None),
    ("BILLING_ADDRESS", lambda: clean_claim(billing_provider=dataclasses.replace(
        clean_claim().billing_provider, address=Address("100 Main St", "Austin", "TX", "78701"))),
     "billing_provider.address.zip_code", None),
    ("BILLING_ADDRESS", lambda: clean_claim(
        billing_provider=dataclasses.replace(clean_claim().billing_provider, tax_id="12-3456789")),
     "billing_provider.tax_id", None),
    ("PATIENT_ADDRESS", lambda: clean_claim(subscriber=dataclasses.replace(
        clean_claim().subscriber, address=Address("1 Elm St", "Austin", "ZZ", "78701"))),
     "subscriber.address.state", None),
    ("DATE_OF_SERVICE", lambda: with_line(clean_claim(), 0, service_date=None), "lines[0].service_date", None),
    ("DATE_OF_SERVICE", lambda: with_line(clean_claim(), 0, service_date=date(2026, 7, 2)),
     "lines[0].service_date", None),
    ("DATE_OF_SERVICE", lambda: clean_claim(patient=_patient("F", date(2026, 6, 20))), "lines[0].service_date",
     None),
    ("DATE_OF_SERVICE", lambda: with_line(clean_claim(), 1, service_date_end=date(2026, 6, 1)),
     "lines[1].service_date_end", None),
    ("TIMELY_FILING", lambda: clean_claim(), "lines", PayerRules(timely_filing_days=10)),
    ("DX_COUNT", lambda: clean_claim(diagnoses=[]), "diagnoses", None),
    ("DX_COUNT", lambda: clean_claim(diagnoses=_dx("E119", "I10", "Z794", "I10")), "diagnoses[3]", None),
    ("DX_COUNT", lambda: clean_claim(diagnoses=_dx("E119", "I10", "Z794", "E785", "K219", "F419", "R519",
                                                     "G4700", "E039", "R079", "R109", "B349", "H6590")),
     "diagnoses", None),
    ("DX_VALID", lambda: clean_claim(diagnoses=_dx("E119", "M545", "Z794")), "diagnoses[1]", None),
    ("DX_VALID", lambda: clean_claim(diagnoses=_dx("E119", "I10", "Z7999")), "diagnoses[2]", None),
    ("DX_EXTERNAL_CAUSE_PRINCIPAL", lambda: clean_claim(diagnoses=_dx("W010XXA", "S93401A", "I10")),
     "diagnoses[0]", None),
    ("DX_EXCLUDES1", lambda: clean_claim(diagnoses=_dx("J301", "J45909", "I10")), "diagnoses[1]", None),
    ("DX_EXCLUDES1", lambda: clean_claim(diagnoses=_dx("E119", "I10", "E109")), "diagnoses[2]", None),
    ("DX_SEX", lambda: clean_claim(diagnoses=_dx("N400", "I10", "Z794")), "diagnoses[0]", None),
    ("DX_SEX", lambda: clean_claim(patient=_patient("M", date(1990, 1, 1)), diagnoses=_dx("E119", "I10", "N760")),
     "diagnoses[2]", None),
    ("DX_SEX", lambda: clean_claim(patient=_patient("M", date(1990, 1, 1)), diagnoses=_dx("O80", "I10", "Z794")),
     "diagnoses[0]", None),
    ("DX_AGE", lambda: clean_claim(diagnoses=_dx("P599", "I10", "Z794")), "diagnoses[0]", None),
    ("DX_AGE", lambda: clean_claim(patient=_patient("F", date(1960, 1, 1)), diagnoses=_dx("O80", "I10", "Z794")),
     "diagnoses[0]", None),
    ("LINE_DX_POINTER", lambda: with_line(clean_claim(), 0, diagnosis_pointers=()),
     "lines[0].diagnosis_pointers", None),
    ("LINE_DX_POINTER", lambda: with_line(clean_claim(), 1, diagnosis_pointers=(2, 4)),
     "lines[1].diagnosis_pointers[1]", None),
    ("LINE_DX_POINTER", lambda: with_line(clean_claim(), 1, diagnosis_pointers=(2, 2)),
     "lines[1].diagnosis_pointers[1]", None),
    ("LINE_DX_POINTER", lambda: with_line(clean_claim(), 1, diagnosis_pointers=(1, 2, 3, 1, 2)),
     "lines[1].diagnosis_pointers", None),
    ("LINE_UNITS_CHARGE", lambda: with_line(clean_claim(), 2, units=0), "lines[2].units", None),
    ("LINE_UNITS_CHARGE", lambda: with_line(clean_claim(), 2, charge_cents=-5), "lines[2].charge_cents", None),
    ("LINE_PROCEDURE", lambda: with_line(clean_claim(), 1, procedure="Z9999"), "lines[1].procedure", None),
    ("LINE_PROCEDURE", lambda: with_line(clean_claim(), 1, procedure="05000"), "lines[1].procedure", None),
    ("LINE_PROCEDURE", lambda: with_line(clean_claim(), 1, procedure="ABC"), "lines[1].procedure", None),
    ("LINE_PROCEDURE", lambda: with_line(clean_claim(), 1, procedure=None), "lines[1].procedure", None),
    ("LINE_NOC_DESCRIPTION", lambda: with_line(clean_claim(), 2, procedure="J3490"), "lines[2].description",
     None),
    ("LINE_MODIFIER", lambda: with_line(clean_claim(), 1, modifiers=("ZZ",)), "lines[1].modifiers[0]", None),
    ("LINE_MODIFIER", lambda: with_line(clean_claim(), 1, modifiers=("RT", "RT")), "lines[1].modifiers[1]", None),
    ("LINE_MODIFIER", lambda: with_line(clean_claim(), 1, modifiers=("RT", "76", "GA", "GY", "KX")),
     "lines[1].modifiers", None),
    ("NCCI_PTP", lambda: with_line(clean_claim(), 2, procedure="93005"), "lines[2].procedure", None),
    ("NCCI_PTP", lambda: with_line(with_line(clean_claim(), 0, modifiers=()), 2, procedure="96372"),
     "lines[2].procedure", None),
    ("NCCI_MUE", lambda: with_line(clean_claim(), 2, units=3), "lines[2].units", None),
    ("NCCI_MUE", lambda: clean_claim(lines=[*clean_claim().lines, line("93000", 4500)], total_charge_cents=25200),
     "lines[1].units", None),
    ("NCCI_MUE", lambda: with_line(clean_claim(), 2, procedure="20610", units=2), "lines[2].units", None),
    ("ADDON_PRIMARY", lambda: with_line(clean_claim(), 2, procedure="99292"), "lines[2].procedure", None),
]  # fmt: skip


@pytest.mark.parametrize(("rule_id", "make", "path", "payer"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_rule_fires_on_its_broken_claim(
    scrubber: Scrubber, rule_id: str, make: Callable[[], Claim], path: str, payer: PayerRules | None
) -> None:
    found = problems(findings(scrubber, make(), payer))
    hits = [f for f in found if f.rule_id == rule_id]
    assert hits, f"{rule_id} did not fire; got {[(f.rule_id, f.path) for f in found]}"
    assert path in [f.path for f in hits]
    for hit in hits:
        assert hit.message and hit.hint and hit.severity in (Severity.ERROR, Severity.WARNING)
    # The broken claim trips only the rule it was built for.
    assert {f.rule_id for f in found} == {rule_id}


def test_every_rule_has_a_case() -> None:
    # The eligibility rules need a 271's facts; tests/unit/eligibility/test_scrub_rules.py covers them.
    eligibility = {"ELIGIBILITY_NOT_ACTIVE", "ELIGIBILITY_OTHER_PAYER_PRIMARY", "ELIGIBILITY_MEMBER_ID"}
    covered = {case[0] for case in CASES} | {"DX_RELEASE", "CPT_FORMAT_ONLY"} | eligibility
    assert covered == RULE_IDS


def test_procedure_not_yet_valid_on_the_date_of_service(scrubber: Scrubber) -> None:
    # Q5155 was added on 2025-10-01; a service the day before cannot use it.
    claim = with_line(clean_claim(), 2, procedure="Q5155")
    assert problems(findings(scrubber, claim)) == []
    early = clean_claim(lines=[line("Q5155", 1000, service_date=date(2025, 9, 30))])
    hits = [f for f in findings(scrubber, early) if f.rule_id == "LINE_PROCEDURE"]
    assert len(hits) == 1 and "not valid on the date of service" in hits[0].message


def test_release_missing_is_a_warning(scrubber: Scrubber) -> None:
    claim = clean_claim(lines=[line("99214", 15000, service_date=date(2026, 10, 2))])
    found = problems(scrubber.scrub(claim, today=date(2026, 10, 5)))
    assert [(f.rule_id, f.severity) for f in found] == [("DX_RELEASE", Severity.WARNING)]


def test_ptp_bypass_with_modifier_and_indicator_zero_is_not_bypassable(scrubber: Scrubber) -> None:
    bypassed = with_line(clean_claim(), 2, procedure="96372", modifiers=("XU",))
    assert problems(findings(scrubber, bypassed)) == []
    never = with_line(clean_claim(), 2, procedure="93005", modifiers=("59",))
    assert [f.rule_id for f in problems(findings(scrubber, never))] == ["NCCI_PTP"]
    # Indicator 9 (36415/36416) is not an edit; a different date of service is not the same day.
    not_an_edit = clean_claim(lines=[*clean_claim().lines, line("36416", 500)], total_charge_cents=21200)
    assert problems(findings(scrubber, not_an_edit)) == []
    other_day = with_line(clean_claim(), 2, procedure="93005", service_date=date(2026, 6, 16))
    assert problems(findings(scrubber, other_day)) == []
    assert problems(findings(scrubber, with_line(clean_claim(), 2, procedure="93005"),
                             PayerRules(ptp_enabled=False))) == []  # fmt: skip


def test_mue_split_lines_with_modifier_pass_a_line_edit(scrubber: Scrubber) -> None:
    claim = clean_claim(
        lines=[line("99214", 15000, modifiers=("25",)), line("20610", 9000, modifiers=("RT",)),
               line("20610", 9000, modifiers=("LT",))], total_charge_cents=33000)  # fmt: skip
    assert problems(findings(scrubber, claim)) == []


def test_timely_filing_warns_near_the_limit(scrubber: Scrubber) -> None:
    found = problems(findings(scrubber, clean_claim(), PayerRules(timely_filing_days=30)))
    assert [(f.rule_id, f.severity) for f in found] == [("TIMELY_FILING", Severity.WARNING)]


def test_replacement_claim_for_a_payer_without_replacements(scrubber: Scrubber) -> None:
    claim = clean_claim(frequency_code="7", original_claim_number="PAYERCLAIM1")
    assert problems(findings(scrubber, claim)) == []
    found = problems(findings(scrubber, claim, PayerRules(accepts_replacement_claims=False)))
    assert [(f.rule_id, f.severity) for f in found] == [("CLAIM_FREQUENCY", Severity.WARNING)]


def test_disabled_rules_and_payer_lookup() -> None:
    sets = code_sets()
    scrubber = Scrubber(sets, payer_rules={"SYN01": PayerRules(disabled_rules=frozenset({"CLAIM_TOTAL"}))})
    broken = clean_claim(total_charge_cents=1)
    assert problems(scrubber.scrub(broken, today=TODAY)) == []
    other_payer = dataclasses.replace(broken, payer=dataclasses.replace(broken.payer, payer_id="OTHER"))
    assert [f.rule_id for f in problems(scrubber.scrub(other_payer, today=TODAY))] == ["CLAIM_TOTAL"]


def test_messages_do_not_echo_patient_identity(scrubber: Scrubber) -> None:
    claim = clean_claim(patient=_patient("M", date(2026, 6, 20)), diagnoses=_dx("N760", "I10", "Z794"))
    for finding in scrubber.scrub(claim, today=TODAY):
        text = f"{finding.message} {finding.hint} {finding.value}"
        assert "Testchild" not in text and "Sam" not in text and "2026-06-20" not in text


def test_a_crashing_rule_becomes_an_internal_error_finding() -> None:
    def explode(ctx: object) -> list[object]:
        raise KeyError("boom")

    rules = [*RULES, dataclasses.replace(RULES[0], rule_id="TEST_EXPLODES", check=explode)]  # type: ignore[arg-type]
    found = Scrubber(code_sets(), rules=rules).scrub(clean_claim(), today=TODAY)
    internal = [f for f in found if f.rule_id == "INTERNAL_ERROR"]
    assert len(internal) == 1 and internal[0].path == "TEST_EXPLODES" and internal[0].blocks_submission


def test_garbage_claim_data_never_raises(scrubber: Scrubber) -> None:
    claim = clean_claim(diagnoses=[Diagnosis(None), Diagnosis(12)], total_charge_cents=None)  # type: ignore[arg-type]
    claim.lines = [line(None, "12", units="1", pointers=("a",), modifiers=(None, 5))]  # type: ignore[arg-type]
    found = scrubber.scrub(claim, today=TODAY)
    assert found and all(isinstance(f, ScrubFinding) for f in found)
    broken = clean_claim()
    broken.lines = None  # type: ignore[assignment]
    assert scrubber.scrub(broken, today=TODAY)[0].rule_id in {"CLAIM_UNREADABLE", "INTERNAL_ERROR"}


def test_institutional_claim_skips_professional_only_rules(scrubber: Scrubber) -> None:
    # 837I: place_of_service holds the facility type (13 = hospital outpatient), frequency 6 is allowed
    # and lines carry no diagnosis pointers.
    claim = with_line(clean_claim(kind=ClaimKind.INSTITUTIONAL, place_of_service="13", frequency_code="6"), 1,
                      diagnosis_pointers=())  # fmt: skip
    assert problems(findings(scrubber, claim)) == []
    wrong = clean_claim(kind=ClaimKind.INSTITUTIONAL, place_of_service="13", frequency_code="X")
    assert [f.rule_id for f in problems(findings(scrubber, wrong))] == ["CLAIM_FREQUENCY"]


def test_finding_conversions() -> None:
    finding = findings(Scrubber(code_sets()), clean_claim(total_charge_cents=1))[0]
    as_dict = finding.to_dict()
    assert as_dict["rule_id"] == "CLAIM_TOTAL" and as_dict["severity"] == "error"
    converted = finding.to_finding()
    assert (
        converted.code == "CLAIM_TOTAL" and converted.element == "total_charge_cents" and converted.is_error
    )
