"""``/fhir/R4``: thin views. Parse the request, call one function, validate and render the resource."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, request

from claims_server.api_common.limits import json_body
from claims_server.app import db_session, state
from claims_server.fhir import services
from claims_server.fhir.capability import capability_statement
from claims_server.fhir.claims import claim_to_fhir
from claims_server.fhir.outcome import FHIR_JSON, FhirError, error, fhir_response, outcome_response
from claims_server.fhir.resources import KINDS
from claims_server.fhir.search import parse_args, searchset
from claims_server.fhir.validation import validate_resource

log = logging.getLogger(__name__)

blp = Blueprint("fhir", __name__, url_prefix="/fhir/R4")

ACCEPTED_TYPES = (FHIR_JSON, "application/json")


@blp.errorhandler(FhirError)
def _fhir_error(exc: FhirError) -> Response:
    db_session().rollback()
    return outcome_response(exc)


def _base() -> str:
    """The absolute base of Location, fullUrl and Bundle links: PUBLIC_BASE_URL, never the
    request's Host header (a forged Host would put another server's address in our links)."""
    return state().settings.PUBLIC_BASE_URL.rstrip("/") + blp.url_prefix


def _emit(resource: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    validate_resource(resource)
    return fhir_response(resource, status, headers)


def _body() -> Any:
    if request.mimetype not in ACCEPTED_TYPES:
        raise error(
            415, f"send {FHIR_JSON} (or application/json), not {request.mimetype or 'no content type'}"
        )
    # Size, depth and storable text were checked for every door by api_common.limits (its
    # problems become OperationOutcomes here); parse_float=Decimal keeps amounts exact.
    return json_body(parse_float=Decimal)


def _kind(name: str) -> Any:
    kind = KINDS.get(name)
    if kind is None or name == "AuditEvent":
        raise error(404, f"{name} is not a resource type this server serves", code="not-supported")
    return kind


@blp.get("/metadata")
def metadata() -> Response:
    return _emit(capability_statement(_base()))


def _read(name: str, resource_id: str) -> Response:
    kind = KINDS[name]
    if not services.valid_id(resource_id):
        raise error(404, f"no {name} with that id")
    return _emit(kind.read(db_session(), resource_id))


def _search(name: str) -> Response:
    kind = KINDS[name]
    args = parse_args(request.args.to_dict(flat=False), kind.params)
    resources, next_cursor = kind.search(db_session(), args)
    for resource in resources:
        validate_resource(resource)
    return _emit(searchset(_base(), name, resources, args, next_cursor))


@blp.get("/<string:type_name>/<string:resource_id>")
def read(type_name: str, resource_id: str) -> Response:
    """Read one resource by id (PHI reads are audited by security.read_audit)."""
    return _read(_kind(type_name).name, resource_id)


@blp.get("/<string:type_name>")
def search(type_name: str) -> Response:
    """Search one resource type: identifiers and dates only, Bundle searchset with a next link."""
    return _search(_kind(type_name).name)


@blp.get("/AuditEvent/<string:resource_id>")
def read_audit_event(resource_id: str) -> Response:
    return _read("AuditEvent", resource_id)


@blp.get("/AuditEvent")
def search_audit_events() -> Response:
    return _search("AuditEvent")


def _committed(response: Response) -> Response:
    db_session().commit()
    return response


@blp.post("/Claim")
def create_claim() -> Response:
    """Create a claim: scrubbed like any other; 201 with Location, or 422 with the findings."""
    claim = services.create_claim(db_session(), _body())
    db_session().flush()
    resource = claim_to_fhir(claim)
    return _committed(_emit(resource, 201, {"Location": f"{_base()}/Claim/{claim.public_id}"}))


@blp.post("")
@blp.post("/")
def transaction() -> Response:
    """A transaction Bundle (Patient, Coverage, Claim by urn:uuid fullUrls): all or nothing."""
    result = services.transaction(db_session(), _body(), _base())
    return _committed(_emit(result, 200))
