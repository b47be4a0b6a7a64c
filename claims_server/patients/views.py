"""``/api/v1/patients`` and ``/api/v1/coverages``. Searches are POSTs: PHI never goes in a URL."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.patients import services
from claims_server.patients.schemas import (
    CoverageListSchema,
    CoveragePatchSchema,
    CoverageSchema,
    PatientListArgsSchema,
    PatientPageSchema,
    PatientPatchSchema,
    PatientSchema,
    PatientSearchSchema,
)

blp = Blueprint("patients", __name__, url_prefix="/api/v1", description="Patients and their coverages (PHI)")


@blp.route("/patients", methods=["GET"])
@mutation()
@blp.arguments(PatientListArgsSchema, location="query")
@blp.response(200, PatientPageSchema)
def list_patients(args: dict[str, Any]) -> dict[str, Any]:
    """List patients (filter: practice); each read is audited. Lookups by an identifier: ``POST /patients/search``."""
    limit, cursor = args.pop("limit"), args.pop("cursor")
    page = services.list_patients(db_session(), args, limit=limit, cursor=cursor)
    return {"items": [services.patient_to_json(p) for p in page.items], "next_cursor": page.next_cursor}


@blp.route("/patients", methods=["POST"])
@mutation(idempotent=True)
@blp.arguments(PatientSchema)
@blp.response(201, PatientSchema)
def create_patient(data: dict[str, Any]) -> dict[str, Any]:
    """Create a patient."""
    return services.patient_to_json(services.create_patient(db_session(), data))


@blp.route("/patients/search", methods=["POST"])
@mutation()
@blp.arguments(PatientSearchSchema)
@blp.response(200, PatientPageSchema)
def search_patients(data: dict[str, Any]) -> dict[str, Any]:
    """Find patients by member id, account number, or name and birth date (in the body, never the URL)."""
    found = services.search_patients(db_session(), data)
    return {"items": [services.patient_to_json(p) for p in found], "next_cursor": None}


@blp.route("/patients/<patient_id>", methods=["GET"])
@mutation()
@blp.response(200, PatientSchema)
def get_patient(patient_id: str) -> dict[str, Any]:
    """Read a patient (audited)."""
    return services.patient_to_json(services.get_patient(db_session(), patient_id))


@blp.route("/patients/<patient_id>", methods=["PATCH"])
@mutation()
@blp.arguments(PatientPatchSchema(partial=True))
@blp.response(200, PatientSchema)
def update_patient(data: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """Change some of a patient's fields."""
    session = db_session()
    patient = services.get_patient(session, patient_id, audit_read=False)
    return services.patient_to_json(services.update_patient(session, patient, data))


@blp.route("/patients/<patient_id>/coverages", methods=["GET"])
@mutation()
@blp.response(200, CoverageListSchema)
def list_coverages(patient_id: str) -> dict[str, Any]:
    """The patient's coverages, primary first."""
    session = db_session()
    patient = services.get_patient(session, patient_id)
    return {"items": [services.coverage_to_json(c) for c in services.list_coverages(session, patient)]}


@blp.route("/patients/<patient_id>/coverages", methods=["POST"])
@mutation(idempotent=True)
@blp.arguments(CoverageSchema)
@blp.response(201, CoverageSchema)
def create_coverage(data: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """Add a coverage to the patient."""
    session = db_session()
    patient = services.get_patient(session, patient_id, audit_read=False)
    return services.coverage_to_json(services.create_coverage(session, patient, data))


@blp.route("/coverages/<coverage_id>", methods=["GET"])
@mutation()
@blp.response(200, CoverageSchema)
def get_coverage(coverage_id: str) -> dict[str, Any]:
    """Read a coverage (audited)."""
    return services.coverage_to_json(services.get_coverage(db_session(), coverage_id))


@blp.route("/coverages/<coverage_id>", methods=["PATCH"])
@mutation()
@blp.arguments(CoveragePatchSchema(partial=True))
@blp.response(200, CoverageSchema)
def update_coverage(data: dict[str, Any], coverage_id: str) -> dict[str, Any]:
    """Change some of a coverage's fields."""
    session = db_session()
    return services.coverage_to_json(
        services.update_coverage(session, services.get_coverage(session, coverage_id), data)
    )
