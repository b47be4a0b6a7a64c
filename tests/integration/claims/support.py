"""Builders shared by the claims and API tests: the demo practice and claim JSON documents."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.demo_seed import seed_practice
from claims_server.models import Coverage, Patient, Provider, RelationshipToSubscriber

DOS = date.today() - timedelta(days=20)  # recent: inside every payer's timely-filing limit


def seed(session: Session) -> dict[str, Any]:
    """The demo practice, committed; returns the ids a claim document needs."""
    seed_practice(session)
    session.commit()
    patients = session.scalars(select(Patient).order_by(Patient.id)).all()
    coverages = session.scalars(select(Coverage).order_by(Coverage.id)).all()
    self_cov = next(
        c for c in coverages if c.coverage_order == 1 and c.relationship_code == RelationshipToSubscriber.SELF
    )
    dependent_cov = next(
        c for c in coverages if c.coverage_order == 1 and c.relationship_code != RelationshipToSubscriber.SELF
    )
    rendering = session.scalar(select(Provider).where(Provider.is_rendering).order_by(Provider.id))
    return {
        "patient": self_cov.patient.public_id,
        "coverage": self_cov.public_id,
        "payer": self_cov.payer.public_id,
        "dependent_patient": dependent_cov.patient.public_id,
        "dependent_coverage": dependent_cov.public_id,
        "rendering_npi": rendering.npi,
        "rendering_id": rendering.public_id,
        "patients": [p.public_id for p in patients],
        "practice": patients[0].practice.public_id,
    }


def claim_json(ids: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A clean professional claim for the seeded self-insured patient."""
    doc: dict[str, Any] = {
        "patient": ids["patient"],
        "coverage": ids["coverage"],
        "place_of_service": "11",
        "rendering_provider": ids["rendering_npi"],
        "diagnoses": ["E11.9", "I10"],
        "lines": [
            {
                "procedure": "99214",
                "charge": "175.00",
                "units": "1",
                "service_date": DOS.isoformat(),
                "diagnosis_pointers": [1, 2],
            },
            {
                "procedure": "83036",
                "charge": "45.50",
                "service_date": DOS.isoformat(),
                "diagnosis_pointers": [1],
            },
        ],
    }
    doc.update(copy.deepcopy(overrides))
    return doc
