"""The patient pages at /pay through Flask's test client: link, birth date, statement, pay, receipt."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from claims_server.models import Patient, PatientPayment
from claims_server.payments import processors
from claims_server.payments.services import patient_balance
from claims_server.security.authn import token_hash
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


def _pay(client, page: str, amount: str, key: str | None = None, outcome: str = "test_approve"):
    found = _KEY.search(page)
    assert found, "the pay form has no idempotency key"
    data = {"csrf_token": _csrf(page), "idempotency_key": key or found.group(1), "amount": amount}
    return client.post("/pay/payments", data=data | ({"test_outcome": outcome} if outcome else {}))


def _session_cookie(client) -> dict:
    """The Flask session as the browser holds it (signed, not encrypted: anyone can read it)."""
    cookie = client.get_cookie("session")
    if cookie is None:
        return {}
    return client.application.session_interface.get_signing_serializer(client.application).loads(cookie.value)


def _pending(client) -> str | None:
    return _session_cookie(client).get("portal_link")


def _payments(session) -> int:
    return session.scalar(select(func.count()).select_from(PatientPayment)) or 0


def test_link_birth_date_statement_pay_receipt(app, client, session, link, statement):
    token, patient = link
    page = _sign_in(client, token, patient)
    assert "$30.00" in page and "99213" in page and "Deductible" in page
    assert "Test mode: no card is charged." in page
    assert 'value="test_approve"' in page and 'value="test_decline"' in page
    assert "card number" not in page.lower() and 'autocomplete="cc-' not in page
    pdf = client.get(f"/pay/statements/{statement.public_id}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    full = client.get(f"/pay/statements/{statement.public_id}/page")
    assert full.status_code == 200 and "$30.00" in full.get_data(as_text=True)

    paid = _pay(client, page, "10.00")
    assert paid.status_code == 303 and "/pay/receipts/" in paid.headers["Location"]
    receipt = client.get(paid.headers["Location"])
    text = receipt.get_data(as_text=True)
    assert receipt.status_code == 200 and "$10.00" in text and "$20.00" in text
    assert "Test mode: no card was charged." in text
    session.expire_all()
    assert patient_balance(session, patient.id) == 2000
    payment = session.scalar(select(PatientPayment))
    assert payment.amount_cents == 1000 and payment.statement_id == statement.id
    charges = processors.app_processor(app).charges
    assert [c.reference for c in charges.values()] == [payment.reference] and payment.reference in text

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
    # Revoked after five wrong dates: the pending link left this browser's session.
    assert _pending(client) is None
    right = client.post("/pay/verify", data={"csrf_token": csrf, **_dob(patient)})
    assert right.status_code == 400 and "Open the link from your statement" in right.get_data(as_text=True)


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
    assert _pending(again) is None

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
    assert _pending(late) is None


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
        ("0.001", "two digits"),
        ("\u0663", "dollars and cents"),  # ARABIC-INDIC DIGIT THREE
        ("\uff11\uff10", "dollars and cents"),  # full-width 10
        ("\u00b2", "dollars and cents"),  # superscript two: int() raises on it
        ("1e2", "dollars and cents"),
        ("NaN", "dollars and cents"),
        ("-1", "dollars and cents"),
        ("100001.00", "up to 100000.00"),
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


def test_the_session_cookie_holds_only_the_links_hash_and_a_match_starts_a_new_session(client, link):
    token, patient = link
    csrf = _open(client, token)
    raw = client.get_cookie("session").value
    assert token not in raw and token not in str(_session_cookie(client))
    assert _pending(client) == token_hash(token)
    wrong = {**_dob(patient), "year": str(patient.birth_date.year - 1)}
    assert client.post("/pay/verify", data={"csrf_token": csrf, **wrong}).status_code == 422
    assert _pending(client) == token_hash(token)  # the link still works: the patient may retry
    done = client.post("/pay/verify", data={"csrf_token": csrf, **_dob(patient)})
    assert done.status_code == 303
    assert _pending(client) is None and "_csrf" not in _session_cookie(client)
    page = client.get("/pay/statement").get_data(as_text=True)
    assert _csrf(page) != csrf  # a new CSRF token for the signed-in session


def test_a_declined_test_payment_posts_nothing_and_says_so(app, client, session, link):
    token, patient = link
    page = _sign_in(client, token, patient)
    declined = _pay(client, page, "10.00", outcome="test_decline")
    text = declined.get_data(as_text=True)
    assert declined.status_code == 402 and 'role="alert"' in text
    assert "Your payment was not taken: The card was declined (test mode)." in text
    assert 'value="test_decline" checked' in text.replace("\n        ", " ")
    assert _KEY.search(text).group(1) != _KEY.search(page).group(1)  # a retry is a new charge
    session.expire_all()
    assert _payments(session) == 0 and patient_balance(session, patient.id) == 3000
    assert [c.approved for c in processors.app_processor(app).charges.values()] == [False]

    no_outcome = _pay(client, text, "10.00", outcome="")
    assert no_outcome.status_code == 422 and "Choose the test outcome" in no_outcome.get_data(as_text=True)
    assert _pay(client, text, "10.00").status_code == 303
    session.expire_all()
    assert _payments(session) == 1 and patient_balance(session, patient.id) == 2000


def test_a_double_submit_charges_the_processor_once(app, client, session, link):
    token, patient = link
    page = _sign_in(client, token, patient)
    assert _pay(client, page, "5.00").status_code == _pay(client, page, "5.00").status_code == 303
    charges = processors.app_processor(app).charges
    session.expire_all()
    assert len(charges) == 1 and _payments(session) == 1
    assert session.scalar(select(PatientPayment.reference)) == next(iter(charges.values())).reference


@pytest.fixture
def other_app(database_url, tmp_path, frozen_clock):
    """Another app on the test database with other settings (same frozen clock)."""
    from claims_server import create_app
    from claims_server.app import state

    made = []

    def make(**settings):
        instance = tmp_path / f"other-{len(made)}"
        other = create_app(
            {"DATABASE_URL": database_url, "INSTANCE_PATH": str(instance), "TESTING": True, **settings}
        )
        other.extensions["claims_security"].clock = frozen_clock
        made.append(other)
        return other

    yield make
    for other in made:
        state(other).engine.dispose()


def test_without_a_processor_the_pages_say_how_to_pay_and_nothing_is_taken_online(
    other_app, session, link, statement
):
    token, patient = link
    offline = other_app(PAYMENT_PROCESSOR="none")
    client = offline.test_client()
    page = _sign_in(client, token, patient)
    assert "How to pay" in page and "Online payment is not available" in page
    assert "payment stub" in page and 'action="/pay/payments"' not in page and "Test mode" not in page
    refused = client.post(
        "/pay/payments", data={"csrf_token": _csrf(page), "idempotency_key": "a" * 32, "amount": "10.00"}
    )
    assert refused.status_code == 409 and "online payments are not enabled" in refused.get_data(as_text=True)

    api = offline.test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {_api_session(offline, session, patient)}"
    answer = api.post(
        f"/api/v1/patient-link/statements/{statement.public_id}/payments",
        json={"amount": "10.00", "payment_token": "test_approve"},
        headers={"Idempotency-Key": "offline-1"},
    )
    assert answer.status_code == 409 and answer.json["errors"][0]["rule"] == "online_payments_disabled"
    session.expire_all()
    assert _payments(session) == 0 and patient_balance(session, patient.id) == 3000


def _api_session(app, session, patient) -> str:
    """A patient API session for ``patient`` (link + birth date over the JSON API)."""
    from claims_server.app import state
    from claims_server.security import clock
    from claims_server.security.patient_links import create_patient_link

    with app.app_context(), acting_as(system_principal("test:portal")):
        issued = create_patient_link(
            session, patient, created_by_user_id=None, settings=state(app).settings, now=clock.now()
        )
        session.commit()
    opened = app.test_client().post(
        "/api/v1/patient-link/verify",
        json={"token": issued.token, "birth_date": patient.birth_date.isoformat()},
    )
    assert opened.status_code == 200, opened.json
    return opened.json["token"]


def test_production_sends_hsts_and_a_secure_session_cookie(other_app, client, link):
    token, _patient = link
    development = client.get(f"/pay/l/{token}")
    assert "Strict-Transport-Security" not in development.headers
    assert "Secure" not in development.headers["Set-Cookie"]

    live = other_app(CLAIMS_ENV="production", PUBLIC_BASE_URL="https://billing.example.org")
    browser = live.test_client()
    front = browser.get("/pay/", base_url="https://billing.example.org")
    assert front.headers["Strict-Transport-Security"] == "max-age=31536000"
    opened = browser.get(f"/pay/l/{token}", base_url="https://billing.example.org")
    cookie = opened.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "Secure" in cookie and "HttpOnly" in cookie
