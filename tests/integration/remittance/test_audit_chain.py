"""The posting's audit events (written in bulk, in chain order) keep the hash chain intact."""

from __future__ import annotations

from sqlalchemy import func, select

from claims_server.app import state
from claims_server.models import AuditEvent
from claims_server.remittance import posting
from claims_server.remittance.services import receive_and_post
from claims_server.security import audit as audit_module
from claims_server.security.checkpoints import verify_audit_chain
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim


def test_chain_verifies_after_a_multi_batch_posting(app, session, world, factory, monkeypatch):
    monkeypatch.setattr(posting, "CHUNK", 2)  # several batches, each with its own bulk write
    clps = []
    for i in range(7):
        claim = make_claim(session, world, f"PCN-AU{i}", [("99213", 10000 + i)])
        (lcn,) = (line.line_control_number for line in claim.service_lines)
        if i % 3 == 2:  # denials open work items (their audit events are collected for the bulk write)
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


def test_posting_writes_its_per_claim_audit_events_through_the_shared_bulk_append(
    app, session, world, factory, monkeypatch
):
    """Money, claim states and work items: ``audit_events_bulk``, not one ORM row per event."""
    single: list[str] = []
    bulk: list[str] = []
    one_event, many_events = audit_module.audit_event, audit_module.audit_events_bulk

    def spy_one(session, **kw):
        single.append(kw["event_type"])
        return one_event(session, **kw)

    def spy_many(session, events):
        events = list(events)
        bulk.extend(e["event_type"] for e in events)
        return many_events(session, events)

    monkeypatch.setattr(audit_module, "audit_event", spy_one)
    monkeypatch.setattr(audit_module, "audit_events_bulk", spy_many)
    monkeypatch.setattr(posting, "audit_events_bulk", spy_many)
    monkeypatch.setattr(posting, "CHUNK", 3)
    clps = []
    for i in range(6):
        claim = make_claim(session, world, f"PCN-BK{i}", [("99213", 10000)])
        (lcn,) = (line.line_control_number for line in claim.service_lines)
        denied = i % 2 == 1
        clps.append(
            Clp(
                claim.patient_control_number,
                "4" if denied else "1",
                10000,
                0 if denied else 8000,
                lines=[
                    Svc(
                        "99213",
                        10000,
                        0 if denied else 8000,
                        [("CO", "50" if denied else "45", 10000 if denied else 2000)],
                        lcn=lcn,
                    )
                ],
            )
        )
    single.clear()
    assert receive_and_post(factory, build_835(clps, trace="AUDIT-BULK")).status == "posted"
    per_claim = ("claim.", "ledger.", "work_item.")
    assert [e for e in single if e.startswith(per_claim)] == []
    assert sum(e.startswith("ledger.") for e in bulk) == 6  # each claim's charge (+ payment): one event
    assert sum(e.startswith("claim.") for e in bulk) == 6  # every claim's state change
    assert sum(e == "work_item.open" for e in bulk) == 3  # every denial's work item
    ring = app.extensions["claims_security"].cipher.ring
    with state(app).engine.connect() as conn:
        report = verify_audit_chain(conn, ring, None)
    assert report.ok, report.problems[:3]
