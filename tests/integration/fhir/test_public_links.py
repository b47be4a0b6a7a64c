"""Absolute addresses in FHIR answers (Location, fullUrl, Bundle links, the CapabilityStatement's
implementation.url) come from PUBLIC_BASE_URL, never from the request's Host header."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from claims_server.app import state
from tests.integration.fhir.conftest import FHIR, body, fhir_claim, transaction_bundle

FORGED_HOST = "attacker.example"


def _post(client, path: str, document: dict):
    return client.post(
        path,
        data=json.dumps(document, default=str),
        headers={"Content-Type": FHIR, "Host": FORGED_HOST},
    )


@pytest.mark.parametrize("public_base_url", [None, "https://claims.example.org/"])
def test_a_forged_host_header_never_reaches_location_or_links(
    app, api_client, ids, monkeypatch, public_base_url
):
    if public_base_url is not None:
        monkeypatch.setattr(
            state(app), "settings", replace(state(app).settings, PUBLIC_BASE_URL=public_base_url)
        )
    base = state(app).settings.PUBLIC_BASE_URL.rstrip("/") + "/fhir/R4"
    biller = api_client("biller")

    created = _post(
        biller, "/fhir/R4/Claim", fhir_claim(ids, f"Patient/{ids['patient']}", f"Coverage/{ids['coverage']}")
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.headers["Location"] == f"{base}/Claim/{body(created)['id']}"

    answered = _post(biller, "/fhir/R4", transaction_bundle(ids))
    assert answered.status_code == 200, answered.get_data(as_text=True)
    assert [e["fullUrl"] for e in body(answered)["entry"]] == [
        f"{base}/{e['response']['location']}" for e in body(answered)["entry"]
    ]

    searched = biller.get("/fhir/R4/Claim?_count=1", headers={"Host": FORGED_HOST})
    assert searched.status_code == 200
    bundle = body(searched)
    links = [link["url"] for link in bundle["link"]] + [e["fullUrl"] for e in bundle["entry"]]
    assert {link["relation"] for link in bundle["link"]} == {"self", "next"}  # two claims: a next page
    assert links and all(url.startswith(f"{base}/Claim") for url in links)

    metadata = biller.get("/fhir/R4/metadata", headers={"Host": FORGED_HOST})
    assert body(metadata)["implementation"]["url"] == base

    for response in (created, answered, searched, metadata):
        assert FORGED_HOST not in response.get_data(as_text=True)
        assert FORGED_HOST not in str(response.headers)
