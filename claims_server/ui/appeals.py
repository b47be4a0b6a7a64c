"""Appeals: the open appeals by deadline, and one appeal's page (letter, attachments, submit,
outcome, next level).

Every change goes through ``claims_server.corrections.appeals`` (the functions behind
``/api/v1/appeals``). A refused change re-renders the page with the message beside its field
(422) after rolling the request back, so nothing of it shows or stays. The filters (status,
level, overdue) carry no PHI and may live in the query string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, flash, redirect, request, url_for
from sqlalchemy.orm import selectinload

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.corrections import appeals
from claims_server.errors import ApiError
from claims_server.models import Claim, Coverage
from claims_server.models.common import utcnow
from claims_server.models.workqueue import Appeal, AppealLevel, AppealOutcome, AppealStatus
from claims_server.security.principal import current_principal
from claims_server.ui.blueprint import bp, field_errors, page

STATUS_OPTIONS = [
    ("open", "Open (draft or submitted)"),
    ("draft", "Draft"),
    ("submitted", "Submitted"),
    ("won", "Won"),
    ("lost", "Lost"),
    ("withdrawn", "Withdrawn"),
    ("all", "All"),
]
LEVEL_LABELS = {AppealLevel.FIRST: "First", AppealLevel.SECOND: "Second", AppealLevel.EXTERNAL: "External"}
OUTCOME_OPTIONS = [
    ("", "Choose…"),
    (AppealOutcome.OVERTURNED.value, "Overturned (won: the payer pays)"),
    (AppealOutcome.PARTIALLY_OVERTURNED.value, "Partially overturned (won in part)"),
    (AppealOutcome.UPHELD.value, "Upheld (lost: the denial stands)"),
    (AppealStatus.WITHDRAWN.value, "Withdrawn (we no longer appeal)"),
]
#: How many rows the list shows (soonest deadline first).
LIST_LIMIT = 200


@dataclass
class Row:
    appeal: Appeal
    days_left: int
    overdue: bool


def _default_days() -> int:
    return int(current_app.config.get("APPEAL_DEADLINE_DAYS", appeals.DEFAULT_APPEAL_DAYS))


@bp.route("/appeals", methods=["GET"], endpoint="appeals")
def appeals_page() -> Response:
    """Appeals by deadline: claim, patient, payer, level, status, deadline and days left."""
    session = db_session()
    status = request.args.get("status", "open")
    level = request.args.get("level", "")
    overdue = request.args.get("overdue", "") == "1"
    errors: dict[str, str] = {}
    filters = appeals.AppealFilters(status=list(appeals.LIVE))
    if status == "all":
        filters.status = None
    elif status != "open":
        try:
            filters.status = [AppealStatus(status)]
        except ValueError:
            errors["status"] = "choose a status from the list"
    if level:
        try:
            filters.level = AppealLevel(level)
        except ValueError:
            errors["level"] = "choose a level from the list"
    if overdue:
        filters.overdue = True
    rows: list[Row] = []
    if not errors:
        today = utcnow().date()
        stmt = appeals.appeal_select(filters, today).options(
            selectinload(Appeal.claim).selectinload(Claim.patient),
            selectinload(Appeal.claim).selectinload(Claim.coverage).selectinload(Coverage.payer),
        )
        rows = [
            Row(a, appeals.days_left(a, today), appeals.is_overdue(a, today))
            for a in session.scalars(stmt.limit(LIST_LIMIT))
        ]
    return page(
        "appeals.html",
        422 if errors else 200,
        rows=rows,
        values={"status": status, "level": level, "overdue": overdue},
        errors=errors,
        status_options=STATUS_OPTIONS,
        level_options=[("", "Any level"), *((lv.value, label) for lv, label in LEVEL_LABELS.items())],
        level_labels=LEVEL_LABELS,
        limit=LIST_LIMIT,
    )


def _render(
    appeal: Appeal, status: int = 200, errors: dict[str, str] | None = None, form: Any = None
) -> Response:
    session = db_session()
    parent = session.get(Appeal, appeal.parent_appeal_id) if appeal.parent_appeal_id else None
    children = [a for a in appeals.claim_appeals(session, appeal.claim) if a.parent_appeal_id == appeal.id]
    return page(
        "appeal.html",
        status,
        appeal=appeal,
        claim=appeal.claim,
        payer=appeals.payer_of(appeal),
        parent=parent,
        child=children[0] if children else None,
        attachments=appeals.attachments_of(appeal),
        kinds=appeals.ATTACHMENT_KINDS,
        kind_options=[("", "Choose…"), *appeals.ATTACHMENT_KINDS.items()],
        outcome_options=OUTCOME_OPTIONS,
        level_labels=LEVEL_LABELS,
        level_name=appeals.level_name(appeals.payer_of(appeal).claim_filing_indicator, appeal.level),
        days_left=appeals.days_left(appeal),
        overdue=appeals.is_overdue(appeal),
        next_level=appeals.NEXT_LEVEL.get(AppealLevel(appeal.level)),
        errors=errors or {},
        form=form or {},
        max_letter=appeals.MAX_LETTER,
    )


@bp.route("/appeals/<appeal_id>", methods=["GET"], endpoint="appeal")
def appeal_page(appeal_id: str) -> Response:
    """One appeal: its letter (editable while a draft), attachments, deadline and outcome."""
    return _render(appeals.get_appeal(db_session(), appeal_id))


def _refused(appeal_id: str, exc: ApiError, aliases: dict[str, str] | None = None) -> Response:
    session = db_session()
    session.rollback()  # whatever the refused change flushed must not show on the page
    appeal = appeals.get_appeal(session, appeal_id)
    errors = field_errors(exc, aliases)
    if set(errors) - {"letter_text", "name", "kind", "outcome", "attachment"}:
        errors.setdefault("_form", exc.detail)
    return _render(appeal, 422 if exc.status in (409, 422) else exc.status, errors, request.form)


def _done(appeal: Appeal, message: str) -> Response:
    flash(message, "success")
    return redirect(url_for("ui.appeal", appeal_id=appeal.public_id), 303)


@bp.route("/appeals/<appeal_id>/letter", methods=["POST"], endpoint="appeal_save")
@mutation()
def appeal_save(appeal_id: str) -> Response:
    """Save the edited letter of a draft."""
    session = db_session()
    try:
        appeal = appeals.update_appeal(
            session, appeals.get_appeal(session, appeal_id), letter_text=request.form.get("letter_text", "")
        )
    except ApiError as exc:
        return _refused(appeal_id, exc)
    return _done(appeal, "The letter was saved.")


@bp.route("/appeals/<appeal_id>/attachments", methods=["POST"], endpoint="appeal_attachment_add")
@mutation()
def appeal_attachment_add(appeal_id: str) -> Response:
    """Add a document (name and kind) to a draft's list."""
    session = db_session()
    try:
        appeal = appeals.add_attachment(
            session,
            appeals.get_appeal(session, appeal_id),
            request.form.get("name", ""),
            request.form.get("kind", ""),
        )
    except ApiError as exc:
        return _refused(appeal_id, exc)
    return _done(appeal, "The attachment was added to the list.")


@bp.route(
    "/appeals/<appeal_id>/attachments/<int:index>/remove",
    methods=["POST"],
    endpoint="appeal_attachment_remove",
)
@mutation()
def appeal_attachment_remove(appeal_id: str, index: int) -> Response:
    """Remove a document from a draft's list."""
    session = db_session()
    try:
        appeal = appeals.remove_attachment(session, appeals.get_appeal(session, appeal_id), index)
    except ApiError as exc:
        return _refused(appeal_id, exc)
    return _done(appeal, "The attachment was removed from the list.")


@bp.route("/appeals/<appeal_id>/submit", methods=["POST"], endpoint="appeal_submit")
@mutation()
def appeal_submit(appeal_id: str) -> Response:
    """Mark the appeal submitted to the payer (the letter as saved)."""
    session = db_session()
    try:
        appeal = appeals.submit_appeal(session, appeals.get_appeal(session, appeal_id))
    except ApiError as exc:
        return _refused(appeal_id, exc)
    return _done(appeal, "The appeal is marked submitted; record the payer's outcome when it comes.")


@bp.route("/appeals/<appeal_id>/outcome", methods=["POST"], endpoint="appeal_outcome")
@mutation()
def appeal_outcome(appeal_id: str) -> Response:
    """Record the payer's outcome, or withdraw the appeal."""
    session = db_session()
    outcome = request.form.get("outcome", "")
    if not outcome:
        appeal = appeals.get_appeal(session, appeal_id)
        return _render(appeal, 422, {"outcome": "Choose the outcome."}, request.form)
    try:
        appeal = appeals.record_outcome(
            session, appeals.get_appeal(session, appeal_id), outcome, default_days=_default_days()
        )
    except ApiError as exc:
        return _refused(appeal_id, exc)
    message = {
        AppealStatus.WON: "Appeal won: the work item is closed; the payer's payment is expected.",
        AppealStatus.LOST: "Appeal lost: the claim is back in the denial queue.",
        AppealStatus.WITHDRAWN: "Appeal withdrawn: the claim is back in the denial queue.",
    }.get(appeal.status, "Saved.")
    return _done(appeal, message)


@bp.route("/appeals/<appeal_id>/next-level", methods=["POST"], endpoint="appeal_next_level")
@mutation()
def appeal_next_level(appeal_id: str) -> Response:
    """Open the next level of a lost appeal."""
    session = db_session()
    try:
        child = appeals.open_next_level(
            session,
            appeals.get_appeal(session, appeal_id),
            default_days=_default_days(),
            user_id=current_principal().user_id,
        )
    except ApiError as exc:
        return _refused(appeal_id, exc)
    session.flush()
    return _done(
        child, f"The {child.level.value}-level appeal is open; file it by {child.deadline.isoformat()}."
    )
