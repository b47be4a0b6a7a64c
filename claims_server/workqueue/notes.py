"""Follow-up notes (call, payer portal, letter, internal) on a claim, a patient or a work item,
with an optional follow-up date, and each biller's "my follow-ups" list.

- **Where a note shows.** A note names what it was written on and everything above it: a
  note on a work item also carries the item's claim and patient, a note on a claim its
  patient. So the claim screen lists the notes of its items, and the patient's account every
  note about the patient, without a second copy.
- **What is kept.** The body is free text that can name the patient ("spoke to Jane about
  her DOB"): it lives in the encrypted ``notes.body`` column and never in an audit event,
  a log or an error. The audit event ``note.create`` names the note by its public id, its
  kind, the subject's public ids, the follow-up date and the body's length. Notes are
  written once (the database refuses UPDATE and DELETE; see ``security.immutability``).
- **Markup is refused, not escaped.** Pages escape everything anyway; a note that holds a
  tag (``<b>``, ``<script>``, ``<?xml``) is almost always a paste from a portal or a letter
  template whose text the biller meant to clean up, and a note read back by another tool
  (a CSV export, an e-mail) may not escape it. A ``<`` alone ("balance < 10.00") is fine.
- **Follow-up date.** Only on a work item's note: it says when the biller will look at the
  item again, so the item sleeps until that day (``services.snooze``; it wakes by itself at
  00:00 UTC) and goes to the author when nobody had it. The date must be the office's today
  or later and at most :data:`MAX_FOLLOW_UP_DAYS` ahead. "Today" is the server's UTC date
  (the same day the queue's snooze and "days in queue" use), passed in by the caller so
  tests can move it. A follow-up of today leaves (or wakes) the item in the queue: it is
  due now.
- **My follow-ups.** A work item is due for a user when that user's latest note on it that
  has a follow-up date names today or an earlier day and the item is not resolved. A later
  note with a new date moves the follow-up; resolving the item ends it.

Nothing here commits: the caller's unit of work does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claims_server.api_common.audit import audit
from claims_server.errors import Unprocessable
from claims_server.models import AuditAction, Claim, Note, NoteKind, Patient, User, WorkItem
from claims_server.models.common import utcnow
from claims_server.models.workqueue import WorkItemStatus
from claims_server.workqueue import services

__all__ = [
    "MAX_BODY",
    "MAX_FOLLOW_UP_DAYS",
    "FollowUp",
    "NoteSubject",
    "add_note",
    "count_due_follow_ups",
    "follow_ups",
    "list_notes",
    "note_to_json",
    "notes_to_json",
]

#: The longest note, in characters (after stripping): a call log, not a letter (letters are
#: the appeal's ``letter_text``).
MAX_BODY = 4000
#: How far ahead a follow-up may be set: about a year (366 days covers a leap year).
MAX_FOLLOW_UP_DAYS = 366

#: Something that looks like an HTML/XML tag: ``<b>``, ``</p>``, ``<br/>``, ``<!DOCTYPE``,
#: ``<?xml``, ``<!-- -->``. ``a < b`` and ``<3`` are not tags (no letter right after ``<``).
_TAG = re.compile(r"<(?:[/!?]?[A-Za-z][^<>]*|!--.*?--)>", re.DOTALL)


@dataclass(frozen=True)
class NoteSubject:
    """What a note is written on: exactly one of claim, patient or work item."""

    claim: Claim | None = None
    patient: Patient | None = None
    item: WorkItem | None = None

    @property
    def kind(self) -> str:
        return "work_item" if self.item is not None else "claim" if self.claim is not None else "patient"


def _error(field: str, rule: str, message: str) -> dict[str, str]:
    return {"field": field, "rule": rule, "message": message}


def _check(
    kind: Any, body: Any, follow_up_on: Any, subject: NoteSubject, today: date
) -> tuple[NoteKind, str, date | None]:
    """The note's kind, stripped body and follow-up date, or a 422 listing every bad field."""
    errors: list[dict[str, str]] = []
    note_kind: NoteKind | None = None
    try:
        note_kind = NoteKind(kind)
    except ValueError:
        errors.append(_error("kind", "one_of", f"one of {', '.join(k.value for k in NoteKind)}"))
    text = body.strip() if isinstance(body, str) else None
    if text is None:
        errors.append(_error("body", "type", "the note must be text"))
    elif not text:
        errors.append(_error("body", "required", "write the note"))
    elif len(text) > MAX_BODY:
        errors.append(
            _error("body", "max_length", f"at most {MAX_BODY:,} characters (this one has {len(text):,})")
        )
    elif _TAG.search(text):
        errors.append(
            _error("body", "no_markup", "plain text only: remove anything that looks like a tag, such as <b>")
        )
    day: date | None = None
    if isinstance(follow_up_on, str) and follow_up_on.strip():
        try:
            follow_up_on = date.fromisoformat(follow_up_on.strip())
        except ValueError:
            errors.append(_error("follow_up_on", "date", "a date such as 2026-04-30"))
            follow_up_on = None
    elif isinstance(follow_up_on, str):
        follow_up_on = None
    if follow_up_on is not None and not isinstance(follow_up_on, date):
        errors.append(_error("follow_up_on", "date", "a date such as 2026-04-30"))
    elif follow_up_on is not None:
        day = follow_up_on
        if subject.item is None:
            errors.append(
                _error(
                    "follow_up_on",
                    "work_item_only",
                    "a follow-up date goes on a work item's note (the item waits until then)",
                )
            )
        elif subject.item.status == WorkItemStatus.RESOLVED:
            errors.append(
                _error("follow_up_on", "item_open", "the item is resolved: there is nothing to follow up")
            )
        elif day < today:
            errors.append(_error("follow_up_on", "not_past", f"today ({today.isoformat()}) or later"))
        elif day > today + timedelta(days=MAX_FOLLOW_UP_DAYS):
            latest = today + timedelta(days=MAX_FOLLOW_UP_DAYS)
            errors.append(
                _error(
                    "follow_up_on", "within_a_year", f"at most a year ahead ({latest.isoformat()} or earlier)"
                )
            )
    if errors:
        raise Unprocessable("the note was not saved: " + "; ".join(e["field"] for e in errors), errors=errors)
    assert note_kind is not None and text is not None
    return note_kind, text, day


def add_note(
    session: Session,
    subject: NoteSubject,
    *,
    kind: Any,
    body: Any,
    follow_up_on: Any = None,
    author: User | None,
    today: date | None = None,
) -> Note:
    """Write a note on ``subject`` by ``author``; with a follow-up date on a work item, the item
    sleeps until that day and is assigned to the author if it was nobody's.

    Every input is checked before anything is written (a refused note changes nothing);
    ``follow_up_on`` may be a date or ISO text (a form field). Flushed: the note has its
    public id.
    """
    current = today or utcnow().date()
    note_kind, text, day = _check(kind, body, follow_up_on, subject, current)
    item, claim, patient = subject.item, subject.claim, subject.patient
    claim_id = item.claim_id if item is not None else claim.id if claim is not None else None
    if item is not None:
        patient_id = item.patient_id or (item.claim.patient_id if item.claim is not None else None)
    elif claim is not None:
        patient_id = claim.patient_id
    else:
        assert patient is not None
        patient_id = patient.id
    note = Note(
        kind=note_kind,
        claim_id=claim_id,
        patient_id=patient_id,
        work_item_id=item.id if item is not None else None,
        author_user_id=author.id if author is not None else None,
        follow_up_on=day,
        body=text,
        created_at=utcnow(),
    )
    session.add(note)
    session.flush()
    audit(
        session,
        action=AuditAction.CREATE,
        event_type="note.create",
        entity_type="note",
        entity_id=note.public_id,
        patient_id=patient_id,
        details={
            "kind": note_kind.value,
            "on": subject.kind,
            "work_item": item.public_id if item is not None else None,
            "claim": claim.public_id
            if claim is not None
            else (item.claim.public_id if item and item.claim else None),
            "follow_up_on": day.isoformat() if day is not None else None,
            "characters": len(text),
        },
    )
    if item is not None and day is not None:
        if day > current:
            services.snooze(session, item, day, today=current)
        elif item.status == WorkItemStatus.SNOOZED:
            services.wake(session, item)  # due today: back in the queue now
        if item.assignee_user_id is None and author is not None and author.active:
            services.assign(session, item, author)
    return note


def list_notes(session: Session, subject: NoteSubject) -> list[Note]:
    """The notes shown on ``subject``, newest first: a work item's own notes; a claim's and its
    items'; every note about a patient (on the patient, its claims and their items)."""
    stmt = select(Note)
    if subject.item is not None:
        stmt = stmt.where(Note.work_item_id == subject.item.id)
    elif subject.claim is not None:
        stmt = stmt.where(Note.claim_id == subject.claim.id)
    else:
        assert subject.patient is not None
        stmt = stmt.where(Note.patient_id == subject.patient.id)
    return list(session.scalars(stmt.order_by(Note.created_at.desc(), Note.id.desc())))


def _names(session: Session, notes: list[Note], model: type[Any], column: str) -> dict[int, Any]:
    ids = {getattr(n, column) for n in notes if getattr(n, column) is not None}
    if not ids:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


def notes_to_json(session: Session, notes: list[Note]) -> list[dict[str, Any]]:
    """The notes as the API shows them (public ids only; the author's user name for display)."""
    authors = _names(session, notes, User, "author_user_id")
    claims = _names(session, notes, Claim, "claim_id")
    patients = _names(session, notes, Patient, "patient_id")
    items = _names(session, notes, WorkItem, "work_item_id")
    return [note_to_json(n, authors, claims, patients, items) for n in notes]


def note_to_json(
    note: Note,
    authors: dict[int, User],
    claims: dict[int, Claim] | None = None,
    patients: dict[int, Patient] | None = None,
    items: dict[int, WorkItem] | None = None,
) -> dict[str, Any]:
    def public(rows: dict[int, Any] | None, row_id: int | None) -> str | None:
        row = (rows or {}).get(row_id) if row_id is not None else None
        return row.public_id if row is not None else None

    author = authors.get(note.author_user_id) if note.author_user_id is not None else None
    return {
        "id": note.public_id,
        "kind": note.kind.value,
        "body": note.body,
        "follow_up_on": note.follow_up_on,
        "author": author.public_id if author is not None else None,
        "author_name": author.username if author is not None else None,
        "created_at": note.created_at,
        "claim": public(claims, note.claim_id),
        "patient": public(patients, note.patient_id),
        "work_item": public(items, note.work_item_id),
    }


# -- my follow-ups ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUp:
    """A work item a user follows up on, with the note that set the date."""

    item: WorkItem
    note: Note

    @property
    def follow_up_on(self) -> date:
        assert self.note.follow_up_on is not None
        return self.note.follow_up_on


def _latest_follow_up_notes(user_id: int) -> Any:
    """Subquery: per work item, the id of ``user_id``'s latest note with a follow-up date."""
    return (
        select(func.max(Note.id).label("note_id"))
        .where(
            Note.author_user_id == user_id,
            Note.work_item_id.is_not(None),
            Note.follow_up_on.is_not(None),
        )
        .group_by(Note.work_item_id)
        .subquery()
    )


def _follow_up_select(user_id: int, today: date, *, due: bool) -> Any:
    latest = _latest_follow_up_notes(user_id)
    when = Note.follow_up_on <= today if due else Note.follow_up_on > today
    return (
        select(WorkItem, Note)
        .join(Note, Note.work_item_id == WorkItem.id)
        .join(latest, latest.c.note_id == Note.id)
        .where(when, WorkItem.status != WorkItemStatus.RESOLVED)
    )


def follow_ups(session: Session, user: User, *, today: date, due: bool = True) -> list[FollowUp]:
    """``user``'s follow-ups: due (``today`` or earlier; the oldest date first) or, with
    ``due=False``, upcoming (after ``today``, the nearest first). Resolved items drop out."""
    stmt = _follow_up_select(user.id, today, due=due).order_by(Note.follow_up_on, WorkItem.id)
    return [FollowUp(item, note) for item, note in session.execute(stmt).all()]


def count_due_follow_ups(session: Session, user_id: int, *, today: date) -> int:
    """How many of ``user_id``'s follow-ups are due (for the navigation's badge)."""
    stmt = select(func.count()).select_from(_follow_up_select(user_id, today, due=True).subquery())
    return int(session.scalar(stmt) or 0)
