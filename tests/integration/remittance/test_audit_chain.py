"""The posting's audit events (written in bulk, in chain order) keep the hash chain intact."""

from __future__ import annotations

from sqlalchemy import func, select

from claims_server.app import state
from claims_server.models import AuditEvent
from claims_server.remittance import posting
from claims_server.remittance.services import receive_and_post
from claims_server.security.checkpoints import verify_audit_chain
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim


def test_chain_verifies_after_a_multi_batch_posting(app, session, world, factory, monkeypatch):
    monkeypatch.setattr(posting, "CHUNK", 2)  # several batches, each with its own bulk write
    clps = []
    for i in range(7):
        claim = make_claim(session, world, f"PCN-AU{i}", [("99213", 10000 + i)])
        (lcn,) = (line.line_control_number for line in claim.service_lines)
        if i % 3 == 2:  # denials open work items (their audit events are written by the ORM)
            clps.append(
                Clp(
                    claim.patient_control_number,
                    "4",
                    10000 + i,
                    0,
                    lines=[Svc("99213", 10000 + i, 0, [("CO", "50", 10000 + i)], lcn=lcn)],
                )
            )
        else:
            clps.append(
                Clp(
                    claim.patient_control_number,
                    "1",
                    10000 + i,
                    8000,
                    lines=[Svc("99213", 10000 + i, 8000, [("CO", "45", 2000 + i)], lcn=lcn)],
                )
            )
    before = session.scalar(select(func.count()).select_from(AuditEvent))
    assert receive_and_post(factory, build_835(clps, trace="AUDIT-1", plb=[("WO", 100)])).status == "posted"
    session.expire_all()
    after = session.scalar(select(func.count()).select_from(AuditEvent))
    # Per claim: its money (one event) and its state change; per denial: the work item; + PLB.
    assert after - before >= 7 * 2 + 2 + 1
    ring = app.extensions["claims_security"].cipher.ring
    with state(app).engine.connect() as conn:
        report = verify_audit_chain(conn, ring, None)
    assert report.ok, report.problems[:3]
    assert report.events == after
