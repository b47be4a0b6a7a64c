"""Requests the OpenAPI document says are invalid get a 422, never a 500 (issue 15, finding 12)."""

from __future__ import annotations

from datetime import UTC, datetime

from claims_server.security.authn import totp_step


def test_a_non_ascii_authenticator_code_is_refused_not_a_crash(api_client):
    # hmac.compare_digest raised TypeError on non-ASCII text: a 500 on totp/confirm.
    client = api_client("admin")
    r = client.post("/api/v1/auth/totp/confirm", json={"code": "V\u00b7\u0088*?\b"})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["field"] == "code"
    assert (
        totp_step(
            "JBSWY3DPEHPK3PXP", "\uff11\uff12\uff13\uff14\uff15\uff16", datetime(2026, 3, 2, tzinfo=UTC)
        )
        is None
    )
    assert totp_step("JBSWY3DPEHPK3PXP", "12345\u00e9", datetime(2026, 3, 2, tzinfo=UTC)) is None


def test_audit_event_limit_is_a_documented_query_parameter(api_client):
    client = api_client("admin")
    assert client.get("/api/v1/auth/audit-events?limit=5").status_code == 200
    r = client.get("/api/v1/auth/audit-events?limit=0")
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "limit"


def test_every_listed_error_says_what_is_wrong(app):
    """Entries raised without ``message`` (the write-off's missing Idempotency-Key, a plan's claim
    of another patient) failed the Problem schema, which requires one; ``problem`` fills it in."""
    from claims_server.errors import problem

    with app.test_request_context("/api/v1/x"):
        body = problem(422, "a write-off needs an Idempotency-Key", errors=[
            {"field": "Idempotency-Key", "location": "headers", "rule": "required"},
            {"field": "claims", "message": "not this patient's"},
            {"field": "x"},
        ]).get_json()  # fmt: skip
    assert [e["message"] for e in body["errors"]] == [
        "required",
        "not this patient's",
        "a write-off needs an Idempotency-Key",
    ]


def test_statement_documents_are_declared_with_their_media_type(client):
    doc = client.get("/openapi.json").get_json()
    kinds = doc["paths"]["/api/v1/statements/{statement_id}/pdf"]["get"]["responses"]["200"]["content"]
    assert list(kinds) == ["application/pdf"]


def test_patching_a_coverage_end_before_its_stored_start_is_a_422(api_client, ids):
    """Found by the schemathesis run on PostgreSQL: the schema compares the dates only when both
    are sent, so the table's CHECK constraint answered (a 500)."""
    client = api_client("biller")
    r = client.patch(f"/api/v1/coverages/{ids['coverage']}", json={"effective_end": "1946-08-04"})
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["errors"][0]["field"] == "effective_end"
    assert client.get(f"/api/v1/coverages/{ids['coverage']}").get_json()["effective_end"] is None
