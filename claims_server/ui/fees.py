"""The fee schedule (``/ui/fee-schedule``): the practice's standard charge per code, which charge
entry fills into an empty line charge. Everyone on staff reads it; supervisors and admins add,
change and delete entries through the services the API uses (``practice.fee_schedule``)."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select

from claims_server.api_common.fields import cents_to_money, money_text_to_cents
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.errors import ApiError
from claims_server.models import Practice
from claims_server.practice import fee_schedule
from claims_server.practice.schemas import FeeEntrySchema
from claims_server.ui.blueprint import bp, field_errors, money, page
from claims_server.ui.charges import may

FIELDS = ("procedure", "modifier", "charge", "description")


def _practice() -> Practice:
    """The practice named by ``practice`` (form or query), else the only one."""
    chosen = (request.values.get("practice") or "").strip() or None
    return fee_schedule.practice_for(db_session(), chosen)


def _page(
    practice: Practice, *, status: int = 200, errors: dict[str, str] | None = None, form: Any = None
) -> Response:
    session = db_session()
    return page(
        "fee_schedule.html",
        status,
        practice=practice,
        practices=[(p.public_id, p.name) for p in session.scalars(select(Practice).order_by(Practice.name))],
        entries=fee_schedule.list_fees(session, practice.id),
        errors=errors or {},
        form=form or dict.fromkeys(FIELDS, ""),
        may_edit=may("ui.fee_schedule_save"),
    )


@bp.route("/fee-schedule", methods=["GET"], endpoint="fee_schedule")
def fee_schedule_page() -> Response:
    """The practice's fees by code (``?practice=`` when the server holds several practices)."""
    return _page(_practice())


@bp.route("/fee-schedule", methods=["POST"], endpoint="fee_schedule_save")
@mutation()
def fee_schedule_save() -> Response:
    """Add or change one entry (procedure and modifier are its key)."""
    practice = _practice()
    form = {name: (request.form.get(name) or "").strip() for name in FIELDS}
    cents, problem = money_text_to_cents(form["charge"], allow_zero=True)
    if cents is None:
        return _page(practice, status=422, errors={"charge": problem or ""}, form=form)
    try:
        entry = FeeEntrySchema().load(
            {**form, "charge": cents_to_money(cents), "description": form["description"] or None}
        )
        change = fee_schedule.save_fees(db_session(), practice, [entry])
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_form": exc.messages}
        errors = {str(k): str(v[0] if isinstance(v, list) else v) for k, v in messages.items()}
        return _page(practice, status=422, errors=errors, form=form)
    except ApiError as exc:
        return _page(practice, status=exc.status, errors=field_errors(exc), form=form)
    label = entry["procedure"] + (f"-{entry['modifier']}" if entry["modifier"] else "")
    said = "added" if change.created else "changed" if change.updated else "unchanged"
    flash(f"{label}: {money(entry['charge'])} ({said}).", "success")
    return redirect(url_for("ui.fee_schedule", practice=practice.public_id), 303)


@bp.route("/fee-schedule/delete", methods=["POST"], endpoint="fee_schedule_delete")
@mutation()
def fee_schedule_delete() -> Response:
    """Delete one entry."""
    practice = _practice()
    procedure = (request.form.get("procedure") or "").strip().upper()
    modifier = (request.form.get("modifier") or "").strip().upper()
    fee_schedule.delete_fee(db_session(), practice, procedure, modifier)
    flash(f"{procedure}{'-' + modifier if modifier else ''} deleted from the fee schedule.", "success")
    return redirect(url_for("ui.fee_schedule", practice=practice.public_id), 303)
