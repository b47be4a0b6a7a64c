"""Batching ready claims into 837 interchanges: control numbers, held claims, pyx12 verdict."""

from __future__ import annotations

from sqlalchemy import select

from claims_server.db import make_engine, make_session_factory, unit_of_work
from claims_server.models import (
    BatchClaim,
    ClaimState,
    EdiFile,
    FileDirection,
    Interchange,
    SubmissionBatch,
)
from claims_server.models.submissions import BatchState, ControlNumberKind
from claims_server.submission.control_numbers import allocate
from claims_server.submission.services import build_batches
from edi.identifiers import npi_with_check_digit
from tests.integration.submission.conftest import recent_claim
from tests.unit.edi.support_837 import pyx12_validate


def test_ready_claims_become_one_validated_interchange(session, make_claims):
    claims = make_claims(4)
    result = build_batches(session)
    session.commit()
    assert result.claims_batched == 4 and not result.held and len(result.batch_ids) == 1
    batch = session.get(SubmissionBatch, result.batch_ids[0])
    assert batch.state is BatchState.BUILT
    assert sorted(bc.claim_id for bc in batch.claims) == sorted(c.id for c in claims)
    assert [bc.position for bc in batch.claims] == [1, 2, 3, 4]
    for claim in claims:
        session.refresh(claim)
        assert claim.state is ClaimState.BATCHED
    edi_file = session.scalar(select(EdiFile).where(EdiFile.batch_id == batch.id))
    assert edi_file.direction is FileDirection.OUTBOUND
    text = bytes(edi_file.content).decode("ascii")
    verdict = pyx12_validate(text)
    assert verdict.accepted, verdict.errors
    interchange = session.scalar(select(Interchange).where(Interchange.batch_id == batch.id))
    assert text[90:99] == f"{interchange.isa13:09d}" == edi_file.interchange_control_number
    assert f"ST*837*{interchange.transaction_control_numbers[0]}*" in text


def test_control_numbers_never_reused_across_batches_and_restarts(app, session, make_claims, database_url):
    make_claims(2)
    first = build_batches(session)
    session.commit()
    # A "restart": a new engine and session factory, as a new process would have.
    engine = make_engine(database_url)
    try:
        factory = make_session_factory(engine)
        make_claims(2)
        with app.app_context(), unit_of_work(factory) as other:
            second = build_batches(other)
    finally:
        engine.dispose()
    make_claims(1)
    third = build_batches(session)
    session.commit()
    ids = first.batch_ids + second.batch_ids + third.batch_ids
    interchanges = session.scalars(select(Interchange).where(Interchange.batch_id.in_(ids))).all()
    isa13 = [i.isa13 for i in interchanges]
    gs06 = [n for i in interchanges for n in i.group_control_numbers]
    st02 = [n for i in interchanges for n in i.transaction_control_numbers]
    assert len(interchanges) == 3
    assert len(set(isa13)) == 3 and isa13 == sorted(isa13)
    assert len(set(gs06)) == 3 and len(set(st02)) == 3


def test_allocation_is_monotonic_and_counts_blocks(session, route):
    a = allocate(session, route.id, ControlNumberKind.INTERCHANGE, 3)
    b = allocate(session, route.id, ControlNumberKind.INTERCHANGE)
    session.commit()
    assert b[0] == a[-1] + 1 and a == list(range(a[0], a[0] + 3))


def test_a_failing_claim_is_held_with_findings_while_the_rest_go(session, ids, make_claims):
    good = make_claims(3)
    from claims_server.claims.services import create_claim_from_json

    # A diagnosis pointer to a missing diagnosis: written fine, refused by the 837 rules.
    bad = create_claim_from_json(session, recent_claim(ids)).claim
    bad.service_lines[0].diagnosis_pointers = "1,9"
    session.commit()
    result = build_batches(session)
    session.commit()
    assert result.claims_batched == 3
    assert [h.claim_id for h in result.held] == [bad.id]
    held = result.held[0]
    assert any(f["severity"] == "error" for f in held.findings)
    session.refresh(bad)
    assert bad.state is ClaimState.DRAFT and bad.scrub_findings == held.findings
    batched = {bc.claim_id for bc in session.scalars(select(BatchClaim))}
    assert batched == {c.id for c in good}
    text = bytes(
        session.scalar(select(EdiFile).where(EdiFile.batch_id == result.batch_ids[0])).content
    ).decode()
    assert bad.patient_control_number not in text
    assert pyx12_validate(text).accepted


def test_invalid_npi_claim_is_held_by_the_scrubber(session, ids, make_claims):
    from claims_server.claims.services import create_claim_from_json
    from claims_server.models import Provider

    make_claims(1)
    claim = create_claim_from_json(session, recent_claim(ids)).claim
    provider = session.get(Provider, claim.rendering_provider_id)
    session.commit()
    valid = provider.npi
    provider.npi = valid[:-1] + str((int(valid[-1]) + 1) % 10)  # break the check digit
    session.commit()
    try:
        result = build_batches(session)
        session.commit()
        held_ids = {h.claim_id for h in result.held}
        assert claim.id in held_ids
        assert any(f["rule_id"] == "NPI_CHECK_DIGIT" for h in result.held for f in h.findings)
    finally:
        provider.npi = valid
        session.commit()
    assert npi_with_check_digit(valid[:9]) == valid


def test_more_than_100_claims_of_one_subscriber_spill_into_another_interchange():
    from types import SimpleNamespace

    from claims_server.submission.services import MAX_CLAIMS_PER_HL, _chunks

    same = SimpleNamespace(
        edi_claim=SimpleNamespace(billing_provider=1, subscriber="A", payer="P", patient=None)
    )
    other = SimpleNamespace(
        edi_claim=SimpleNamespace(billing_provider=1, subscriber="B", payer="P", patient=None)
    )
    chunks = _chunks([same] * 150 + [other] * 10, 5000)
    assert [len(c) for c in chunks] == [MAX_CLAIMS_PER_HL + 10, 50]
