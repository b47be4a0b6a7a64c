"""Resolving a work item right after a bulk audit write, with changes still pending, keeps the
audit chain linear (no fork): ``resolve`` / ``resolve_by_system`` change the item's encrypted
resolution (a PHI column, audited on flush) and then append their own event; reading the chain
head for that event must not autoflush the PHI-change event onto the same head.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from claims_server.app import state
from claims_server.cli import main
from claims_server.models import AuditAction, AuditEvent, WorkItem
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.security.audit import audit_event, audit_events_bulk
from claims_server.security.checkpoints import verify_audit_chain
from claims_server.workqueue.services import ResolutionCode, open_work_item, resolve, resolve_by_system


def _verify(app):
    ring = app.extensions["claims_security"].cipher.ring
    with state(app).engine.connect() as conn:
        return verify_audit_chain(conn, ring, None)


def _bulk(session, n: int = 3) -> None:
    audit_events_bulk(
        session,
        [
            {
                "action": AuditAction.UPDATE,
                "event_type": "test.bulk",
                "entity_type": "test",
                "details": {"i": i},
            }
            for i in range(n)
        ],
    )


def _open(session, claim, key: str) -> WorkItem:
    item = open_work_item(
        session,
        queue=WorkQueue.DENIED,
        claim=claim,
        reason_codes=["CO-16"],
        recommended_action="correct_and_resubmit",
        explanation="missing information",
        dedupe_key=key,
    )
    session.commit()
    return item


def _events(session, event_type: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)))


def _assert_linear(app, session) -> None:
    report = _verify(app)
    assert report.ok, report.problems[:3]
    # Linear: no two events name the same predecessor.
    forks = session.execute(
        select(AuditEvent.prev_hash, func.count()).group_by(AuditEvent.prev_hash).having(func.count() > 1)
    ).all()
    assert forks == []


@pytest.mark.parametrize("how", ["resolve", "resolve_by_system"])
def test_resolve_after_a_bulk_audit_write_keeps_the_chain_linear(app, session, claim, how, monkeypatch):
    item = _open(session, claim, f"denied:claim:{claim.id}:chain-{how}")
    _bulk(session)
    # A pending change to a PHI column: audited (work_items.update) when it is flushed.
    if how == "resolve":
        resolve(session, item, ResolutionCode.WRITTEN_OFF, "balance written off")
    else:
        assert resolve_by_system(session, item, "balance written off in full")
    session.commit()
    session.expire_all()
    assert session.get(WorkItem, item.id).status is WorkItemStatus.RESOLVED
    assert len(_events(session, "work_item.resolve")) == 1
    assert len(_events(session, "work_items.update")) == 1
    _assert_linear(app, session)
    # The command an auditor runs says the same.
    settings = state(app).settings
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("INSTANCE_PATH", settings.INSTANCE_PATH)
    verified = CliRunner().invoke(main, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert ": ok" in verified.output


def test_many_resolutions_between_bulk_writes_keep_the_chain_linear(app, session, claim):
    items = [_open(session, claim, f"denied:claim:{claim.id}:many-{i}") for i in range(4)]
    for i, item in enumerate(items):
        _bulk(session, 2)
        if i % 2:
            resolve(session, item, ResolutionCode.NO_ACTION_NEEDED)
        else:
            resolve_by_system(session, item, "paid")
        audit_event(session, action=AuditAction.READ, event_type="test.single", entity_type="test")
    session.commit()
    assert len(_events(session, "work_item.resolve")) == 4
    _assert_linear(app, session)


def test_first_event_of_a_transaction_with_a_pending_phi_change_keeps_the_chain_linear(app, session, claim):
    """No bulk write: the first append of a transaction reads the head with the change still pending."""
    item = _open(session, claim, f"denied:claim:{claim.id}:first")
    session.expire_all()
    item = session.get(WorkItem, item.id)
    _ = item.claim  # loaded now, so resolving reads nothing before it audits
    resolve_by_system(session, item, "paid")
    session.commit()
    _assert_linear(app, session)


def test_resolve_after_a_rolled_back_savepoint_keeps_the_chain_linear(app, session, claim):
    """The head's last event was rolled back with its savepoint: the head is read again, with a
    PHI change pending."""
    item = _open(session, claim, f"denied:claim:{claim.id}:savepoint")
    audit_event(session, action=AuditAction.READ, event_type="test.kept", entity_type="test")
    savepoint = session.begin_nested()
    audit_event(session, action=AuditAction.READ, event_type="test.rolled_back", entity_type="test")
    savepoint.rollback()
    resolve(session, item, ResolutionCode.APPEALED, "appeal sent")
    session.commit()
    assert _events(session, "test.rolled_back") == []
    assert len(_events(session, "work_item.resolve")) == 1
    _assert_linear(app, session)
