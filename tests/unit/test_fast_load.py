"""FastLoader (api_common/fast_load.py) answers what ``schema.load`` answers: the same dict, in the same
key order, for good documents; the same ValidationError messages for bad ones."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from marshmallow import Schema, ValidationError, fields, pre_load

from claims_server.api_common.fast_load import FastLoader
from claims_server.claims.schemas import ClaimInSchema, IcdCode

PATIENT = "3f2a9c1e5b7d4e0f8a6c2b1d9e7f5a3c"
COVERAGE = "9b8a7c6d5e4f30211f2e3d4c5b6a7980"


def _doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "patient": PATIENT,
        "patient_control_number": "IMPORT0001",
        "ready": True,
        "place_of_service": "11",
        "rendering_provider": "1234567893",
        "diagnoses": ["E119", "I10"],
        "lines": [
            {
                "modifiers": ["25"],
                "diagnosis_pointers": [1, 2],
                "procedure": "99214",
                "service_date": "2024-11-04",
                "units": "1",
                "charge": "175.00",
            },
            {"modifiers": [], "diagnosis_pointers": [1], "procedure": "83036", "charge": "45.50", "service_date": "2024-11-04"},
        ],
    }  # fmt: skip
    doc.update(copy.deepcopy(overrides))
    return doc


def _line(**overrides: Any) -> dict[str, Any]:
    line = {"procedure": "99213", "charge": "125.00", "service_date": "2024-11-05", "diagnosis_pointers": [1]}
    line.update(overrides)
    return line


GOOD = [
    _doc(),
    _doc(coverage=COVERAGE, referring_provider="1234567893", facility_provider=PATIENT),
    _doc(place_of_service=None, prior_authorization=" PA-77 ", ready="no"),
    _doc(related_causes=["AA"], accident_state="il", onset_date="2024-10-01", accident_date="2024-10-01"),
    _doc(frequency_code="7", payer_claim_control_number="PCCN12345"),
    _doc(diagnoses=["e11.9", "I10", "Z00.00"], lines=[_line(diagnosis_pointers=[3, 1])]),
    _doc(
        lines=[
            _line(units="2.50", unit_basis="MJ", description="unlisted"),
            _line(ndc="63323016501", drug_quantity="2", drug_unit="ML", service_date_end="2024-11-06"),
            _line(place_of_service="22", rendering_provider=PATIENT, line_control_number="LCN-1"),
            _line(modifiers=["59", "xu"], units=3, revenue_code="0450"),
        ]
    ),
    _doc(claim_kind="institutional", facility_type_code="13"),
    _doc(coverage=None, version="3"),
    {"patient": PATIENT, "diagnoses": ["I10"], "lines": [_line()]},
]

BAD = [
    _doc(unknown_field="x"),
    {"patient": PATIENT, "lines": [_line()]},
    _doc(patient="not-an-id"),
    _doc(diagnoses=["E11.9", "E119"]),
    _doc(diagnoses="E11.9"),
    _doc(lines=[]),
    _doc(lines=[_line(charge="$125.00")]),
    _doc(lines=[_line(charge=125)]),
    _doc(lines=[_line(service_date="11/05/2024")]),
    _doc(lines=[_line(diagnosis_pointers=[1, 1])]),
    _doc(lines=[_line(diagnosis_pointers=[True])]),
    _doc(lines=[_line(ndc="63323016501")]),
    _doc(lines=[_line(service_date_end="2024-11-01")]),
    _doc(lines=[_line(modifiers=["25", "59", "76", "77", "91"])]),
    _doc(lines=[_line(procedure=None)]),
    _doc(lines=[_line(extra=1)]),
    _doc(lines=["99213"]),
    _doc(lines=[None]),
    _doc(lines={"0": _line()}),
    _doc(patient_control_number="A*B"),
    _doc(prior_authorization="x" * 51),
    _doc(ready=1),
    _doc(related_causes=["AA"]),
    _doc(frequency_code="7"),
    _doc(claim_kind="institutional"),
    _doc(rendering_provider="1234567890"),
    _doc(version=True),
    ["not", "a", "mapping"],
]


def _load(loader: Any, doc: Any) -> tuple[str, Any]:
    try:
        return "ok", loader.load(doc)
    except ValidationError as exc:
        return "error", exc.messages


@pytest.mark.parametrize("doc", GOOD)
def test_a_good_document_loads_to_what_the_schema_loads_in_the_same_key_order(doc):
    schema = ClaimInSchema()
    loader = FastLoader(schema, pure=(IcdCode,))
    expected = schema.load(copy.deepcopy(doc))
    for _ in range(2):  # the second time from the memo
        got = loader.load(copy.deepcopy(doc))
        assert got == expected
        assert list(got) == list(expected)
        assert [list(line) for line in got["lines"]] == [list(line) for line in expected["lines"]]


@pytest.mark.parametrize("doc", BAD)
def test_a_bad_document_raises_the_schemas_own_messages(doc):
    schema = ClaimInSchema()
    loader = FastLoader(schema, pure=(IcdCode,))
    for good in GOOD:  # a memo full of good values changes nothing
        loader.load(copy.deepcopy(good))
    expected = _load(schema, copy.deepcopy(doc))
    assert expected[0] == "error"
    assert _load(loader, copy.deepcopy(doc)) == expected


def test_results_share_no_mutable_value():
    loader = FastLoader(ClaimInSchema(), pure=(IcdCode,))
    first = loader.load(_doc())
    first["lines"][0]["modifiers"].append("59")
    first["related_causes"].append("EM")
    first["diagnoses"].append("Z0000")
    second = loader.load(_doc())
    assert second["lines"][0]["modifiers"] == ["25"] and second["related_causes"] == []
    assert second["diagnoses"] == ["E119", "I10"]


def test_a_schema_the_plan_does_not_model_is_loaded_by_the_schema_itself():
    class Hooked(Schema):
        name = fields.String(required=True)

        @pre_load
        def _strip(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            return {"name": data["name"].strip()}

    loader = FastLoader(Hooked())
    assert loader._plan is None
    assert loader.load({"name": " x "}) == {"name": "x"}

    class Optional(Schema):
        name = fields.String()  # neither required nor defaulted: absent stays absent

    loader = FastLoader(Optional())
    assert loader._plan is None
    assert loader.load({}) == {}
