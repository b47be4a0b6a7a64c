"""The patient pages at /pay through Flask's test client: link, birth date, statement, pay, receipt."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from claims_server.models import Patient, PatientPayment
from claims_server.payments.services import patient_balance
from claims_server.security.principal import acting_as, system_principal
from tests.integration.delivery.support import issue_statements

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_KEY = re.compile(r'name="idempotency_key" value="([0-9a-f]{32})"')


@pytest.fixture
def statement(app, session, frozen_clock):
    from claims_server.app import state

    first, _second = issue_statements(session, state(app).session_factory)
    return first


@pytest.fixture
def link(app, session, statement, frozen_clock):
    """A fresh one-time link for the statement's patient: (token, patient)."""
    from claims_server.app import state
    from claims_server.security.patient_links import create_patient_link

    patient = session.get(Patient, statement.patient_id)
    with acting_as(system_principal("test:portal")):
        issued = create_patient_link(
            session, patient, created_by_user_id=None, settings=state(app).settings, now=frozen_clock()
        )
        session.commit()
    return issued.token, patient


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def _dob(patient: Patient) -> dict[str, str]:
    d = patient.birth_date
    return {"month": str(d.month), "day": str(d.day), "year": str(d.year)}


def _open(client, token: str) -> str:
    """Follow the link to the birth-date form; returns the form's CSRF token."""
    first = client.get(f"/pay/l/{token}")
    assert first.status_code == 303
    assert first.headers["Location"].endswith("/pay/verify") and token not in first.headers["Location"]
    assert first.headers["Referrer-Policy"] == "no-referrer"
    form = client.get("/pay/verify")
    assert form.status_code == 200 and "Date of birth" in form.get_data(as_text=True)
    return _csrf(form.get_data(as_text=True))


def _sign_in(client, token: str, patient: Patient) -> str:
    """The whole link + birth-date step; returns the statement page's HTML."""
    csrf = _open(client, token)
    done = client.post("/pay/verify", data={"csrf_token": csrf, **_dob(patient)})
    assert done.status_code == 303 and done.headers["Location"].endswith("/pay/statement")
    cookie = done.headers["Set-Cookie"]
    assert "claims_session=csp_" in cookie and "Path=/pay" in cookie and "HttpOnly" in cookie
    page = client.get("/pay/statement")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def _pay(client, page: str, amount: str, key: str | None = None):
    found = _KEY.search(page)
    assert found, "the pay form has no idempotency key"
    return client.post(
        "/pay/payments",
        data={"csrf_token": _csrf(page), "idempotency_key": key or found.group(1), "amount": amount},
    )


def _payments(session) -> int:
    return session.scalar(select(func.count()).select_from(PatientPayment)) or 0


def test_link_birth_date_statement_pay_receipt(app, client, session, link, statement):
    token, patient = link
    page = _sign_in(client, token, patient)
    assert "$30.00" in page and "99213" in page and "Deductible" in page
    assert "Card processing is not connected" in page
    pdf = client.get(f"/pay/statements/{statement.public_id}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    full = client.get(f"/pay/statements/{statement.public_id}/page")
    assert full.status_code == 200 and "$30.00" in full.get_data(as_text=True)

    paid = _pay(client, page, "10.00")
    assert paid.status_code == 303 and "/pay/receipts/" in paid.headers["Location"]
    receipt = client.get(paid.headers["Location"])
    text = receipt.get_data(as_text=True)
    assert receipt.status_code == 200 and "$10.00" in text and "$20.00" in text
    session.expire_all()
    assert patient_balance(session, patient.id) == 2000
    payment = session.scalar(select(PatientPayment))
    assert payment.amount_cents == 1000 and payment.statement_id == statement.id

    out = client.post("/pay/sign-out", data={"csrf_token": _csrf(page)})
    assert out.status_code == 200 and "signed out" in out.get_data(as_text=True)
    assert client.get("/pay/statement").status_code == 401  # the session ended on the server too


def test_wrong_birth_date_is_refused_and_five_revoke_the_link(client, session, link):
    token, patient = link
    csrf = _open(client, token)
    wrong = {**_dob(patient), "year": str(patient.birth_date.year - 1)}
    for _ in range(5):
        refused = client.post("/pay/verify", data={"csrf_token": csrf, **wrong})
        assert refused.status_code == 422
        assert "does not match" in refused.get_data(as_text=True)
        assert "claims_session" not in refused.headers.get("Set-Cookie", "")
    right = client.post("/pay/verify", data={"csrf_token": csrf, **_dob(patient)})
    assert right.status_code == 422  # revoked after five wrong dates


def test_a_date_that_is_not_a_date_gets_a_message_next_to_the_field(client, link):
    token, _patient = link
    csrf = _open(client, token)
    bad = client.post("/pay/verify", data={"csrf_token": csrf, "month": "13", "day": "40", "year": "1980"})
    assert bad.status_code == 422
    assert 'id="birth-date-error"' in bad.get_data(as_text=True)


def test_expired_and_used_links_are_refused(app, client, session, link, frozen_clock):
    token, patient = link
    _sign_in(client, token, patient)
    again = app.test_client()
    csrf = _open(again, token)
    used = again.post("/pay/verify", data={"csrf_token": csrf, **_dob(patient)})
    assert used.status_code == 422 and "already used" in used.get_data(as_text=True)

    from claims_server.app import state
    from claims_server.security.patient_links import create_patient_link

    with acting_as(system_principal("test:portal")):
        fresh = create_patient_link(
            session, patient, created_by_user_id=None, settings=state(app).settings, now=frozen_clock()
        )
        session.commit()
    frozen_clock.advance(hours=state(app).settings.PATIENT_LINK_HOURS + 1)
    late = app.test_client()
    csrf = _open(late, fresh.token)
    expired = late.post("/pay/verify", data={"csrf_token": csrf, **_dob(patient)})
    assert expired.status_code == 422 and "expired" in expired.get_data(as_text=True)


def test_double_submit_pays_once(client, session, link):
    token, patient = link
    page = _sign_in(client, token, patient)
    first = _pay(client, page, "5.00")
    second = _pay(client, page, "5.00")
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    session.expire_all()
    assert _payments(session) == 1 and patient_balance(session, patient.id) == 2500


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("31.00", "more than you owe"),
        ("0", "greater than zero"),
        ("-5", "dollars and cents"),
        ("ten", "dollars and cents"),
        ("1.234", "two digits"),
    ],
)
def test_bad_amounts_are_refused_next_to_the_field_and_change_nothing(client, session, link, amount, message):
    token, patient = link
    page = _sign_in(client, token, patient)
    refused = _pay(client, page, amount)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and message in text and 'id="amount-error"' in text
    session.expire_all()
    assert _payments(session) == 0 and patient_balance(session, patient.id) == 3000


def test_a_post_without_the_csrf_token_is_refused(client, session, link):
    token, patient = link
    page = _sign_in(client, token, patient)
    key = _KEY.search(page).group(1)
    refused = client.post("/pay/payments", data={"idempotency_key": key, "amount": "5.00"})
    assert refused.status_code == 400 and "form has expired" in refused.get_data(as_text=True)
    assert refused.mimetype == "text/html"
    session.expire_all()
    assert _payments(session) == 0


def test_pages_without_a_session_are_html_refusals(client):
    for path in ("/pay/statement", "/pay/receipts/" + "0" * 32):
        answer = client.get(path)
        assert answer.status_code == 401 and answer.mimetype == "text/html"
        assert "Open the link in your statement email again" in answer.get_data(as_text=True)
    assert client.get("/pay/verify").status_code == 400  # no link opened in this browser
    assert client.get("/pay/").status_code == 200


def test_no_phi_in_any_address(client, session, link):
    token, patient = link
    addresses: list[str] = []
    first = client.get(f"/pay/l/{token}")
    addresses.append(first.headers["Location"])
    form = client.get("/pay/verify")
    done = client.post(
        "/pay/verify", data={"csrf_token": _csrf(form.get_data(as_text=True)), **_dob(patient)}
    )
    addresses.append(done.headers["Location"])
    page = client.get("/pay/statement").get_data(as_text=True)
    addresses += re.findall(r'(?:href|action)="([^"]+)"', page)
    paid = _pay(client, page, "1.00")
    addresses.append(paid.headers["Location"])
    phi = [
        patient.first_name,
        patient.last_name,
        patient.birth_date.isoformat(),
        str(patient.birth_date.year),
    ]
    for address in addresses:
        assert token not in address
        for value in phi:
            assert value.lower() not in address.lower(), address


def test_another_patients_receipt_is_not_found(app, client, session, link):
    token, patient = link
    page = _sign_in(client, token, patient)
    receipt_path = _pay(client, page, "2.00").headers["Location"]
    other = session.scalar(select(Patient).where(Patient.id != patient.id).order_by(Patient.id))
    from claims_server.app import state
    from claims_server.security import clock
    from claims_server.security.patient_links import create_patient_link

    with acting_as(system_principal("test:portal")):
        issued = create_patient_link(
            session, other, created_by_user_id=None, settings=state(app).settings, now=clock.now()
        )
        session.commit()
    stranger = app.test_client()
    _sign_in(stranger, issued.token, other)
    assert stranger.get(receipt_path).status_code == 404
    assert stranger.get(receipt_path).mimetype == "text/html"
