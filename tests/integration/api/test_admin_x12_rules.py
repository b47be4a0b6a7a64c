"""Administration routes refuse what the 837 would refuse (issue 15, finding 11).

A practice city "0", an ISA qualifier "FP" or a route switched to production by a typo
used to be stored and to fail only later, in a batch. The routes now apply the 837
guide's element rules (``edi.element_rules``: the writer's conversion, then the
validator's checks) and answer 422 problem+json naming the field and the rule.
"""

from __future__ import annotations

import pytest

from edi.element_rules import element_problems
from tests.integration.api.test_resources_api import PRACTICE

ROUTE = {
    "name": "Test CH",
    "transport": "folder",
    "settings": {"outbox": "out"},
    "sender_id": "SUB01",
    "receiver_id": "CH01",
    "application_sender_code": "SUB01",
    "application_receiver_code": "CH01",
}
PAYER = {"name": "Test Plan", "payer_id": "TP001", "claim_filing_indicator": "CI"}


def _refused(answer, field: str, rule: str) -> None:
    assert answer.status_code == 422, answer.get_json()
    assert answer.content_type == "application/problem+json"
    messages = [e["message"] for e in answer.get_json()["errors"] if e["field"] == field]
    assert messages and any(rule in m for m in messages), answer.get_json()


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        (
            "city",
            "0",
            "N401 (Billing Provider City Name) is too short: 1 < 2 characters (rule X12.ELEMENT_TOO_SHORT)",
        ),
        ("submitter_id", "S", "NM109 (Submitter Identifier) is too short"),
        ("pay_to_city", "Q", "N401"),
    ],
)
def test_practice_values_the_837_rejects_are_refused_and_nothing_is_stored(api_client, field, value, rule):
    admin = api_client("admin")
    _refused(admin.post("/api/v1/practices", json={**PRACTICE, field: value}), field, rule)
    assert admin.get("/api/v1/practices").get_json()["items"] == []


def test_practice_patch_is_checked_too_and_changes_nothing(api_client):
    admin = api_client("admin")
    created = admin.post("/api/v1/practices", json=PRACTICE)
    assert created.status_code == 201, created.get_json()
    practice_id = created.get_json()["id"]
    _refused(
        admin.patch(f"/api/v1/practices/{practice_id}", json={"city": "0"}), "city", "X12.ELEMENT_TOO_SHORT"
    )
    assert admin.get(f"/api/v1/practices/{practice_id}").get_json()["city"] == "Springfield"


def test_text_the_writer_converts_is_accepted(api_client):
    """The check sees the value as the writer will write it: "Zoë" becomes "Zoe", which is fine."""
    admin = api_client("admin")
    created = admin.post("/api/v1/practices", json={**PRACTICE, "city": "Zoëville"})
    assert created.status_code == 201, created.get_json()


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("sender_id_qualifier", "FP", "ISA05 (Interchange ID Qualifier): value is not a valid code"),
        ("receiver_id_qualifier", "FP", "ISA07"),
        ("sender_id", "S" * 16, "must be at most 15 characters"),
        ("application_sender_code", "A", "GS02 (Application Sender's Code) is too short"),
        ("application_receiver_code", "B", "X12.ELEMENT_TOO_SHORT"),
        ("usage_indicator", "p", "must be T (test) or P (production)"),
        ("usage_indicator", "X", "must be T (test) or P (production)"),
    ],
)
def test_route_values_the_envelope_rejects_are_refused(api_client, field, value, rule):
    admin = api_client("admin")
    _refused(admin.post("/api/v1/clearinghouse-routes", json={**ROUTE, field: value}), field, rule)
    assert admin.get("/api/v1/clearinghouse-routes").get_json()["items"] == []


def test_production_usage_needs_an_explicit_confirmation(api_client):
    admin = api_client("admin")
    _refused(
        admin.post("/api/v1/clearinghouse-routes", json={**ROUTE, "usage_indicator": "P"}),
        "usage_indicator",
        "confirm_production",
    )
    route = admin.post("/api/v1/clearinghouse-routes", json=ROUTE)
    assert route.status_code == 201 and route.get_json()["usage_indicator"] == "T"
    route_id = route.get_json()["id"]
    url = f"/api/v1/clearinghouse-routes/{route_id}"
    answer = admin.patch(url, json={"usage_indicator": "P"})
    _refused(answer, "usage_indicator", "confirm_production")
    assert admin.get(url).get_json()["usage_indicator"] == "T"
    _refused(
        admin.patch(url, json={"usage_indicator": "P", "confirm_production": False}), "usage_indicator", ""
    )
    switched = admin.patch(url, json={"usage_indicator": "P", "confirm_production": True})
    assert switched.status_code == 200 and switched.get_json()["usage_indicator"] == "P"
    assert "confirm_production" not in switched.get_json()
    # Already production: other changes need no confirmation; back to test never does.
    assert admin.patch(url, json={"usage_indicator": "P", "name": "Renamed"}).status_code == 200
    assert admin.patch(url, json={"usage_indicator": "T"}).get_json()["usage_indicator"] == "T"


def test_payer_and_provider_values_are_checked(api_client):
    admin = api_client("admin")
    _refused(admin.post("/api/v1/payers", json={**PAYER, "payer_id": "X"}), "payer_id", "NM109")
    _refused(admin.post("/api/v1/payers", json={**PAYER, "city": "0"}), "city", "N401")
    assert admin.get("/api/v1/payers").get_json()["items"] == []
    practice_id = admin.post("/api/v1/practices", json=PRACTICE).get_json()["id"]
    provider = {"practice": practice_id, "last_name": "Doe", "first_name": "Ann", "npi": "1245319599"}
    _refused(admin.post("/api/v1/providers", json={**provider, "city": "0"}), "city", "N401")
    assert admin.post("/api/v1/providers", json=provider).status_code == 201


def test_the_rules_are_the_validators_own():
    """The same codes and messages ``edi.validate`` reports in a 999 for the element."""
    from edi.maps import map_for
    from edi.validate import _check_simple

    guide = map_for("00501", "005010X222A1", "HC")
    found: list = []
    _check_simple(guide.envelope["ISA"].elements[4], "FP", guide, None, found)
    assert [(code, message) for _, code, message, _, _ in found] == element_problems("ISA/ISA05", "FP")
    assert element_problems("ISA/ISA05", "ZZ") == []
    assert element_problems("ISA/ISA06", "SUB01") == []  # padded to 15 as the writer pads it
    with pytest.raises(LookupError):
        element_problems("2010AA/N4/N499", "x")
