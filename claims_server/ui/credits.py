"""Credit balances (``/ui/credits``): patient and payer credits with their origin; refund, transfer, hold.

Pages over ``claims_server.ledger.credits`` with the API's rules. Each form shows its errors
beside the field and changes nothing when refused; refund and transfer forms carry a hidden
idempotency key made when the page is shown (a double click posts once). A refund above the
user's limit becomes an approval request and the page says so. Refunds have a page of their
own (a payer check shows its refund letter).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from flask import Response, flash, redirect, request, url_for
from sqlalchemy import select

from claims_server.api_common.fields import money_text_to_cents
from claims_server.api_common.transactions import mutation, principal_key
from claims_server.app import db_session
from claims_server.errors import ApiError
from claims_server.ledger import credits
from claims_server.ledger.credit_views import current_user_row, refund_limit
from claims_server.models import Claim, Patient
from claims_server.remittance.unmatched import find_claim
from claims_server.security.policy import rule_for
from claims_server.security.principal import current_principal
from claims_server.ui.blueprint import bp, field_errors, page

METHOD_LABELS = {
    "check": "Check",
    "card_reversal": "Card reversal",
    "payer_offset": "Payer offset (PLB WO/72 on a later 835)",
}


def _may_act() -> bool:
    rule = rule_for("ui.credit_refund")
    return rule is not None and current_principal().role in rule.roles


def _patient_label(patient_id: int | None) -> str | None:
    if patient_id is None:
        return None
    patient = db_session().get(Patient, patient_id)
    return f"{patient.last_name}, {patient.first_name}" if patient is not None else None


@bp.route("/credits", methods=["GET"], endpoint="credits")
@mutation()
def credit_list() -> Response:
    """Every credit now, and the latest refunds."""
    session = db_session()
    rows = []
    for credit in credits.list_credits(session):
        row = credits.credit_json(session, credit)
        row["patient_name"] = _patient_label(credit.patient_id)
        rows.append(row)
    refunds = [credits.refund_json(session, r) for r in credits.list_refunds(session, limit=25)]
    return page("credits.html", rows=rows, refunds=refunds)


def _open_claims(session: Any, credit: credits.Credit) -> list[tuple[str, str]]:
    """The patient's claims with an open patient balance (transfer targets)."""
    if credit.patient_id is None:
        return []
    out = []
    for claim in session.scalars(
        select(Claim)
        .where(Claim.patient_id == credit.patient_id, Claim.original_claim_id.is_(None))
        .order_by(Claim.id)
    ):
        owed = sum(g.cents for g in credits.patient_open_groups(session, claim.id))
        if owed > 0 and claim.id != credit.claim_id:
            out.append(
                (claim.patient_control_number, f"{claim.patient_control_number} (owes ${owed / 100:,.2f})")
            )
    return out


def _credit_page(
    credit_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: Any = None,
    which: str = "",
) -> Response:
    session = db_session()
    credit = credits.get_credit(session, credit_id)
    assert credit is not None
    detail = credits.credit_json(session, credit)
    detail["patient_name"] = _patient_label(credit.patient_id)
    claim = session.get(Claim, credit.claim_id) if credit.claim_id is not None else None
    defaults = {
        "amount": detail["amount"],
        "tamount": detail["amount"],
        "method": detail["refund_methods"][0],
        "reference": "",
        "claim": "",
        "until": "",
        "note": "",
        "idempotency_key": uuid.uuid4().hex,
    }
    return page(
        "credit.html",
        status,
        c=detail,
        claim=claim,
        errors=errors or {},
        which=which,
        form={**defaults, **(form or {})},
        methods=[(m, METHOD_LABELS[m]) for m in detail["refund_methods"]],
        targets=_open_claims(session, credit) if credit.kind is not credits.CreditKind.PAYER else [],
        may_act=_may_act(),
    )


@bp.route("/credits/<credit_id>", methods=["GET"], endpoint="credit")
@mutation()
def credit_detail(credit_id: str) -> Response:
    """One credit: its origin, and the refund, transfer and hold forms."""
    return _credit_page(credit_id)


def _form(*names: str) -> dict[str, str]:
    return {k: (request.form.get(k) or "").strip() for k in (*names, "idempotency_key")}


def _refused(credit_id: str, exc: ApiError, form: dict[str, str], which: str) -> Response:
    db_session().rollback()
    aliases = {"Idempotency-Key": "_form", "credit": "_form"}
    if which == "transfer":
        aliases["amount"] = "tamount"
    errors = field_errors(exc, aliases=aliases)
    return _credit_page(credit_id, status=exc.status, errors=errors, form=form, which=which)


@bp.route("/credits/<credit_id>/refund", methods=["POST"], endpoint="credit_refund")
@mutation()
def credit_refund(credit_id: str) -> Response:
    """Refund the credit (or part of it); errors beside the fields."""
    form = _form("amount", "method", "reference")
    if not form["idempotency_key"]:
        return _credit_page(
            credit_id, status=422, errors={"_form": "Reload the page."}, form=form, which="refund"
        )
    cents, problem = money_text_to_cents(form["amount"])
    if cents is None:
        return _credit_page(
            credit_id, status=422, errors={"amount": problem or ""}, form=form, which="refund"
        )
    try:
        outcome = credits.refund_credit(
            db_session(),
            credit_id,
            amount_cents=cents,
            method=form["method"],
            reference=form["reference"] or None,
            idempotency_key=f"{principal_key()}:{form['idempotency_key']}"[:255],
            requested_by=current_user_row(),
            limit_cents=refund_limit(),
        )
    except ApiError as exc:
        return _refused(credit_id, exc, form, "refund")
    if outcome.approval is not None:
        flash(
            "The refund is above your limit: it waits for a supervisor's approval. Nothing was posted yet.",
            "success",
        )
    elif outcome.replayed:
        flash(
            "This refund was already recorded (the form was sent twice); nothing was posted again.", "success"
        )
    else:
        flash(f"Refund of ${outcome.refund.amount_cents / 100:,.2f} issued.", "success")
    return redirect(url_for("ui.refund", refund_id=outcome.refund.public_id), 303)


@bp.route("/credits/<credit_id>/transfer", methods=["POST"], endpoint="credit_transfer")
@mutation()
def credit_transfer(credit_id: str) -> Response:
    """Move the credit to another open balance of the same patient; errors beside the fields."""
    session = db_session()
    form = _form("tamount", "claim")
    if not form["idempotency_key"]:
        return _credit_page(
            credit_id, status=422, errors={"_form": "Reload the page."}, form=form, which="transfer"
        )
    cents, problem = money_text_to_cents(form["tamount"])
    if cents is None:
        return _credit_page(
            credit_id, status=422, errors={"tamount": problem or ""}, form=form, which="transfer"
        )
    target = find_claim(session, form["claim"])
    try:
        if target is None:
            raise credits.refuse("claim", "exists", "no claim has this number")
        done = credits.transfer_credit(
            session,
            credit_id,
            amount_cents=cents,
            target=target,
            idempotency_key=f"{principal_key()}:{form['idempotency_key']}"[:255],
        )
    except ApiError as exc:
        return _refused(credit_id, exc, form, "transfer")
    flash(
        f"${done.amount_cents / 100:,.2f} of the credit now pays claim {target.patient_control_number}.",
        "success",
    )
    return redirect(url_for("ui.credits"), 303)


@bp.route("/credits/<credit_id>/hold", methods=["POST"], endpoint="credit_hold")
@mutation()
def credit_hold(credit_id: str) -> Response:
    """Hold the credit until a date, with a note."""
    form = _form("until", "note")
    try:
        until = date.fromisoformat(form["until"]) if form["until"] else None
    except ValueError:
        return _credit_page(credit_id, status=422, errors={"until": "Enter a date."}, form=form, which="hold")
    try:
        credits.hold_credit(
            db_session(), credit_id, until=until, note=form["note"], author=current_user_row()
        )
    except ApiError as exc:
        return _refused(credit_id, exc, form, "hold")
    flash(f"The credit is held until {until}.", "success")
    return redirect(url_for("ui.credits"), 303)


@bp.route("/refunds/<refund_id>", methods=["GET"], endpoint="refund")
@mutation()
def refund_detail(refund_id: str) -> Response:
    """One refund; a payer check shows its refund letter."""
    session = db_session()
    refund = credits.refund_json(session, credits.get_refund(session, refund_id))
    return page("refund.html", r=refund, method_label=METHOD_LABELS.get(refund["method"], refund["method"]))
