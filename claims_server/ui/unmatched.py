"""Unmatched payments (``/ui/unmatched``): what the payer said in full, apply it to a claim, or return it.

Pages over ``claims_server.remittance.unmatched`` with the API's rules: the apply form takes a
claim number (or picks a suggested claim) and posts the payment through the engine as if it
had matched; a refusal is shown beside the claim field and nothing changes. The return form
is a payer refund (check with a refund letter, or a payer offset); it carries a hidden
idempotency key made when the page is shown, so a double click returns the money once.
The patient's name as the 835 gave it is on the page only, never in a URL.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, flash, redirect, request, url_for

from claims_server.api_common.fields import money_text_to_cents
from claims_server.api_common.transactions import mutation, principal_key
from claims_server.app import db_session
from claims_server.errors import ApiError
from claims_server.ledger.credit_views import current_user_row, refund_limit
from claims_server.models.ledger import RefundMethod
from claims_server.remittance import unmatched
from claims_server.security.policy import rule_for
from claims_server.security.principal import current_principal
from claims_server.ui.blueprint import bp, field_errors, page

RETURN_METHODS = [
    (RefundMethod.CHECK.value, "Check to the payer, with a refund letter"),
    (RefundMethod.PAYER_OFFSET.value, "Offset: the payer takes it from a later 835 (PLB WO/72)"),
]


def _may_act() -> bool:
    rule = rule_for("ui.unmatched_apply")
    return rule is not None and current_principal().role in rule.roles


@bp.route("/unmatched", methods=["GET"], endpoint="unmatched_list")
@mutation()
def unmatched_list() -> Response:
    """Open unmatched payments with the payer's figures; the total received."""
    session = db_session()
    include_done = request.args.get("all") == "1"
    named: dict[int, Any] = {}
    rows = []
    for item, payment in unmatched.list_unmatched(session, include_done=include_done):
        if payment.remittance_id not in named:
            named[payment.remittance_id] = unmatched.patients_as_named(session, payment.remittance)
        rows.append(
            unmatched.detail_json(
                session, item, payment, named=named[payment.remittance_id], with_suggestions=False
            )
        )
    return page(
        "unmatched_list.html",
        rows=rows,
        include_done=include_done,
        total_paid_cents=unmatched.sum_unmatched_paid(session),
    )


def _detail_page(
    item_id: str, *, status: int = 200, errors: dict[str, str] | None = None, form: Any = None
) -> Response:
    session = db_session()
    item, payment = unmatched.get_unmatched(session, item_id)
    detail = unmatched.detail_json(session, item, payment)
    defaults = {
        "claim": "",
        "amount": detail["unapplied"],
        "method": RefundMethod.CHECK.value,
        "reference": "",
        "idempotency_key": uuid.uuid4().hex,
    }
    return page(
        "unmatched.html",
        status,
        p=detail,
        errors=errors or {},
        form={**defaults, **(form or {})},
        may_act=_may_act(),
        methods=RETURN_METHODS,
    )


@bp.route("/unmatched/<item_id>", methods=["GET"], endpoint="unmatched")
@mutation()
def unmatched_detail(item_id: str) -> Response:
    """One unmatched payment in full, suggested claims, the apply and return forms."""
    return _detail_page(item_id)


@bp.route("/unmatched/<item_id>/apply", methods=["POST"], endpoint="unmatched_apply")
@mutation()
def unmatched_apply(item_id: str) -> Response:
    """Apply the payment to the claim typed (or picked); errors beside the claim field."""
    session = db_session()
    number = (request.form.get("claim") or "").strip()
    form = {"claim": number}
    if not number:
        return _detail_page(item_id, status=422, errors={"claim": "Enter the claim number."}, form=form)
    item, payment = unmatched.get_unmatched(session, item_id)
    claim = unmatched.find_claim(session, number)
    try:
        unmatched.apply_to_claim(session, item, payment, claim, actor=current_principal().name)
    except ApiError as exc:
        session.rollback()
        return _detail_page(item_id, status=exc.status, errors=field_errors(exc), form=form)
    assert claim is not None
    flash(
        f"Payment applied to claim {claim.patient_control_number}; the claim is now {claim.state.value}.",
        "success",
    )
    return redirect(url_for("ui.claim", claim_id=claim.public_id), 303)


@bp.route("/unmatched/<item_id>/return", methods=["POST"], endpoint="unmatched_return")
@mutation()
def unmatched_return(item_id: str) -> Response:
    """Return the payment (or part of it) to the payer; errors beside the fields."""
    session = db_session()
    form = {
        k: (request.form.get(k) or "").strip() for k in ("amount", "method", "reference", "idempotency_key")
    }
    if not form["idempotency_key"] or len(form["idempotency_key"]) > 64:
        return _detail_page(
            item_id, status=422, errors={"_form": "The form is incomplete; reload the page."}, form=form
        )
    cents, problem = money_text_to_cents(form["amount"])
    if cents is None:
        return _detail_page(item_id, status=422, errors={"amount": problem or ""}, form=form)
    _, payment = unmatched.get_unmatched(session, item_id)
    try:
        outcome = unmatched.return_to_payer(
            session,
            payment,
            amount_cents=cents,
            method=form["method"],
            reference=form["reference"] or None,
            idempotency_key=f"{principal_key()}:{form['idempotency_key']}"[:255],
            requested_by=current_user_row(),
            limit_cents=refund_limit(),
        )
    except ApiError as exc:
        session.rollback()
        errors = field_errors(exc, aliases={"Idempotency-Key": "_form"})
        return _detail_page(item_id, status=exc.status, errors=errors, form=form)
    if outcome.approval is not None:
        flash(
            "The refund is above your limit: it waits for a supervisor's approval. Nothing was posted yet.",
            "success",
        )
    else:
        flash("The payment was returned to the payer.", "success")
    return redirect(url_for("ui.refund", refund_id=outcome.refund.public_id), 303)
