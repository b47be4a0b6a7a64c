"""POST Claim and transaction Bundles: created through the claims services, or refused with an
OperationOutcome naming the bad element, and then nothing changed."""

from __future__ import annotations

import copy
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from claims_server.models import Claim, ClaimState
from tests.integration.fhir.conftest import body, fhir_claim, post, row_counts, transaction_bundle


def _claim(ids) -> dict:
    return fhir_claim(ids, f"Patient/{ids['patient']}", f"Coverage/{ids['coverage']}")


def _expressions(response) -> list[str]:
    outcome = body(response)
    assert outcome["resourceType"] == "OperationOutcome"
    return [e for issue in outcome["issue"] for e in issue.get("expression", [])]


def test_post_claim_creates_a_scrubbed_ready_claim(api_client, session, ids):
    biller = api_client("biller")
    response = post(biller, "/fhir/R4/Claim", _claim(ids))
    assert response.status_code == 201, response.get_data(as_text=True)
    created = body(response)
    assert response.headers["Location"].endswith(f"/fhir/R4/Claim/{created['id']}")
    claim = session.scalar(select(Claim).where(Claim.public_id == created["id"]))
    assert claim.state is ClaimState.READY and claim.scrubbed_at is not None
    assert [dx.code for dx in claim.diagnoses] == ["E119", "I10"]
    assert [(ln.procedure_code, ln.charge_cents, ln.pointer_positions) for ln in claim.service_lines] == [
        ("99214", 17500, [1, 2]),
        ("83036", 4550, [1]),
    ]
    assert claim.place_of_service == "11" and claim.rendering_provider.npi == ids["rendering_npi"]
    # What we answer is what a read returns, and it maps back to the same claim.
    read = body(biller.get(f"/fhir/R4/Claim/{created['id']}"))
    assert read == created
    assert read["total"]["value"] == Decimal("220.5")
    assert [d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in read["diagnosis"]] == ["E11.9", "I10"]


def test_draft_status_keeps_the_claim_draft(api_client, session, ids):
    response = post(api_client("biller"), "/fhir/R4/Claim", _claim(ids) | {"status": "draft"})
    assert response.status_code == 201
    assert (
        session.scalar(select(Claim.state).where(Claim.public_id == body(response)["id"])) is ClaimState.DRAFT
    )


def _without(doc: dict, *path) -> dict:
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return doc


def _with(doc: dict, value, *path) -> dict:
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


BAD_CLAIMS = {
    "missing required element": (lambda c: _without(c, "use"), 422, "Claim.use"),
    "missing patient": (lambda c: _without(c, "patient"), 422, "Claim.patient"),
    "wrong type": (lambda c: _with(c, "one", "diagnosis", 0, "sequence"), 422, "Claim.diagnosis[0].sequence"),
    "bad code binding": (lambda c: _with(c, "approved", "status"), 422, "Claim.status"),
    "unknown element": (lambda c: _with(c, 1, "colour"), 422, "Claim.colour"),
    "unknown ICD-10-CM code": (
        lambda c: _with(c, "E11.999", "diagnosis", 0, "diagnosisCodeableConcept", "coding", 0, "code"),
        422,
        "Claim.diagnosis[0].diagnosisCodeableConcept",
    ),
    "diagnosis without ICD-10-CM": (
        lambda c: _with(
            c, "http://snomed.info/sct", "diagnosis", 1, "diagnosisCodeableConcept", "coding", 0, "system"
        ),
        422,
        "Claim.diagnosis[1].diagnosisCodeableConcept",
    ),
    "patient that does not exist": (
        lambda c: _with(c, {"reference": f"Patient/{uuid.uuid4().hex}"}, "patient"),
        422,
        "Claim.patient",
    ),
    "coverage of someone else": (None, 422, "Claim.insurance[0].coverage"),
    "pointer to no diagnosis": (
        lambda c: _with(c, [7], "item", 1, "diagnosisSequence"),
        422,
        "Claim.item[1].diagnosisSequence[0]",
    ),
    "total that does not add up": (
        lambda c: _with(c, {"value": 999, "currency": "USD"}, "total"),
        422,
        "Claim.total",
    ),
    "fractional cents": (
        lambda c: _with(c, {"value": Decimal("10.005"), "currency": "USD"}, "item", 0, "net"),
        422,
        "Claim.item[0].net",
    ),
    "institutional": (
        lambda c: _with(
            c,
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}
                ]
            },
            "type",
        ),
        422,
        "Claim.type",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CLAIMS))
def test_bad_claims_get_an_operation_outcome_naming_the_element(api_client, session, ids, case):
    change, status, expression = BAD_CLAIMS[case]
    doc = _claim(ids)
    doc = (
        _with(doc, {"reference": f"Coverage/{ids['dependent_coverage']}"}, "insurance", 0, "coverage")
        if change is None
        else change(doc)
    )
    before = row_counts(session)
    response = post(api_client("biller"), "/fhir/R4/Claim", doc)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    assert expression in _expressions(response)
    assert row_counts(session) == before


def test_scrubber_findings_carry_rule_and_hint(api_client, ids):
    doc = _with(_claim(ids), "E11.999", "diagnosis", 0, "diagnosisCodeableConcept", "coding", 0, "code")
    outcome = body(post(api_client("biller"), "/fhir/R4/Claim", doc))
    issue = next(
        i for i in outcome["issue"] if i.get("expression") == ["Claim.diagnosis[0].diagnosisCodeableConcept"]
    )
    assert issue["code"] == "business-rule"
    assert issue["details"]["coding"][0]["system"] == "https://claims-server.dev/fhir/CodeSystem/rule"
    assert issue["details"]["coding"][0]["code"] == "DX_VALID"  # the scrubber's rule id
    assert issue["details"]["text"]  # and its fix hint


@pytest.mark.parametrize(
    ("payload", "content_type", "status"),
    [
        ("{not json", "application/fhir+json", 400),
        ("[1, 2]", "application/fhir+json", 422),
        ('{"resourceType": "Claim"}', "text/plain", 415),
        ("{" + '"a": ' * 0 + '"x": "' + "y" * (1024 * 1024 + 10) + '"}', "application/fhir+json", 413),
    ],
)
def test_unparseable_bodies(api_client, session, ids, payload, content_type, status):
    before = row_counts(session)
    response = post(api_client("biller"), "/fhir/R4/Claim", payload, content_type)
    assert response.status_code == status
    assert body(response)["resourceType"] == "OperationOutcome"
    assert row_counts(session) == before


def test_application_json_is_accepted_too(api_client, ids):
    assert post(api_client("biller"), "/fhir/R4/Claim", _claim(ids), "application/json").status_code == 201


# -- transaction Bundles ------------------------------------------------------------------------


def test_bundle_is_all_or_nothing(api_client, session, ids):
    bundle = transaction_bundle(ids)
    claim = bundle["entry"][2]["resource"]
    claim["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0]["code"] = "E11.999"  # scrub error
    before = row_counts(session)
    response = post(api_client("biller"), "/fhir/R4", bundle)
    assert response.status_code == 422
    assert "Bundle.entry[2].resource.diagnosis[0].diagnosisCodeableConcept" in _expressions(response)
    assert row_counts(session) == before  # the patient and coverage were rolled back too


BAD_BUNDLES = {
    "reference to no entry": (
        lambda b: _with(b, {"reference": f"urn:uuid:{uuid.uuid4()}"}, "entry", 2, "resource", "patient"),
        "Bundle.entry[2].resource.patient",
    ),
    "patient without account number": (
        lambda b: _without(b, "entry", 0, "resource", "identifier"),
        "Bundle.entry[0].resource.identifier",
    ),
    "bad gender code": (
        lambda b: _with(b, "robot", "entry", 0, "resource", "gender"),
        "Bundle.entry[0].resource.gender",
    ),
    "unknown payer": (
        lambda b: _with(
            b,
            [{"identifier": {"system": "https://claims-server.dev/fhir/sid/payer-id", "value": "NOPE"}}],
            "entry",
            1,
            "resource",
            "payor",
        ),
        "Bundle.entry[1].resource.payor[0]",
    ),
    "coverage missing beneficiary": (
        lambda b: _without(b, "entry", 1, "resource", "beneficiary"),
        "Bundle.entry[1].resource.beneficiary",
    ),
    "batch instead of transaction": (lambda b: _with(b, "batch", "type"), "Bundle.type"),
    "wrong verb": (
        lambda b: _with(b, {"method": "PUT", "url": "Patient"}, "entry", 0, "request"),
        "Bundle.entry[0].request",
    ),
    "unsupported resource": (
        lambda b: _with(b, {"resourceType": "Organization", "name": "x"}, "entry", 0, "resource"),
        "Bundle.entry[0].resource",
    ),
    "future birth date": (
        lambda b: _with(b, "2999-01-01", "entry", 0, "resource", "birthDate"),
        "Bundle.entry[0].resource.birthDate",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_BUNDLES))
def test_bad_bundles_name_the_element_and_change_nothing(api_client, session, ids, case):
    change, expression = BAD_BUNDLES[case]
    before = row_counts(session)
    response = post(api_client("biller"), "/fhir/R4", change(transaction_bundle(ids)))
    assert response.status_code == 422, response.get_data(as_text=True)
    assert expression in _expressions(response)
    assert row_counts(session) == before


def test_bundle_with_an_account_number_in_use_is_a_conflict(api_client, session, ids):
    biller = api_client("biller")
    assert post(biller, "/fhir/R4", transaction_bundle(ids, account="DUP-1")).status_code == 200
    before = row_counts(session)
    response = post(biller, "/fhir/R4", transaction_bundle(ids, account="DUP-1"))
    assert response.status_code == 409
    assert "Bundle.entry[0].resource.identifier" in _expressions(response)
    assert row_counts(session) == before


NAME = "Jane Q Smith"  # a value that is PHI if a caller puts it in the wrong element


@pytest.mark.parametrize(
    ("change", "expression", "diagnostics"),
    [
        (
            lambda b: _with(b, NAME, "entry", 0, "resource", "gender"),
            "Bundle.entry[0].resource.gender",
            "Bundle.entry[0].resource.gender: not a code of the required value set "
            "(female, male, other, unknown)",
        ),
        (
            lambda b: _with(b, NAME, "entry", 1, "resource", "status"),
            "Bundle.entry[1].resource.status",
            "Bundle.entry[1].resource.status: not a code of the required value set "
            "(active, cancelled, draft, entered-in-error)",
        ),
        (lambda b: _with(b, NAME, "resourceType"), "Bundle.resourceType", "expected a Bundle"),
    ],
)
def test_refusals_name_the_element_and_allowed_codes_never_the_value(
    api_client, session, ids, change, expression, diagnostics
):
    before = row_counts(session)
    response = post(api_client("biller"), "/fhir/R4", change(transaction_bundle(ids)))
    assert response.status_code == 422, response.get_data(as_text=True)
    issues = body(response)["issue"]
    assert [i["diagnostics"] for i in issues if expression in i.get("expression", [])] == [diagnostics]
    assert NAME not in response.get_data(as_text=True)
    assert row_counts(session) == before


def test_an_unknown_resource_type_is_not_repeated_in_the_outcome(api_client):
    from claims_server.fhir.outcome import FhirError
    from claims_server.fhir.validation import validate_resource

    with pytest.raises(FhirError) as caught:
        validate_resource({"resourceType": NAME})
    (issue,) = caught.value.issues
    assert (issue.diagnostics, issue.expression) == ("not an R4 resource type", "Resource.resourceType")
    response = post(api_client("biller"), "/fhir/R4/Claim", {"resourceType": NAME})
    assert response.status_code == 422 and NAME not in response.get_data(as_text=True)
