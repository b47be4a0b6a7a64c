"""``/api/v1/patients``, ``/api/v1/coverages`` and ``/api/v1/encounters`` (the schedule). Searches are POSTs: PHI never goes in a URL."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.claims import encounters
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


@blp.route("/patients/<patient_id>/encounters", methods=["GET"])
@mutation()
@blp.response(200, encounters.EncounterListSchema)
def list_patient_encounters(patient_id: str) -> dict[str, Any]:
    """The patient's visits, oldest first."""
    session = db_session()
    patient = services.get_patient(session, patient_id)
    return {
        "items": [encounters.encounter_to_json(e) for e in encounters.patient_encounters(session, patient)]
    }


@blp.route("/patients/<patient_id>/encounters", methods=["POST"])
@mutation(idempotent=True)
@blp.arguments(encounters.EncounterSchema)
@blp.response(201, encounters.EncounterSchema)
def create_encounter(data: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """Put a visit on the schedule (tomorrow's visits get an eligibility check the night before)."""
    session = db_session()
    patient = services.get_patient(session, patient_id, audit_read=False)
    return encounters.encounter_to_json(encounters.create_encounter(session, patient, data))


@blp.route("/encounters", methods=["GET"])
@mutation()
@blp.arguments(encounters.EncounterDayArgsSchema, location="query")
@blp.response(200, encounters.EncounterPageSchema)
def list_encounters(args: dict[str, Any]) -> dict[str, Any]:
    """The schedule of one day (``date``), optionally of one practice; patients by id only."""
    limit, cursor = args.pop("limit"), args.pop("cursor")
    page = encounters.day_schedule(db_session(), args, limit=limit, cursor=cursor)
    return {"items": [encounters.encounter_to_json(e) for e in page.items], "next_cursor": page.next_cursor}


@blp.route("/encounters/<encounter_id>", methods=["GET"])
@blp.response(200, encounters.EncounterSchema)
def get_encounter(encounter_id: str) -> dict[str, Any]:
    """Read a visit."""
    return encounters.encounter_to_json(encounters.get_encounter(db_session(), encounter_id))


@blp.route("/encounters/<encounter_id>", methods=["DELETE"])
@mutation()
@blp.response(204)
def delete_encounter(encounter_id: str) -> None:
    """Cancel a visit (409 when a claim bills it)."""
    session = db_session()
    encounters.delete_encounter(session, encounters.get_encounter(session, encounter_id))
