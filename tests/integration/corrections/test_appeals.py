"""Appeals as records: level, deadline, generated letter, attachments, status and outcome, and
the denial item's moves between the denied and appeal queues (docs/appeals.md)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from claims_server.corrections import appeals
from claims_server.errors import Conflict, Unprocessable
from claims_server.models import AuditEvent, ClaimFilingIndicator
from claims_server.models.workqueue import (
    Appeal,
    AppealLevel,
    AppealOutcome,
    AppealStatus,
    WorkItemStatus,
    WorkQueue,
)
from claims_server.workqueue.services import open_work_item
from tests.integration.workqueue.support import LineAnswer, adjudicate, make_claim

TODAY = datetime.now(UTC).date()
DENIED_ON = TODAY - timedelta(days=10)
#: CO-50 (medical necessity: the playbook says appeal) with N115 on line 1, CO-4 on line 2.
ANSWER = [
    LineAnswer(0, [("CO", "50", 17500)], remarks=["N115"]),
    LineAnswer(0, [("CO", "4", 4550)]),
]


def _denied(session, ids, *, number: str = "ICN-APL-1", day: date = DENIED_ON):
    claim = make_claim(session, ids)
    adjudicate(session, claim, status="4", lines=ANSWER, payer_claim_number=number, payment_date=day)
    item = open_work_item(
        session,
        queue=WorkQueue.DENIED,
        claim=claim,
        reason_codes=["CO-50", "CO-4", "N115"],
        recommended_action="appeal",
        explanation="CO-50: not medically necessary.",
        dedupe_key=f"denied:test:{claim.public_id}",
    )
    session.flush()
    return claim, item


def _first_days(claim) -> int:
    indicator = claim.coverage.payer.claim_filing_indicator
    return 120 if indicator in appeals.MEDICARE_INDICATORS else 180


def test_opening_moves_the_denial_to_the_appeal_queue_with_deadline_and_letter(session, ids):
    claim, item = _denied(session, ids)
    appeal = appeals.open_appeal(session, claim)  # the claim's open denial item is found
    session.commit()

    assert appeal.level is AppealLevel.FIRST and appeal.status is AppealStatus.DRAFT
    assert appeal.denial_date == DENIED_ON
    assert appeal.deadline == DENIED_ON + timedelta(days=_first_days(claim))
    assert appeal.work_item_id == item.id
    assert item.queue is WorkQueue.APPEAL and item.status is WorkItemStatus.OPEN
    assert item.due_date == appeal.deadline
    assert item.recommended_action == appeals.SUBMIT_APPEAL
    letter = appeal.letter_text
    for fact in (
        claim.patient_control_number,
        "ICN-APL-1",
        claim.service_lines[0].service_date_from.isoformat(),
        "$220.50",  # billed: 175.00 + 45.50
        "CO-50",
        "CO-4",
        "N115",
        claim.patient.last_name,
        "99214",
    ):
        assert fact in letter, fact
    assert "medical" in letter.lower()  # CO-50 in the playbook's words
    assert appeals.attachments_of(appeal) == []
    # The letter names the patient: the audit records no letter text.
    details = session.scalar(
        select(AuditEvent.details)
        .where(AuditEvent.event_type == "appeal.open")
        .order_by(AuditEvent.id.desc())
    )
    assert claim.patient.last_name not in json.dumps(details)


def test_upheld_returns_the_item_with_the_next_level_then_the_levels_chain(session, ids):
    claim, item = _denied(session, ids)
    first = appeals.open_appeal(session, claim)
    appeals.submit_appeal(session, first)
    assert item.queue is WorkQueue.APPEAL and item.recommended_action == appeals.AWAIT_DECISION
    decided = datetime.now(UTC)
    appeals.record_outcome(session, first, "upheld", now=decided)
    assert (first.status, first.outcome) == (AppealStatus.LOST, AppealOutcome.UPHELD)
    assert item.queue is WorkQueue.DENIED and item.status is WorkItemStatus.OPEN
    assert item.recommended_action == "appeal"
    medicare = claim.coverage.payer.claim_filing_indicator in appeals.MEDICARE_INDICATORS
    assert item.due_date == decided.date() + timedelta(days=180 if medicare else 60)

    second = appeals.open_next_level(session, first)
    assert second.level is AppealLevel.SECOND and second.parent_appeal_id == first.id
    assert second.denial_date == decided.date() and second.deadline == item.due_date
    assert item.queue is WorkQueue.APPEAL and second.work_item_id == item.id
    with pytest.raises(Conflict, match="already has its next level"):
        appeals.open_next_level(session, first)
    appeals.submit_appeal(session, second)
    appeals.record_outcome(session, second, "upheld")
    external = appeals.open_next_level(session, second)
    assert external.level is AppealLevel.EXTERNAL
    appeals.submit_appeal(session, external)
    appeals.record_outcome(session, external, "upheld")
    assert item.queue is WorkQueue.DENIED and item.recommended_action == "write_off"
    with pytest.raises(Unprocessable) as refused:
        appeals.open_next_level(session, external)
    assert refused.value.errors[0]["field"] == "level"
    session.commit()


@pytest.mark.parametrize("outcome", ["overturned", "partially_overturned"])
def test_a_won_appeal_closes_the_item(session, ids, outcome):
    claim, item = _denied(session, ids)
    appeal = appeals.open_appeal(session, claim)
    appeals.submit_appeal(session, appeal)
    appeals.record_outcome(session, appeal, outcome)
    session.commit()
    assert appeal.status is AppealStatus.WON and appeal.outcome is AppealOutcome(outcome)
    assert item.status is WorkItemStatus.RESOLVED
    assert item.resolution.startswith("appealed: appeal won") and "payment expected" in item.resolution


def test_withdrawn_returns_the_item_with_the_codes_recommendation(session, ids):
    claim, item = _denied(session, ids)
    appeal = appeals.open_appeal(session, claim)
    appeals.record_outcome(session, appeal, "withdrawn")
    session.commit()
    assert appeal.status is AppealStatus.WITHDRAWN and appeal.outcome is None
    assert item.queue is WorkQueue.DENIED and item.status is WorkItemStatus.OPEN
    assert item.recommended_action not in (appeals.SUBMIT_APPEAL, appeals.AWAIT_DECISION)
    assert item.due_date is None
    # Withdrawn is not live: a new appeal may be opened.
    again = appeals.open_appeal(session, claim)
    assert again.status is AppealStatus.DRAFT and item.queue is WorkQueue.APPEAL


def _snapshot(session, appeal: Appeal, item) -> tuple:
    session.rollback()
    return (
        appeal.status,
        appeal.outcome,
        appeal.letter_text,
        appeal.attachments,
        item.queue,
        item.status,
        item.due_date,
        session.scalar(select(func.count()).select_from(AuditEvent)),
    )


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        (lambda s, a: appeals.record_outcome(s, a, "upheld"), "outcome", "submitted_first"),
        (lambda s, a: appeals.record_outcome(s, a, "maybe"), "outcome", "one_of"),
        (
            lambda s, a: appeals.submit_appeal(s, a, today=a.deadline + timedelta(days=1)),
            "deadline",
            "deadline_passed",
        ),
        (lambda s, a: appeals.update_appeal(s, a, letter_text="x" * 20001), "letter_text", "length"),
        (
            lambda s, a: appeals.update_appeal(s, a, letter_text="Dear payer <script>alert(1)</script>"),
            "letter_text",
            "markup",
        ),
        (lambda s, a: appeals.update_appeal(s, a, letter_text="   "), "letter_text", "required"),
        (
            lambda s, a: appeals.update_appeal(s, a, attachments=[{"name": "Office note", "kind": "selfie"}]),
            "attachments[0].kind",
            "one_of",
        ),
        (
            lambda s, a: appeals.update_appeal(s, a, attachments=[{"name": "<b>x</b>", "kind": "other"}]),
            "attachments[0].name",
            "markup",
        ),
        (
            lambda s, a: appeals.update_appeal(s, a, attachments=[{"name": "n", "kind": "other"}] * 31),
            "attachments",
            "length",
        ),
        (lambda s, a: appeals.remove_attachment(s, a, 3), "attachment", "exists"),
    ],
)
def test_bad_input_is_refused_beside_its_field_and_changes_nothing(session, ids, change, field, rule):
    claim, item = _denied(session, ids)
    appeal = appeals.open_appeal(session, claim)
    session.commit()
    before = _snapshot(session, appeal, item)
    with pytest.raises(Unprocessable) as refused:
        change(session, appeal)
    assert any(e["field"] == field and e["rule"] == rule for e in refused.value.errors), refused.value.errors
    assert _snapshot(session, appeal, item) == before


def test_state_rules(session, ids):
    claim, _ = _denied(session, ids)
    appeal = appeals.open_appeal(session, claim)
    with pytest.raises(Conflict, match="already draft"):
        appeals.open_appeal(session, claim)
    appeals.add_attachment(session, appeal, "Office note of the visit", "medical_records")
    appeals.add_attachment(session, appeal, "Authorization letter", "authorization")
    appeals.remove_attachment(session, appeal, 0)
    assert [(a["name"], a["kind"]) for a in appeals.attachments_of(appeal)] == [
        ("Authorization letter", "authorization")
    ]
    appeals.submit_appeal(session, appeal)
    with pytest.raises(Conflict, match="only a draft"):
        appeals.update_appeal(session, appeal, letter_text="changed after sending")
    with pytest.raises(Unprocessable) as refused:
        appeals.open_next_level(session, appeal)  # not lost
    assert refused.value.errors[0]["field"] == "status"
    session.commit()


@pytest.mark.parametrize(
    ("indicator", "level", "expected"),
    [
        (ClaimFilingIndicator.MEDICARE_PART_B, AppealLevel.FIRST, date(2026, 6, 2)),  # +120
        (ClaimFilingIndicator.MEDICARE_PART_B, AppealLevel.SECOND, date(2026, 8, 1)),  # +180
        (ClaimFilingIndicator.MEDICARE_PART_A, AppealLevel.EXTERNAL, date(2026, 4, 3)),  # +60
        (ClaimFilingIndicator.COMMERCIAL, AppealLevel.FIRST, date(2026, 8, 1)),  # default 180
        (ClaimFilingIndicator.COMMERCIAL, AppealLevel.SECOND, date(2026, 4, 3)),  # +60
        (ClaimFilingIndicator.MEDICAID, AppealLevel.EXTERNAL, date(2026, 6, 2)),  # +120
    ],
)
def test_the_deadline_table(indicator, level, expected):
    assert appeals.appeal_deadline(indicator, date(2026, 2, 2), level=level) == expected


def test_the_command_line_lists_by_deadline_without_phi(session, ids, database_url, monkeypatch):
    from click.testing import CliRunner

    from claims_server.cli import main

    late, _ = _denied(session, ids, number="ICN-CLI-1", day=TODAY - timedelta(days=400))
    soon, _ = _denied(session, ids, number="ICN-CLI-2")
    overdue = appeals.open_appeal(session, late)
    current = appeals.open_appeal(session, soon)
    session.commit()
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    listed = runner.invoke(main, ["appeals", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)["items"]
    assert [(r["appeal"], r["overdue"]) for r in rows] == [
        (overdue.public_id, True),
        (current.public_id, False),
    ]
    assert late.patient.last_name not in listed.output
    flagged = runner.invoke(main, ["appeals", "list", "--overdue"])
    assert flagged.exit_code == 1 and overdue.public_id in flagged.output
    assert current.public_id not in flagged.output
