"""The scrubber's eligibility rules, fed the facts of a last check (and silent without one)."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from coding.scrubber import EligibilityFacts, Scrubber, Severity
from tests.unit.coding.factory import DOS, TODAY, clean_claim, code_sets

ELIGIBILITY_RULES = {"ELIGIBILITY_NOT_ACTIVE", "ELIGIBILITY_OTHER_PAYER_PRIMARY", "ELIGIBILITY_MEMBER_ID"}
ACTIVE = EligibilityFacts("active", "SYN01", date(2026, 6, 14), date(2026, 1, 1), None, "MEMBER001")


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(code_sets())


def hits(
    scrubber: Scrubber, facts: EligibilityFacts | None, **claim_changes: object
) -> list[tuple[str, str]]:
    found = scrubber.scrub(clean_claim(**claim_changes), today=TODAY, eligibility=facts)
    return [
        (f.rule_id, f.path) for f in found if f.rule_id in ELIGIBILITY_RULES and f.severity is Severity.ERROR
    ]


def test_silent_without_a_check_or_when_everything_agrees(scrubber: Scrubber) -> None:
    assert hits(scrubber, None) == []
    assert hits(scrubber, ACTIVE) == []
    assert hits(scrubber, dataclasses.replace(ACTIVE, status="rejected")) == []  # no verdict: nothing to say


def test_coverage_ended_before_the_date_of_service(scrubber: Scrubber) -> None:
    ended = dataclasses.replace(ACTIVE, coverage_end=date(2026, 6, 1))
    assert hits(scrubber, ended) == [("ELIGIBILITY_NOT_ACTIVE", f"lines[{i}].service_date") for i in range(3)]
    found = scrubber.scrub(clean_claim(), today=TODAY, eligibility=ended)
    message = next(f.message for f in found if f.rule_id == "ELIGIBILITY_NOT_ACTIVE")
    assert "coverage ended 2026-06-01" in message and DOS.isoformat() in message
    inactive = dataclasses.replace(ACTIVE, status="inactive")
    assert len(hits(scrubber, inactive)) == 3
    not_started = dataclasses.replace(ACTIVE, coverage_start=date(2026, 7, 1))
    assert len(hits(scrubber, not_started)) == 3


def test_member_not_found(scrubber: Scrubber) -> None:
    facts = dataclasses.replace(ACTIVE, status="not_found", member_id="")
    assert hits(scrubber, facts) == [("ELIGIBILITY_NOT_ACTIVE", "subscriber.member_id")]


def test_other_payer_primary(scrubber: Scrubber) -> None:
    facts = dataclasses.replace(ACTIVE, other_payer_primary=True, other_payers=("DEMO OTHER HEALTH PLAN",))
    assert hits(scrubber, facts) == [("ELIGIBILITY_OTHER_PAYER_PRIMARY", "subscriber.responsibility")]
    secondary = dataclasses.replace(clean_claim().subscriber, responsibility="S")
    assert hits(scrubber, facts, subscriber=secondary) == []


def test_member_id_mismatch_names_no_ids(scrubber: Scrubber) -> None:
    facts = dataclasses.replace(ACTIVE, member_id="MEMBER00101")
    assert hits(scrubber, facts) == [("ELIGIBILITY_MEMBER_ID", "subscriber.member_id")]
    found = scrubber.scrub(clean_claim(), today=TODAY, eligibility=facts)
    finding = next(f for f in found if f.rule_id == "ELIGIBILITY_MEMBER_ID")
    assert "MEMBER" not in finding.message + finding.hint and finding.value is None
    assert hits(scrubber, dataclasses.replace(ACTIVE, member_id=" member001 ")) == []  # case and spaces


def test_a_check_with_another_payer_does_not_apply(scrubber: Scrubber) -> None:
    other = dataclasses.replace(ACTIVE, payer_id="OTHER", status="inactive", member_id="X")
    assert hits(scrubber, other) == []
