"""Patient account: search by POST (no PHI in URLs), coverages with the last eligibility answer, balance,
statements (PDF), payments, and a front-desk payment that a double click records once."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from claims_server.ledger.services import Leg, post_entry
from claims_server.models import (
    AccountCode,
    EligibilityCheck,
    EligibilityStatus,
    JournalEntry,
    JournalEventType,
    PatientPayment,
    Statement,
)
from claims_server.payments.services import patient_balance
from claims_server.security.principal import acting_as, system_principal
from tests.integration.remittance.support import seed_world
from tests.integration.ui.money_support import audit_events, with_request_id
from tests.integration.ui.support import csrf_token_of, linked_urls


@pytest.fixture
def account(session):
    """A patient with an answered eligibility check, a 60.00 patient balance and a statement."""
    world = seed_world(session)
    coverage = world.single
    patient = coverage.patient
    with acting_as(system_principal("test:ui")):
        post_entry(
            session,
            event_type=JournalEventType.CHARGE,
            idempotency_key="ui-patient:self-pay",
            postings=[
                Leg(AccountCode.AR_PATIENT, 6000, patient_id=patient.id),
                Leg(AccountCode.GROSS_CHARGES, -6000, patient_id=patient.id),
            ],
            effective_date=date.today() - timedelta(days=10),
        )
        statement = Statement(
            patient_id=patient.id,
            statement_date=date.today(),
            due_date=date.today() + timedelta(days=30),
            balance_cents=6000,
        )
        session.add(statement)
        session.add(
            EligibilityCheck(
                coverage_id=coverage.id,
                status=EligibilityStatus.ACTIVE,
                responded_at=datetime.now(UTC),
                benefits_summary={
                    "status": "active",
                    "coverage_start": "2026-01-01",
                    "services": [
                        {
                            "service_type": "30",
                            "copays": [{"amount": "25.00", "per": "visit", "network": "in"}],
                            "deductibles": [
                                {
                                    "level": "individual",
                                    "network": "in",
                                    "total": "500.00",
                                    "remaining": "120.00",
                                }
                            ],
                        }
                    ],
                },
            )
        )
        session.commit()
    return patient, coverage, statement


def test_search_is_a_post_and_links_by_public_id_only(app, session, api_client, account):
    patient, coverage, _ = account
    biller = api_client("biller")
    form = biller.get("/ui/patients")
    assert form.status_code == 200 and 'method="post"' in form.get_data(as_text=True)
    token = csrf_token_of(biller, "/ui/patients")
    by_name = {
        "csrf_token": token,
        "last_name": patient.last_name.lower(),
        "first_name": f"  {patient.first_name} ",
        "birth_date": patient.birth_date.isoformat(),
    }
    answer, request_id = with_request_id(biller, "POST", "/ui/patients/search", data=by_name)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert f'href="/ui/patients/{patient.public_id}"' in html
    phi = [patient.last_name, patient.first_name, patient.birth_date.isoformat(), coverage.member_id]
    for url in linked_urls(html):
        for value in phi:
            assert value.lower() not in url.lower(), url
    assert ("patient", patient.public_id) in {
        (e.entity_type, e.entity_id) for e in audit_events(session, request_id, "R")
    }

    by_member = biller.post(
        "/ui/patients/search", data={"csrf_token": token, "member_id": coverage.member_id}
    )
    assert f'href="/ui/patients/{patient.public_id}"' in by_member.get_data(as_text=True)

    half = biller.post("/ui/patients/search", data={"csrf_token": token, "first_name": patient.first_name})
    assert half.status_code == 422
    assert 'id="f-last_name-error">' in half.get_data(as_text=True)  # a first name alone is too little

    by_account = biller.post(
        "/ui/patients/search", data={"csrf_token": token, "account_number": patient.account_number}
    )
    assert f'href="/ui/patients/{patient.public_id}"' in by_account.get_data(as_text=True)
    # A GET with criteria in the URL searches nothing.
    assert patient.public_id not in biller.get(f"/ui/patients?last_name={patient.last_name}").get_data(
        as_text=True
    )


def test_the_account_page_is_an_audited_phi_view(app, session, api_client, account):
    patient, coverage, statement = account
    auditor = api_client("auditor")
    answer, request_id = with_request_id(auditor, "GET", f"/ui/patients/{patient.public_id}")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert coverage.payer.name in html and coverage.member_id in html
    assert "Copay $25.00 per visit" in html and "$120.00 left of $500.00" in html
    assert re.search(r'id="patient-balance">\$60\.00<', html)
    assert f'href="/api/v1/statements/{statement.public_id}/pdf"' in html
    assert 'id="payment-form"' not in html  # an auditor cannot record payments
    phi = [patient.last_name, patient.first_name, patient.birth_date.isoformat(), coverage.member_id]
    for url in linked_urls(html):
        assert not any(value.lower() in url.lower() for value in phi), url
    reads = {(e.entity_type, e.entity_id) for e in audit_events(session, request_id, "R")}
    assert ("patient", patient.public_id) in reads and ("coverage", coverage.public_id) in reads
    pdf = auditor.get(f"/api/v1/statements/{statement.public_id}/pdf")
    assert pdf.status_code in (200, 404)  # the staff API serves the PDF with the same session
    assert auditor.get("/ui/patients/00000000000000000000000000000000").status_code == 404


def _pay(client, patient, token: str, **fields):
    form = {"csrf_token": token, "method": "cash", "received_on": date.today().isoformat(), **fields}
    return client.post(f"/ui/patients/{patient.public_id}/payments", data=form)


def _paid(session) -> tuple[int, int]:
    session.rollback()
    return (
        session.scalar(select(func.count()).select_from(PatientPayment)),
        session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.event_type == JournalEventType.PATIENT_PAYMENT)
        ),
    )


def test_a_front_desk_payment_posts_once_even_when_sent_twice(app, session, api_client, account):
    patient, _, statement = account
    biller = api_client("biller")
    page = biller.get(f"/ui/patients/{patient.public_id}").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', page).group(1)
    token = csrf_token_of(biller, f"/ui/patients/{patient.public_id}")

    first = _pay(
        biller, patient, token, amount="25.00", idempotency_key=key, statement_id=statement.public_id
    )
    assert first.status_code == 303
    assert _paid(session) == (1, 1)
    assert patient_balance(session, patient.id) == 3500
    shown = biller.get(first.headers["Location"]).get_data(as_text=True)
    assert "Payment of $25.00 recorded; the patient now owes $35.00." in shown
    assert re.search(r'id="patient-balance">\$35\.00<', shown)

    second = _pay(
        biller, patient, token, amount="25.00", idempotency_key=key, statement_id=statement.public_id
    )
    assert second.status_code == 303
    assert _paid(session) == (1, 1)  # the double click paid once
    assert "already recorded" in biller.get(second.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"amount": "abc"}, "amount", "Enter an amount in dollars and cents"),
        ({"amount": "\uff11\uff10"}, "amount", "Enter an amount in dollars and cents"),  # full-width 10
        ({"amount": "\u0663"}, "amount", "Enter an amount in dollars and cents"),  # Arabic-Indic 3
        ({"amount": "1.234"}, "amount", "at most two digits after the decimal point"),
        ({"amount": "0.00"}, "amount", "greater than zero"),
        ({"amount": "500.00"}, "amount", "more than the open patient balance"),
        ({"amount": "10.00", "method": "portal"}, "method", "front_desk payment is one of"),
        ({"amount": "10.00", "statement_id": "0" * 32}, "statement_id", "Not one of this patient"),
        ({"amount": "10.00", "received_on": "2999-01-01"}, "received_on", "must not be in the future"),
    ],
)
def test_bad_payment_input_gets_a_message_next_to_the_field_and_posts_nothing(
    app, session, api_client, account, fields, field, message
):
    patient, _, _ = account
    biller = api_client("billing_supervisor")
    token = csrf_token_of(biller, f"/ui/patients/{patient.public_id}")
    answer = _pay(biller, patient, token, idempotency_key="a" * 32, **fields)
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    error = re.search(rf'id="f-{field}-error">([^<]*)<', html)
    assert error and message in error.group(1), (field, error and error.group(1))
    assert _paid(session) == (0, 0)


def test_payment_roles_and_csrf(app, session, api_client, account):
    patient, _, _ = account
    auditor = api_client("auditor")
    token = csrf_token_of(auditor, "/ui/patients")
    assert _pay(auditor, patient, token, amount="10.00", idempotency_key="b" * 32).status_code == 403
    biller = api_client("biller")
    csrf_token_of(biller, "/ui/patients")
    assert _pay(biller, patient, "forged", amount="10.00", idempotency_key="c" * 32).status_code == 400
    assert (
        _pay(biller, patient, csrf_token_of(biller, "/ui/patients"), amount="10.00").status_code == 422
    )  # no key
    assert _paid(session) == (0, 0)
