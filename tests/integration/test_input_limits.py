"""Input limits on every web door (issue 15, finding 3): /api/v1, /fhir/R4, /ui and /pay.

Each case was a 500 (or a silent oddity) before ``claims_server.api_common.limits``: deeply
nested JSON (RecursionError), NUL (PostgreSQL refuses it), lone surrogates (the blind index's
UTF-8 encode), numbers no column holds, bodies larger than any JSON document. Now each is a
4xx naming the field, and nothing changes. The live-server half (a 50 MB body while another
request is served) is tests/e2e/test_body_limits.py.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from claims_server.models import (
    AuditEvent,
    Claim,
    ClaimDiagnosis,
    Coverage,
    IdempotencyRecord,
    Patient,
    PatientAccessLink,
    ServiceLine,
)
from tests.integration.claims.support import claim_json, seed

PROBLEM = "application/problem+json"
FHIR = "application/fhir+json"
DEEP_LIST = "[" * 1000
DEEP_OBJECT = '{"a":' * 1000
JUST_TOO_DEEP = '{"x":' + "[" * 32 + "]" * 32 + "}"  # 33 levels: valid JSON, one too many


# -- helpers -------------------------------------------------------------------------------------


def counts(session) -> dict[str, int]:
    """Rows of every table a refused request could have touched (audit events excepted: reads)."""
    session.rollback()
    session.expire_all()
    models = (Patient, Coverage, Claim, ClaimDiagnosis, ServiceLine, IdempotencyRecord, PatientAccessLink)
    return {m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in models}


def send(client, path: str, payload: str | bytes, content_type: str = "application/json"):
    return client.post(path, data=payload, headers={"Content-Type": content_type})


def assert_problem(response, status: int) -> dict[str, Any]:
    """problem+json under /api (OperationOutcome under /fhir), never a 500 or HTML."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "<html" not in text.lower()
    if response.request.path.startswith("/fhir/"):
        assert response.mimetype == FHIR
        outcome = json.loads(text)
        assert outcome["resourceType"] == "OperationOutcome"
        return outcome
    assert response.mimetype == PROBLEM
    body = json.loads(text)
    assert body["status"] == status and body["detail"] and body["request_id"]
    return body


def fields_of(body: dict[str, Any]) -> set[str]:
    if body.get("resourceType") == "OperationOutcome":
        return {e for issue in body["issue"] for e in issue.get("expression", [])}
    return {e["field"] for e in body.get("errors", [])}


@pytest.fixture
def ids(session) -> dict[str, Any]:
    return seed(session)


@pytest.fixture
def biller(api_client):
    return api_client("biller")


def fhir_claim_doc(session, ids) -> dict[str, Any]:
    from claims_server.models import Practice
    from tests.integration.fhir.conftest import fhir_claim

    ids = {**ids, "practice_npi": session.scalar(select(Practice.npi))}
    return fhir_claim(ids, f"Patient/{ids['patient']}", f"Coverage/{ids['coverage']}")


#: Every JSON door the finding named, plus FHIR: (path, who).
JSON_DOORS = [
    ("/api/v1/auth/login", "anonymous"),
    ("/api/v1/patients/search", "biller"),
    ("/api/v1/claims", "biller"),
    ("/api/v1/claims/validate", "biller"),
    ("/fhir/R4/Claim", "biller"),
    ("/fhir/R4", "biller"),
]


def door_client(who: str, app, api_client):
    return app.test_client() if who == "anonymous" else api_client(who)


def content_type_for(path: str) -> str:
    return FHIR if path.startswith("/fhir/") else "application/json"


# -- nesting -------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [DEEP_LIST, DEEP_OBJECT, JUST_TOO_DEEP], ids=["list", "object", "33"])
@pytest.mark.parametrize(("path", "who"), JSON_DOORS, ids=[p for p, _ in JSON_DOORS])
def test_deeply_nested_json_is_a_400_on_every_door(app, api_client, session, ids, path, who, payload):
    before = counts(session)
    response = send(door_client(who, app, api_client), path, payload, content_type_for(path))
    body = assert_problem(response, 400)
    text = json.dumps(body)
    assert "32 levels" in text
    assert counts(session) == before


def test_nesting_up_to_the_limit_reaches_the_view(biller, ids):
    """32 levels are parsed and judged by the view's schema (an unknown field), not by the limit."""
    doc = claim_json(ids)
    doc["extra"] = json.loads("[" * 31 + "]" * 31)
    body = assert_problem(biller.post("/api/v1/claims/validate", json=doc), 422)
    assert "extra" in fields_of(body)


# -- text and numbers that cannot be stored ------------------------------------------------------


def _with_line(ids, **line: Any) -> dict[str, Any]:
    doc = claim_json(ids)
    doc["lines"][1].update(line)
    return doc


UNSTORABLE_JSON = [
    # (path, document builder, field, pointer, rule)
    (
        "/api/v1/patients/search",
        lambda ids: {"last_name": "A\ud800B", "first_name": "Zoe", "birth_date": "1990-01-01"},
        "last_name",
        "/last_name",
        "no-lone-surrogate",
    ),
    (
        "/api/v1/patients/search",
        lambda ids: {"member_id": "W123\x00"},
        "member_id",
        "/member_id",
        "no-nul",
    ),
    (
        "/api/v1/claims",
        lambda ids: _with_line(ids, procedure="83036\x00"),
        "lines.1.procedure",
        "/lines/1/procedure",
        "no-nul",
    ),
    (
        "/api/v1/claims",
        lambda ids: _with_line(ids, ndc="\udfff"),
        "lines.1.ndc",
        "/lines/1/ndc",
        "no-lone-surrogate",
    ),
    (
        "/api/v1/claims",
        lambda ids: {**claim_json(ids), "version": 2**64},
        "version",
        "/version",
        "number-range",
    ),
    (
        "/api/v1/claims",
        lambda ids: _with_line(ids, diagnosis_pointers=[1, -(2**63) - 1]),
        "lines.1.diagnosis_pointers.1",
        "/lines/1/diagnosis_pointers/1",
        "number-range",
    ),
    (
        "/api/v1/claims/validate",
        lambda ids: _with_line(ids, units=10**40),
        "lines.1.units",
        "/lines/1/units",
        "number-range",
    ),
    (
        "/api/v1/auth/login",
        lambda ids: {"username": "ad\x00min", "password": "x" * 12},
        "username",
        "/username",
        "no-nul",
    ),
    # a NUL in a key is a NUL too
    ("/api/v1/claims", lambda ids: {**claim_json(ids), "a\x00": 1}, "a\x00", "/a\x00", "no-nul"),
]


@pytest.mark.parametrize(
    ("path", "build", "field", "pointer", "rule"),
    UNSTORABLE_JSON,
    ids=[f"{c[0]}:{c[2]}" for c in UNSTORABLE_JSON],
)
def test_unstorable_values_are_422_naming_the_field(
    app, api_client, session, ids, path, build, field, pointer, rule
):
    before = counts(session)
    client = app.test_client() if path.endswith("/login") else api_client("biller")
    response = client.post(path, json=build(ids))
    body = assert_problem(response, 422)
    [error] = [e for e in body["errors"] if e["field"] == field]
    assert error["pointer"] == pointer and error["rule"] == rule and error["location"] == "json"
    assert field in body["detail"]
    assert counts(session) == before


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("NaN", "NaN is not a number"),
        ("-Infinity", "-Infinity is not a number"),
        ("1e400", "too large"),
        ("1000000000000000000.5", "too large"),
        ("123456789012345678901234567890", "too large"),
    ],
)
def test_numbers_no_column_holds(biller, session, ids, literal, message):
    doc = json.dumps(claim_json(ids)).replace(
        '"diagnosis_pointers": [1]', f'"diagnosis_pointers": [{literal}]'
    )
    assert literal in doc
    before = counts(session)
    body = assert_problem(send(biller, "/api/v1/claims", doc), 422)
    [error] = body["errors"]
    assert error["field"] == "lines.1.diagnosis_pointers.0" and message in error["message"]
    assert counts(session) == before


def test_a_nul_in_a_claim_replacement_reason_changes_nothing(biller, session, ids):
    """The finding's own case: an adjudicated claim, POST .../replacement {"reason": "a\\u0000b"}."""
    from tests.integration.workqueue.support import LineAnswer, adjudicate, make_claim

    original = make_claim(session, ids)
    adjudicate(
        session,
        original,
        status="4",
        lines=[LineAnswer(0, [("CO", "4", 17500)]), LineAnswer(0, [("CO", "4", 4550)])],
        payer_claim_number="ICN1",
    )
    session.commit()
    before = counts(session)
    events = session.scalar(select(func.count()).select_from(AuditEvent))
    body = assert_problem(
        biller.post(f"/api/v1/claims/{original.public_id}/replacement", json={"reason": "a\u0000b"}), 422
    )
    assert body["errors"][0]["field"] == "reason" and body["errors"][0]["pointer"] == "/reason"
    assert counts(session) == before
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events
    # the same request without the NUL is the replacement the biller wanted
    made = biller.post(f"/api/v1/claims/{original.public_id}/replacement", json={"reason": "ab"})
    assert made.status_code == 201, made.get_json()


def test_fhir_names_the_element_of_an_unstorable_value(biller, session, ids):
    doc = fhir_claim_doc(session, ids)
    doc["item"][0]["productOrService"]["coding"][0]["code"] = "99214\x00"
    before = counts(session)
    outcome = assert_problem(send(biller, "/fhir/R4/Claim", json.dumps(doc, default=float), FHIR), 422)
    assert "item.0.productOrService.coding.0.code" in fields_of(outcome)
    assert counts(session) == before


# -- invalid bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "who"), JSON_DOORS, ids=[p for p, _ in JSON_DOORS])
def test_invalid_json_and_bytes_that_are_not_utf8_are_400(app, api_client, session, ids, path, who):
    client = door_client(who, app, api_client)
    before = counts(session)
    broken = assert_problem(send(client, path, '{"a": ', content_type_for(path)), 400)
    assert "not valid JSON" in json.dumps(broken)
    latin1 = assert_problem(
        send(client, path, '{"a": "Zo\xeb"}'.encode("latin-1"), content_type_for(path)), 400
    )
    assert "UTF-8" in json.dumps(latin1)
    assert counts(session) == before


@pytest.mark.parametrize(("path", "who"), JSON_DOORS, ids=[p for p, _ in JSON_DOORS])
def test_wrong_top_level_type_wrong_content_type_and_empty_bodies_are_4xx(
    app, api_client, session, ids, path, who
):
    client = door_client(who, app, api_client)
    before = counts(session)
    ctype = content_type_for(path)
    assert_problem(send(client, path, "[]", ctype), 422)
    assert_problem(send(client, path, '"a string"', ctype), 422)
    assert_problem(send(client, path, "name=x", "application/x-www-form-urlencoded"), 415)
    assert_problem(send(client, path, b"--b\r\n", "multipart/form-data; boundary=b"), 415)
    empty = send(client, path, "", ctype)
    assert 400 <= empty.status_code < 500
    assert_problem(empty, empty.status_code)
    assert counts(session) == before


# -- size ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/claims/validate", "/api/v1/auth/login", "/fhir/R4/Claim"])
def test_a_json_body_over_the_json_limit_is_413_before_it_is_read(app, biller, session, path):
    limit = app.extensions["claims_server"].settings.JSON_MAX_BYTES
    payload = '{"x": "' + "y" * limit + '"}'
    before = counts(session)
    body = assert_problem(send(biller, path, payload, content_type_for(path)), 413)
    if not path.startswith("/fhir/"):
        assert body["limit_bytes"] == limit
    assert counts(session) == before


def test_x12_uploads_keep_their_own_larger_limit(app, biller):
    """A 2 MiB X12 body passes the size gate (the JSON limit is 1 MiB) and is judged as X12."""
    settings = app.extensions["claims_server"].settings
    assert settings.MAX_UPLOAD_BYTES > settings.JSON_MAX_BYTES
    big = b"ISA*" + b"X" * (2 * settings.JSON_MAX_BYTES)
    answer = send(biller, "/api/v1/edi/x12", big, "application/edi-x12")
    assert answer.status_code not in (413, 500), answer.get_data(as_text=True)[:300]
    over = send(biller, "/api/v1/edi/x12", b"ISA*" + b"X" * settings.MAX_UPLOAD_BYTES, "application/edi-x12")
    assert_problem(over, 413)


# -- normalisation -------------------------------------------------------------------------------


def test_zoe_typed_two_ways_is_stored_and_found_as_one(biller, session, ids):
    composed, decomposed = "Zo\u00eb", "Zoe\u0308"
    assert composed != decomposed and unicodedata.normalize("NFC", decomposed) == composed
    created = biller.post(
        "/api/v1/patients",
        json={
            "practice": ids["practice"],
            "account_number": "NFC-1",
            "last_name": "M\u00fcller",
            "first_name": decomposed,
            "birth_date": "1990-04-05",
            "sex": "F",
        },
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["first_name"] == composed
    session.rollback()
    stored = session.scalar(select(Patient).where(Patient.public_id == created.get_json()["id"]))
    assert stored.first_name == composed  # the decrypted stored value is NFC
    for typed in (composed, decomposed):
        found = biller.post(
            "/api/v1/patients/search",
            json={"last_name": "Mu\u0308ller", "first_name": typed, "birth_date": "1990-04-05"},
        )
        assert found.status_code == 200, found.get_json()
        assert [p["id"] for p in found.get_json()["items"]] == [stored.public_id]


def test_passwords_are_compared_byte_for_byte(app, session):
    """Secrets are checked for NUL but never normalised: a password set in NFD still signs in."""
    from claims_server.models import Role
    from claims_server.security.authn import create_user
    from claims_server.security.principal import acting_as, system_principal

    password = "pa\u0301ssword-long-enough-1"  # a + combining acute
    with acting_as(system_principal("test:limits")):
        create_user(session, username="nfd-user", display_name="NFD", role=Role.BILLER, password=password)
        session.commit()
    client = app.test_client()
    assert (
        client.post("/api/v1/auth/login", json={"username": "nfd-user", "password": password}).status_code
        == 200
    )
    nfc = unicodedata.normalize("NFC", password)
    assert (
        client.post("/api/v1/auth/login", json={"username": "nfd-user", "password": nfc}).status_code == 401
    )


# -- forms: the staff workspace (/ui) and the patient pages (/pay) ------------------------------------


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(client, path: str) -> str:
    found = _CSRF.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF field on {path}"
    return found.group(1)


@pytest.mark.parametrize(("value", "rule"), [("Sm\x00ith", "NUL"), ("Sm%ED%A0%80ith", None)])
def test_ui_form_fields_that_cannot_be_stored_are_422_naming_the_field(api_client, session, ids, value, rule):
    biller = api_client("biller")
    token = _csrf(biller, "/ui/patients")
    before = counts(session)
    if rule is None:
        # bytes that are not UTF-8 (an encoded surrogate) arrive as U+FFFD, never as a surrogate
        raw = f"csrf_token={token}&last_name={value}&first_name=Ann&birth_date=1990-01-01"
        answer = send(biller, "/ui/patients/search", raw, "application/x-www-form-urlencoded")
        assert answer.status_code in (200, 422)
    else:
        data = {"csrf_token": token, "last_name": value, "first_name": "Ann", "birth_date": "1990-01-01"}
        answer = biller.post("/ui/patients/search", data=data)
        assert answer.status_code == 422
        page = answer.get_data(as_text=True)
        assert answer.mimetype == "text/html" and "last_name" in page and rule in page
    assert counts(session) == before


def test_ui_form_over_the_form_limit_is_413(app, api_client, session, ids):
    biller = api_client("biller")
    token = _csrf(biller, "/ui/patients")
    limit = app.extensions["claims_server"].settings.FORM_MAX_BYTES
    answer = biller.post("/ui/patients/search", data={"csrf_token": token, "last_name": "x" * limit})
    assert answer.status_code == 413
    assert "<html" in answer.get_data(as_text=True).lower()  # the workspace's own page


def test_ui_query_arguments_are_normalised_too(app):
    from claims_server.api_common.limits import CheckedRequest

    with app.test_request_context("/ui/patients?name=Zoe%CC%88&password=Zoe%CC%88"):
        from flask import request

        assert isinstance(request, CheckedRequest) or type(request._get_current_object()) is CheckedRequest
        assert request.args["name"] == "Zo\u00eb"
        assert request.args["password"] == "Zoe\u0308"  # secrets untouched


def test_portal_form_with_a_nul_is_refused_and_no_attempt_is_counted(app, client, session, frozen_clock):
    from claims_server.app import state
    from claims_server.security.patient_links import create_patient_link
    from claims_server.security.principal import acting_as, system_principal
    from tests.integration.delivery.support import issue_statements

    first, _ = issue_statements(session, state(app).session_factory)
    patient = session.get(Patient, first.patient_id)
    with acting_as(system_principal("test:limits")):
        issued = create_patient_link(
            session, patient, created_by_user_id=None, settings=state(app).settings, now=frozen_clock()
        )
        session.commit()
    assert client.get(f"/pay/l/{issued.token}").status_code == 303
    token = _csrf(client, "/pay/verify")
    before = counts(session)
    d: date = patient.birth_date
    answer = client.post(
        "/pay/verify",
        data={"csrf_token": token, "month": str(d.month), "day": f"{d.day}\x00", "year": str(d.year)},
    )
    assert answer.status_code == 422
    assert "day" in answer.get_data(as_text=True)
    assert counts(session) == before
    session.expire_all()
    link = session.scalar(select(PatientAccessLink).where(PatientAccessLink.patient_id == patient.id))
    assert link.failed_attempts == 0


@pytest.mark.parametrize(
    ("field", "typed"),
    [
        ("version", "abc"),
        ("line-0-diagnosis_pointers", "\u00b2"),
        ("version", "9" * 30),
        ("line-0-units", "1\x00"),
    ],
)
def test_ui_claim_form_numbers_that_are_not_numbers_are_422_next_to_the_field(
    api_client, session, ids, field, typed
):
    """ "abc" as the version and "²" as a pointer were 500s (``int()``); now the form says which field."""
    biller = api_client("biller")
    made = biller.post("/api/v1/claims", json=claim_json(ids)).get_json()
    page = biller.get(f"/ui/claims/{made['id']}").get_data(as_text=True)
    form = dict(re.findall(r'<input id="f-([\w-]+)" name="[\w-]+" type="[a-z]+" value="([^"]*)"', page))
    form.update({"csrf_token": _csrf(biller, "/ui/queues"), "version": str(made["version"]), field: typed})
    before = counts(session)
    answer = biller.post(f"/ui/claims/{made['id']}/edit", data=form)
    assert answer.status_code == 422, answer.get_data(as_text=True)[:2000]
    html = answer.get_data(as_text=True)
    assert "Traceback" not in html
    assert field.split("-")[-1] in html
    assert counts(session) == before
    session.rollback()
    assert session.scalar(select(Claim.version).where(Claim.public_id == made["id"])) == made["version"]


@pytest.mark.parametrize(
    ("path", "field", "location"),
    [
        ("/api/v1/claims/ab%00c", "claim_id", "path"),
        ("/api/v1/patients?practice=a%00", "practice", "query"),
        ("/fhir/R4/Claim/a%00b", "resource_id", "path"),
        ("/ui/claims/a%00b", "claim_id", "path"),
    ],
)
def test_a_nul_in_the_address_is_422_not_a_database_error(api_client, path, field, location):
    """On PostgreSQL these were 500s: the NUL reached the driver as a query parameter."""
    answer = api_client("biller").get(path)
    assert answer.status_code == 422, answer.get_data(as_text=True)[:500]
    text = answer.get_data(as_text=True)
    assert field in text and "Traceback" not in text
    if path.startswith("/api/"):
        body = assert_problem(answer, 422)
        assert body["errors"][0]["location"] == location


def test_a_huge_array_is_refused_before_any_schema_validates_its_items(app, biller, session, ids):
    """250,000 empty claim lines in 1 MB took 73 s and a 77 MB answer: now one error, at once."""
    import time

    limit = app.extensions["claims_server"].settings.JSON_MAX_ITEMS
    doc = {**claim_json(ids), "lines": [{}] * (limit + 1)}
    started = time.perf_counter()
    answer = biller.post("/api/v1/claims/validate", json=doc)
    assert time.perf_counter() - started < 10  # bounded work: the unbounded walk took 73 s
    body = assert_problem(answer, 422)
    assert body["errors"] == [
        {
            "field": "lines",
            "pointer": "/lines",
            "location": "json",
            "rule": "max-items",
            "message": f"has {limit + 1} items; at most {limit} are accepted",
        }
    ]
    assert len(answer.get_data()) < 2000


def test_a_problem_lists_at_most_100_field_errors(biller, ids):
    body = assert_problem(
        biller.post("/api/v1/claims/validate", json={**claim_json(ids), "lines": [{}] * 60}), 422
    )
    assert len(body["errors"]) == 100 and body["errors_omitted"] > 0
