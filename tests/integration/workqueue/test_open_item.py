"""open_work_item: idempotent by dedupe key, audited once, explanation kept as the first comment."""

from __future__ import annotations

from sqlalchemy import func, select

from claims_server.models import AuditEvent, WorkItem
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.workqueue.services import explanation_of, open_work_item, recommend_action


def _audits(session, event_type: str) -> int:
    return session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.event_type == event_type)
    )


def test_open_twice_gives_one_item_and_one_audit(session, claim):
    action, explanation = recommend_action("CO", "16", ["N290"])
    first = open_work_item(
        session,
        queue=WorkQueue.DENIED,
        claim=claim,
        reason_codes=["CO-16", "N290"],
        recommended_action=action,
        explanation=explanation,
        dedupe_key=f"denied:claim:{claim.id}:test",
    )
    session.commit()
    second = open_work_item(
        session,
        queue=WorkQueue.DENIED,
        claim=claim,
        reason_codes=["CO-99"],
        recommended_action="write_off",
        explanation="other",
        dedupe_key=f"denied:claim:{claim.id}:test",
    )
    session.commit()
    assert second.id == first.id
    assert session.scalar(select(func.count()).select_from(WorkItem)) == 1
    stored = session.get(WorkItem, first.id)
    assert stored.status is WorkItemStatus.OPEN
    assert stored.reason_codes == ["CO-16", "N290"]
    assert stored.recommended_action == "correct_and_resubmit"
    assert explanation_of(stored) == explanation
    assert _audits(session, "work_item.open") == 1
    event = session.scalar(select(AuditEvent).where(AuditEvent.event_type == "work_item.open"))
    assert event.entity_id == stored.public_id
    assert event.patient_id == claim.patient_id
    assert event.details["reason_codes"] == ["CO-16", "N290"]


def test_two_opens_in_one_transaction_share_the_item(session, claim):
    kwargs = {
        "queue": WorkQueue.UNMATCHED,
        "reason_codes": [],
        "recommended_action": "review",
        "explanation": "",
        "dedupe_key": "unmatched:test:1",
    }
    a = open_work_item(session, **kwargs)
    b = open_work_item(session, **kwargs)
    session.commit()
    assert a is b
    assert explanation_of(a) is None
