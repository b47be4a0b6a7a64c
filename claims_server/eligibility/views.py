"""``/api/v1/eligibility``: request a check (real time or batch), read the result, the summary,
and the patient's estimate for a planned visit. Every read is audited (PHI-linked)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from claims_server.api_common.fields import Money, StrictInteger
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session, state
from claims_server.db import unit_of_work
from claims_server.eligibility import services
from claims_server.errors import NotFound, Unprocessable
from claims_server.models import EligibilityCheck
from claims_server.models.eligibility import EligibilityStatus
from claims_server.security.principal import current_principal
from eligibility.estimate import CostSharing, EstimateError, PlannedService, estimate_visit
from eligibility.summary import from_json

blp = Blueprint(
    "eligibility",
    __name__,
    url_prefix="/api/v1/eligibility",
    description="270/271 eligibility checks, benefits summaries and patient estimates.",
)

_CODE = validate.Regexp(r"^[A-Z0-9]{1,2}$", error="a service type code is 1-2 letters or digits")
_PROCEDURE = validate.Regexp(r"^[A-Z0-9]{5}$", error="a CPT/HCPCS code is 5 letters or digits")


class CheckInSchema(Schema):
    coverage = fields.String(required=True, validate=validate.Length(1, 40))
    service_date = fields.Date(required=True)
    service_types = fields.List(
        fields.String(validate=_CODE), load_default=list, validate=validate.Length(max=20)
    )
    procedures = fields.List(
        fields.String(validate=_PROCEDURE), load_default=list, validate=validate.Length(max=20)
    )
    mode = fields.String(load_default="realtime", validate=validate.OneOf(["realtime", "batch"]))


class CheckOutSchema(Schema):
    id = fields.String()
    coverage = fields.String()
    patient = fields.String()
    status = fields.String()
    requested_at = fields.String(allow_none=True)
    responded_at = fields.String(allow_none=True)
    service_types = fields.List(fields.String())
    trace_number = fields.String(allow_none=True)
    summary = fields.Dict(allow_none=True)
    error = fields.Dict(allow_none=True)


class PlannedServiceSchema(Schema):
    procedure = fields.String(required=True, validate=_PROCEDURE)
    units = StrictInteger(load_default=1, validate=validate.Range(1, 99))
    service_type = fields.String(load_default="30", validate=_CODE)


class EstimateInSchema(Schema):
    services = fields.List(
        fields.Nested(PlannedServiceSchema), required=True, validate=validate.Length(1, 50)
    )
    fee_schedule = fields.Dict(
        keys=fields.String(validate=_PROCEDURE), values=Money(), required=True
    )  # procedure -> allowed amount ("120.00"), loaded as cents
    network = fields.String(load_default="in", validate=validate.OneOf(["in", "out"]))


@blp.route("/checks", methods=["POST"])
@blp.arguments(CheckInSchema)
@blp.response(201, CheckOutSchema)
@blp.alt_response(404, description="no such coverage")
@blp.alt_response(
    422, description="the coverage cannot be checked (no route, no endpoint, missing member id)"
)
def request_check(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Ask the payer now (``realtime``: CORE HTTP, the answer is in the response) or put the
    check on the clearinghouse link (``batch``: status ``sent``; the 271 arrives by polling).
    Timeouts, AAA rejections and malformed 271s come back as a stored result with a retry plan."""
    factory = state(current_app).session_factory
    principal = current_principal()
    with unit_of_work(factory) as session:
        coverage = services.patient_of(session, data["coverage"], principal)
        if data["mode"] == "batch":
            check_id = services.start_batch(session, [(coverage, data["service_date"])])[0]
        else:
            check = services.start_check(
                session,
                coverage,
                service_date=data["service_date"],
                service_types=data["service_types"],
                procedures=data["procedures"],
                user_id=principal.user_id,
            )
            services.realtime_client(services.route_of(coverage))  # fail early: no endpoint, no check
            check_id = check.id
    if data["mode"] == "batch":
        base = current_app.config.get("INSTANCE_PATH") or state(current_app).settings.INSTANCE_PATH
        services.upload_batch(
            factory, [check_id], transport_factory=lambda route: services.route_transport(route, base)
        )
    else:
        services.run_realtime(factory, check_id)
    with unit_of_work(factory) as session:
        check = session.get(EligibilityCheck, check_id)
        return services.check_json(check), 201


@blp.route("/checks/<check_id>", methods=["GET"])
@mutation()
@blp.response(200, CheckOutSchema)
@blp.alt_response(404, description="no such check")
def get_check(check_id: str) -> dict[str, Any]:
    """One check: status, retry plan (for errors and timeouts) and summary (audited)."""
    session = db_session()
    check = services.get_check(session, check_id, current_principal())
    services.audit_read(session, check, "read")
    return services.check_json(check)


@blp.route("/checks/<check_id>/summary", methods=["GET"])
@mutation()
@blp.response(200)
@blp.alt_response(404, description="no such check, or no answer yet")
def get_summary(check_id: str) -> dict[str, Any]:
    """The benefits summary of an answered check (audited)."""
    session = db_session()
    check = services.get_check(session, check_id, current_principal())
    if check.benefits_summary is None:
        raise NotFound("the check has no answer yet")
    services.audit_read(session, check, "summary")
    return check.benefits_summary


@blp.route("/checks/<check_id>/estimate", methods=["POST"])
@mutation()
@blp.arguments(EstimateInSchema)
@blp.response(200)
@blp.alt_response(422, description="the check is not active, or a service is not on the fee schedule")
def estimate(data: dict[str, Any], check_id: str) -> dict[str, Any]:
    """The patient's estimate for a planned visit, from the check's summary and a fee schedule."""
    session = db_session()
    check = services.get_check(session, check_id, current_principal())
    if check.status is not EligibilityStatus.ACTIVE or check.benefits_summary is None:
        raise Unprocessable("an estimate needs an active eligibility answer; check eligibility again")
    summary = from_json(check.benefits_summary)
    fees = dict(data["fee_schedule"])
    planned = [PlannedService(s["procedure"], s["units"], s["service_type"]) for s in data["services"]]
    try:
        result = estimate_visit(planned, fees, CostSharing.from_summary(summary, network=data["network"]))
    except EstimateError as exc:
        raise Unprocessable(str(exc)) from None
    services.audit_read(session, check, "estimate")
    return {"check": check.public_id, "status": summary.status, **result.to_json_dict()}
