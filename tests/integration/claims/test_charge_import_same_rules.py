"""The charge import's claims are the claims ``create_claim`` builds: for the same loaded claim JSON,
the import's transient claim (``claim_values`` put into instance dicts) holds every value that
``apply_claim_data`` sets through the ORM, converts to the same 837 claim, gets the same scrub
findings, and a refused document is refused with the same errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, select

from claims_server.claims.charge_import import _transient_claim
from claims_server.claims.schemas import ClaimInSchema
from claims_server.claims.scrub import scrub_claim, to_json_findings
from claims_server.claims.services import ClaimReferences, apply_claim_data, claim_values
from claims_server.claims.to_edi import build_edi_claim
from claims_server.errors import ApiError
from claims_server.models import Claim, ClaimDiagnosis, ClaimState, Provider, ServiceLine
from claims_server.models.common import new_public_id, utcnow
from claims_server.security.principal import acting_as, system_principal
from tests.integration.claims.support import DOS, claim_json


def _columns(model: type[Any]) -> list[str]:
    return [a.key for a in inspect(model).column_attrs]


def _both(session, doc: dict[str, Any]) -> tuple[Claim, Claim]:
    data = ClaimInSchema().load(doc)
    pcn, now, public_id = "SAME0001", utcnow(), new_public_id()
    orm = Claim(public_id=public_id, patient_control_number=pcn, state=ClaimState.DRAFT, state_changed_at=now)
    apply_claim_data(session, orm, data)
    values = claim_values(data, ClaimReferences(session), patient_control_number=pcn)
    imported = _transient_claim(values, pcn, now)
    imported.__dict__["public_id"] = public_id
    return orm, imported


def _documents(ids: dict[str, Any], providers: list[Provider]) -> list[dict[str, Any]]:
    other = next(p for p in providers if p.is_rendering and p.npi != ids["rendering_npi"])
    referring = next(p for p in providers if p.is_referring)
    end = (DOS + timedelta(days=1)).isoformat()
    return [
        claim_json(ids),
        claim_json(ids, coverage=None, ready=True),
        claim_json(
            ids,
            patient=ids["dependent_patient"],
            coverage=ids["dependent_coverage"],
            referring_provider=referring.npi,
            facility_provider=other.public_id,
            prior_authorization="PA-77",
            place_of_service="22",
        ),
        claim_json(
            ids,
            related_causes=["AA"],
            accident_state="IL",
            accident_date=DOS.isoformat(),
            frequency_code="7",
            payer_claim_control_number="PCCN0001",
            diagnoses=["E11.9", "I10", "Z00.00"],
            lines=[
                {
                    "procedure": "99214",
                    "modifiers": ["25", "59"],
                    "charge": "175.00",
                    "units": "2",
                    "service_date": DOS.isoformat(),
                    "service_date_end": end,
                    "diagnosis_pointers": [3, 1],
                    "place_of_service": "11",
                    "rendering_provider": other.npi,
                    "line_control_number": "LCN-9",
                },
                {
                    "procedure": "J1100",
                    "charge": "20.00",
                    "units": "2",
                    "service_date": DOS.isoformat(),
                    "diagnosis_pointers": [1],
                    "ndc": "63323016501",
                    "drug_quantity": "2",
                    "drug_unit": "ML",
                    "description": "dexamethasone",
                },
            ],
        ),
    ]


def test_the_imports_claims_hold_what_apply_claim_data_sets_and_scrub_the_same(session, ids):
    with acting_as(system_principal("test:same-rules")):
        providers = session.scalars(select(Provider).order_by(Provider.id)).all()
        for doc in _documents(ids, providers):
            orm, imported = _both(session, doc)
            for key in _columns(Claim):
                assert getattr(imported, key) == getattr(orm, key), key
            for key in ("patient", "practice", "coverage", "original_claim", "rendering_provider",
                        "referring_provider", "supervising_provider", "facility_provider"):  # fmt: skip
                assert getattr(imported, key) is getattr(orm, key), key
            assert len(imported.diagnoses) == len(orm.diagnoses)
            for ours, theirs in zip(imported.diagnoses, orm.diagnoses, strict=True):
                for key in set(_columns(ClaimDiagnosis)) - {"claim_id"}:
                    assert getattr(ours, key) == getattr(theirs, key), key
            assert len(imported.service_lines) == len(orm.service_lines)
            for ours, theirs in zip(imported.service_lines, orm.service_lines, strict=True):
                for key in set(_columns(ServiceLine)) - {"claim_id"}:
                    assert getattr(ours, key) == getattr(theirs, key), key
                assert ours.rendering_provider is theirs.rendering_provider
            assert build_edi_claim(session, imported) == build_edi_claim(session, orm)
            assert to_json_findings(scrub_claim(session, imported)) == to_json_findings(
                scrub_claim(session, orm)
            )
            assert orm not in session and imported not in session


@pytest.mark.parametrize(
    "change",
    [
        {"rendering_provider": "1234567893"},
        {"coverage": "0" * 32},
        {"patient": "0" * 32},
        {"lines": [{"procedure": "99213", "charge": "10.00", "service_date": "2001-01-01", "diagnosis_pointers": [1]}]},
    ],
)  # fmt: skip
def test_a_document_the_rules_refuse_is_refused_with_the_same_errors(session, ids, change):
    with acting_as(system_principal("test:same-rules")):
        doc = claim_json(ids, **change)
        if "lines" in change:
            doc["lines"][0]["rendering_provider"] = "1234567893"  # an NPI of no provider
        with pytest.raises(ApiError) as orm:
            _both(session, doc)
        data = ClaimInSchema().load(doc)
        with pytest.raises(ApiError) as imported:
            claim_values(data, ClaimReferences(session), patient_control_number="SAME0001")
        assert (imported.value.status, imported.value.detail, imported.value.errors) == (
            orm.value.status,
            orm.value.detail,
            orm.value.errors,
        )
