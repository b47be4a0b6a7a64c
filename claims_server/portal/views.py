"""The patient pages at ``/pay``: statement link -> birth-date check -> statement -> pay -> receipt.

Server-rendered Jinja, no JavaScript. The flow:

1. ``GET /pay/l/<token>`` (the statement email's link): the token is a credential, so it
   leaves the address bar at once: only its SHA-256 is kept in the signed, HttpOnly (Secure
   in production) Flask session cookie, which is signed but readable, and the browser is
   sent to ``/pay/verify`` (``Referrer-Policy: no-referrer`` on every page, so no address
   with a token is ever sent to another site).
2. ``/pay/verify``: the birth-date form; ``verify_patient_link`` finds the link by that hash
   and consumes it (5 wrong dates revoke it) and answers a patient session token, set as
   the ``claims_session`` cookie for ``/pay`` only, after the Flask session is cleared (a
   new CSRF token). A link that is revoked, expired or used is dropped from the session.
   The central policy hook reads the patient session like any session: every page after
   this is PATIENT-only, and sees only this patient's rows.
3. ``/pay/statement``: the latest statement (its stored lines, reasons and aging), the
   current balance, the PDF and the full page, and how to pay. With a card processor
   (``PAYMENT_PROCESSOR``, ``payments.processors``) the pay form: an amount up to the
   balance and a hidden idempotency key made when the form was drawn, so a double click
   charges and posts once (``record_patient_payment`` with the charge, source ``link``).
   The simulated processor's form offers test outcomes instead of card fields: card
   data never touches this server. Without a processor: mail the stub or call the office.
4. ``/pay/receipts/<payment id>``: the receipt.

Refusals by the policy hook (no or expired session) are HTML pages here
(``render_refusal``), and so are CSRF failures and domain errors.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from flask import Blueprint, Response, make_response, redirect, render_template, request, session, url_for
from sqlalchemy import select
from werkzeug.exceptions import TooManyRequests

from claims_server.api_common.fields import cents_to_money, money_text_to_cents
from claims_server.app import db_session, state
from claims_server.errors import ApiError, NotFound
from claims_server.models import (
    Patient,
    PatientAccessLink,
    PatientPayment,
    PaymentMethod,
    Practice,
    Statement,
    StatementState,
)
from claims_server.models.payments import PaymentReceipt, PaymentSource
from claims_server.models.security import AuditAction
from claims_server.payments.processors import TEST_TOKENS, OnlinePaymentsDisabled, app_processor
from claims_server.payments.services import (
    MAX_PAYMENT_CENTS,
    OnlineCharge,
    PaymentDeclined,
    PaymentRefused,
    patient_balance,
    record_patient_payment,
)
from claims_server.portal.urls import PORTAL_PREFIX
from claims_server.security import clock, csrf, enforce
from claims_server.security.audit import audit_event
from claims_server.security.authn import SESSION_COOKIE, AuthError, token_hash
from claims_server.security.headers import page_headers
from claims_server.security.ownership import get_owned, scope_query
from claims_server.security.patient_links import PATIENT_SESSION_ABSOLUTE, usable_link, verify_patient_link
from claims_server.security.principal import current_principal
from claims_server.security.ratelimit import rate_limit
from claims_server.statements.views import statement_html_response, statement_pdf_response

bp = Blueprint(
    "portal",
    __name__,
    url_prefix=PORTAL_PREFIX,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

#: Where the pending link's token hash (never the token) waits between the link and the birth-date form.
_PENDING = "portal_link"


def page(template: str, status: int = 200, **context: Any) -> Response:
    """Render ``portal/<template>`` as an uncacheable response."""
    return make_response(render_template(f"portal/{template}", **context), status)


#: The patient pages' CSP: nothing but our own stylesheets and images, forms post only to us.
#: No referrer at all: the first address of a visit carries the one-time link token. The app
#: serves every answer ``no-store`` already; HSTS in production (security/headers.py).
bp.after_request(
    page_headers(
        referrer_policy="no-referrer",
        content_security_policy="default-src 'none'; style-src 'self'; form-action 'self'; img-src 'self'",
    )
)


def render_refusal(status: int, detail: str, reason: str) -> Response:
    """How the policy hook's 401/403 looks under ``/pay`` (the decision is the hook's)."""
    if status == 401:
        response = page(
            "message.html",
            401,
            title="Your secure session has ended",
            message="For your privacy, the statement page closes after a while. "
            "Open the link in your statement email again, or call the billing office for a new one.",
        )
        response.delete_cookie(SESSION_COOKIE, path=PORTAL_PREFIX)
        return response
    return page("message.html", 403, title="Not available", message="This page is not available to you.")


enforce.register_refusal_renderer(PORTAL_PREFIX, render_refusal)


def _csrf_refused(exc: csrf.CsrfError) -> Response:
    return page("message.html", 400, title="The form has expired", message=str(exc))


csrf.protect(bp, on_error=_csrf_refused)


@bp.errorhandler(ApiError)
def _domain_error(exc: ApiError) -> Response:
    db_session().rollback()
    titles = {404: "Not found", 409: "Not possible now", 422: "Not accepted"}
    return page("message.html", exc.status, title=titles.get(exc.status, "Not done"), message=exc.detail)


@bp.errorhandler(TooManyRequests)
def _too_many(exc: TooManyRequests) -> Response:
    return page(
        "message.html", 429, title="Too many attempts", message="Please wait a few minutes and try again."
    )


def _practice_contact() -> dict[str, str | None]:
    practice = db_session().scalar(select(Practice).order_by(Practice.id).limit(1))
    if practice is None:
        return {"name": None, "phone": None}
    phone = practice.phone
    if phone and len(phone) == 10:
        phone = f"({phone[:3]}) {phone[3:6]}-{phone[6:]}"
    return {"name": practice.name, "phone": phone}


# -- public: the link and the birth-date check ----------------------------------------------------


@bp.route("/", methods=["GET"], endpoint="index")
def index() -> Response:
    """What this site is, for someone who typed the address from a paper statement."""
    return page("index.html", practice=_practice_contact())


@bp.route("/l/<token>", methods=["GET"], endpoint="open_link")
def open_link(token: str) -> Response:
    """Keep the link's token hash in the session cookie and leave the address that carries it."""
    if 8 <= len(token) <= 128 and token.isascii():
        session[_PENDING] = token_hash(token)
    return redirect(url_for("portal.verify"), 303)


def _birth_date(form: Any) -> tuple[date | None, str | None]:
    """The birth date from the form's three fields, or the message to show next to them."""
    try:
        year, month, day = (int(str(form.get(name, "")).strip()) for name in ("year", "month", "day"))
    except ValueError:
        return None, "Enter your date of birth as numbers: month, day and a four-digit year."
    try:
        value = date(year, month, day)
    except ValueError:
        return None, "That is not a date. Check the month, day and year."
    if year < 1900 or value > clock.now().date():
        return None, "Enter your own date of birth (a past date with a four-digit year)."
    return value, None


@bp.route("/verify", methods=["GET", "POST"], endpoint="verify")
def verify() -> Response:
    """The birth-date form; a match opens this patient's session and shows the statement."""
    if not session.get(_PENDING):
        return page(
            "message.html",
            400,
            title="Open the link from your statement",
            message="This page needs the secure link from your statement email. Open the link again; "
            "if it has expired or was already used, call the billing office for a new one.",
        )
    if request.method == "GET":
        return page("verify.html", errors={}, values={})
    values = {name: str(request.form.get(name, ""))[:4] for name in ("month", "day", "year")}
    birth_date, problem = _birth_date(request.form)
    if birth_date is None:
        return page("verify.html", 422, errors={"birth_date": problem}, values=values)
    with rate_limit("RATE_LIMIT_PATIENT_LINK"):
        try:
            token, _link = verify_patient_link(
                db_session(), token_digest=str(session[_PENDING]), birth_date=birth_date, now=clock.now()
            )
        except AuthError:
            if usable_link(db_session(), str(session[_PENDING]), clock.now()) is None:
                session.pop(_PENDING, None)  # revoked, expired or used: it can never open a session
            return page(
                "verify.html",
                422,
                errors={
                    "birth_date": "That date of birth does not match, or the link has expired or was "
                    "already used. After 5 wrong dates the link stops working."
                },
                values=values,
            )
    session.clear()  # the pending link and the CSRF token of the signed-out browser go
    response = redirect(url_for("portal.statement"), 303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=PORTAL_PREFIX,
        httponly=True,
        secure=state().settings.CLAIMS_ENV == "production",
        samesite="Lax",
        max_age=int(PATIENT_SESSION_ABSOLUTE.total_seconds()),
    )
    return response


# -- the patient's session: statement, payment, receipt ---------------------------------------------


def _patient_id() -> int:
    patient_id = current_principal().patient_id
    if patient_id is None:
        raise NotFound("no patient session")
    return patient_id


def _latest_statement() -> Statement | None:
    stmt = scope_query(
        select(Statement)
        .where(Statement.state != StatementState.VOID)
        .order_by(Statement.statement_date.desc(), Statement.id.desc())
        .limit(1),
        current_principal(),
        Statement,
    )
    return db_session().scalar(stmt)


def _statement_page(
    status: int = 200, *, errors: dict[str, str] | None = None, amount: str = "", outcome: str = ""
) -> Response:
    db = db_session()
    processor = app_processor()
    patient_id = _patient_id()
    statement = _latest_statement()
    balance = patient_balance(db, patient_id)
    patient = db.get(Patient, patient_id)
    if statement is not None:
        audit_event(
            db,
            action=AuditAction.READ,
            event_type="statement.read",
            entity_type="statement",
            entity_id=statement.public_id,
            patient_id=patient_id,
            details={"via": "portal"},
        )
    db.commit()
    return page(
        "statement.html",
        status,
        statement=statement,
        patient_name=" ".join(p for p in (patient.first_name, patient.last_name) if p) if patient else "",
        balance_cents=balance,
        money=cents_to_money,
        errors=errors or {},
        amount=amount or (cents_to_money(balance) if balance > 0 else ""),
        idempotency_key=uuid.uuid4().hex,
        practice=_practice_contact(),
        online_payments=processor is not None,
        test_mode=processor is not None and processor.test_mode,
        outcome=outcome,
    )


@bp.route("/statement", methods=["GET"], endpoint="statement")
def statement() -> Response:
    """The latest statement, the balance and how to pay (the pay form when a processor is set)."""
    return _statement_page()


@bp.route("/statements/<statement_id>/pdf", methods=["GET"], endpoint="statement_pdf")
def statement_pdf(statement_id: str) -> Response:
    """The statement as the PDF that was mailed (audited read)."""
    response = statement_pdf_response(get_owned(db_session(), Statement, statement_id, current_principal()))
    db_session().commit()
    return response


@bp.route("/statements/<statement_id>/page", methods=["GET"], endpoint="statement_page")
def statement_page(statement_id: str) -> Response:
    """The statement as the self-contained page the email carries (audited read)."""
    response = statement_html_response(get_owned(db_session(), Statement, statement_id, current_principal()))
    db_session().commit()
    return response


def _first_message(exc: ApiError) -> str:
    return next((str(e["message"]) for e in exc.errors if e.get("message")), exc.detail)


@bp.route("/payments", methods=["POST"], endpoint="pay")
def pay() -> Response:
    """Charge the card processor and post the payment; the same form submitted twice charges once."""
    db = db_session()
    patient_id = _patient_id()
    processor = app_processor()
    if processor is None:
        raise OnlinePaymentsDisabled()
    amount_text = str(request.form.get("amount", ""))[:32]
    token = str(request.form.get("test_outcome", ""))
    key = str(request.form.get("idempotency_key", ""))
    if not (len(key) == 32 and all(c in "0123456789abcdef" for c in key)):
        return _statement_page(400, errors={"_form": "The form is out of date; reload the page."})
    cents, problem = money_text_to_cents(amount_text, max_cents=MAX_PAYMENT_CENTS)
    if cents is None:
        return _statement_page(422, errors={"amount": problem or ""}, amount=amount_text, outcome=token)
    if token not in TEST_TOKENS:  # the simulated processor's tokens (the only processor with a form)
        message = "Choose the test outcome: approve or decline."
        return _statement_page(422, errors={"test_outcome": message}, amount=amount_text)
    statement = _latest_statement()
    link_id = current_principal().link_id
    try:
        outcome = record_patient_payment(
            db,
            patient_id=patient_id,
            amount_cents=cents,
            source=PaymentSource.LINK,
            method=PaymentMethod.PORTAL,
            idempotency_key=f"portal:{link_id}:{key}",
            statement_id=statement.id if statement is not None else None,
            charge=OnlineCharge(processor, token, "Statement payment"),
        )
    except PaymentDeclined as exc:
        db.rollback()
        message = f"Your payment was not taken: {_first_message(exc)} Nothing was charged; you can try again."
        return _statement_page(402, errors={"_form": message}, amount=amount_text, outcome=token)
    except PaymentRefused as exc:
        db.rollback()
        message = _first_message(exc)
        if any(e.get("rule") == "overpayment" for e in exc.errors):
            message = "That is more than you owe. Enter an amount up to your balance."
        return _statement_page(422, errors={"amount": message}, amount=amount_text, outcome=token)
    db.commit()
    return redirect(url_for("portal.receipt", payment_id=outcome.payment.public_id), 303)


@bp.route("/receipts/<payment_id>", methods=["GET"], endpoint="receipt")
def receipt(payment_id: str) -> Response:
    """The receipt of one of this patient's payments; another patient's is 404."""
    db = db_session()
    payment = get_owned(db, PatientPayment, payment_id, current_principal())
    row = db.scalar(select(PaymentReceipt).where(PaymentReceipt.patient_payment_id == payment.id))
    balance = patient_balance(db, payment.patient_id)
    audit_event(
        db,
        action=AuditAction.READ,
        event_type="patient_payment.read",
        entity_type="patient_payment",
        entity_id=payment.public_id,
        patient_id=payment.patient_id,
        details={"via": "portal"},
    )
    db.commit()
    processor = app_processor()
    return page(
        "receipt.html",
        payment=payment,
        receipt=row,
        test_mode=processor is not None and processor.test_mode,
        balance_cents=balance,
        money=cents_to_money,
        practice=_practice_contact(),
    )


@bp.route("/sign-out", methods=["POST"], endpoint="sign_out")
def sign_out() -> Response:
    """End the patient session (server side too) and forget it in this browser."""
    db = db_session()
    link_id = current_principal().link_id
    link = db.get(PatientAccessLink, link_id) if link_id is not None else None
    if link is not None:
        link.session_expires_at = clock.now()
        db.commit()
    response = page("message.html", title="You are signed out", message="You can close this window.")
    response.delete_cookie(SESSION_COOKIE, path=PORTAL_PREFIX)
    return response
