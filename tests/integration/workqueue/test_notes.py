"""Follow-up notes (claims_server.workqueue.notes): where they show, the follow-up date's snooze
and assignment, every refusal changing nothing, and each user's follow-ups."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select, text

from claims_server.errors import Unprocessable
from claims_server.models import AuditEvent, Note, NoteKind, Role, WorkItem
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.security.authn import create_user
from claims_server.workqueue import notes, services
from claims_server.workqueue.services import WorkItemFilters, find_work_items, open_work_item

TODAY = date(2026, 3, 2)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@pytest.fixture
def biller(session):
    user = create_user(session, username="nora", display_name="Nora", role=Role.BILLER, password=None)
    session.commit()
    return user


@pytest.fixture
def item(session, claim):
    made = open_work_item(
        session,
        queue=WorkQueue.DENIED,
        claim=claim,
        reason_codes=["CO-16"],
        recommended_action="correct_and_resubmit",
        explanation="CO-16: claim lacks information",
        dedupe_key=f"notes-test:{claim.id}",
    )
    session.commit()
    return made


def _open_ids(session, day: date) -> list[int]:
    items = find_work_items(session, WorkItemFilters(status="active"), _midnight(day) + timedelta(hours=9))
    return [i.id for i in items]


def _counts(session) -> tuple[int, int]:
    notes_count = session.scalar(select(func.count()).select_from(Note))
    events = session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.event_type.like("note.%"))
    )
    return notes_count, events


def test_follow_up_snoozes_the_item_until_that_day_and_assigns_the_author(session, item, biller, claim):
    assert _open_ids(session, TODAY) == [item.id]
    day = TODAY + timedelta(days=3)
    note = notes.add_note(
        session,
        notes.NoteSubject(item=item),
        kind="call",
        body="  Called the payer: they need the referral number. Ref 77812.  ",
        follow_up_on=day,
        author=biller,
        today=TODAY,
    )
    session.commit()
    assert note.body == "Called the payer: they need the referral number. Ref 77812."
    assert note.kind is NoteKind.CALL
    assert (note.work_item_id, note.claim_id, note.patient_id) == (item.id, claim.id, claim.patient_id)
    stored = session.get(WorkItem, item.id)
    assert stored.status is WorkItemStatus.SNOOZED
    assert stored.snoozed_until == _midnight(day)
    assert stored.assignee_user_id == biller.id
    # Hidden from the open queue until the day, back on it that day.
    assert _open_ids(session, TODAY) == []
    assert _open_ids(session, day - timedelta(days=1)) == []
    assert _open_ids(session, day) == [item.id]
    # Audited by public id; the text is in no audit detail and encrypted at rest.
    event = session.scalar(select(AuditEvent).where(AuditEvent.event_type == "note.create"))
    assert event.entity_id == note.public_id and event.patient_id == claim.patient_id
    assert event.details["follow_up_on"] == day.isoformat() and event.details["work_item"] == item.public_id
    assert "referral" not in str(event.details)
    raw = session.execute(text("SELECT body FROM notes WHERE id = :id"), {"id": note.id}).scalar()
    assert "referral" not in str(raw)


def test_a_second_note_moves_the_follow_up_and_keeps_the_assignee(session, item, biller):
    other = create_user(session, username="omar", display_name="Omar", role=Role.BILLER, password=None)
    services.assign(session, item, other)
    session.commit()
    subject = notes.NoteSubject(item=item)
    notes.add_note(session, subject, kind="call", body="first", follow_up_on=TODAY + timedelta(days=5),
                   author=biller, today=TODAY)  # fmt: skip
    notes.add_note(session, subject, kind="payer_portal", body="portal says pending",
                   follow_up_on=TODAY + timedelta(days=2), author=biller, today=TODAY)  # fmt: skip
    session.commit()
    assert item.assignee_user_id == other.id  # assigned already: not taken over
    assert item.snoozed_until == _midnight(TODAY + timedelta(days=2))
    assert [f.item.id for f in notes.follow_ups(session, biller, today=TODAY + timedelta(days=2))] == [
        item.id
    ]
    assert notes.follow_ups(session, biller, today=TODAY + timedelta(days=1)) == []
    upcoming = notes.follow_ups(session, biller, today=TODAY, due=False)
    assert [(f.item.id, f.follow_up_on) for f in upcoming] == [(item.id, TODAY + timedelta(days=2))]
    assert notes.follow_ups(session, other, today=TODAY + timedelta(days=30)) == []  # not Omar's notes


def test_follow_up_today_is_due_now_and_wakes_a_snoozed_item(session, item, biller):
    services.snooze(session, item, TODAY + timedelta(days=10), today=TODAY)
    session.commit()
    notes.add_note(session, notes.NoteSubject(item=item), kind="internal", body="look today",
                   follow_up_on=TODAY.isoformat(), author=biller, today=TODAY)  # fmt: skip
    session.commit()
    assert item.status is WorkItemStatus.OPEN and item.snoozed_until is None
    assert _open_ids(session, TODAY) == [item.id]
    assert [f.item.id for f in notes.follow_ups(session, biller, today=TODAY)] == [item.id]
    assert notes.count_due_follow_ups(session, biller.id, today=TODAY) == 1
    # Resolving the item ends the follow-up.
    services.resolve(session, item, "no_action_needed", "paid after all")
    session.commit()
    assert notes.follow_ups(session, biller, today=TODAY) == []
    assert notes.count_due_follow_ups(session, biller.id, today=TODAY + timedelta(days=9)) == 0


def test_notes_show_on_the_claim_and_the_patient_newest_first(session, item, biller, claim):
    patient = claim.patient
    on_patient = notes.add_note(session, notes.NoteSubject(patient=patient), kind="letter",
                                body="statement returned: new address", author=biller, today=TODAY)  # fmt: skip
    on_claim = notes.add_note(session, notes.NoteSubject(claim=claim), kind="internal",
                              body="check the modifier", author=biller, today=TODAY)  # fmt: skip
    on_item = notes.add_note(session, notes.NoteSubject(item=item), kind="call", body="called",
                             author=biller, today=TODAY)  # fmt: skip
    session.commit()
    assert [n.id for n in notes.list_notes(session, notes.NoteSubject(item=item))] == [on_item.id]
    assert [n.id for n in notes.list_notes(session, notes.NoteSubject(claim=claim))] == [
        on_item.id,
        on_claim.id,
    ]
    assert [n.id for n in notes.list_notes(session, notes.NoteSubject(patient=patient))] == [
        on_item.id,
        on_claim.id,
        on_patient.id,
    ]
    shown = notes.notes_to_json(session, [on_item])[0]
    assert shown["claim"] == claim.public_id and shown["work_item"] == item.public_id
    assert shown["author_name"] == "nora" and shown["kind"] == "call"
    # A note without a follow-up date changes nothing on the item.
    assert item.status is WorkItemStatus.OPEN and item.assignee_user_id is None


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"follow_up_on": TODAY - timedelta(days=1)}, "follow_up_on", "not_past"),
        ({"follow_up_on": TODAY + timedelta(days=367)}, "follow_up_on", "within_a_year"),
        ({"follow_up_on": "31/03/2026"}, "follow_up_on", "date"),
        ({"follow_up_on": 20260331}, "follow_up_on", "date"),
        ({"body": "x" * 100_000}, "body", "max_length"),
        ({"body": "x" * 4001}, "body", "max_length"),
        ({"body": "Payer said <b>denied</b>"}, "body", "no_markup"),
        ({"body": "<script>alert(1)</script>"}, "body", "no_markup"),
        ({"body": '<?xml version="1.0"?><a/>'}, "body", "no_markup"),
        ({"body": "see <!-- hidden --> here"}, "body", "no_markup"),
        ({"body": "   "}, "body", "required"),
        ({"body": 42}, "body", "type"),
        ({"kind": "email"}, "kind", "one_of"),
        ({"kind": None}, "kind", "one_of"),
    ],
)
def test_bad_input_is_refused_naming_field_and_rule_and_writes_nothing(
    session, item, biller, changes, field, rule
):
    before = _counts(session)
    args = {"kind": "call", "body": "called the payer", "follow_up_on": TODAY + timedelta(days=3), **changes}
    with pytest.raises(Unprocessable) as refused:
        notes.add_note(session, notes.NoteSubject(item=item), author=biller, today=TODAY, **args)
    assert {"field": field, "rule": rule} in [
        {"field": e["field"], "rule": e["rule"]} for e in refused.value.errors
    ]
    session.rollback()
    assert _counts(session) == before
    stored = session.get(WorkItem, item.id)
    assert (stored.status, stored.snoozed_until, stored.assignee_user_id) == (WorkItemStatus.OPEN, None, None)


def test_a_follow_up_date_only_goes_on_an_open_work_item(session, item, biller, claim):
    with pytest.raises(Unprocessable) as refused:
        notes.add_note(session, notes.NoteSubject(claim=claim), kind="call", body="called",
                       follow_up_on=TODAY + timedelta(days=1), author=biller, today=TODAY)  # fmt: skip
    assert refused.value.errors[0]["rule"] == "work_item_only"
    services.resolve(session, item, "no_action_needed")
    with pytest.raises(Unprocessable) as refused:
        notes.add_note(session, notes.NoteSubject(item=item), kind="call", body="called",
                       follow_up_on=TODAY + timedelta(days=1), author=biller, today=TODAY)  # fmt: skip
    assert refused.value.errors[0]["rule"] == "item_open"
    # A plain note on a resolved item is history: accepted.
    notes.add_note(
        session, notes.NoteSubject(item=item), kind="internal", body="closed", author=biller, today=TODAY
    )


def test_plain_text_with_angle_brackets_that_are_not_tags_is_accepted(session, item, biller):
    note = notes.add_note(
        session,
        notes.NoteSubject(item=item),
        kind="internal",
        body="balance < 10.00 and > 2.00; <3 the payer",
        author=biller,
        today=TODAY,
    )
    assert note.body == "balance < 10.00 and > 2.00; <3 the payer"
    longest = notes.add_note(
        session, notes.NoteSubject(item=item), kind="internal", body="y" * 4000, author=biller, today=TODAY
    )
    assert len(longest.body) == 4000


def test_follow_ups_command_line(session, item, biller, database_url, monkeypatch):
    import json

    from click.testing import CliRunner

    from claims_server.cli import main

    day = TODAY + timedelta(days=1)
    note = notes.add_note(session, notes.NoteSubject(item=item), kind="call", body="secret text",
                          follow_up_on=day, author=biller, today=TODAY)  # fmt: skip
    session.commit()
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    due = runner.invoke(
        main, ["workqueue", "follow-ups", "--user", "nora", "--as-of", day.isoformat(), "--json"]
    )
    assert due.exit_code == 0, due.output
    rows = json.loads(due.output)["items"]
    assert [(r["item"], r["note"], r["follow_up_on"], r["kind"]) for r in rows] == [
        (item.public_id, note.public_id, day.isoformat(), "call")
    ]
    assert "secret text" not in due.output
    before = runner.invoke(main, ["workqueue", "follow-ups", "--user", "nora", "--as-of", TODAY.isoformat()])
    assert before.exit_code == 0 and "0 follow-ups due on" in before.output
    upcoming = runner.invoke(
        main, ["workqueue", "follow-ups", "--user", "nora", "--as-of", TODAY.isoformat(), "--upcoming"]
    )
    assert item.public_id in upcoming.output
    unknown = runner.invoke(main, ["workqueue", "follow-ups", "--user", "nobody"])
    assert unknown.exit_code != 0 and "no user is called" in unknown.output
