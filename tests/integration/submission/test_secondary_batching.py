"""Secondary claims go through the normal batch: the batched 837 carries the primary's
adjudication (2320/2330/2430), passes pyx12 with 0 errors and our COB balancing rules."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from claims_server.claims.services import make_ready
from claims_server.models import ClaimState, EdiFile
from claims_server.secondary.services import create_next_payer_claim
from claims_server.submission.services import build_batches
from edi.validate import validate
from edi.x837 import parse_837
from tests.integration.workqueue.support import LineAnswer, adjudicate, make_claim
from tests.unit.edi.support_837 import pyx12_validate

# Primary: 99214 175.00 paid 100.00 (CO-45 50.00, PR-2 25.00); 83036 45.50 paid 30.00 (PR-1 15.50).
PRIMARY = [LineAnswer(10000, [("CO", "45", 5000), ("PR", "2", 2500)]), LineAnswer(3000, [("PR", "1", 1550)])]


def _batched_text(session, batch_id: int) -> str:
    edi_file = session.scalar(select(EdiFile).where(EdiFile.batch_id == batch_id))
    return bytes(edi_file.content).decode("ascii")


def test_a_secondary_claim_is_batched_with_its_cob_loops(session, ids, make_claims):
    primary = make_claim(session, ids)
    adjudicate(session, primary, status="1", lines=PRIMARY, payer_claim_number="MCR-ICN-5150")
    secondary = create_next_payer_claim(session, primary)
    make_ready(session, secondary)
    (other_ready,) = make_claims(1)  # a primary claim in the same run: no 2320 for it
    session.commit()

    result = build_batches(session)
    session.commit()
    assert result.held == [] and result.claims_batched == 2
    session.refresh(secondary)
    assert secondary.state is ClaimState.BATCHED

    texts = [_batched_text(session, batch_id) for batch_id in result.batch_ids]
    for text in texts:
        verdict = pyx12_validate(text)
        assert verdict.accepted, verdict.errors
        report = validate(text.encode())
        assert [f.code for f in report.findings if f.severity.value == "error"] == []

    claims = {
        c.patient_control_number: c for text in texts for t in parse_837(text.encode()) for c in t.claims
    }
    cob = claims[secondary.patient_control_number]
    assert cob.subscriber.responsibility == "S"
    (prior,) = cob.other_payers
    assert prior.subscriber.responsibility == "P"
    assert prior.paid_cents == 13000  # AMT*D: 100.00 + 30.00
    assert prior.payer_claim_control_number == "MCR-ICN-5150"
    assert [(la.line_number, la.paid_cents) for la in prior.line_adjudications] == [(1, 10000), (2, 3000)]
    cas = [(a.group, a.reason, a.amount_cents) for la in prior.line_adjudications for a in la.adjustments]
    assert cas == [("CO", "45", 5000), ("PR", "2", 2500), ("PR", "1", 1550)]
    # COB balance by hand: charge 220.50 - paid 130.00 = CAS 50.00 + 25.00 + 15.50.
    assert cob.total_charge_cents - prior.paid_cents == sum(a for _, _, a in cas) == 9050
    plain = claims[other_ready.patient_control_number]
    assert plain.other_payers == [] and plain.subscriber.responsibility == "P"


def test_an_unbalanced_prior_adjudication_holds_only_the_secondary(session, ids, make_claims):
    primary = make_claim(session, ids)
    # The primary's line 1 CAS misses 10.00: SVD paid + CAS != line charge.
    broken = [
        LineAnswer(10000, [("CO", "45", 4000), ("PR", "2", 2500)]),
        LineAnswer(3000, [("PR", "1", 1550)]),
    ]
    adjudicate(session, primary, status="1", lines=broken)
    secondary = create_next_payer_claim(session, primary)
    make_ready(session, secondary)
    (clean,) = make_claims(1)
    session.commit()

    result = build_batches(session)
    session.commit()
    assert result.claims_batched == 1
    (held,) = result.held
    assert held.claim_id == secondary.id
    assert {"X12.COB_LINE_BALANCE", "X12.COB_CLAIM_BALANCE"} <= {f["rule_id"] for f in held.findings}
    session.refresh(secondary)
    session.refresh(clean)
    assert secondary.state is ClaimState.DRAFT and clean.state is ClaimState.BATCHED
    (text,) = [_batched_text(session, batch_id) for batch_id in result.batch_ids]
    assert secondary.patient_control_number not in text and "SBR*S*" not in text
    assert pyx12_validate(text).accepted


def test_the_demo_sends_its_secondary_claim_through_the_normal_batch(tmp_path, database_url):
    from claims_server.db import make_engine, make_session_factory
    from claims_server.demo import run_demo
    from claims_server.models import BatchClaim, Claim

    report = run_demo(database_url, tmp_path / "out")
    secondary = report.remit.secondary
    assert secondary is not None and secondary["errors"] == 0 and not secondary["held"]
    assert secondary["state"] not in ("draft", "ready", "batched")  # sent and answered by the simulator
    path = Path(secondary["file"])
    assert path.parent == tmp_path / "out" / "secondary"
    text = path.read_text()
    assert "SBR*S*" in text and "AMT*D*" in text
    verdict = pyx12_validate(text)
    assert verdict.accepted, verdict.errors
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            claim = session.scalar(select(Claim).where(Claim.public_id == secondary["claim"]))
            assert claim.coverage_order == 2
            assert session.scalar(select(BatchClaim).where(BatchClaim.claim_id == claim.id)) is not None
    finally:
        engine.dispose()


def test_prior_adjudications_are_loaded_per_chunk_not_per_claim(app, session, ids):
    from sqlalchemy import event

    from claims_server.app import state as app_state

    secondaries = []
    for _ in range(4):
        primary = make_claim(session, ids)
        adjudicate(session, primary, status="1", lines=PRIMARY)
        secondaries.append(create_next_payer_claim(session, primary))
        make_ready(session, secondaries[-1])
    session.commit()
    payment_queries: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("SELECT") and "FROM claim_payments" in statement:
            payment_queries.append(statement)

    engine = app_state(app).engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        result = build_batches(session)
        session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert result.claims_batched == 4 and result.held == []
    assert len(payment_queries) == 1  # one query for the four claims' prior payments
    (text,) = [_batched_text(session, batch_id) for batch_id in result.batch_ids]
    # One 2000B (SBR*S) for the shared subscriber; one 2320 (SBR*P, AMT*D) per claim.
    assert text.count("SBR*S*") == 1 and text.count("SBR*P*") == 4 and text.count("AMT*D*130~") == 4
    assert pyx12_validate(text).accepted
