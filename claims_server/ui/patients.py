"""Patient account (``/ui/patients``): search, then one patient's coverages, eligibility, balance,
statements and payments, and a front-desk payment form.

The search is a POST: names, birth dates and member ids never go in a URL; the results
link by public id. The lookups are the API's (``patients.services.search_patients``:
blind indexes, each patient found is audited). The account page is a PHI view: the
patient read is audited explicitly, and the rows it loads by the read-audit hook.

A payment is posted by ``payments.services.record_patient_payment`` with the API's own
schema; the form carries a hidden idempotency key made when it is shown, so a double
click (or a reload of the POST) records the payment once and says so.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, flash, redirect, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.api_common.fields import cents_to_money, money_text_to_cents
from claims_server.api_common.transactions import mutation, principal_key
from claims_server.app import db_session
from claims_server.eligibility.services import last_check
from claims_server.errors import ApiError
from claims_server.models import Claim, Patient, PatientPayment, PaymentMethod, Statement
from claims_server.models.payments import PaymentReceipt, PaymentSource
from claims_server.patients import services as patients
from claims_server.patients.schemas import SEARCH_WAYS, PatientSearchSchema
from claims_server.payments.services import (
    MAX_PAYMENT_CENTS,
    SOURCE_METHODS,
    open_lines,
    patient_balance,
    record_patient_payment,
)
from claims_server.payments.views import PaymentSchema, payment_json
from claims_server.security import clock
from claims_server.security.policy import rule_for
from claims_server.security.principal import current_principal
from claims_server.ui.blueprint import bp, field_errors, money, page

SEARCH_FIELDS = tuple(name for way in SEARCH_WAYS for name in way)  # the API's search, one form
FRONT_DESK_METHODS = tuple(sorted(m.value for m in SOURCE_METHODS[PaymentSource.FRONT_DESK]))


def _messages(exc: ValidationError) -> dict[str, str]:
    """A schema's messages by form field (the first message of each)."""
    out: dict[str, str] = {}
    for name, value in (exc.messages if isinstance(exc.messages, dict) else {"_form": exc.messages}).items():
        first = value[0] if isinstance(value, list) and value else value
        out["_form" if name == "_schema" else name] = str(first)
    return out


@bp.route("/patients", methods=["GET"], endpoint="patients")
def patients_search_form() -> Response:
    """The search form (nothing is looked up on a GET)."""
    return page("patients.html", errors={}, form={}, results=None)


@bp.route("/patients/search", methods=["POST"], endpoint="patient_search")
@mutation()
def patient_search() -> Response:
    """Find patients by member id, account number, or last name, first name and birth date (in the body)."""
    form = {k: (request.form.get(k) or "").strip() for k in SEARCH_FIELDS}
    try:
        criteria = PatientSearchSchema().load({k: v for k, v in form.items() if v})
    except ValidationError as exc:
        return page("patients.html", 422, errors=_messages(exc), form=form, results=None)
    found = patients.search_patients(db_session(), criteria)
    return page("patients.html", errors={}, form=form, results=found)


def _eligibility(session: Session, coverage: Any) -> dict[str, Any] | None:
    check = last_check(session, coverage.id)
    if check is None:
        return None
    summary = check.benefits_summary or {}
    general = next((s for s in summary.get("services", []) if s.get("service_type") == "30"), None)
    return {"check": check, "summary": summary, "general": general}


def _may_record_payment() -> bool:
    rule = rule_for("ui.patient_payment")
    return rule is not None and current_principal().role in rule.roles


def _account_page(
    session: Session,
    patient: Patient,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: Any = None,
) -> Response:
    coverages = patients.list_coverages(session, patient)
    claims = list(
        session.scalars(
            select(Claim).where(Claim.patient_id == patient.id).order_by(Claim.id.desc()).limit(25)
        )
    )
    lines = open_lines(session, patient.id)
    # A claim shows as its claim number (CLM01) and links by public id, never by internal id.
    claim_ids = {c.id: (c.public_id, c.patient_control_number) for c in claims}
    missing = {line.claim_id for line in lines if line.claim_id and line.claim_id not in claim_ids}
    if missing:
        claim_ids.update(
            (row_id, (public_id, number))
            for row_id, public_id, number in session.execute(
                select(Claim.id, Claim.public_id, Claim.patient_control_number).where(Claim.id.in_(missing))
            )
        )
    statements = list(
        session.scalars(
            select(Statement)
            .where(Statement.patient_id == patient.id)
            .order_by(Statement.id.desc())
            .limit(12)
        )
    )
    payments = [
        payment_json(p, r)
        for p, r in session.execute(
            select(PatientPayment, PaymentReceipt)
            .outerjoin(PaymentReceipt, PaymentReceipt.patient_payment_id == PatientPayment.id)
            .where(PatientPayment.patient_id == patient.id)
            .order_by(PatientPayment.id.desc())
            .limit(25)
        ).all()
    ]
    defaults = {
        "amount": "",
        "method": "cash",
        "reference": "",
        "statement_id": "",
        "received_on": clock.now().date().isoformat(),
        "allow_credit": "",
        "idempotency_key": uuid.uuid4().hex,
    }
    return page(
        "patient.html",
        status,
        patient=patient,
        coverages=[(c, _eligibility(session, c)) for c in coverages],
        claims=claims,
        balance_cents=patient_balance(session, patient.id),
        lines=[(line, claim_ids.get(line.claim_id or 0)) for line in lines],
        statements=statements,
        statement_options=[
            (s.public_id, f"{s.statement_date.isoformat()}: {money(s.balance_cents)} ({s.state.value})")
            for s in statements
        ],
        payments=payments,
        errors=errors or {},
        form={**defaults, **(form or {})},
        methods=[(m, m.capitalize()) for m in FRONT_DESK_METHODS],
        may_pay=_may_record_payment(),
    )


@bp.route("/patients/<patient_id>", methods=["GET"], endpoint="patient")
@mutation()  # commits the explicit patient.read audit event
def patient(patient_id: str) -> Response:
    """One patient's account: coverages and last eligibility answer, balance, statements, payments."""
    session = db_session()
    return _account_page(session, patients.get_patient(session, patient_id))


@bp.route("/patients/<patient_id>/payments", methods=["POST"], endpoint="patient_payment")
@mutation()
def patient_payment(patient_id: str) -> Response:
    """Record a payment taken at the front desk; the form's idempotency key makes a double click pay once."""
    session = db_session()
    target = patients.get_patient(session, patient_id, audit_read=False)
    form = {
        k: (request.form.get(k) or "").strip()
        for k in ("amount", "method", "reference", "statement_id", "received_on")
    }
    form["allow_credit"] = "y" if request.form.get("allow_credit") else ""
    form["idempotency_key"] = (request.form.get("idempotency_key") or "").strip()
    if not form["idempotency_key"] or len(form["idempotency_key"]) > 64:
        return _account_page(
            session,
            target,
            status=422,
            form=form,
            errors={"_form": "The form is incomplete; reload the page and try again."},
        )
    cents, problem = money_text_to_cents(form["amount"], max_cents=MAX_PAYMENT_CENTS)
    if cents is None:
        return _account_page(session, target, status=422, form=form, errors={"amount": problem or ""})
    try:
        data = PaymentSchema().load(
            {
                "amount": cents_to_money(cents),
                "method": form["method"],
                "source": PaymentSource.FRONT_DESK.value,
                "reference": form["reference"] or None,
                "statement_id": form["statement_id"] or None,
                "received_on": form["received_on"] or None,
                "allow_credit": bool(form["allow_credit"]),
            }
        )
    except ValidationError as exc:
        return _account_page(session, target, status=422, form=form, errors=_messages(exc))
    statement_id = None
    if data["statement_id"]:
        statement = session.scalar(select(Statement).where(Statement.public_id == data["statement_id"]))
        if statement is None or statement.patient_id != target.id:
            errors = {"statement_id": "Not one of this patient's statements."}
            return _account_page(session, target, status=422, form=form, errors=errors)
        statement_id = statement.id
    try:
        outcome = record_patient_payment(
            session,
            patient_id=target.id,
            amount_cents=data["amount"],
            source=PaymentSource.FRONT_DESK,
            method=PaymentMethod(data["method"]),
            idempotency_key=f"{principal_key()}:{form['idempotency_key']}"[:255],
            received_on=data["received_on"],
            statement_id=statement_id,
            allow_credit=data["allow_credit"],
            reference=data["reference"],
        )
    except ApiError as exc:
        errors = field_errors(exc, aliases={"Idempotency-Key": "_form"})
        return _account_page(session, target, status=422, form=form, errors=errors)
    if outcome.replayed:
        flash(
            "This payment was already recorded (the form was sent twice); nothing was posted again.",
            "success",
        )
    else:
        flash(
            f"Payment of {money(outcome.payment.amount_cents)} recorded; the patient now owes "
            f"{money(max(outcome.open_balance_after_cents, 0))}.",
            "success",
        )
    return redirect(url_for("ui.patient", patient_id=target.public_id), 303)
