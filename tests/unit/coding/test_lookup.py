"""Code suggestions for charge entry: by code prefix or words, billable ICD codes of the DOS's
release, HCPCS, and CPT described only from a licensed file."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

from coding import cpt, icd10cm, lookup

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DOS = date(2026, 3, 2)  # inside FY2026


@pytest.fixture
def licensed_cpt():
    codes = cpt.read_csv(FIXTURES / "cpt_sample.csv")
    cpt.use(codes)
    try:
        yield codes
    finally:
        cpt.use(None)


def test_a_diagnosis_is_found_by_words_the_general_code_first():
    found = lookup.search_diagnoses("diabetes without", DOS, limit=5)
    assert [m.code for m in found][:2] == ["E10.9", "E11.9"]
    assert found[1].description == "Type 2 diabetes mellitus without complications"
    assert lookup.search_diagnoses("diab type 2 without", DOS)[0].code == "E11.9"
    assert lookup.search_diagnoses("pain right knee", DOS)[0].code == "M25.561"


def test_a_diagnosis_is_found_by_code_with_or_without_the_dot_and_only_billable_codes():
    assert [m.code for m in lookup.search_diagnoses("e11.9", DOS)] == ["E11.9"]
    by_category = lookup.search_diagnoses("E11", DOS, limit=50)
    assert by_category and all(m.code.startswith("E11.") for m in by_category)
    assert "E11" not in [m.code for m in by_category]  # a category header is not billable
    assert lookup.describe_diagnosis("E11", DOS) is None
    assert lookup.describe_diagnosis("E119", DOS).code == "E11.9"  # type: ignore[union-attr]
    assert lookup.search_diagnoses("zzz-no-such-words", DOS) == []
    assert lookup.search_diagnoses("   ", DOS) == []


def test_the_release_of_the_date_of_service_is_used_else_the_latest():
    latest = icd10cm.default().latest
    assert lookup.diagnosis_release(DOS) is icd10cm.default().release_for(DOS)
    assert lookup.diagnosis_release(date(1999, 1, 1)) is latest


def test_procedures_hcpcs_by_code_and_words_cpt_code_alone_without_a_licence():
    assert lookup.search_procedures("J110", DOS)[0].code == "J1100"
    words = lookup.search_procedures("dexamethasone sodium", DOS)
    assert "J1100" in [m.code for m in words] and all(m.system == "HCPCS" for m in words)
    alone = lookup.search_procedures("99213", DOS)
    assert alone[0] == lookup.CodeMatch("99213", None, "CPT")
    assert lookup.describe_procedure("99213", DOS) == lookup.CodeMatch("99213", None, "CPT")
    assert lookup.search_procedures("9921", DOS) == []  # no CPT code list without the file
    assert lookup.describe_procedure("00000", DOS) is None


def test_cpt_descriptions_come_from_the_licensed_file(licensed_cpt):
    assert lookup.describe_procedure("99213", DOS).description.startswith("Synthetic")  # type: ignore[union-attr]
    assert [m.code for m in lookup.search_procedures("9921", DOS)] == ["99213", "99214"]
    assert "93000" in [m.code for m in lookup.search_procedures("electrocardiogram", DOS)]
    assert lookup.describe_procedure("99215", DOS) is None  # a licensed file lists every code


def test_limits_are_bounded():
    assert len(lookup.search_diagnoses("fracture", DOS, limit=500)) == lookup.MAX_LIMIT
    assert len(lookup.search_diagnoses("fracture", DOS, limit=0)) == 1


def test_a_search_is_fast_once_the_index_is_built():
    lookup.warm_up()
    start = time.perf_counter()
    for query in ("diabetes", "fracture of femur", "E11", "hyper", "knee"):
        lookup.search_diagnoses(query, DOS)
        lookup.search_procedures(query, DOS)
    assert (time.perf_counter() - start) / 10 < 0.02
