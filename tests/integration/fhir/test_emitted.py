"""Every resource the facade emits, of every type, validates against the R4B models and the
required bindings; search pages with next links; read by id returns what search returned."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B import get_fhir_model_class

from claims_server.fhir.resources import KINDS
from claims_server.fhir.validation import validate_resource
from tests.integration.fhir.conftest import body


def _all(client, kind: str, count: int = 200) -> list[dict]:
    """Every resource of ``kind``, following next links."""
    url = f"/fhir/R4/{kind}?_count={count}"
    found = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        bundle = body(response)
        get_fhir_model_class("Bundle").model_validate(bundle)
        found += [e["resource"] for e in bundle.get("entry", [])]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = "{0.path}?{0.query}".format(urlsplit(nxt[0])) if nxt else None
    return found


def test_every_emitted_resource_of_every_type_validates(api_client, demo_world):
    admin = api_client("admin")
    counts = {}
    for kind in KINDS:
        resources = _all(admin, kind)
        counts[kind] = len(resources)
        assert resources, f"the demo produced no {kind}"
        for resource in resources:
            assert resource["resourceType"] == kind
            get_fhir_model_class(kind).model_validate(resource)  # R4B, independently of our wrapper
            validate_resource(resource)  # plus the required bindings
        for resource in resources[:3]:
            read = admin.get(f"/fhir/R4/{kind}/{resource['id']}")
            assert read.status_code == 200 and read.mimetype == "application/fhir+json"
            assert body(read) == resource
    assert counts["ExplanationOfBenefit"] >= 20 and counts["Claim"] >= 36


def test_paging_follows_next_links_without_repeats(api_client, demo_world):
    biller = api_client("biller")
    all_claims = _all(biller, "Claim")
    paged = _all(biller, "Claim", count=7)
    assert [c["id"] for c in paged] == [c["id"] for c in all_claims]
    first = body(biller.get("/fhir/R4/ClaimResponse?_count=5"))
    assert len(first["entry"]) == 5
    responses = _all(biller, "ClaimResponse", count=5)
    assert len({r["id"] for r in responses}) == len(responses)
    assert {r["id"].split("-")[0] for r in responses} == {"era", "ack"}


def test_metadata_lists_exactly_what_is_served(client):
    response = client.get("/fhir/R4/metadata")
    assert response.status_code == 200
    statement = body(response)
    get_fhir_model_class("CapabilityStatement").model_validate(statement)
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == set(KINDS)
    for name, kind in KINDS.items():
        assert {p["name"] for p in resources[name]["searchParam"]} == {p.name for p in kind.params} | {
            "_count"
        }
    assert {i["code"] for i in resources["Claim"]["interaction"]} == {"read", "search-type", "create"}
    assert statement["rest"][0]["interaction"] == [{"code": "transaction"}]
    searchable = {p["name"] for r in resources.values() for p in r["searchParam"]}
    assert not searchable & {"name", "family", "given", "birthdate", "subscriber-id"}  # no PHI in URLs


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("patient=Patient/nonexistent0000000000000000000000", 0),
        ("created=ge2000-01-01", None),
        ("created=lt2000-01-01", 0),
    ],
)
def test_claim_search_filters(api_client, demo_world, query, expected):
    biller = api_client("biller")
    found = body(biller.get(f"/fhir/R4/Claim?{query}&_count=200")).get("entry", [])
    if expected is None:
        assert len(found) >= 36
    else:
        assert len(found) == expected
