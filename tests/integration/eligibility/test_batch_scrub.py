"""Batching applies the coverage's last eligibility answer, as ``scrub_claim`` and ``ready`` do.

The facts are loaded per chunk of claims (one query for the checks, one for the 271
files not yet read), never per claim.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event

from claims_server.app import state
from claims_server.claims.scrub import scrub_claim
from claims_server.claims.services import create_claim_from_json
from claims_server.eligibility import services
from claims_server.models import Claim, ClaimState
from claims_server.submission import services as submission
from tests.integration.eligibility.test_scrub import RULES
from tests.integration.eligibility.test_scrub import _check as _check_answered
from tests.integration.submission.conftest import recent_claim


def _claims(session, ids, count: int, *, dependent: bool) -> list[Claim]:
    claims = [
        create_claim_from_json(session, recent_claim(ids, dependent=dependent)).claim for _ in range(count)
    ]
    session.commit()
    return claims


class _StatementLog:
    """The SQL statements the app's engine runs (to count queries per table)."""

    def __init__(self, engine) -> None:
        self.statements: list[str] = []
        self.engine = engine

    def __enter__(self) -> _StatementLog:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(statement)

    def reading(self, table: str) -> int:
        return sum(
            1 for s in self.statements if s.lstrip().upper().startswith("SELECT") and f"FROM {table}" in s
        )


def test_batching_holds_claims_of_an_inactive_coverage_like_ready_does(
    app, session, factory, ids, realtime_route, self_coverage, dependent_coverage, monkeypatch
):
    inactive = _claims(session, ids, 3, dependent=False)
    never_checked = _claims(session, ids, 2, dependent=True)
    # The claims are ready (checked clean); the coverage's answer arrives afterwards.
    _check_answered(session, factory, self_coverage, "ELGIN00001")
    monkeypatch.setattr(submission, "LOAD_CHUNK", 2)  # three chunks of claims

    with _StatementLog(state(app).engine) as log:
        result = submission.build_batches(session)
    session.commit()

    assert result.claims_batched == 2 and len(result.held) == 3
    assert {h.claim_id for h in result.held} == {c.id for c in inactive}
    for held in result.held:
        rules = {(f["rule_id"], f["path"]) for f in held.findings if f["rule_id"] in RULES}
        assert rules == {
            ("ELIGIBILITY_NOT_ACTIVE", "lines[0].service_date"),
            ("ELIGIBILITY_NOT_ACTIVE", "lines[1].service_date"),
        }
    session.expire_all()
    for claim in inactive:
        claim = session.get(Claim, claim.id)
        assert claim.state is ClaimState.DRAFT
        # The single-claim scrub (``ready``) finds the same eligibility findings.
        single = {(f.rule_id, f.path) for f in scrub_claim(session, claim) if f.rule_id in RULES}
        assert single == {(f["rule_id"], f["path"]) for f in claim.scrub_findings if f["rule_id"] in RULES}
    for claim in never_checked:
        assert session.get(Claim, claim.id).state is ClaimState.BATCHED
    # Bulk: one query on the checks per chunk of claims, the 271 read once for the whole run.
    assert log.reading("eligibility_checks") == 3
    assert log.reading("edi_files") <= 1


def test_member_id_the_payer_corrected_holds_the_claim_in_a_batch(
    session, factory, ids, realtime_route, self_coverage
):
    (claim,) = _claims(session, ids, 1, dependent=False)
    _check_answered(session, factory, self_coverage, "ELGFIX00001")
    result = submission.build_batches(session)
    session.commit()
    assert result.claims_batched == 0
    (held,) = result.held
    assert held.claim_id == claim.id
    assert {(f["rule_id"], f["path"]) for f in held.findings if f["rule_id"] in RULES} == {
        ("ELIGIBILITY_MEMBER_ID", "coverage.member_id")  # the claim JSON path (to_json_findings)
    }


@pytest.mark.parametrize("member_id", ["ELGCOB00001", None])
def test_bulk_facts_equal_the_single_coverage_facts(
    session, factory, ids, realtime_route, self_coverage, dependent_coverage, member_id
):
    if member_id is not None:
        _check_answered(session, factory, self_coverage, member_id)
    _check_answered(session, factory, dependent_coverage, dependent_coverage.member_id)
    session.expire_all()
    coverages = [self_coverage, dependent_coverage]
    bulk = services.eligibility_facts_for(session, coverages)
    single = {c.id: services.eligibility_facts(session, c) for c in coverages}
    assert bulk == {cid: facts for cid, facts in single.items() if facts is not None}
    assert (self_coverage.id in bulk) is (member_id is not None)
    if member_id is not None:
        assert bulk[self_coverage.id].other_payer_primary
