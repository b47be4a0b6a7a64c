"""Follow-up in the workspace: a work item's own page (notes, manual resolve), the notes panel on
the claim and patient pages, and "My follow-ups".

- The notes panel is one macro (``ui/_notes.html``) fed by :func:`notes_panel_for`, a template
  global, so the claim, patient and work-item pages show the same panel without each view
  building it. A refused note re-renders the page it was added on with the messages beside
  the panel's fields: the refused form travels to the global in ``g`` (:data:`_PANEL_STATE`).
- Writes go through ``claims_server.workqueue.notes`` and ``services.resolve``, the functions
  behind ``/api/v1/.../follow-up-notes`` and ``/api/v1/workqueue/items/{id}/resolve``.
- "My follow-ups" (``/ui/follow-ups``) lists the signed-in user's items due today or earlier,
  then the upcoming ones; the navigation shows how many are due (:func:`_due_count`).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from flask import Response, flash, g, redirect, request, url_for
from sqlalchemy.exc import SQLAlchemyError

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.claims.services import get_claim
from claims_server.errors import ApiError
from claims_server.models import Claim, NoteKind, Patient, Payer, WorkItem
from claims_server.models.common import utcnow
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.patients.services import get_patient
from claims_server.security.policy import rule_for
from claims_server.security.principal import current_principal
from claims_server.ui.blueprint import bp, current_user, field_errors, page
from claims_server.workqueue import notes, services

log = logging.getLogger(__name__)

KIND_LABELS = {
    NoteKind.CALL: "Call",
    NoteKind.PAYER_PORTAL: "Payer portal",
    NoteKind.LETTER: "Letter",
    NoteKind.INTERNAL: "Internal",
}
RESOLUTION_LABELS = {
    services.ResolutionCode.CORRECTED_AND_RESUBMITTED: "Corrected and resubmitted",
    services.ResolutionCode.APPEALED: "Appealed",
    services.ResolutionCode.BILLED_SECONDARY: "Billed the secondary payer",
    services.ResolutionCode.BILLED_PATIENT: "Billed the patient",
    services.ResolutionCode.WRITTEN_OFF: "Written off",
    services.ResolutionCode.PAYMENT_RECEIVED: "Payment received",
    services.ResolutionCode.BALANCE_SETTLED: "Balance settled",
    services.ResolutionCode.NO_ACTION_NEEDED: "No action needed",
}
#: The panel's form field names (prefixed: the claim page has forms of its own) by service field.
FIELD_ALIASES = {"kind": "note_kind", "body": "note_body", "follow_up_on": "note_follow_up_on"}
_PANEL_STATE = "notes_panel_state"


def _today() -> date:
    """The office's today: the server's UTC date, as the queue's snooze counts it."""
    return utcnow().date()


def _may(endpoint: str) -> bool:
    rule = rule_for(endpoint)
    return rule is not None and current_principal().role in rule.roles


def _subject_key(subject: notes.NoteSubject) -> tuple[str, int]:
    row = subject.item or subject.claim or subject.patient
    assert row is not None
    return subject.kind, row.id


def _action(subject: notes.NoteSubject) -> str:
    if subject.item is not None:
        return url_for("ui.work_item_note", item_id=subject.item.public_id)
    if subject.claim is not None:
        return url_for("ui.claim_note", claim_id=subject.claim.public_id)
    assert subject.patient is not None
    return url_for("ui.patient_note", patient_id=subject.patient.public_id)


def notes_panel_for(
    claim: Claim | None = None, patient: Patient | None = None, item: WorkItem | None = None
) -> dict[str, Any]:
    """What ``ui/_notes.html``'s ``notes_panel`` shows for one subject (a template global)."""
    session = db_session()
    subject = notes.NoteSubject(claim=claim, patient=patient, item=item)
    rows = notes.list_notes(session, subject)
    state = g.get(_PANEL_STATE) or {}
    mine = state.get("subject") == _subject_key(subject)
    today = _today()
    return {
        "title": "Notes and follow-up" if item is not None else "Notes",
        "subject": subject.kind,
        "notes": notes.notes_to_json(session, rows),
        "kind_labels": {k.value: label for k, label in KIND_LABELS.items()},
        "kinds": [(k.value, label) for k, label in KIND_LABELS.items()],
        "action": _action(subject),
        "can_write": _may(
            {"work_item": "ui.work_item_note", "claim": "ui.claim_note", "patient": "ui.patient_note"}[
                subject.kind
            ]
        ),
        "allow_follow_up": item is not None and item.status != WorkItemStatus.RESOLVED,
        "errors": state.get("errors", {}) if mine else {},
        "form": state.get("form", {}) if mine else {},
        "today": today.isoformat(),
        "latest": (today + timedelta(days=notes.MAX_FOLLOW_UP_DAYS)).isoformat(),
        "max_body": notes.MAX_BODY,
    }


bp.add_app_template_global(notes_panel_for, "notes_panel_for")


def _add(subject: notes.NoteSubject, rerender: Any) -> Response | None:
    """Add the posted note; on a refusal, roll back and re-render the page with the messages."""
    session = db_session()
    form = request.form
    values = {name: form.get(name, "") for name in FIELD_ALIASES.values()}
    try:
        note = notes.add_note(
            session,
            subject,
            kind=values["note_kind"],
            body=values["note_body"],
            follow_up_on=values["note_follow_up_on"] if subject.item is not None else None,
            author=current_user(),
            today=_today(),
        )
    except ApiError as exc:
        session.rollback()
        state = {"subject": _subject_key(subject), "errors": field_errors(exc, FIELD_ALIASES), "form": values}
        setattr(g, _PANEL_STATE, state)
        return rerender()
    message = "Note added."
    if subject.item is not None and note.follow_up_on is not None:
        item = subject.item
        if services.is_snoozed(item):
            message += f" The item waits until {note.follow_up_on.isoformat()}"
        else:
            message += " The follow-up is due today"
        message += f" and is with {item.assignee.username if item.assignee else 'the shared queue'}."
    flash(message, "success")
    return None


@bp.route("/claims/<claim_id>/follow-up-notes", methods=["POST"], endpoint="claim_note")
@mutation()
def claim_note(claim_id: str) -> Response:
    """Add a note on the claim (``POST /api/v1/claims/{id}/follow-up-notes``)."""
    from claims_server.ui.claims import _render_claim

    claim = get_claim(db_session(), claim_id)
    refused = _add(notes.NoteSubject(claim=claim), lambda: _render_claim(claim, 422))
    return refused or redirect(url_for("ui.claim", claim_id=claim.public_id, _anchor="notes"), 303)


@bp.route("/patients/<patient_id>/follow-up-notes", methods=["POST"], endpoint="patient_note")
@mutation()
def patient_note(patient_id: str) -> Response:
    """Add a note on the patient's account (``POST /api/v1/patients/{id}/follow-up-notes``)."""
    from claims_server.ui.patients import _account_page

    session = db_session()
    patient = get_patient(session, patient_id, audit_read=False)
    refused = _add(notes.NoteSubject(patient=patient), lambda: _account_page(session, patient, status=422))
    return refused or redirect(url_for("ui.patient", patient_id=patient.public_id, _anchor="notes"), 303)


# -- the work item's page ------------------------------------------------------------------------


def _render_item(item: WorkItem, status: int = 200, errors: dict[str, str] | None = None) -> Response:
    from claims_server.ui.queues import ACTION_LABELS, QUEUE_LABELS

    session = db_session()
    facts = services.item_facts(session, [item]).get(item.id, (None, 0))
    payer = session.get(Payer, facts[0]) if facts[0] is not None else None
    today = _today()
    return page(
        "work_item.html",
        status,
        item=item,
        queue_label=QUEUE_LABELS.get(item.queue, item.queue.value.replace("_", " ").capitalize()),
        action_label=ACTION_LABELS.get(item.recommended_action or "", item.recommended_action),
        status_now=services.effective_status(item).value,
        snoozed=services.is_snoozed(item),
        payer=payer,
        amount_cents=facts[1],
        days=services.days_in_queue(item, today),
        explanation=services.explanation_of(item),
        comments=[c for c in item.comments if c.author_user_id is not None],
        resolutions=[
            ("", "Choose…"),
            *(
                (r.value, label)
                for r, label in RESOLUTION_LABELS.items()
                # under appeal (corrections/appeals.py): no write-off until the payer's outcome
                if not (item.queue == WorkQueue.APPEAL and r == services.ResolutionCode.WRITTEN_OFF)
            ),
        ],
        can_resolve=_may("ui.work_item_resolve") and item.status != WorkItemStatus.RESOLVED,
        errors=errors or {},
        form=request.form if status != 200 else {},
    )


@bp.route("/work-items/<item_id>", methods=["GET"], endpoint="work_item")
def work_item(item_id: str) -> Response:
    """One work item: what it is about, its notes and follow-up, and manual resolve (a PHI view)."""
    return _render_item(services.get_work_item(db_session(), item_id))


@bp.route("/work-items/<item_id>/follow-up-notes", methods=["POST"], endpoint="work_item_note")
@mutation()
def work_item_note(item_id: str) -> Response:
    """Add a note on the item; a follow-up date snoozes it (``POST .../items/{id}/follow-up-notes``)."""
    item = services.get_work_item(db_session(), item_id)
    refused = _add(notes.NoteSubject(item=item), lambda: _render_item(item, 422))
    return refused or redirect(url_for("ui.work_item", item_id=item.public_id, _anchor="notes"), 303)


@bp.route("/work-items/<item_id>/resolve", methods=["POST"], endpoint="work_item_resolve")
@mutation()
def work_item_resolve(item_id: str) -> Response:
    """Close the item by hand with a reason code and an optional note (stored encrypted), as
    ``POST /api/v1/workqueue/items/{id}/resolve`` does."""
    session = db_session()
    item = services.get_work_item(session, item_id)
    code = request.form.get("resolution", "")
    if not code:
        return _render_item(item, 422, {"resolution": "Choose how the item ended."})
    try:
        services.resolve(session, item, code, request.form.get("resolution_note", ""))
    except ApiError as exc:
        session.rollback()
        session.refresh(item)
        return _render_item(
            item, exc.status, field_errors(exc, {"note": "resolution_note", "status": "_form"})
        )
    flash(f"Resolved: {RESOLUTION_LABELS[services.ResolutionCode(code)]}.", "success")
    return redirect(url_for("ui.work_item", item_id=item.public_id), 303)


# -- my follow-ups -------------------------------------------------------------------------------


@bp.route("/follow-ups", methods=["GET"], endpoint="followups")
def followups() -> Response:
    """The signed-in user's follow-ups: due today or earlier, then upcoming (``GET /api/v1/follow-ups``)."""
    from claims_server.ui.queues import QUEUE_LABELS

    session = db_session()
    me = current_user()
    today = _today()
    due = notes.follow_ups(session, me, today=today, due=True)
    upcoming = notes.follow_ups(session, me, today=today, due=False)
    rendered = notes.notes_to_json(session, [f.note for f in due + upcoming])
    by_id = {n["id"]: n for n in rendered}
    return page(
        "followups.html",
        due=due,
        upcoming=upcoming,
        rendered=by_id,
        today=today,
        queue_labels=QUEUE_LABELS,
        kind_labels={k.value: label for k, label in KIND_LABELS.items()},
    )


@bp.app_context_processor
def _due_count() -> dict[str, Any]:
    """``ui_followups_due``: the signed-in user's follow-ups due today, for the navigation."""
    if request.blueprint != "ui":
        return {}
    principal = current_principal()
    if not principal.is_staff or principal.user_id is None:
        return {}
    try:
        return {
            "ui_followups_due": notes.count_due_follow_ups(db_session(), principal.user_id, today=_today())
        }
    except SQLAlchemyError:  # an error page after a failed transaction: the badge is not worth a 500
        log.warning("follow-up count unavailable", extra={"request_id": g.get("request_id")})
        return {}
