"""Claim JSON → stored claim → build_edi_claim → write_837 → pyx12 accepts with 0 errors."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from claims_server.claims import services
from claims_server.claims.scrub import json_path, scrub_claim
from claims_server.claims.to_edi import ClaimDataError, batch_for, build_edi_claim, claim_load_options
from claims_server.models import Claim, ClearinghouseRoute, Patient
from edi.x837 import parse_837, write_837
from tests.integration.claims.support import claim_json
from tests.unit.edi.support_837 import pyx12_validate


def _write(session, claims: list[Claim]) -> str:
    loaded = session.scalars(
        select(Claim).where(Claim.id.in_([c.id for c in claims])).options(*claim_load_options())
    ).all()
    edi_claims = [build_edi_claim(session, c) for c in loaded]
    route = session.scalar(select(ClearinghouseRoute))
    batch = batch_for(loaded[0].practice, route, edi_claims, created=datetime(2026, 1, 5, 9, 30))
    return write_837(
        batch, interchange_control=42, group_control=42, transaction_controls=["0042"], usage="T"
    )


def test_self_and_dependent_claims_pass_pyx12(session, ids):
    own = services.create_claim_from_json(
        session,
        claim_json(
            ids,
            lines=[
                *claim_json(ids)["lines"],
                {
                    "procedure": "J3420",
                    "charge": "12.34",
                    "units": "0.5",
                    "service_date": claim_json(ids)["lines"][0]["service_date"],
                    "ndc": "00009073701",
                    "drug_quantity": "1",
                    "drug_unit": "ML",
                    "modifiers": ["JZ"],
                },
            ],
        ),
    ).claim
    dependent = services.create_claim_from_json(
        session, claim_json(ids, patient=ids["dependent_patient"], coverage=ids["dependent_coverage"])
    ).claim
    session.commit()
    text = _write(session, [own, dependent])
    verdict = pyx12_validate(text)
    assert verdict.accepted, verdict.errors
    parsed = parse_837(text.encode())[0]
    by_pcn = {c.patient_control_number: c for c in parsed.claims}
    first = by_pcn[own.patient_control_number]
    assert first.total_charge_cents == 17500 + 4550 + 1234
    assert [line.charge_cents for line in first.lines] == [17500, 4550, 1234]
    assert first.lines[2].units == Decimal("0.5") and first.lines[2].ndc == "00009073701"
    assert [d.code for d in first.diagnoses] == ["E119", "I10"]
    assert first.patient is None  # the subscriber is the patient: no 2000C loop
    second = by_pcn[dependent.patient_control_number]
    assert second.patient is not None and second.patient.relationship_code in {"01", "19"}
    assert "SBR*P**" in text  # SBR02 empty for the dependent's subscriber loop


def test_missing_dependent_address_is_a_finding_not_a_traceback(session, ids):
    claim = services.create_claim_from_json(
        session, claim_json(ids, patient=ids["dependent_patient"], coverage=ids["dependent_coverage"])
    ).claim
    patient = session.get(Patient, claim.patient_id)
    patient.address_line1 = None
    session.flush()
    with pytest.raises(ClaimDataError) as missing:
        build_edi_claim(session, claim)
    assert [f.path for f in missing.value.findings] == ["patient.address"]
    assert missing.value.status == 422
    assert [f.rule_id for f in scrub_claim(session, claim)] == ["REQUIRED_DATA"]


@pytest.mark.parametrize(
    ("scrubber_path", "json", "source"),
    [
        ("lines[1].charge_cents", "lines[1].charge", "claim"),
        ("lines[0].modifiers[1]", "lines[0].modifiers[1]", "claim"),
        ("lines[2].rendering.npi", "lines[2].rendering_provider", "claim"),
        ("diagnoses[3]", "diagnoses[3]", "claim"),
        ("total_charge_cents", "total_charge", "claim"),
        ("referring", "referring_provider", "claim"),
        ("billing_provider.address.zip_code", "practice.zip_code", "practice"),
        ("subscriber.address.state", "coverage.state", "coverage"),
        ("patient.address.zip_code", "patient.zip_code", "patient"),
        ("original_claim_number", "payer_claim_control_number", "claim"),
    ],
)
def test_scrubber_paths_map_to_the_claim_json(scrubber_path, json, source):
    assert json_path(scrubber_path) == (json, source)
