"""Requests the OpenAPI document calls invalid are refused, and the document admits what the
server accepts (issue 15, finding 12: "schema-invalid requests accepted", found by
schemathesis' ``negative_data_rejection`` check in tests/e2e/test_openapi_fuzz.py)."""

from __future__ import annotations

import pytest

from claims_server.patients.schemas import NAME_WAY, SEARCH_WAYS


def _doc(client) -> dict:
    return client.get("/openapi.json").get_json()


def _component(doc: dict, ref_holder: dict) -> dict:
    return doc["components"]["schemas"][ref_holder["$ref"].rsplit("/", 1)[-1]]


def test_a_body_whose_schema_asks_for_nothing_is_documented_as_optional(api_client):
    """The document called every JSON body required, yet a missing body is read as ``{}``: a
    sweep, a statement run or a PATCH without a body was a schema-invalid request accepted."""
    client = api_client("admin")
    doc = _doc(client)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if not body or "application/json" not in body["content"]:
                continue
            schema = body["content"]["application/json"]["schema"]
            schema = _component(doc, schema) if "$ref" in schema else schema
            asks = any(schema.get(key) for key in ("required", "anyOf", "oneOf", "allOf"))
            assert body.get("required", False) is bool(asks), f"{method.upper()} {path}"
    assert client.post("/api/v1/workqueue/sweep").status_code == 200
    # The search needs one of its ways (a member id, ...): required, and the rule documented.
    search = doc["paths"]["/api/v1/patients/search"]["post"]["requestBody"]
    assert search["required"] is True
    alternatives = _component(doc, search["content"]["application/json"]["schema"])["anyOf"]
    # The name way needs the last name only (first name and birth date narrow it).
    assert [alt["required"] for alt in alternatives] == [
        ["last_name"] if way == NAME_WAY else list(way) for way in SEARCH_WAYS
    ]
    r = client.post("/api/v1/patients/search")
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "member_id"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/workqueue/sweep", {"unpaid_days": 2.5}, "unpaid_days"),  # was truncated to 2
        ("/api/v1/workqueue/sweep", {"unpaid_days": 2.5e-42}, "unpaid_days"),  # was 0
        ("/api/v1/workqueue/sweep", {"unpaid_days": True}, "unpaid_days"),  # was 1
        ("/api/v1/statements/print-batches", {"duplex": 0}, "duplex"),  # was False
        ("/api/v1/statements/print-batches", {"duplex": 1}, "duplex"),  # was True
    ],
)
def test_numbers_for_booleans_and_fractions_for_integers_are_422(api_client, path, body, field):
    r = api_client("admin").post(path, json=body)
    assert r.status_code == 422, r.get_json()
    assert r.headers["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in r.get_json()["errors"]] == [field]


def test_integers_and_booleans_still_read_from_query_strings(api_client):
    client = api_client("admin")
    assert client.get("/api/v1/auth/audit-events?limit=5").status_code == 200
    assert client.post("/api/v1/workqueue/sweep", json={"unpaid_days": 30}).status_code == 200
    assert client.post("/api/v1/workqueue/sweep", json={"unpaid_days": 30.0}).status_code == 200


@pytest.mark.parametrize("key", ["caf\u00e9-1", "two words", "tab\tkey"])
def test_an_idempotency_key_outside_the_documented_pattern_is_422(api_client, session, key):
    from sqlalchemy import func, select

    from claims_server.models import IdempotencyRecord

    before = session.scalar(select(func.count()).select_from(IdempotencyRecord))
    client = api_client("admin")
    r = client.post("/api/v1/clearinghouse-routes", json={}, headers={"Idempotency-Key": key})
    assert r.status_code == 422
    assert r.get_json()["errors"][0] == {
        "field": "Idempotency-Key",
        "location": "headers",
        "rule": "pattern",
        "message": r.get_json()["errors"][0]["message"],
    }
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == before
    pattern = next(
        p["schema"]["pattern"]
        for p in _doc(client)["paths"]["/api/v1/clearinghouse-routes"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    )
    assert pattern == "^[!-~]+$"


def test_the_estimate_fee_schedule_and_x12_bodies_are_documented_as_checked(api_client):
    doc = _doc(api_client("admin"))
    fees = doc["components"]["schemas"]["EstimateIn"]["properties"]["fee_schedule"]
    assert fees["propertyNames"] == {"pattern": "^[A-Z0-9]{5}$"}
    assert fees["additionalProperties"]["pattern"].startswith("^[0-9]")
    for path in ("/api/v1/edi/x12", "/api/v1/remittances"):
        for content in doc["paths"][path]["post"]["requestBody"]["content"].values():
            assert content["schema"]["pattern"].endswith("ISA")


def test_an_estimate_amount_that_is_not_money_is_422(api_client, session):
    """``fee_schedule`` values were any string checked in the view; now the Money field (the
    document's pattern) refuses ``1e2`` and a negative amount before the view runs."""
    client = api_client("admin")
    for amount in ("1e2", "-5.00", "12.345"):
        r = client.post(
            "/api/v1/eligibility/checks/00000000000000000000000000000000/estimate",
            json={"services": [{"procedure": "99213"}], "fee_schedule": {"99213": amount}},
        )
        assert r.status_code == 422, (amount, r.get_json())
        assert r.get_json()["errors"][0]["field"].startswith("fee_schedule.99213")


def test_the_password_rule_is_in_the_document_and_refused_by_the_schema(api_client):
    """A new password of 1-11 characters was schema-valid (no ``minLength``) yet refused by the
    view: the document now states the rule, 12 to 1024 characters, that the schema enforces."""
    client = api_client("admin")
    schemas = _doc(client)["components"]["schemas"]
    for schema, field in (("PasswordChange", "new_password"), ("UserCreate", "password")):
        assert (
            schemas[schema]["properties"][field] | {"minLength": 12, "maxLength": 1024}
            == (schemas[schema]["properties"][field])
        )
    body = {"username": "short-pw", "display_name": "Short", "role": "biller", "password": "x" * 11}
    r = client.post("/api/v1/auth/users", json=body)
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "password"
    r = client.post("/api/v1/auth/users", json=body | {"password": "x" * 1025})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "password"
