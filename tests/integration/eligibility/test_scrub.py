"""The scrubber rules fed by the coverage's last stored check (member id from the encrypted 271)."""

from __future__ import annotations

from claims_server.claims.scrub import payer_rules, scrubber
from claims_server.claims.services import create_claim_from_json
from claims_server.claims.to_edi import build_edi_claim
from claims_server.db import unit_of_work
from claims_server.eligibility import services
from tests.integration.claims.support import DOS, claim_json

RULES = {"ELIGIBILITY_NOT_ACTIVE", "ELIGIBILITY_OTHER_PAYER_PRIMARY", "ELIGIBILITY_MEMBER_ID"}


def _check(session, factory, coverage, member_id: str) -> None:
    coverage.member_id = member_id
    session.commit()
    with unit_of_work(factory) as s:
        check_id = services.start_check(s, s.get(type(coverage), coverage.id), service_date=DOS).id
    services.run_realtime(factory, check_id)


def _eligibility_findings(session, ids, coverage) -> list[tuple[str, str]]:
    claim = create_claim_from_json(session, claim_json(ids)).claim
    session.commit()
    session.expire_all()
    facts = services.eligibility_facts(session, coverage)
    found = scrubber().scrub(
        build_edi_claim(session, claim), rules=payer_rules(coverage.payer), eligibility=facts
    )
    return sorted({(f.rule_id, f.path) for f in found if f.rule_id in RULES})


def test_no_check_no_eligibility_findings(session, ids, self_coverage):
    assert services.eligibility_facts(session, self_coverage) is None
    assert _eligibility_findings(session, ids, self_coverage) == []


def test_active_check_with_matching_member_id(session, factory, ids, realtime_route, self_coverage):
    member_id = self_coverage.member_id
    _check(session, factory, self_coverage, member_id)
    facts = services.eligibility_facts(session, self_coverage)
    assert facts is not None and facts.status == "active" and facts.member_id == member_id
    assert _eligibility_findings(session, ids, self_coverage) == []


def test_corrected_member_id_is_flagged(session, factory, ids, realtime_route, self_coverage):
    _check(session, factory, self_coverage, "ELGFIX00001")
    assert services.eligibility_facts(session, self_coverage).member_id == "ELGFIX0000101"
    assert _eligibility_findings(session, ids, self_coverage) == [
        ("ELIGIBILITY_MEMBER_ID", "subscriber.member_id")
    ]


def test_other_payer_primary_is_flagged(session, factory, ids, realtime_route, self_coverage):
    _check(session, factory, self_coverage, "ELGCOB00001")
    assert _eligibility_findings(session, ids, self_coverage) == [
        ("ELIGIBILITY_OTHER_PAYER_PRIMARY", "subscriber.responsibility")
    ]


def test_inactive_coverage_is_flagged_on_every_line(session, factory, ids, realtime_route, self_coverage):
    _check(session, factory, self_coverage, "ELGIN00001")
    assert _eligibility_findings(session, ids, self_coverage) == [
        ("ELIGIBILITY_NOT_ACTIVE", "lines[0].service_date"),
        ("ELIGIBILITY_NOT_ACTIVE", "lines[1].service_date"),
    ]
